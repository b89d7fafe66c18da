"""Callable targets: real worker processes running the tiny targets of fixtures/benchmod.py.

Settings are tiny (2 processes x 2 values, min_time 1 ms) so each test spawns a handful of
short-lived workers. Nothing here asserts on how long anything took.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from procutil import wait_dead

from perfloop.config import BenchmarkSpec, Settings
from perfloop.measure.callable import measure_callable
from perfloop.measure.protocol import WorkerSession, worker_task
from perfloop.measure.worker import PROTOCOL_VERSION
from perfloop.records import ResultStatus

FIXTURES = Path(__file__).parent / "fixtures"
TINY = Settings(processes=2, values=2, warmup=1, min_time=0.001, timeout=60)


def spec(target: str, *, settings: Settings = TINY, metrics: tuple[str, ...] = ("wall_time", "cpu_time", "peak_rss"),
         **fields) -> BenchmarkSpec:
    return BenchmarkSpec(name=target.split(":")[-1], base_name=target.split(":")[-1], kind="callable",
                         settings=settings, metrics=metrics, callable=target, root=str(FIXTURES), **fields)




def test_fast_callable_is_calibrated_and_all_workers_share_the_loop_count():
    fractions: list[float] = []
    result = measure_callable(spec("benchmod:fast"), on_progress=fractions.append)
    assert result.status is ResultStatus.OK, result.error
    loops = result.extra["loops"]
    assert loops > 1
    assert result.extra["timer_resolution"] > 0
    walls = [s for s in result.samples if s.metric == "wall_time"]
    assert {s.loops for s in walls} == {loops}
    # 2 workers x (1 warmup + 2 values), warmup first in each worker
    assert [(s.worker, s.index, s.warmup) for s in walls] == [
        (0, 0, True), (0, 1, False), (0, 2, False), (1, 0, True), (1, 1, False), (1, 2, False)]
    assert len(result.values("wall_time")) == 4
    assert len(result.values("wall_time", include_warmup=True)) == 6
    assert set(result.by_worker("cpu_time")) == {0, 1}
    # per call, so far below min_time although each value lasted at least min_time
    assert all(v < TINY.min_time for v in result.values("wall_time"))
    rss = result.values("peak_rss")
    assert len(rss) == 2 and all(v > 1_000_000 for v in rss)
    assert fractions == sorted(fractions) and len(fractions) == 6 and fractions[-1] == 1.0
    assert result.stderr_tail is None and result.error is None


def test_setup_params_and_teardown_run_in_every_fresh_worker(tmp_path):
    marker = tmp_path / "teardown.txt"
    result = measure_callable(spec("benchmod:sum_list", setup="benchmod:make_list",
                                   teardown="benchmod:write_marker",
                                   params={"n": 50, "marker": str(marker)}))
    assert result.status is ResultStatus.OK, result.error
    lines = [line.split() for line in marker.read_text().splitlines()]
    assert len(lines) == 2                        # one teardown per worker
    assert len({pid for pid, _, _ in lines}) == 2  # two distinct processes
    assert all(n == "50" and int(calls) > 0 for _, n, calls in lines)
    assert result.params == {"n": 50, "marker": str(marker)}


def test_params_without_setup_are_keyword_arguments():
    ok = measure_callable(spec("benchmod:total", params={"n": 10, "offset": 1}))
    assert ok.status is ResultStatus.OK, ok.error
    bad = measure_callable(spec("benchmod:total", params={"bogus": 1}))
    assert bad.status is ResultStatus.FAILED
    assert "TypeError" in bad.error and "bogus" in bad.error


def test_returned_dict_of_numbers_becomes_custom_metrics():
    result = measure_callable(spec("benchmod:with_metrics",
                                   custom_metrics={"hit_rate": ("ratio", "higher")}))
    assert result.status is ResultStatus.OK, result.error
    assert result.values("items") == [3.0] * 4
    assert result.values("hit_rate") == [0.75] * 4
    assert "flag" not in result.metrics and "label" not in result.metrics
    # a returned "wall_time" must not replace the measured one
    assert all(v < 1.0 for v in result.values("wall_time"))
    assert result.units["hit_rate"] == "ratio" and result.directions["hit_rate"] == "higher"


def test_prints_to_stdout_do_not_corrupt_the_protocol():
    result = measure_callable(spec("benchmod:chatty"))
    assert result.status is ResultStatus.OK, result.error
    assert len(result.values("wall_time")) == 4
    assert all(v < 1.0 for v in result.values("wall_time"))


def test_peak_alloc_only_when_asked_for():
    with_alloc = measure_callable(spec("benchmod:allocate", params={"size": 2_000_000},
                                       metrics=("wall_time", "peak_alloc")))
    assert with_alloc.status is ResultStatus.OK, with_alloc.error
    assert len(with_alloc.values("peak_alloc")) == 2
    assert all(v >= 2_000_000 for v in with_alloc.values("peak_alloc"))
    assert "peak_rss" not in with_alloc.metrics and "cpu_time" not in with_alloc.metrics
    without = measure_callable(spec("benchmod:allocate", params={"size": 2_000_000}))
    assert "peak_alloc" not in without.metrics


def test_crash_fails_with_the_exception_in_the_stderr_tail():
    result = measure_callable(spec("benchmod:crash"))
    assert result.status is ResultStatus.FAILED
    assert "worker 0" in result.error and "ZeroDivisionError" in result.error
    assert "exited with code 1" in result.error
    assert "benchmod.crash divided by zero on purpose" in result.stderr_tail
    assert "benchmod.py" in result.stderr_tail
    assert "worker.py" not in result.stderr_tail   # the user's frames, not perfloop's


def test_values_sent_before_a_crash_are_kept():
    settings = Settings(processes=2, values=2, warmup=1, min_time=0, timeout=60)
    result = measure_callable(spec("benchmod:crash_on_third_call", settings=settings))
    assert result.status is ResultStatus.FAILED
    assert "RuntimeError: third call fails" in result.error
    walls = [(s.worker, s.index, s.warmup) for s in result.samples if s.metric == "wall_time"]
    assert walls == [(0, 0, True), (0, 1, False)]
    assert result.extra["loops"] == 1


@pytest.mark.parametrize("target, expected", [
    ("no_such_module_xyz:fn", "importing the target: ModuleNotFoundError"),
    ("benchmod:no_such_function", "importing the target: AttributeError"),
    ("benchmod:not_callable", "importing the target: TypeError"),
])
def test_import_errors_fail_with_a_clear_message(target, expected):
    result = measure_callable(spec(target))
    assert result.status is ResultStatus.FAILED
    assert expected in result.error
    assert result.samples == ()


def test_setup_failure_is_named():
    result = measure_callable(spec("benchmod:sum_list", setup="benchmod:failing_setup"))
    assert result.status is ResultStatus.FAILED
    assert "in setup: ValueError: setup could not build its fixture" in result.error


def test_worker_exit_codes_are_reported():
    quiet = measure_callable(spec("benchmod:exit_quietly"))
    assert quiet.status is ResultStatus.FAILED
    assert "before sending all its results" in quiet.error
    coded = measure_callable(spec("benchmod:exit_with", params={"code": 3}))
    assert coded.status is ResultStatus.FAILED
    assert "exited with code 3" in coded.error


def test_deadline_already_passed_spawns_nothing():
    result = measure_callable(spec("benchmod:fast"), deadline=time.monotonic() - 1)
    assert result.status is ResultStatus.TIMEOUT
    assert result.samples == ()
    assert "timeout" in result.error


def test_hanging_callable_is_killed_at_the_deadline_with_its_children(tmp_path):
    pidfile = tmp_path / "pids"

    # An injected clock: the deadline passes as soon as the target is running, no waiting.
    def clock() -> float:
        return 100.0 if pidfile.exists() and pidfile.read_text().endswith("\n") else 0.0

    result = measure_callable(spec("benchmod:hang", params={"pidfile": str(pidfile)}),
                              deadline=50.0, clock=clock)
    assert result.status is ResultStatus.TIMEOUT
    assert "timeout" in result.error and "0 of 2 worker processes" in result.error
    pids = [int(p) for p in pidfile.read_text().split()]
    assert wait_dead(pids) == []


@pytest.mark.slow
def test_hanging_callable_times_out_on_the_real_clock(tmp_path):
    pidfile = tmp_path / "pids"
    result = measure_callable(spec("benchmod:hang", params={"pidfile": str(pidfile)}),
                              deadline=time.monotonic() + 2.0)
    assert result.status is ResultStatus.TIMEOUT
    if pidfile.exists():   # on a very loaded machine the worker may not have got that far
        assert wait_dead([int(p) for p in pidfile.read_text().split()]) == []


def test_keyboard_interrupt_kills_the_worker_and_propagates(tmp_path):
    pidfile = tmp_path / "pid"
    settings = Settings(processes=1, values=1000, warmup=0, min_time=0, timeout=60)

    def interrupt(fraction: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        measure_callable(spec("benchmod:tick", settings=settings, params={"pidfile": str(pidfile)}),
                         on_progress=interrupt)
    assert wait_dead([int(pidfile.read_text())]) == []


def test_session_rejects_a_worker_of_another_protocol_version():
    from perfloop.measure.protocol import ProtocolError
    session = WorkerSession(0, frozenset({"wall_time"}), lambda: None, token="t", values=1)
    with pytest.raises(ProtocolError, match="protocol 999"):
        session.feed(b'{"type": "hello", "token": "t", "version": 999, "pid": 1, "timer_resolution": 1e-9}\n')


def test_session_reassembles_lines_split_across_reads():
    session = WorkerSession(3, frozenset({"wall_time", "cpu_time"}), lambda: None, token="t", values=2)
    session.feed(json.dumps({"type": "hello", "token": "t", "version": PROTOCOL_VERSION,
                             "timer_resolution": 1e-9}).encode() + b"\n")
    line = json.dumps({"type": "value", "token": "t", "index": 1, "warmup": False, "loops": 4,
                       "wall_time": 0.4, "cpu_time": 0.2, "custom": {"hits": 2}}).encode() + b"\n"
    session.feed(line[:10])
    assert session.samples == []
    session.feed(line[10:])
    by_metric = {s.metric: s for s in session.samples}
    assert by_metric["wall_time"].value == pytest.approx(0.1) and by_metric["wall_time"].loops == 4
    assert by_metric["cpu_time"].value == pytest.approx(0.05)
    assert by_metric["hits"].value == 2 and by_metric["hits"].loops == 1
    assert {s.worker for s in session.samples} == {3}


def test_task_resolves_pythonpath_against_the_root(tmp_path):
    s = BenchmarkSpec(name="x", base_name="x", kind="callable", settings=TINY, metrics=("wall_time",),
                      callable="pkg:fn", pythonpath=("src", "lib"), root=str(tmp_path))
    task = worker_task(s, loops=8)
    assert task["sys_path"] == [str(tmp_path / "src"), str(tmp_path / "lib"), str(tmp_path)]
    assert task["loops"] == 8 and task["tracemalloc"] is False


@pytest.mark.slow
def test_peak_rss_is_the_workers_own_not_inherited_from_a_large_parent(tmp_path):
    # On Linux ru_maxrss is inherited across fork+exec: a worker started by a 200 MB parent
    # would report 200 MB. Run the parent in its own process so its size is known.
    script = tmp_path / "big_parent.py"
    script.write_text(f"""
