"""The runner with a fake measure function, a fake sink and a fake clock; one real end-to-end run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import perfloop.measure as measure_pkg
from perfloop.config import BenchmarkSpec, HttpSpec, Settings
from perfloop.errors import PerfloopError
from perfloop.measure.progress import NullProgress, estimate_seconds
from perfloop.measure.runner import RunInterrupted, RunSummary, measure_spec, run_benchmarks
from perfloop.records import BenchmarkResult, ResultStatus, Sample

FIXTURES = Path(__file__).parent / "fixtures"
TINY = Settings(processes=2, values=2, warmup=1, min_time=0.001, timeout=30)


def spec(name: str, *, kind: str = "callable", settings: Settings = TINY, **fields) -> BenchmarkSpec:
    return BenchmarkSpec(name=name, base_name=name, kind=kind, settings=settings,
                         metrics=("wall_time",), root=str(FIXTURES), **fields)


def ok(s: BenchmarkSpec, values=(1.0, 1.0, 1.0)) -> BenchmarkResult:
    return BenchmarkResult(name=s.name, kind=s.kind, status=ResultStatus.OK,
                           samples=[Sample("wall_time", v, worker=i) for i, v in enumerate(values)])


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeSink:
    def __init__(self) -> None:
        self.results: list[BenchmarkResult] = []

    def add_result(self, result: BenchmarkResult) -> None:
        self.results.append(result)


class RecordingProgress(NullProgress):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def run_started(self, specs, estimated_seconds):
        self.calls.append(("run_started", len(specs)))

    def benchmark_started(self, spec, index, total):
        self.calls.append(("started", spec.name, index, total))

    def update(self, spec, fraction):
        self.calls.append(("update", spec.name, fraction))

    def benchmark_finished(self, result):
        self.calls.append(("finished", result.name, result.status.value))

    def run_finished(self, summary):
        self.calls.append(("run_finished", len(summary.results), summary.interrupted))


def test_benchmarks_run_in_order_with_deadlines_from_their_timeouts():
    clock = FakeClock()
    seen: list[tuple[str, float]] = []
    specs = [spec("a"), spec("b", settings=Settings(timeout=7.5)), spec("c")]

    def measure(s, deadline, on_progress):
        seen.append((s.name, deadline - clock.now))
        clock.now += 2.0
        on_progress(1.0)
        return ok(s)

    sink, progress = FakeSink(), RecordingProgress()
    summary = run_benchmarks(specs, sink=sink, progress=progress, measure=measure, clock=clock)
    assert seen == [("a", 30.0), ("b", 7.5), ("c", 30.0)]
    assert [r.name for r in sink.results] == ["a", "b", "c"]
    assert summary == RunSummary(tuple(sink.results), n_failed=0, duration=6.0)
    assert progress.calls == [
        ("run_started", 3),
        ("started", "a", 0, 3), ("update", "a", 1.0), ("finished", "a", "ok"),
        ("started", "b", 1, 3), ("update", "b", 1.0), ("finished", "b", "ok"),
        ("started", "c", 2, 3), ("update", "c", 1.0), ("finished", "c", "ok"),
        ("run_finished", 3, False),
    ]


def test_each_result_reaches_the_sink_before_the_next_benchmark_starts():
    sink = FakeSink()
    delivered_before: list[int] = []

    def measure(s, deadline, on_progress):
        delivered_before.append(len(sink.results))
        return ok(s)

    run_benchmarks([spec("a"), spec("b"), spec("c")], sink=sink, measure=measure)
    assert delivered_before == [0, 1, 2]


def test_the_run_goes_on_after_failures_and_perfloop_errors():
    def measure(s, deadline, on_progress):
        if s.name == "fails":
            return BenchmarkResult(name=s.name, kind=s.kind, status=ResultStatus.FAILED, error="exit 1")
        if s.name == "bug":
            raise RuntimeError("measurement code broke")
        return ok(s)

    sink = FakeSink()
    summary = run_benchmarks([spec("a"), spec("fails"), spec("bug"), spec("d")], sink=sink, measure=measure)
    assert [(r.name, r.status.value) for r in sink.results] == [
        ("a", "ok"), ("fails", "failed"), ("bug", "failed"), ("d", "ok")]
    assert summary.n_failed == 2
    assert "RuntimeError: measurement code broke" in sink.results[2].error


def test_keyboard_interrupt_raises_run_interrupted_with_the_finished_results():
    def measure(s, deadline, on_progress):
        if s.name == "c":
            raise KeyboardInterrupt
        return ok(s)

    sink, progress = FakeSink(), RecordingProgress()
    with pytest.raises(RunInterrupted) as info:
        run_benchmarks([spec("a"), spec("b"), spec("c"), spec("d")], sink=sink, progress=progress,
                       measure=measure)
    assert [r.name for r in info.value.results] == ["a", "b"]
    assert [r.name for r in sink.results] == ["a", "b"]
    assert info.value.summary.interrupted
    assert isinstance(info.value.__cause__, KeyboardInterrupt)
    assert isinstance(info.value, PerfloopError) and info.value.exit_code == 130
    assert "2 of 4" in str(info.value)
    assert progress.calls[-1] == ("run_finished", 2, True)


def test_ctrl_c_while_the_sink_stores_a_result_is_held_back_until_it_is_stored():
    class SlowSink(FakeSink):
        def add_result(self, result):
            if result.name == "b":
                os.kill(os.getpid(), signal.SIGINT)    # Ctrl-C arrives mid-commit
            super().add_result(result)

    sink = SlowSink()
    with pytest.raises(RunInterrupted) as info:
        run_benchmarks([spec("a"), spec("b"), spec("c")], sink=sink, measure=lambda s, d, p: ok(s))
    assert [r.name for r in sink.results] == ["a", "b"]
    assert [r.name for r in info.value.results] == ["a", "b"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_quality_warnings_are_attached_to_results():
    noisy = (1.0, 1.5, 0.6, 1.2, 0.8)

    def measure(s, deadline, on_progress):
        return ok(s, values=noisy)

    sink = FakeSink()
    run_benchmarks([spec("a")], sink=sink, measure=measure)
    assert any("noise exceeds its tolerance" in w for w in sink.results[0].warnings)


def test_unknown_kind_is_recorded_as_failed():
    sink = FakeSink()
    summary = run_benchmarks([spec("weird", kind="carrier-pigeon")], sink=sink)
    assert summary.n_failed == 1 and "unknown kind" in sink.results[0].error
    with pytest.raises(ValueError):
        measure_spec(spec("weird", kind="carrier-pigeon"), None, lambda f: None)


def test_estimate_seconds_grows_with_settings_and_is_capped_by_the_timeout():
    small = estimate_seconds(spec("a", settings=Settings(processes=2, values=2, min_time=0.01)))
    large = estimate_seconds(spec("a", settings=Settings(processes=20, values=5, min_time=0.1)))
    assert 0 < small < large
    assert estimate_seconds(spec("a", settings=Settings(processes=1000, timeout=5))) == 5
    assert estimate_seconds(spec("c", kind="command", command="true")) > 0
    http = spec("h", kind="http", http=HttpSpec(url="http://127.0.0.1:1/", duration=2.0),
                settings=Settings(processes=3, warmup=1))
    assert estimate_seconds(http) == pytest.approx(8.0)


def test_public_api_of_the_measure_package():
    assert measure_pkg.__all__ == [
        "NullProgress", "Progress", "ResultSink", "RunInterrupted", "RunSummary", "estimate_seconds",
        "measure_callable", "measure_command", "measure_spec", "quality_warnings", "run_benchmarks"]
    for name in measure_pkg.__all__:
        assert getattr(measure_pkg, name) is not None


def test_the_worker_imports_nothing_heavy():
    # Everything the worker imports is in every worker's memory: its peak RSS and start-up.
    code = ("import sys, perfloop.measure.worker; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('perfloop', 'psutil', 'numpy', 'rich', 'sqlalchemy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # channel and timers are the worker's own halves (the result pipe, the timing loop)
    assert out.stdout.strip() == ("['perfloop', 'perfloop.measure', 'perfloop.measure.channel', "
                                  "'perfloop.measure.timers', 'perfloop.measure.worker']")


@pytest.mark.slow
def test_real_run_continues_after_a_crashing_callable(tmp_path):
    specs = [spec("fast", callable="benchmod:fast"), spec("crash", callable="benchmod:crash"),
             spec("cmd", kind="command", command=[sys.executable, "-c", "pass"])]
    sink = FakeSink()
    summary = run_benchmarks(specs, sink=sink)
    assert [(r.name, r.status.value) for r in sink.results] == [
        ("fast", "ok"), ("crash", "failed"), ("cmd", "ok")]
    assert "ZeroDivisionError" in sink.results[1].stderr_tail
    assert summary.n_failed == 1 and summary.duration > 0
