"""Which time metric decides: CPU-bound code on CPU time, code that waits on wall time.

Known answers from generated samples (the share of waiting is set), and from real worker
processes: a busy loop is CPU-bound; sleeping and waiting on a lock held by another thread
are waits. A head that only adds waiting is decided, and caught, on wall time.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from perfloop.analysis.compare import VerdictKind, compare_results
from perfloop.analysis.deciding import choose, cpu_share
from perfloop.config import load_config
from perfloop.measure.runner import measure_spec
from perfloop.records import BenchmarkResult, ResultStatus, Sample


def result(seed: int, *, cpu: float, wait: float, load: float = 0.5, workers: int = 8,
           values: int = 5, name: str = "b", waits: float = 1.0) -> BenchmarkResult:
    """``cpu`` seconds of computing plus ``wait`` seconds of waiting per value; on a busy
    machine a value also waits for a core, by a random share up to ``load`` of its CPU time
    (most values are disturbed, a few are not)."""
    rng = np.random.default_rng(seed)
    samples = []
    for w in range(workers):
        level = math.exp(rng.normal(0.0, 0.01))
        for i in range(values):
            c = cpu * level * math.exp(rng.normal(0.0, 0.003))
            queued = c * load * rng.uniform(0.0, 1.0) if rng.uniform() < 0.8 else 0.0
            waited = wait * math.exp(rng.normal(0.0, 0.02)) if rng.uniform() < waits else 0.0
            wall = c + waited + queued
            samples += [Sample("cpu_time", c, worker=w, index=i),
                        Sample("wall_time", wall, worker=w, index=i)]
    return BenchmarkResult(name=name, kind="callable", status=ResultStatus.OK,
                           samples=tuple(samples), units={"cpu_time": "s", "wall_time": "s"})


def test_cpu_bound_code_on_a_busy_machine_is_decided_on_cpu_time() -> None:
    base, head = result(1, cpu=1e-3, wait=0.0), result(2, cpu=1e-3, wait=0.0)
    assert cpu_share(base) == pytest.approx(1.0, abs=0.05)
    choice = choose(base, head, ["wall_time", "cpu_time"], tolerance=0.05)
    assert choice.metric == "cpu_time" and "CPU-bound" in choice.reason
    verdicts = {v.metric: v for v in compare_results(base, head)}
    assert verdicts["cpu_time"].role == "decides" and verdicts["wall_time"].role == "context"
    assert verdicts["wall_time"].deciding_metric == "cpu_time"


def test_code_that_waits_is_decided_on_wall_time() -> None:
    base, head = result(3, cpu=1e-3, wait=1e-3), result(4, cpu=1e-3, wait=1e-3)
    choice = choose(base, head, ["wall_time", "cpu_time"], tolerance=0.05)
    assert choice.metric == "wall_time" and choice.reason.startswith("waits")
    assert cpu_share(base) == pytest.approx(0.5, abs=0.05)


def test_new_waiting_in_head_is_caught_on_wall_time() -> None:
    # Same CPU work; head now waits 10% of it (a lock, an I/O call): CPU time cannot see it.
    base, head = result(5, cpu=1e-3, wait=0.0, load=0.0), result(6, cpu=1e-3, wait=1e-4, load=0.0)
    verdicts = {v.metric: v for v in compare_results(base, head, tolerance=0.05)}
    assert verdicts["cpu_time"].verdict is not VerdictKind.REGRESSED
    assert verdicts["wall_time"].deciding_metric == "wall_time"
    assert verdicts["wall_time"].role == "decides" and verdicts["cpu_time"].role == "context"
    assert "head waits more" in (verdicts["wall_time"].deciding_reason or "")
    assert verdicts["wall_time"].verdict is VerdictKind.REGRESSED


def test_wall_time_regressed_where_cpu_time_did_not_still_counts() -> None:
    # Head waits in 95% of its calls (say, a cache that mostly misses): its least disturbed
    # values still look CPU-bound, but wall time shows the waiting, and it decides too.
    base = result(10, cpu=1e-3, wait=0.0, load=0.0)
    head = result(11, cpu=1e-3, wait=2e-4, load=0.0, waits=0.95)
    verdicts = {v.metric: v for v in compare_results(base, head, tolerance=0.05)}
    assert verdicts["cpu_time"].deciding_metric == "cpu_time"
    assert verdicts["wall_time"].verdict is VerdictKind.REGRESSED
    assert verdicts["wall_time"].role == "decides"
    assert "waiting added" in (verdicts["wall_time"].deciding_reason or "")


def test_parallel_code_is_decided_on_wall_time() -> None:
    base = result(7, cpu=2e-3, wait=-1e-3, load=0.0)     # two threads: CPU twice the wall time
    choice = choose(base, base, ["wall_time", "cpu_time"], tolerance=0.05)
    assert choice.metric == "wall_time" and "several cores" in choice.reason


def test_decide_on_forces_the_metric_and_instructions_win_when_measured() -> None:
    base, head = result(8, cpu=1e-3, wait=0.0), result(9, cpu=1e-3, wait=0.0)
    assert choose(base, head, ["wall_time", "cpu_time"], tolerance=0.05,
                  decide_on="wall_time").metric == "wall_time"
    assert choose(base, head, ["wall_time", "cpu_time", "instructions"],
                  tolerance=0.05).metric == "instructions"
    assert choose(base, head, ["peak_rss"], tolerance=0.05).metric is None


WORKLOADS = '''
import threading
import time


def busy():
    total = 0
    for i in range(60_000):
        total += i * i
    return None


def sleepy():
    sum(i for i in range(5_000))
    time.sleep(0.004)


_lock = threading.Lock()


def _hold():
    with _lock:
        time.sleep(0.004)


def locked():
    t = threading.Thread(target=_hold)
    t.start()
    time.sleep(0.0005)
    with _lock:                    # waits for the other thread to let go
        sum(i for i in range(5_000))
    t.join()
'''


@pytest.mark.slow
@pytest.mark.parametrize("name, decides", [("busy", "cpu_time"), ("sleepy", "wall_time"),
                                           ("locked", "wall_time")])
def test_real_workers_are_classified(tmp_path: Path, name: str, decides: str) -> None:
    (tmp_path / "work.py").write_text(WORKLOADS)
    (tmp_path / "perfloop.toml").write_text(
        f'[defaults]\nprocesses = 2\nvalues = 4\nwarmup = 1\nmin_time = 0.01\n'
        f'[[benchmark]]\nname = "{name}"\ncallable = "work:{name}"\n'
        f'metrics = ["wall_time", "cpu_time"]\n')
    [spec] = load_config(tmp_path).benchmarks
    measured = measure_spec(spec, time.monotonic() + 120, lambda fraction: None)
    assert measured.status is ResultStatus.OK, measured.error
    choice = choose(measured, measured, ["wall_time", "cpu_time"], tolerance=0.05)
    assert choice.metric == decides, (choice.reason, cpu_share(measured))


def test_time_waiting_for_a_core_is_taken_out_before_classifying() -> None:
    """At a load of 4 a value of CPU-bound code spends most of its wall time waiting for a
    core; the worker measures that (runqueue_time) and the classification leaves it out."""
    def measured(runqueue: bool, sleeping: float) -> BenchmarkResult:
        samples = []
        for w in range(4):
            for i in range(3):
                cpu, queued = 1e-3, 3e-3                  # 1 ms computing, 3 ms waiting for a core
                samples += [Sample("cpu_time", cpu, worker=w, index=i),
                            Sample("wall_time", cpu + queued + sleeping, worker=w, index=i)]
                if runqueue:
                    samples.append(Sample("runqueue_time", queued, worker=w, index=i))
        return BenchmarkResult(name="b", kind="callable", status=ResultStatus.OK,
                               samples=tuple(samples))
    busy, unmeasured = measured(True, 0.0), measured(False, 0.0)
    assert cpu_share(busy) == pytest.approx(1.0) and cpu_share(unmeasured) == pytest.approx(0.25)
    assert choose(busy, busy, ["wall_time", "cpu_time"], tolerance=0.05).metric == "cpu_time"
    assert choose(unmeasured, unmeasured, ["wall_time", "cpu_time"],
                  tolerance=0.05).metric == "wall_time"
    # code that sleeps 2 ms still waits, whatever the queue took
    sleepy = measured(True, 2e-3)
    assert cpu_share(sleepy) == pytest.approx(1 / 3)
    assert choose(sleepy, sleepy, ["wall_time", "cpu_time"], tolerance=0.05).metric == "wall_time"


def test_a_wait_counted_at_the_edge_of_a_value_does_not_make_it_parallel() -> None:
    """The kernel's count of waiting is read just outside the timed span: a preemption at its
    edge counts waiting the wall time never saw. Seen at a load of 12: single-threaded checkout
    code read CPU/wall 17 on its largest ratio and was decided on wall time as 'parallel'."""
    def busy(edge: float) -> BenchmarkResult:
        samples = []
        for w in range(4):
            for i in range(5):
                cpu, queued = 3e-3, 6e-3                  # 3 ms computing, 6 ms waiting for a core
                counted = queued + (edge if (w, i) == (1, 2) else 0.0)
                samples += [Sample("cpu_time", cpu, worker=w, index=i),
                            Sample("wall_time", cpu + queued, worker=w, index=i),
                            Sample("runqueue_time", counted, worker=w, index=i)]
        return BenchmarkResult(name="b", kind="callable", status=ResultStatus.OK,
                               samples=tuple(samples))
    edgy = busy(2.8e-3)          # one value's own time reads 0.2 ms: a ratio of 15
    assert cpu_share(edgy) == pytest.approx(1.0)
    assert choose(edgy, edgy, ["wall_time", "cpu_time"], tolerance=0.05).metric == "cpu_time"


def test_code_on_several_cores_stays_parallel_with_the_run_queue_measured() -> None:
    samples = []
    for w in range(4):
        for i in range(5):        # two threads computing 2 ms each in 2.1 ms of wall time
            samples += [Sample("cpu_time", 4e-3, worker=w, index=i),
                        Sample("wall_time", 2.1e-3, worker=w, index=i),
                        Sample("runqueue_time", 1e-4, worker=w, index=i)]
    both = BenchmarkResult(name="b", kind="callable", status=ResultStatus.OK,
                           samples=tuple(samples))
    assert cpu_share(both) == pytest.approx(4 / 2.1)
    assert choose(both, both, ["wall_time", "cpu_time"], tolerance=0.05).metric == "wall_time"


def test_workers_report_their_wait_for_a_core_where_linux_does(tmp_path: Path) -> None:
    from perfloop.measure.timers import runqueue_clock
    if runqueue_clock() is None:
        pytest.skip("this kernel does not report /proc/thread-self/schedstat")
    (tmp_path / "work.py").write_text(WORKLOADS)
    (tmp_path / "perfloop.toml").write_text(
        '[defaults]\nprocesses = 2\nvalues = 2\nwarmup = 0\nmin_time = 0.005\n'
        '[[benchmark]]\nname = "busy"\ncallable = "work:busy"\n')
    [spec] = load_config(tmp_path).benchmarks
    measured = measure_spec(spec, time.monotonic() + 120, lambda fraction: None)
    assert measured.status is ResultStatus.OK, measured.error
    walls = {(s.worker, s.index): s.value for s in measured.samples if s.metric == "wall_time"}
    queued = {(s.worker, s.index): s.value for s in measured.samples
              if s.metric == "runqueue_time"}
    assert set(queued) == set(walls)
    assert all(0.0 <= queued[k] <= walls[k] * 1.01 for k in walls)