import json
from perfloop.config import BenchmarkSpec, Settings
from perfloop.measure.callable import measure_callable
ballast = bytearray(200 * 1024 * 1024)
ballast[::4096] = b"x" * len(ballast[::4096])
spec = BenchmarkSpec(name="fast", base_name="fast", kind="callable", metrics=("peak_rss",),
                     settings=Settings(processes=1, values=1, warmup=0, min_time=0.001),
                     callable="benchmod:fast", root={str(FIXTURES)!r})
result = measure_callable(spec)
print(json.dumps({{"status": result.status.value, "rss": result.values("peak_rss")}}))
""")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["status"] == "ok"
    assert 1_000_000 < data["rss"][0] < 100 * 1024 * 1024


def test_code_under_test_cannot_forge_measurements_through_the_result_pipe():
    result = measure_callable(spec("benchmod:forge_results", settings=Settings(
        processes=1, values=4, warmup=0, min_time=0, timeout=60)))
    assert result.status == ResultStatus.FAILED
    assert "something other than the worker wrote to perfloop's result pipe" in result.error
    assert not [s for s in result.samples if s.value == 1e-9]


def test_session_accepts_exactly_the_values_it_asked_for():
    from perfloop.measure.protocol import ProtocolError

    def line(**msg) -> bytes:
        return json.dumps({"token": "t0k", **msg}).encode() + b"\n"

    hello = line(type="hello", version=PROTOCOL_VERSION, pid=1, timer_resolution=1e-9)
    value = dict(type="value", warmup=False, loops=1, wall_time=0.1, cpu_time=0.1, custom={})
    session = WorkerSession(0, frozenset({"wall_time"}), lambda: None, token="t0k", values=2)
    session.feed(hello + line(index=0, **value) + line(index=1, **value) + line(type="end", peak_rss=1))
    assert session.ended and len(session.samples) == 2
    for bad, why in [(line(index=2, **value), "did not ask for"),
                     (line(index=0, **value) + line(index=0, **value), "did not ask for"),
                     (line(type="end", peak_rss=1), "after 0 of the 2 values"),
                     (json.dumps({"token": "other", "index": 0, **value}).encode() + b"\n", "token"),
                     (b'{"type": "value", "index": 0}\n', "token")]:
        session = WorkerSession(0, frozenset({"wall_time"}), lambda: None, token="t0k", values=2)
        with pytest.raises(ProtocolError, match=why):
            session.feed(hello + bad)
    session = WorkerSession(0, frozenset({"wall_time"}), lambda: None, token="t0k", values=2)
    with pytest.raises(ProtocolError, match="before the worker's hello"):
        session.feed(line(index=0, **value))
