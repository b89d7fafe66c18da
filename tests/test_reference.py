"""The host's reference workload: timed beside every value, and CPU time in its units.

Known answers: real worker processes record one reference time and one ``cpu_norm`` per value
(``cpu_norm x host_reference == cpu_time``); generated runs where the host's speed moves every
run by up to 25% (as measured on a shared host with nothing else running), which moves the
code's CPU time and the reference alike, are decided on ``cpu_norm``: an A/A pair unchanged, a
10% slowdown regressed, where ``cpu_time`` cannot tell.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from perfloop.analysis.compare import VerdictKind, compare_results
from perfloop.analysis.comparison import compare_runs
from perfloop.analysis.deciding import choose
from perfloop.analysis.drift import measured_run_noise
from perfloop.config import BenchmarkSpec, Settings
from perfloop.measure.callable import measure_callable
from perfloop.measure.protocol import WorkerSession, reference_seconds
from perfloop.measure.timers import reference_workload
from perfloop.records import BenchmarkResult, ResultStatus, RunStatus, Sample

FIXTURES = Path(__file__).parent / "fixtures"
TINY = Settings(processes=2, values=3, warmup=1, min_time=0.004, timeout=60)


def spec(*, settings: Settings = TINY, metrics: tuple[str, ...] = ("wall_time", "cpu_time")
         ) -> BenchmarkSpec:
    return BenchmarkSpec(name="busy", base_name="busy", kind="callable", settings=settings,
                         metrics=metrics, callable="benchmod:busy", root=str(FIXTURES))


def by_key(result: BenchmarkResult, metric: str) -> dict[tuple[int, int], float]:
    return {(s.worker, s.index): s.value for s in result.samples if s.metric == metric}


def test_every_value_carries_the_reference_and_cpu_in_its_units() -> None:
    result = measure_callable(spec())
    assert result.status is ResultStatus.OK, result.error
    cpu, ref, norm = (by_key(result, m) for m in ("cpu_time", "host_reference", "cpu_norm"))
    assert set(ref) == set(norm) == set(cpu) and len(cpu) == 2 * (1 + 3)
    for key, value in cpu.items():
        assert norm[key] * ref[key] == pytest.approx(value, rel=1e-9)
    # busy(2 ms) against a reference workload of well under a millisecond
    assert all(v > 1.0 for v in norm.values())
    assert result.units.get("cpu_norm") in (None, "ref") and reference_seconds(spec()) == 0.002


@pytest.mark.parametrize("settings, metrics", [
    (Settings(processes=2, values=2, warmup=0, min_time=0.004, timeout=60, reference=False),
     ("wall_time", "cpu_time")),
    (TINY, ("wall_time",)),            # no CPU time: nothing to put in the reference's units
])
def test_no_reference_when_turned_off_or_without_cpu_time(settings: Settings,
                                                          metrics: tuple[str, ...]) -> None:
    assert reference_seconds(spec(settings=settings, metrics=metrics)) is None
    result = measure_callable(spec(settings=settings, metrics=metrics))
    assert result.status is ResultStatus.OK, result.error
    assert not {"host_reference", "cpu_norm"} & set(result.metrics)


def test_a_reference_that_is_not_a_positive_time_is_refused() -> None:
    session = WorkerSession(0, frozenset({"cpu_time"}), lambda: None, token="t", values=1)
    session.feed(b'{"type": "hello", "token": "t", "version": 4, "timer_resolution": 1e-9}\n')
    with pytest.raises(Exception, match="reference"):
        session.feed(b'{"type": "value", "token": "t", "index": 0, "warmup": false, "loops": 1, '
                     b'"wall_time": 0.001, "cpu_time": 0.001, "custom": {}, "reference": -1}\n')


def test_the_reference_workload_is_fixed_work() -> None:
    # stored cpu_norm values are in its units: the same answer, whatever the hash seed
    assert reference_workload() == reference_workload()


# --- generated runs: the host's speed moves, the reference moves with it -------------------

def run_result(rng: np.random.Generator, host: float, change: float, name: str,
               workers: int = 8, values: int = 5) -> BenchmarkResult:
    """Values of a 1 ms CPU-bound call and of a 0.1 ms reference on a host running at
    ``host`` times its usual slowness; each value's moment shares one speed factor of ~2%
    between the two, and each has its own ~1% noise."""
    samples = []
    for w in range(workers):
        worker = math.exp(rng.normal(0.0, 0.02))          # the process's own speed
        for i in range(values):
            moment = host * worker * math.exp(rng.normal(0.0, 0.02))
            ref = 1e-4 * moment * math.exp(rng.normal(0.0, 0.01))
            cpu = 1e-3 * (1.0 + change) * moment * math.exp(rng.normal(0.0, 0.01))
            samples += [Sample("cpu_time", cpu, worker=w, index=i),
                        Sample("wall_time", cpu * 1.02, worker=w, index=i),
                        Sample("host_reference", ref, worker=w, index=i),
                        Sample("cpu_norm", cpu / ref, worker=w, index=i)]
    return BenchmarkResult(name=name, kind="callable", status=ResultStatus.OK,
                           samples=tuple(samples),
                           units={"cpu_time": "s", "wall_time": "s", "host_reference": "s",
                                  "cpu_norm": "ref"})


def test_cpu_norm_decides_cpu_bound_code_and_decide_on_still_forces() -> None:
    rng = np.random.default_rng(5)
    base, head = run_result(rng, 1.0, 0.0, "b"), run_result(rng, 1.0, 0.0, "b")
    metrics = ["wall_time", "cpu_time", "cpu_norm"]
    assert choose(base, head, metrics, tolerance=0.05).metric == "cpu_norm"
    assert choose(base, head, metrics, tolerance=0.05, decide_on="cpu_time").metric == "cpu_time"
    verdicts = {v.metric: v for v in compare_results(base, head)}
    assert "host_reference" not in verdicts          # the host is shown, never judged
    assert verdicts["cpu_norm"].role == "decides" and verdicts["cpu_time"].role == "context"


def _store_run(store, label: str, commit: str, rng: np.random.Generator, host: float,
               change: float = 0.0) -> int:
    run_id = store.begin_run(label=label, commit=commit, branch="main", dirty=False,
                             environment={"python": "3.12"}, settings={}, project="p")
    for b in range(4):
        store.add_result(run_id, run_result(rng, host, change, f"b{b}"))
    store.finish_run(run_id, RunStatus.COMPLETE)
    return run_id


def _host(rng: np.random.Generator) -> float:
    return math.exp(rng.uniform(-0.22, 0.22))      # whole runs shift by up to about 25%


def test_host_speed_shifts_cancel_out_of_cpu_norm_between_separate_runs(store) -> None:
    rng = np.random.default_rng(11)
    repeats = [_store_run(store, f"r{i}", "a" * 40, rng, _host(rng)) for i in range(6)]
    env = store.get_run(repeats[0]).environment_hash
    drift = measured_run_noise(store, env, ["cpu_time", "cpu_norm", "wall_time"], fallback=0.03)
    # the host's shifts are in cpu_time's drift, not in cpu_norm's
    assert drift["cpu_norm"].value < 0.02 < 0.08 < drift["cpu_time"].value, drift
    outcomes = {}
    for change, commit in ((0.0, "b" * 40), (0.10, "c" * 40)):
        base = _store_run(store, "base", commit, rng, math.exp(-0.2))     # host fast
        head = _store_run(store, "head", commit[::-1].upper(), rng, math.exp(0.2), change)
        cmp = compare_runs(store.get_run(base), store.get_run(head), drift=drift)
        deciding = [v for v in cmp.verdicts if v.role == "decides"]
        assert {v.metric for v in deciding} == {"cpu_norm"}
        outcomes[change] = {v.verdict for v in deciding}
        # cpu_time saw the host's 49% shift and, honestly, could not decide
        assert all(v.verdict is not VerdictKind.UNCHANGED for v in cmp.verdicts
                   if v.metric == "cpu_time")
    assert outcomes == {0.0: {VerdictKind.UNCHANGED}, 0.10: {VerdictKind.REGRESSED}}


def test_wall_time_that_moved_with_cpu_time_is_the_host_not_waiting() -> None:
    rng = np.random.default_rng(8)
    base, head = run_result(rng, 1.0, 0.0, "b"), run_result(rng, 1.3, 0.0, "b")   # host 30% slower
    verdicts = {v.metric: v for v in compare_results(base, head)}
    assert verdicts["wall_time"].verdict is VerdictKind.REGRESSED        # it did move ...
    assert verdicts["cpu_time"].verdict is VerdictKind.REGRESSED         # ... with CPU time
    assert verdicts["cpu_norm"].verdict is VerdictKind.UNCHANGED
    assert verdicts["wall_time"].role == "context", verdicts["wall_time"].deciding_reason
    assert "the host's speed, not waiting" in verdicts["cpu_norm"].deciding_reason


def test_compare_names_the_hosts_shift(store) -> None:
    rng = np.random.default_rng(12)
    base = _store_run(store, "base", "d" * 40, rng, 1.0)
    head = _store_run(store, "head", "e" * 40, rng, 1.25)
    notes = " | ".join(compare_runs(store.get_run(base), store.get_run(head)).notes)
    assert "reference workload took 25% slower in the head run" in notes, notes
    same = _store_run(store, "same", "f" * 40, rng, 1.0)
    notes = " | ".join(compare_runs(store.get_run(base), store.get_run(same)).notes)
    assert "reference workload" not in notes, notes


def test_raw_times_carry_the_hosts_measured_shift_between_separate_runs(store) -> None:
    # Seen on the shop: the reference moved -34% between two runs of one commit and CPU time
    # -40%; with the default drift term alone, compare called CPU time improved.
    rng = np.random.default_rng(13)
    base = _store_run(store, "base", "1" * 40, rng, 1.0)
    head = _store_run(store, "head", "2" * 40, rng, 0.66)
    cmp = compare_runs(store.get_run(base), store.get_run(head))
    by_metric: dict[str, set[VerdictKind]] = {}
    for v in cmp.verdicts:
        by_metric.setdefault(v.metric, set()).add(v.verdict)
    assert by_metric["cpu_time"] == by_metric["wall_time"] == {VerdictKind.INCONCLUSIVE}
    assert not by_metric["cpu_norm"] & {VerdictKind.IMPROVED, VerdictKind.REGRESSED}
    noise = dict(cmp.run_noise)
    assert "reference workload moved -34%" in noise["cpu_time"].describe()
    assert noise["cpu_time"].value > 0.25 and noise["cpu_norm"].value == 0.05
    # the same shift without it: what the fixed term said
    fixed = compare_runs(store.get_run(base), store.get_run(head), run_noise=0.05)
    assert {v.verdict for v in fixed.verdicts if v.metric == "cpu_time"} == {VerdictKind.IMPROVED}
