"""Drift between separately measured runs (``run_noise``), estimated from stored repeat runs.

Two runs of the same code taken minutes or hours apart on a shared host differ by more than
the spread inside either run: a whole run can shift by 5-10%, every CPU-bound benchmark
together, with the load average below 1 and nothing in the environment fingerprint to show it.
No interval inside one run sees that, so :func:`perfloop.analysis.comparison.with_run_noise`
adds a drift term, the relative standard deviation of a run's location, ``run_noise``.

This module measures it, per metric, from runs of one commit stored in one environment class
(``perfloop run`` repeated, or ``perfloop doctor --calibrate``): for every two consecutive
repeat runs and every benchmark they share, the log ratio of the two locations is one A/A
observation ``d``. Shifts are heavy-tailed (mostly ~1%, now and then ~10%), so the estimate is
deliberately not the typical day:

    run_noise = max(1.5 * rms(d) / sqrt(2),  max|d| / (2.576 * sqrt(2)),  0.5%)

The first term inflates the root mean square by 1.5 for the tails a handful of pairs has not
shown yet; the second makes the 99% drift floor cover the largest shift seen so far. Without
at least :data:`MIN_PAIRS` pairs the configured value (default 5%) is used, and every output
says which one was used and how many runs it rests on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from ..records import BenchmarkResult, ResultStatus
from . import stats

#: Fewest A/A run pairs for a measured estimate.
MIN_PAIRS = 3
#: Inflation of the root mean square for tails not yet seen.
HEAVY_TAIL = 1.5
#: The 99% two-sided normal quantile the drift floor is built with.
_Z99 = 2.5758
#: Smallest estimate: within-run noise is in every observed ratio anyway.
MIN_RUN_NOISE = 0.005

#: Default drift of latency percentiles (``latency_*``) between separate runs. An HTTP
#: benchmark's workers are load periods against one server process per run, so its interval
#: holds the spread between periods but not between server processes: on a quiet host, the
#: example shop's p50 moved +52%, +6%, -18%, +3% and +16% between consecutive runs of one
#: commit, each run's periods agreeing within a few percent (measured from those: 26-33%).
LATENCY_RUN_NOISE = 0.30

MEASURED, CONFIGURED, FLAG, DEFAULT, INTERLEAVED = (
    "measured", "configured", "--run-noise", "default", "interleaved")


@dataclass(frozen=True)
class RunNoise:
    """One metric's drift between separate runs, and what it rests on."""

    value: float
    source: str                 # measured | configured | --run-noise | default | interleaved
    runs: int = 0               # stored runs it was estimated from
    pairs: int = 0              # consecutive A/A run pairs
    ratios: int = 0             # A/A log ratios (pairs x shared benchmarks)
    largest: float | None = None   # largest A/A shift seen, as a relative change

    def describe(self) -> str:
        if self.source == INTERLEAVED:
            return "no drift term: base and head were measured interleaved"
        if self.source == MEASURED:
            big = f", largest shift {self.largest:+.1%}" if self.largest is not None else ""
            return (f"run_noise {self.value:.1%} measured from {self.runs} repeat runs "
                    f"({self.pairs} A/A pairs, {self.ratios} ratios{big})")
        if self.source == DEFAULT:
            return (f"run_noise {self.value:.1%} (default: fewer than {MIN_PAIRS} A/A pairs of "
                    "repeat runs stored here; perfloop doctor --calibrate measures it)")
        return f"run_noise {self.value:.1%} ({self.source})"

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source, "runs": self.runs,
                "pairs": self.pairs, "ratios": self.ratios, "largest": self.largest,
                "describe": self.describe()}


def location(result: BenchmarkResult, metric: str) -> float | None:
    """The result's location of ``metric``: the 10%-trimmed mean of its worker medians."""
    groups = result.by_worker(metric)
    medians = [float(np.median(v)) for v in groups.values() if v]
    if not medians or min(medians) <= 0.0:
        return None
    return stats.trimmed_mean(np.asarray(medians))


