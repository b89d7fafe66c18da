"""Comparison and verdict engine: did head get worse, better, stay the same, or can we not tell?

Given the values of one metric in a base and a head measurement, grouped by the worker process
that produced them, :func:`compare_groups` returns a :class:`Verdict`: the relative change of
head against base, its confidence interval, a two-sided p-value and one of ``regressed``,
``improved``, ``unchanged`` or ``inconclusive``. :func:`compare_results` does it for every
metric two :class:`~perfloop.records.BenchmarkResult` objects share.

The worker is the statistical unit: values from one process share its state (memory layout,
caches, a noisy neighbour) and are not independent. Each worker is summarised by its median;
the interval comes from :mod:`perfloop.analysis.stats`. The decision is an equivalence-style
rule at a tolerance ``t``: a change counts when the interval leaves zero on one side and is not
confined within ``(-t, t)``; ``unchanged`` needs the interval inside ``(-t, t)``; anything
else is ``inconclusive``, with an estimate of how many more workers would likely decide.
``docs/statistics.md`` explains the method and the measurements behind its choices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from enum import Enum
from numbers import Real
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np

from ..config import DEFAULT_TOLERANCE
from ..errors import UsageError
from ..metrics import Direction, Metric, get_metric
from ..records import BenchmarkResult, ResultStatus
from . import stats

#: Fewest workers per side whose spread can be measured at all.
MIN_WORKERS = 2
#: Fewest values per side for any verdict.
MIN_VALUES = 3
#: With fewer than MIN_WORKERS workers on a side, the values themselves become the units when
#: each side has at least this many (with a note that this assumes they are independent).
SINGLE_WORKER_MIN_VALUES = 5
#: Beyond this many extra workers per side a comparison is reported as undecidable at this noise.
MAX_MORE_WORKERS = 1000

Groups = Union[Mapping[int, Sequence[float]], Sequence[Sequence[float]]]


class VerdictKind(str, Enum):
    REGRESSED = "regressed"
    IMPROVED = "improved"
    UNCHANGED = "unchanged"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing one metric of one benchmark, base against head.

    ``change`` is the relative change of head's location against base's (``+0.10``: head's
    value is 10% larger), ``ci_low``/``ci_high`` its confidence interval at ``confidence``.
    When the base location is 0 they are absolute differences instead (``note`` says so).
    ``more_workers``, for an inconclusive verdict, estimates how many more worker processes per
    side would likely decide it.
    """

    benchmark: str
    metric: str
    unit: str
    direction: str
    verdict: VerdictKind
    change: float
    ci_low: float
    ci_high: float
    confidence: float
    tolerance: float
    p_value: float
    base_location: float
    head_location: float
    base_n: int
    head_n: int
    base_workers: int
    head_workers: int
    test: str
    more_workers: int | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the verdict as its string, undefined numbers as ``None``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Enum):
                value = value.value
            elif isinstance(value, float) and not math.isfinite(value):
                value = None
            out[f.name] = value
        return out


