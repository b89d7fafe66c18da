"""Hash seeds by worker: worker ``w`` of every run hashes strings alike, so two separately
measured runs are compared worker by worker.

Known answers: real workers report the hash of a string, which must match between runs worker
by worker and differ between workers; generated runs where each seed moves the code's speed by
up to 20% (as string-keyed code does) are decided when paired by seed, where the unpaired
analysis drowns in the seeds' spread.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from perfloop.analysis.compare import VerdictKind, compare_results
from perfloop.config import BenchmarkSpec, Settings
from perfloop.measure.callable import HASH_SEEDS, hash_seed, measure_callable
from perfloop.records import BenchmarkResult, ResultStatus, Sample

SETTINGS = Settings(processes=3, values=1, warmup=0, min_time=0.0, timeout=60)


def spec(root: Path, env: dict[str, str] | None = None) -> BenchmarkSpec:
    return BenchmarkSpec(name="h", base_name="h", kind="callable", settings=SETTINGS,
                         metrics=("wall_time", "custom"), callable="hashes:run", root=str(root),
                         env=env or {})


def hashes(result: BenchmarkResult) -> dict[int, float]:
    return {s.worker: s.value for s in result.samples if s.metric == "h"}


def test_worker_w_of_every_run_has_the_same_seed(tmp_path: Path) -> None:
    (tmp_path / "hashes.py").write_text(
        'def run():\n    return {"h": float(hash("perfloop") % 1_000_003)}\n')
    one, two = measure_callable(spec(tmp_path)), measure_callable(spec(tmp_path))
    assert one.status is ResultStatus.OK, one.error
    assert hashes(one) == hashes(two) and len(set(hashes(one).values())) == 3
    assert one.extra["hash_seeds"] == HASH_SEEDS
    assert len({hash_seed(w) for w in range(1000)}) == 1000
    assert all(1 <= hash_seed(w) <= 4294967295 for w in range(1000))
    # a seed the benchmark sets (the gate sets one per block) is respected
    fixed = measure_callable(spec(tmp_path, env={"PYTHONHASHSEED": "7"}))
    assert len(set(hashes(fixed).values())) == 1 and "hash_seeds" not in fixed.extra


def run(rng: np.random.Generator, seed_effect: np.ndarray, change: float,
        paired: bool) -> BenchmarkResult:
    samples = []
    for w, effect in enumerate(seed_effect):
        level = 1e-3 * (1.0 + change) * effect * math.exp(rng.normal(0.0, 0.01))
        samples += [Sample("cpu_time", level * math.exp(rng.normal(0.0, 0.005)), worker=w, index=i)
                    for i in range(5)]
    extra = {"hash_seeds": HASH_SEEDS} if paired else {}
    return BenchmarkResult(name="b", kind="callable", status=ResultStatus.OK,
                           samples=tuple(samples), units={"cpu_time": "s"}, extra=extra)


def test_separate_runs_paired_by_seed_decide_what_the_seeds_spread_hides() -> None:
    rng = np.random.default_rng(4)
    counts = {True: {0.0: [], 0.10: []}, False: {0.0: [], 0.10: []}}
    for _ in range(40):
        effect = np.exp(rng.uniform(-0.2, 0.2, 10))      # each seed's own speed, in every run
        for paired in (True, False):
            for change in (0.0, 0.10):
                [v] = compare_results(run(rng, effect, 0.0, paired),
                                      run(rng, effect, change, paired))
                counts[paired][change].append(v.verdict)
                if paired:
                    assert v.test.startswith("paired workers (same hash seed)"), v.test
    assert counts[True][0.0].count(VerdictKind.UNCHANGED) == 40
    assert counts[True][0.10].count(VerdictKind.REGRESSED) == 40
    # unpaired, the seeds' spread leaves most undecided, and never wrong
    assert counts[False][0.0].count(VerdictKind.UNCHANGED) < 20
    assert VerdictKind.IMPROVED not in counts[False][0.10] + counts[False][0.0]
    assert VerdictKind.REGRESSED not in counts[False][0.0]
