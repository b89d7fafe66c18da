"""Command targets: real short processes; timeouts and interrupts driven by an injected clock."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from procutil import wait_dead

from perfloop.config import BenchmarkSpec, Settings
from perfloop.measure.command import measure_command
from perfloop.measure.process import StderrTail, describe_exit, run_child
from perfloop.records import ResultStatus

TINY = Settings(processes=2, values=2, warmup=1, min_time=0.001, timeout=60)
PY = sys.executable


def spec(command, *, root: Path, settings: Settings = TINY,
         metrics: tuple[str, ...] = ("wall_time", "cpu_time", "peak_rss"), **fields) -> BenchmarkSpec:
    return BenchmarkSpec(name="cmd", base_name="cmd", kind="command", settings=settings, metrics=metrics,
                         command=command, root=str(root), **fields)




def pids_in(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()]


def test_metrics_are_present_positive_and_tagged_by_run(tmp_path):
    code = "import time; x = bytearray(30_000_000); x[::4096] = b'1' * len(x[::4096]); time.sleep(0.05)"
    fractions: list[float] = []
    result = measure_command(spec([PY, "-c", code], root=tmp_path), on_progress=fractions.append)
    assert result.status is ResultStatus.OK, result.error
    for metric in ("wall_time", "cpu_time", "peak_rss"):
        values = result.values(metric, include_warmup=True)
        assert len(values) == 3 and all(v > 0 for v in values), metric
    assert all(v >= 0.05 for v in result.values("wall_time"))
    assert all(v >= 30_000_000 for v in result.values("peak_rss"))
    # run 0 is the warmup run; each run is its own process, so its own worker
    assert [(s.worker, s.warmup) for s in result.samples if s.metric == "wall_time"] == [
        (0, True), (1, False), (2, False)]
    assert sorted(result.by_worker("wall_time")) == [1, 2]
    assert fractions == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert result.extra["runs"] == 2 and result.extra["warmup_runs"] == 1


def test_values_setting_is_not_used_for_commands(tmp_path):
    many_values = Settings(processes=2, values=7, warmup=0, min_time=0.001, timeout=60)
    result = measure_command(spec("true", root=tmp_path, settings=many_values, metrics=("wall_time",)))
    assert result.status is ResultStatus.OK, result.error
    assert len(result.values("wall_time")) == 2
    assert result.metrics == ["wall_time"]


def test_a_run_too_short_to_poll_records_no_peak_rss_rather_than_zero(tmp_path):
    settings = Settings(processes=5, values=1, warmup=0, min_time=0.001, timeout=60)
    result = measure_command(spec(["true"], root=tmp_path, settings=settings))
    assert result.status is ResultStatus.OK, result.error
    rss = result.values("peak_rss")
    assert all(v > 0 for v in rss)
    assert len(rss) + result.extra.get("peak_rss_unmeasured", 0) == 5


def test_shell_string_cwd_and_env(tmp_path):
    (tmp_path / "sub").mkdir()
    command = 'printf "%s %s" "$PERFLOOP_TEST_VALUE" "$(pwd)" > out.txt'
    result = measure_command(spec(command, root=tmp_path, cwd="sub", env={"PERFLOOP_TEST_VALUE": "42"}))
    assert result.status is ResultStatus.OK, result.error
    value, cwd = (tmp_path / "sub" / "out.txt").read_text().split(" ", 1)
    assert value == "42" and Path(cwd).resolve() == (tmp_path / "sub").resolve()


def test_argv_list_is_not_split_by_a_shell(tmp_path):
    result = measure_command(spec([PY, "-c", "import sys; open('args.txt', 'w').write(repr(sys.argv[1:]))",
                                   "a b", "$HOME"], root=tmp_path))
    assert result.status is ResultStatus.OK, result.error
    assert (tmp_path / "args.txt").read_text() == "['a b', '$HOME']"


def test_non_zero_exit_fails_with_code_and_stderr_tail(tmp_path):
    result = measure_command(spec("echo boom >&2; exit 3", root=tmp_path))
    assert result.status is ResultStatus.FAILED
    assert "exited with code 3" in result.error and "warmup run 1" in result.error
    assert result.stderr_tail == "boom"
    assert result.samples == ()


def test_samples_before_a_failing_run_are_kept(tmp_path):
    # succeeds on its first two runs, fails on the third
    command = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ "$n" -lt 3 ]'
    settings = Settings(processes=3, values=1, warmup=1, min_time=0.001, timeout=60)
    result = measure_command(spec(command, root=tmp_path, settings=settings, metrics=("wall_time",)))
    assert result.status is ResultStatus.FAILED
    assert "run 2 of 3" in result.error and "exited with code 1" in result.error
    assert [(s.worker, s.warmup) for s in result.samples] == [(0, True), (1, False)]


def test_stderr_tail_keeps_the_last_40_lines(tmp_path):
    code = "import sys\nfor i in range(100): print(f'line {i}', file=sys.stderr)\nsys.exit(2)"
    result = measure_command(spec([PY, "-c", code], root=tmp_path))
    lines = result.stderr_tail.splitlines()
    assert len(lines) == 40 and lines[0] == "line 60" and lines[-1] == "line 99"


def test_missing_executable_and_missing_cwd_fail_clearly(tmp_path):
    missing = measure_command(spec(["no-such-command-xyz"], root=tmp_path))
    assert missing.status is ResultStatus.FAILED
    assert "could not start 'no-such-command-xyz'" in missing.error
    no_dir = measure_command(spec(["true"], root=tmp_path, cwd="nowhere"))
    assert no_dir.status is ResultStatus.FAILED and "nowhere" in no_dir.error


def test_hanging_command_is_killed_with_its_process_group(tmp_path):
    pidfile = tmp_path / "pids"
    # the shell and a background child: both must die
    command = "sleep 60 & echo $$ $! > pids.tmp && mv pids.tmp pids; sleep 60"

    def clock() -> float:   # the deadline passes as soon as the command is running
        return 100.0 if pidfile.exists() else 0.0

    result = measure_command(spec(command, root=tmp_path), deadline=50.0, clock=clock)
    assert result.status is ResultStatus.TIMEOUT
    assert "timeout" in result.error and "0 of 2 measured runs" in result.error
    assert wait_dead(pids_in(pidfile)) == []


@pytest.mark.slow
def test_hanging_command_times_out_on_the_real_clock(tmp_path):
    result = measure_command(spec("sleep 60 & echo $! > pid; sleep 60", root=tmp_path),
                             deadline=time.monotonic() + 1.0)
    assert result.status is ResultStatus.TIMEOUT
    if (tmp_path / "pid").exists():
        assert wait_dead(pids_in(tmp_path / "pid")) == []


def test_processes_left_behind_by_a_finished_run_are_killed(tmp_path):
    settings = Settings(processes=1, values=1, warmup=0, min_time=0.001, timeout=60)
    result = measure_command(spec("sleep 60 & echo $! > pid", root=tmp_path, settings=settings))
    assert result.status is ResultStatus.OK, result.error
    assert wait_dead(pids_in(tmp_path / "pid")) == []


def test_keyboard_interrupt_kills_the_command_and_propagates(tmp_path):
    pidfile = tmp_path / "pids"

    def clock() -> float:
        if pidfile.exists():
            raise KeyboardInterrupt
        return 0.0

    with pytest.raises(KeyboardInterrupt):
        measure_command(spec("sleep 60 & echo $$ $! > pids.tmp && mv pids.tmp pids; sleep 60", root=tmp_path),
                        deadline=50.0, clock=clock)
    assert wait_dead(pids_in(pidfile)) == []


def test_run_child_reads_extra_pipes_and_reports_exit(tmp_path):
    read_fd, write_fd = os.pipe()
    chunks: list[bytes] = []
    try:
        child = run_child([PY, "-c", f"import os; os.write({write_fd}, b'hello'); raise SystemExit(4)"],
                          pass_fds=(write_fd,), readers={read_fd: chunks.append})
    finally:
        os.close(read_fd)
    assert b"".join(chunks) == b"hello"
    assert child.returncode == 4 and not child.timed_out
    assert child.wall_time > 0 and child.cpu_time >= 0


def test_stderr_tail_buffer_is_bounded():
    tail = StderrTail(limit=100)
    for i in range(1000):
        tail.feed(f"line {i}\n".encode())
    assert len(tail.buffer) == 100
    assert tail.text(lines=2) == "line 998\nline 999"


def test_describe_exit():
    assert describe_exit(2) == "exited with code 2"
    assert describe_exit(-9) == "was killed by signal SIGKILL"
