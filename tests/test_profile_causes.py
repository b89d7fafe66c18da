"""Profiles that name the cause: programs written here, each with a known answer.

- a CPU hot spot in a helper under a loop: row 1 is the helper; naming the loop's owner is too
  broad, naming the helper is confirmed, naming an unrelated function is refuted and points at
  the helper;
- a threaded program whose workers wait on one lock: the waiting is named as lock waiting at
  its call site, and a hypothesis naming the work done under the lock is not confirmed;
- a program that sleeps and polls: named as waiting (sleep, I/O), not as a lock;
- a callable that starts threads: the default profiler sees them, and a name that exists is
  never blamed on its spelling.

The shares asserted are far from the thresholds, so a loaded machine does not flip them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from perfloop.analysis.hypothesis import check_hypothesis, locate
from perfloop.analysis.profilers import check_py_spy, profile_callable, profile_command
from perfloop.analysis.profiles import Frame, Profile, Stack
from perfloop.analysis.waiting import stack_kind, waiting
from perfloop.config import BenchmarkSpec, Settings
from perfloop.errors import UsageError
from perfloop.workflows.profiling import hot_spot_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _known_programs import CPU, LOCK, POLL, THREADS  # noqa: E402  (shared with profile_overhead.py)

def _write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return path


def _spec(tmp_path: Path, function: str) -> BenchmarkSpec:
    return BenchmarkSpec(name=function, base_name=function, kind="callable", settings=Settings(),
                         metrics=("wall_time",), callable=function, root=str(tmp_path))


def _need_py_spy() -> None:
    if not check_py_spy().ok:
        pytest.skip(f"py-spy cannot attach here: {check_py_spy().problem}")


# -- made-up profiles: the rules with exact shares ----------------------------------------------

def _loop_profile() -> Profile:
    """main -> run (10% self) -> helper (90% self); other -> shared helper in a second profile."""
    frames = (Frame("main", "/p/app.py", 1, "app", "user"), Frame("run", "/p/app.py", 5, "app", "user"),
              Frame("helper", "/p/app.py", 9, "app", "user"), Frame("unrelated", "/p/app.py", 20, "app", "user"))
    return Profile(frames=frames, stacks=(Stack((0, 1), 1.0), Stack((0, 1, 2), 9.0)))


def test_the_helper_is_row_one_and_its_caller_is_too_broad() -> None:
    profile = _loop_profile()
    assert [h.function for h in hot_spot_table(profile)] == ["app:helper", "app:run"]
    broad = check_hypothesis(profile, ["app:run"])
    assert broad.verdict == "too-broad" and broad.share == pytest.approx(1.0)
    assert "app:helper (90% self)" in broad.reading
    assert check_hypothesis(profile, ["app:main"]).verdict == "too-broad"
    assert check_hypothesis(profile, ["app:helper"]).verdict == "confirmed"
    wrong = check_hypothesis(profile, ["app:unrelated"])
    assert wrong.verdict == "refuted" and "app:helper" in wrong.reading


def test_a_caller_owns_only_what_it_alone_calls() -> None:
    # a (40%) and b (40%) both call the shared helper h; c holds the rest
    frames = (Frame("main", "/p/m.py", 1, "m", "user"), Frame("a", "/p/m.py", 3, "m", "user"),
              Frame("b", "/p/m.py", 6, "m", "user"), Frame("h", "/p/m.py", 9, "m", "user"),
              Frame("c", "/p/m.py", 12, "m", "user"), Frame("k", "/p/m.py", 15, "m", "user"))
    profile = Profile(frames=frames, stacks=(Stack((0, 1, 3), 4.0), Stack((0, 2, 3), 4.0),
                                              Stack((0, 4, 5), 2.0)))
    through = check_hypothesis(profile, ["m:a"])
    assert through.share == pytest.approx(0.4) and through.own_share == 0.0
    assert through.verdict == "unclear" and "other callers share" in through.reading
    # c alone calls k: c's own share includes k's time
    alone = check_hypothesis(profile, ["m:c"], min_share=0.2)
    assert alone.own_share == pytest.approx(0.2) and alone.verdict == "confirmed"


def test_waiting_kinds_from_stdlib_native_and_source_lines(tmp_path: Path) -> None:
    src = _write(tmp_path, "w", "import time\n\ndef f(lock):\n    with lock:\n        pass\n"
                                "    time.sleep(1)\n    x = 1 + 1\n")
    frames = (Frame("f", str(src), 3, "w", "user"),
              Frame("Condition.wait", "/usr/lib/python3.11/threading.py", 1, "threading", "stdlib"),
              Frame("acquire", "<built-in>", 0, "", "native"))
    profile = Profile(frames=frames, stacks=(
        Stack((0,), 1.0, line=4), Stack((0,), 1.0, line=6), Stack((0,), 1.0, line=7),
        Stack((0, 1), 1.0), Stack((0, 2), 1.0)))
    assert [stack_kind(profile, s) for s in profile.stacks] == ["lock", "sleep", "cpu", "wait", "lock"]
    found = waiting(profile)
    assert found.share == pytest.approx(0.8) and found.by_kind["lock"] == pytest.approx(0.4)


def test_names_are_looked_up_in_the_source(tmp_path: Path) -> None:
    THREADS.write(tmp_path, "threaded")
    assert locate("threaded:crunch", [str(tmp_path)]).endswith(f"threaded.py:{THREADS.line_of('def crunch')}")
    assert locate("threaded:cruncj", [str(tmp_path)]) is None
    profile = Profile(frames=(Frame("fan_out", str(tmp_path / "threaded.py"), 8, "threaded", "user"),),
                      stacks=(Stack((0,), 1.0),))
    exists = check_hypothesis(profile, ["threaded:crunch"], paths=[str(tmp_path)])
    assert "check the spelling" not in exists.reading and "is defined" in exists.reading
    assert "in a thread this profiler did not record" in exists.reading
    typo = check_hypothesis(profile, ["threaded:cruncj"], paths=[str(tmp_path)])
    assert "check the spelling" in typo.reading


# -- real programs ------------------------------------------------------------------------------

@pytest.mark.slow
def test_cpu_hot_spot_in_a_helper_under_a_loop(tmp_path: Path) -> None:
    CPU.write(tmp_path, "cpuapp")
    result = profile_callable(_spec(tmp_path, "cpuapp:main"), duration=1.0)
    assert result.profiler == "pyinstrument"
    table = hot_spot_table(result.profile)
    assert table[0].function == "cpuapp:helper" and table[0].self_share > 0.6
    assert check_hypothesis(result.profile, ["cpuapp:run"]).verdict == "too-broad"
    assert check_hypothesis(result.profile, ["cpuapp:helper"]).verdict == "confirmed"
    wrong = check_hypothesis(result.profile, ["cpuapp:unrelated"], paths=[str(tmp_path)])
    assert wrong.verdict == "refuted" and "cpuapp:helper" in wrong.reading
    assert "check the spelling" not in wrong.reading

    _need_py_spy()
    spied = profile_command([sys.executable, str(tmp_path / "cpuapp.py")], cwd=str(tmp_path))
    assert spied.profiler == "py-spy"
    assert hot_spot_table(spied.profile)[0].function == "cpuapp:helper"
    assert check_hypothesis(spied.profile, ["cpuapp:run"]).verdict == "too-broad"


@pytest.mark.slow
def test_lock_contention_is_named_with_its_call_site(tmp_path: Path) -> None:
    _need_py_spy()
    LOCK.write(tmp_path, "ledger")
    result = profile_command([sys.executable, str(tmp_path / "ledger.py")], cwd=str(tmp_path))
    found = waiting(result.profile)
    assert found.mostly and found.main_kind == "lock", found.to_dict()
    site = next(s for s in found.sites if s.kind == "lock")
    line = LOCK.line_of("with LOCK:")
    assert site.function == "ledger:post" and site.caller == "ledger:worker" and site.line == line
    assert (f"waiting to acquire a lock in ledger:post (line {line}), called from ledger:worker"
            in found.reading())
    assert site.holder == "ledger:apply_entry" and site.holder_share > 0.02
    assert "likely the lock's holders" in found.reading()
    cpu = check_hypothesis(result.profile, ["ledger:apply_entry"], off_cpu=None)
    assert cpu.verdict != "confirmed"
    assert "waiting to acquire a lock in ledger:post" in cpu.reading


@pytest.mark.slow
def test_sleeping_and_polling_is_waiting_not_a_lock(tmp_path: Path) -> None:
    _need_py_spy()
    POLL.write(tmp_path, "poller")
    result = profile_command([sys.executable, str(tmp_path / "poller.py")], cwd=str(tmp_path))
    found = waiting(result.profile)
    assert found.mostly and "lock" not in found.by_kind, found.to_dict()
    assert found.by_kind.get("sleep", 0) + found.by_kind.get("io", 0) > 0.5
    assert "sleeping (time.sleep) in poller:poll" in found.reading()
    assert check_hypothesis(result.profile, ["poller:tick"]).verdict != "confirmed"
    # the same program as a callable, py-spy watching the worker: the sleep is still seen
    spied = profile_callable(_spec(tmp_path, "poller:poll"), duration=1.0, profiler="py-spy")
    assert spied.profiler == "py-spy"
    as_callable = waiting(spied.profile)
    assert as_callable.mostly and "lock" not in as_callable.by_kind, as_callable.to_dict()
    assert as_callable.by_kind.get("sleep", 0) > 0.3


def test_trimming_the_worker_loop_keeps_the_line_each_stack_was_at(tmp_path: Path) -> None:
    from perfloop.analysis.profilers.worker import trim_to_loop
    src = _write(tmp_path, "napper", "import time\n\ndef nap():\n    time.sleep(1)\n")
    worker_file = "/perfloop/profile_worker.py"
    frames = (Frame("main", worker_file, 1, "profile_worker", "perfloop"),
              Frame("_profiled_calls", worker_file, 10, "profile_worker", "perfloop"),
              Frame("nap", str(src), 3, "napper", "user"))
    profile = Profile(frames=frames, stacks=(Stack((0, 1, 2), 3.0, "main", line=4),
                                              Stack((0,), 1.0, "main", line=1)))
    trimmed = trim_to_loop(profile, worker_file)
    assert [(s.frames, s.line) for s in trimmed.stacks] == [((2,), 4)]
    assert waiting(trimmed).by_kind == {"sleep": 1.0}


@pytest.mark.slow
def test_threads_are_seen_by_default_and_names_that_exist_are_not_misspelt(tmp_path: Path) -> None:
    THREADS.write(tmp_path, "threaded")
    spec = _spec(tmp_path, "threaded:fan_out")
    one = profile_callable(spec, duration=0.8, profiler="pyinstrument")
    check = check_hypothesis(one.profile, ["threaded:crunch"], paths=[str(tmp_path)])
    assert "check the spelling" not in check.reading and "is defined" in check.reading
    _need_py_spy()
    auto = profile_callable(spec, duration=0.8)
    assert auto.profiler == "py-spy" and auto.requested == "auto" and not auto.fallback
    assert any("thread(s) while profiled" in n and "profiled again with py-spy" in n for n in auto.notes)
    assert hot_spot_table(auto.profile)[0].function == "threaded:crunch"
    assert check_hypothesis(auto.profile, ["threaded:crunch"]).verdict == "confirmed"


def test_an_in_process_profiler_refuses_a_command_that_is_not_python(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        profile_command(["/bin/sleep", "0.1"], profiler="pyinstrument", cwd=str(tmp_path))
    assert "can only profile a Python program" in info.value.message
    assert "--profiler py-spy" in (info.value.hint or "")


@pytest.mark.slow
def test_pyinstrument_on_a_python_command_is_what_runs(tmp_path: Path) -> None:
    CPU.write(tmp_path, "cpuapp")
    result = profile_command([sys.executable, str(tmp_path / "cpuapp.py")], cwd=str(tmp_path),
                             profiler="pyinstrument")
    assert result.profiler == "pyinstrument" and not result.fallback
    assert any("as asked" in n for n in result.notes)
    assert hot_spot_table(result.profile)[0].function == "cpuapp:helper"


def test_an_in_process_profiler_refuses_a_running_process(tmp_path: Path) -> None:
    import os

    from perfloop.store import Store
    from perfloop.workflows.profiling import profile
    with Store.open(f"sqlite:///{tmp_path / 'perfloop.db'}") as store:
        with pytest.raises(UsageError) as info:
            profile(store, tmp_path, pid=os.getpid(), duration=1.0, explore=True, profiler="pyinstrument")
    assert "only py-spy attaches to a running process" in info.value.message