def compare_groups(base: Groups, head: Groups, *, metric: Metric, benchmark: str = "",
                   tolerance: float = DEFAULT_TOLERANCE, confidence: float = 0.99,
                   resamples: int = 2000, seed: int = 0) -> Verdict:
    """Compare the values of ``metric`` in ``base`` and ``head``, each grouped by worker.

    ``base`` and ``head`` are either ``{worker: values}`` or a sequence of per-worker value
    sequences (``[values]`` for a single worker). ``resamples`` and ``seed`` drive the
    bootstrap check of the interval; the same inputs always give the same verdict.

    Raises :class:`~perfloop.errors.UsageError` for a confidence or tolerance outside (0, 1),
    a negative ``resamples`` or values that are not finite numbers.
    """
    _check_settings(tolerance, confidence, resamples)
    base_groups = _groups(base, "base")
    head_groups = _groups(head, "head")
    nb_w, nh_w = len(base_groups), len(head_groups)
    nb_v, nh_v = sum(map(len, base_groups)), sum(map(len, head_groups))
    common = dict(benchmark=benchmark, metric=metric.name, unit=metric.unit,
                  direction=metric.direction.value, confidence=confidence, tolerance=tolerance,
                  base_n=nb_v, head_n=nh_v, base_workers=nb_w, head_workers=nh_w)

    per_worker = min(nb_w, nh_w) >= MIN_WORKERS
    fewest_values = min(nb_v, nh_v)
    if fewest_values < MIN_VALUES or (not per_worker and fewest_values < SINGLE_WORKER_MIN_VALUES):
        return _too_few(base_groups, head_groups, common)

    notes: list[str] = []
    if per_worker:
        base_units = [_median(g) for g in base_groups]
        head_units = [_median(g) for g in head_groups]
        test = "trimmed-t (workers)"
    else:
        lone = [side for side, n in (("base", nb_w), ("head", nh_w)) if n < MIN_WORKERS]
        notes.append(f"one worker process on the {' and '.join(lone)} side{'s' * (len(lone) > 1)}: "
                     f"the interval treats all "
                     f"{nb_v + nh_v} values as independent, which ignores the noise between "
                     f"processes; measure with {MIN_WORKERS} or more processes")
        base_units = [v for g in base_groups for v in g]
        head_units = [v for g in head_groups for v in g]
        test = "trimmed-t (values, one worker)"

    iv = stats.compare_units(np.asarray(base_units), np.asarray(head_units), confidence=confidence,
                             resamples=resamples, seed=seed)
    to_change, tol_low, tol_high, scale_note = _change_scale(iv, tolerance)
    if scale_note:
        notes.append(scale_note)
    if iv.se == 0.0:
        test = "exact (no spread)"
        notes.append(f"no spread between the {'workers' if per_worker else 'values'} of either side "
                     "(after trimming the most extreme): the change is exact")

    change = to_change(iv.estimate)
    low, high = to_change(iv.low), to_change(iv.high)
    kind = decide(low, high, tolerance, metric.direction)

    more: int | None = None
    if kind is VerdictKind.UNCHANGED and (low > 0.0 or high < 0.0):
        notes.append("significant but within tolerance")
    elif kind in (VerdictKind.REGRESSED, VerdictKind.IMPROVED) and abs(change) < tolerance:
        notes.append(f"the change is estimated within the {tolerance * 100:g}% tolerance, "
                     "but the interval reaches beyond it")
    elif kind is VerdictKind.INCONCLUSIVE:
        more, note = _more_workers(iv, tol_low, tol_high, confidence, per_worker, min(nb_w, nh_w))
        notes.append(note)

    return Verdict(verdict=kind, change=change, ci_low=low, ci_high=high, p_value=iv.p_value,
                   base_location=iv.base_location, head_location=iv.head_location, test=test,
                   more_workers=more, note="; ".join(notes) or None, **common)


def compare_results(base: BenchmarkResult, head: BenchmarkResult, *, tolerance: float | None = None,
                    confidence: float = 0.99, metrics: Sequence[str] | None = None) -> list[Verdict]:
    """One :class:`Verdict` per metric measured (outside warmup) in both ``base`` and ``head``.

    Values are grouped by :attr:`Sample.worker`; warmup samples are ignored; metrics present on
    one side only are skipped, as are names in ``metrics`` that either side lacks. Custom
    metrics take their unit and direction from the results (head's, else base's). Without a
    ``tolerance``, head's recorded ``extra["tolerance"]`` is used, else the project default.
    """
    if tolerance is None:
        tolerance = float(head.extra.get("tolerance", DEFAULT_TOLERANCE))
    base_groups = _measured(base)
    head_groups = _measured(head)
    names = [m for m in base_groups if m in head_groups]
    if metrics is not None:
        names = [m for m in dict.fromkeys(metrics) if m in base_groups and m in head_groups]
    status = [f"{side} result {r.status.value}: compared the samples it left"
              for side, r in (("base", base), ("head", head)) if r.status is not ResultStatus.OK]
    verdicts = []
    for name in names:
        metric = get_metric(name, unit=head.units.get(name) or base.units.get(name, ""),
                            direction=head.directions.get(name) or base.directions.get(name, "lower"))
        verdict = compare_groups(base_groups[name], head_groups[name], metric=metric,
                                 benchmark=head.name, tolerance=tolerance, confidence=confidence)
        if status:
            verdict = replace(verdict, note="; ".join([*status, *filter(None, [verdict.note])]))
        verdicts.append(verdict)
    return verdicts


def decide(low: float, high: float, tolerance: float, direction: Direction) -> VerdictKind:
    """The three-way equivalence decision on an interval of the relative change."""
    if -tolerance < low and high < tolerance:
        return VerdictKind.UNCHANGED
    larger_is_worse = direction is Direction.LOWER
    if low > 0.0:
        return VerdictKind.REGRESSED if larger_is_worse else VerdictKind.IMPROVED
    if high < 0.0:
        return VerdictKind.IMPROVED if larger_is_worse else VerdictKind.REGRESSED
    return VerdictKind.INCONCLUSIVE