def aa_ratios(runs: Sequence[Any], metric: str) -> tuple[list[float], int, int]:
    """A/A log ratios of ``metric`` between consecutive runs of the same commit.

    ``runs`` are stored runs (anything with ``commit``, ``started_at`` and ``results``); only
    runs that are repeats are useful, the caller selects them. Returns the ratios, the number
    of runs that took part and the number of pairs.
    """
    by_commit: dict[str, list[Any]] = {}
    for run in runs:
        if run.commit:
            by_commit.setdefault(run.commit, []).append(run)
    ratios: list[float] = []
    used: set[int] = set()
    pairs = 0
    for group in by_commit.values():
        group.sort(key=lambda r: r.started_at)
        for a, b in zip(group, group[1:]):
            found = _pair_ratios(a, b, metric)
            if found:
                pairs += 1
                used.update((a.id, b.id))
                ratios.extend(found)
    return ratios, len(used), pairs


def _pair_ratios(a: Any, b: Any, metric: str) -> list[float]:
    ra = {r.name: r for r in a.results if r.status is ResultStatus.OK}
    out = []
    for r in b.results:
        if r.status is not ResultStatus.OK or r.name not in ra:
            continue
        la, lb = location(ra[r.name], metric), location(r, metric)
        if la and lb:
            out.append(math.log(lb / la))
    return out


def estimate(ratios: Iterable[float], *, runs: int, pairs: int,
             fallback: float) -> RunNoise:
    """``run_noise`` from A/A log ratios (see the module docstring); ``fallback`` without enough."""
    d = np.asarray(list(ratios), dtype=float)
    if pairs < MIN_PAIRS or not len(d):
        return RunNoise(fallback, DEFAULT, runs, pairs, len(d))
    rms = float(np.sqrt(np.mean(d * d)))
    largest = float(d[np.argmax(np.abs(d))])
    value = max(HEAVY_TAIL * rms / math.sqrt(2.0), abs(largest) / (_Z99 * math.sqrt(2.0)),
                MIN_RUN_NOISE)
    return RunNoise(math.expm1(value), MEASURED, runs, pairs, len(d), math.expm1(largest))


def default_run_noise(metric: str, fallback: float) -> float:
    """The drift term of ``metric`` without measured data: ``fallback``, and at least
    :data:`LATENCY_RUN_NOISE` for a latency percentile."""
    return max(fallback, LATENCY_RUN_NOISE) if metric.startswith("latency_") else fallback


def is_repeat_candidate(run: Any) -> bool:
    """A run that can serve as an A/A repeat: complete, clean, measured on its own.

    A run taken while a drill ran is not: it measured an injected slowdown, not the commit.
    """
    status = getattr(run.status, "value", run.status)
    label = run.label or ""
    return (status == "complete" and not run.dirty and bool(run.commit)
            and not label.startswith("gate-")
            and not (getattr(run, "settings", None) or {}).get("interleaved")
            and not (getattr(run, "settings", None) or {}).get("drill"))


def _repeats(runs: Sequence[Any]) -> list[Any]:
    """The runs whose commit has two or more runs among ``runs``, in their order."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.commit] = counts.get(run.commit, 0) + 1
    return [r for r in runs if counts[r.commit] >= 2]


def measured_run_noise(store: Any, environment_hash: str, metrics: Iterable[str], *,
                       fallback: float, limit: int = 40) -> dict[str, RunNoise]:
    """Per metric, ``run_noise`` from the newest ``limit`` repeat runs in one environment class.

    Only commits with two or more complete, clean, separately measured runs are read.
    """
    infos = [i for i in store.list_runs(limit=400)
             if i.environment_hash == environment_hash and is_repeat_candidate(i)]
    chosen = _repeats(infos)[:limit]
    # a listing does not carry settings: read the runs, and drop interleaved and drill runs
    runs = _repeats([r for r in (store.get_run(i.id) for i in chosen) if is_repeat_candidate(r)])
    out = {}
    for metric in dict.fromkeys(metrics):
        ratios, used, pairs = aa_ratios(runs, metric)
        out[metric] = estimate(ratios, runs=used, pairs=pairs,
                               fallback=default_run_noise(metric, fallback))
    return out


__all__ = ["CONFIGURED", "DEFAULT", "FLAG", "INTERLEAVED", "LATENCY_RUN_NOISE", "MEASURED",
           "MIN_PAIRS", "RunNoise", "aa_ratios", "default_run_noise", "estimate",
           "is_repeat_candidate", "location", "measured_run_noise"]
