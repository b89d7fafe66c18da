"""Systemic signals: the readings on made-up measurements, then on the fixture workloads.

The made-up traces fix every number, so thresholds are tested exactly. The workload tests
profile tests/fixtures/profmod.py for about half a second each and assert on readings with a
wide margin (a workload that waits 95% of the time, one that keeps a megabyte per call).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perfloop.analysis.signals import (
    GC_WARN, MiB, OFF_CPU_WARN, ProcessPoint, ProcessTrace, RuntimeStats, Signal, compute_signals,
    gc_signal, gil_signal, load_signal, off_cpu_signal, python_memory_signal, rss_signal, thread_signal,
)
from perfloop.config import BenchmarkSpec, Settings
from perfloop.analysis.profilers import profile_callable

FIXTURES = Path(__file__).parent / "fixtures"
DURATION = 0.6


# -- made-up measurements ---------------------------------------------------------------------

def test_signal_checks_severity() -> None:
    with pytest.raises(ValueError):
        Signal("x", 1.0, "ratio", "a reading", "error")
    assert Signal("x", 1.0, "ratio", "r").to_dict()["severity"] == "info"


def test_off_cpu_warns_when_the_process_waits() -> None:
    sig = off_cpu_signal(wall=10.0, cpu=3.0)
    assert sig.severity == "warn" and sig.value == pytest.approx(0.7)
    assert "70% of wall time is off-CPU" in sig.reading and "py-spy --idle" in sig.reading
    assert off_cpu_signal(wall=10.0, cpu=10.0 * (1 - OFF_CPU_WARN) + 0.01).severity == "info"


def test_off_cpu_does_not_count_waiting_for_a_cpu_as_waiting() -> None:
    # on a crowded machine: 4 s on CPU, 5.5 s ready to run but queued, 0.5 s blocked
    sig = off_cpu_signal(wall=10.0, cpu=4.0, runqueue=5.5)
    assert sig.severity == "info" and sig.value == pytest.approx(0.05)
    assert "waited for a CPU 55%" in sig.reading


def test_off_cpu_with_several_cores() -> None:
    sig = off_cpu_signal(wall=2.0, cpu=3.6)
    assert sig.severity == "info" and "1.8 CPU cores" in sig.reading
    assert off_cpu_signal(wall=0.0, cpu=1.0) is None


def test_gc_signal() -> None:
    sig = gc_signal(gc_time=0.25, wall=1.0, collections=(900, 80, 2))
    assert sig.severity == "warn" and sig.value == pytest.approx(0.25)
    assert "982 collections" in sig.reading and "gc.freeze()" in sig.reading
    assert gc_signal(gc_time=GC_WARN - 0.01, wall=1.0, collections=(5, 0, 0)).severity == "info"


def test_rss_signal_steady_growth_plateau_peak_and_flat() -> None:
    times = [0.0, 0.25, 0.5, 0.75, 1.0]
    grow = rss_signal(times, [100 * MiB, 130 * MiB, 160 * MiB, 190 * MiB, 220 * MiB])
    assert grow.severity == "warn" and grow.value == pytest.approx(120)
    assert "still growing" in grow.reading and "120 MB/s" in grow.reading
    plateau = rss_signal(times, [100 * MiB, 150 * MiB, 160 * MiB, 160 * MiB, 160 * MiB])
    assert plateau.severity == "info" and "levelled off" in plateau.reading
    peak = rss_signal(times, [100 * MiB, 300 * MiB, 100 * MiB, 100 * MiB, 101 * MiB])
    assert peak.severity == "info" and "temporary" in peak.reading
    flat = rss_signal(times, [100 * MiB, 100 * MiB, 101 * MiB, 100 * MiB, 101 * MiB])
    assert flat.severity == "info" and "stayed at about" in flat.reading
    small = rss_signal(times, [200 * MiB, 204 * MiB, 208 * MiB, 212 * MiB, 215 * MiB])
    assert small.severity == "info"          # 15 MB on 200 MB: under the 10% floor
    short = rss_signal(times, [19 * MiB, 21 * MiB, 24 * MiB, 26 * MiB, 28 * MiB])
    assert short.severity == "info" and "profile for longer" in short.reading   # under 10 MB
    assert rss_signal([0.0], [1]) is None


def test_python_memory_signal() -> None:
    most = python_memory_signal(100 * MiB, 100, retained_per_call=0.9 * MiB,
                                sites=[("/p/cache.py:12", 80 * MiB)])
    assert most.severity == "warn" and most.value == pytest.approx(0.9)
    assert "/p/cache.py:12" in most.reading
    native = python_memory_signal(100 * MiB, 100, retained_per_call=1024)
    assert native.severity == "warn" and "native memory" in native.reading and "memray" in native.reading
    blocks = python_memory_signal(100 * MiB, 100, blocks_start=100_000, blocks_end=150_000)
    assert blocks.severity == "warn" and "accumulating" in blocks.reading
    flat = python_memory_signal(100 * MiB, 100, blocks_start=100_000, blocks_end=100_100)
    assert flat.severity == "info" and "cannot tell" in flat.reading
    assert python_memory_signal(1 * MiB, 100, retained_per_call=1.0) is None


def test_thread_signal_names_the_in_process_limit() -> None:
    assert "py-spy" in thread_signal(4, profiler="pyinstrument").reading
    assert "py-spy" not in thread_signal(4, profiler="py-spy").reading


def _trace(steps: int, threads: dict[int, float], *, cores: int = 2, others: float = 0.0,
           dt: float = 0.1) -> ProcessTrace:
    """A trace where each thread uses ``threads[tid]`` of a core, and other processes ``others``."""
    rate = sum(threads.values())
    points = [ProcessPoint(t=i * dt, cpu=rate * i * dt, rss=100 * MiB, threads=len(threads) + 1,
                           thread_cpu={tid: use * i * dt for tid, use in threads.items()},
                           system_busy=(rate + others) * i * dt)
              for i in range(steps + 1)]
    return ProcessTrace(tuple(points), cores)


def test_gil_contention_estimate() -> None:
    taking_turns = gil_signal(_trace(10, {1: 0.25, 2: 0.25, 3: 0.25, 4: 0.25}))
    assert taking_turns.severity == "warn" and taking_turns.value == pytest.approx(1.0)
    assert "Estimate" in taking_turns.reading and "ProcessPoolExecutor" in taking_turns.reading
    parallel = gil_signal(_trace(10, {1: 0.9, 2: 0.9}))
    assert parallel.severity == "info" and parallel.value == pytest.approx(0.0)
    single = gil_signal(_trace(10, {1: 1.0, 2: 0.0}))
    assert single.value == 0.0 and "no GIL contention" in single.reading
    crowded = gil_signal(_trace(10, {1: 0.25, 2: 0.25}, others=1.5))
    assert crowded.severity == "info" and "cannot tell" in crowded.reading
    one_core = gil_signal(_trace(10, {1: 0.5, 2: 0.5}, cores=1))
    assert one_core.severity == "info" and "one CPU core" in one_core.reading


def test_load_signal() -> None:
    busy = load_signal(_trace(10, {1: 1.0}, others=1.5))
    assert busy.severity == "warn" and busy.value == pytest.approx(1.5)
    assert load_signal(_trace(10, {1: 1.0}, others=0.2)).severity == "info"


def test_compute_signals_uses_what_was_measured() -> None:
    runtime = RuntimeStats(wall=1.0, cpu=0.1, calls=10, gc_time=0.01, gc_collections=(3, 0, 0),
                           rss_start=100 * MiB, rss_end=160 * MiB, retained_per_call=5.5 * MiB,
                           blocks_start=1000, blocks_end=5000, threads_max=1)
    names = [s.name for s in compute_signals(runtime=runtime, profiler="pyinstrument")]
    assert names == ["off_cpu", "gc_time", "rss_growth", "python_memory", "threads"]
    trace = _trace(10, {1: 1.0})
    names = [s.name for s in compute_signals(trace=trace, profiler="py-spy")]
    assert names == ["off_cpu", "rss_growth", "threads", "gil_contention", "machine_load"]
    assert compute_signals() == []


# -- fixture workloads ------------------------------------------------------------------------

def _spec(function: str, **params: object) -> BenchmarkSpec:
    return BenchmarkSpec(name=function, base_name=function, kind="callable", settings=Settings(),
                         metrics=("wall_time",), params=params, callable=f"profmod:{function}",
                         pythonpath=(str(FIXTURES),), root=str(FIXTURES.parent))


def test_waiting_workload_gives_an_off_cpu_warning() -> None:
    result = profile_callable(_spec("wait_for_lock"), duration=DURATION)
    sig = result.signal("off_cpu")
    assert sig is not None and sig.severity == "warn" and sig.value > 0.5
    # pyinstrument samples wall time, so the wait itself is the hot spot
    assert any("acquire" in f.name or "wait" in f.name for f in result.profile.frames)


def test_cpu_bound_workload_is_not_called_waiting() -> None:
    result = profile_callable(_spec("pipeline"), duration=DURATION)
    if result.runtime is None or result.runtime.runqueue is None:
        pytest.skip("no schedstat here: time spent waiting for a CPU cannot be told from waiting")
    assert result.signal("off_cpu").severity == "info"


def test_gc_heavy_workload_gives_a_gc_signal() -> None:
    result = profile_callable(_spec("make_cycles"), duration=DURATION)
    sig = result.signal("gc_time")
    assert sig is not None and sig.severity == "warn" and sig.value >= GC_WARN
    assert result.runtime is not None and sum(result.runtime.gc_collections) > 10


@pytest.mark.slow   # a real process for seconds: out of the fast loop
def test_growing_workload_gives_rss_growth_and_python_memory_signals() -> None:
    result = profile_callable(_spec("grow_cache"), duration=DURATION)
    growth = result.signal("rss_growth")
    assert growth is not None and growth.severity == "warn" and growth.value >= 10
    memory = result.signal("python_memory")
    assert memory is not None and memory.severity == "warn"
    assert "profmod.py" in memory.reading and "Python objects" in memory.reading


def test_threaded_workload_reports_its_threads() -> None:
    # pyinstrument as asked: it records one thread, and the signal says to use py-spy
    result = profile_callable(_spec("contended", n=300_000), duration=DURATION, profiler="pyinstrument")
    assert result.profiler == "pyinstrument"
    threads = result.signal("threads")
    assert threads is not None and threads.value >= 2 and "py-spy" in threads.reading
    assert result.signal("gil_contention") is not None