def _change_scale(iv: stats.Interval, tolerance: float
                  ) -> tuple[Callable[[float], float], float, float, str | None]:
    """How the interval's scale maps to the reported change, and the tolerance on that scale."""
    if iv.scale == stats.LOG:
        return math.expm1, math.log1p(-tolerance), math.log1p(tolerance), None
    if iv.base_location != 0.0:
        size = abs(iv.base_location)
        return ((lambda x: x / size), -tolerance * size, tolerance * size,
                "values include zero or negatives: the interval is that of the difference, "
                "divided by the base location")
    if iv.head_location == 0.0:
        return (lambda x: x), -tolerance, tolerance, "both locations are 0"
    return ((lambda x: x), -tolerance, tolerance,
            "base location is 0: change and interval are absolute differences head - base, "
            "and the tolerance is applied as an absolute amount")


def _more_workers(iv: stats.Interval, tol_low: float, tol_high: float, confidence: float,
                  per_worker: bool, fewest_workers: int) -> tuple[int | None, str]:
    """Extra workers per side likely to decide an inconclusive comparison, and a note."""
    if not per_worker:
        # The units are values, not workers: no estimate of the spread between processes yet.
        return max(1, MIN_WORKERS - fewest_workers), (
            "inconclusive; measure with more worker processes to learn the noise between them")
    # Either kind of decision will do: an interval that clears zero, or one inside the tolerance.
    within = min(tol_high - iv.estimate, iv.estimate - tol_low)
    target = max(within, abs(iv.estimate))
    k = stats.units_to_decide(iv, target_half_width=target, confidence=confidence,
                              limit=MAX_MORE_WORKERS)
    if k is None:
        return None, (f"inconclusive; more than {MAX_MORE_WORKERS} more workers per side would be "
                      "needed at this noise: use a steadier metric (instructions) or interleaved "
                      "runs, or accept a larger tolerance")
    k = max(k, 1)
    return k, f"inconclusive; about {k} more worker{'s' if k > 1 else ''} per side would likely decide"


def _too_few(base_groups: list[list[float]], head_groups: list[list[float]],
             common: dict[str, Any]) -> Verdict:
    """An inconclusive verdict for sides too small to estimate any spread."""
    fewest = min(len(base_groups), len(head_groups))
    per_worker = max((len(g) for g in base_groups + head_groups), default=1)
    needed = max(MIN_WORKERS, math.ceil(MIN_VALUES / per_worker))
    base_loc = _median([v for g in base_groups for v in g]) if base_groups else math.nan
    head_loc = _median([v for g in head_groups for v in g]) if head_groups else math.nan
    change = head_loc / base_loc - 1.0 if base_loc and math.isfinite(base_loc * head_loc) else math.nan
    note = (f"too few measurements to estimate the noise ({common['base_workers']} base and "
            f"{common['head_workers']} head workers, {common['base_n']} and {common['head_n']} "
            f"values); needs at least {MIN_WORKERS} workers and {MIN_VALUES} values per side")
    return Verdict(verdict=VerdictKind.INCONCLUSIVE, change=change, ci_low=math.nan,
                   ci_high=math.nan, p_value=1.0, base_location=base_loc, head_location=head_loc,
                   test="none (too few workers)", more_workers=max(1, needed - fewest), note=note,
                   **common)


def _check_settings(tolerance: float, confidence: float, resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise UsageError(f"confidence must be a fraction between 0 and 1, got {confidence!r}",
                         hint="e.g. 0.99 for 99%")
    if not 0.0 < tolerance < 1.0:
        raise UsageError(f"tolerance must be a fraction between 0 and 1, got {tolerance!r}",
                         hint="e.g. 0.05 for 5%")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 0:
        raise UsageError(f"resamples must be a non-negative integer, got {resamples!r}",
                         hint="2000 is the default; 0 skips the bootstrap check")


def _groups(data: Groups, side: str) -> list[list[float]]:
    """Per-worker lists of finite floats (workers in id order when given as a mapping)."""
    raw = [data[k] for k in sorted(data)] if isinstance(data, Mapping) else list(data)
    groups = []
    for group in raw:
        if isinstance(group, (Real, str, bytes)):
            raise UsageError(f"{side}: expected one sequence of values per worker, got {group!r}",
                             hint="wrap the values of a single worker in a list: [values]")
        values = [float(v) for v in group]
        if not all(map(math.isfinite, values)):
            raise UsageError(f"{side}: values must be finite numbers (no NaN or infinity)")
        if values:
            groups.append(values)
    return groups


def _median(values: Sequence[float]) -> float:
    # sorted() beats numpy on the handful of values a worker holds.
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else 0.5 * (s[mid - 1] + s[mid])


def _measured(result: BenchmarkResult) -> dict[str, dict[int, list[float]]]:
    """Non-warmup values per metric and worker, in one pass over the samples."""
    out: dict[str, dict[int, list[float]]] = {}
    for s in result.samples:
        if not s.warmup:
            out.setdefault(s.metric, {}).setdefault(s.worker, []).append(s.value)
    return out
