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
from typing import Any, Callable, Mapping, Sequence, TypedDict, Union

import numpy as np

from ..config import DEFAULT_TOLERANCE, check_setting
from ..errors import UsageError
from ..metrics import HOST_METRICS, Direction, Metric, get_metric
from ..records import BenchmarkResult, ResultStatus
from . import paired as paired_stats
from . import stats
from .deciding import TIME_METRICS, choose

#: Fewest workers per side whose spread can be measured at all.
MIN_WORKERS = 2
#: Fewest values per side for any verdict.
MIN_VALUES = 3
#: With fewer than MIN_WORKERS workers on a side, the values themselves become the units when
#: each side has at least this many (with a note that this assumes they are independent).
SINGLE_WORKER_MIN_VALUES = 5
#: Beyond this many extra workers per side a comparison is reported as undecidable at this noise.
MAX_MORE_WORKERS = 1000
#: A change counts only when its interval, not inside the tolerance, clears this share of the
#: tolerance (not merely zero): a change well inside the tolerance is never called a regression
#: because its interval is wide.
THRESHOLD_SHARE = 0.5

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
    #: ``decides`` (the metric's verdict counts) or ``context`` (shown beside the deciding time
    #: metric: it neither fails nor warns).
    role: str = "decides"
    #: The time metric that decides this benchmark's time verdict, and why.
    deciding_metric: str | None = None
    deciding_reason: str | None = None
    #: ``paired`` (interleaved blocks), ``unpaired`` (two independent sets of workers).
    design: str = "unpaired"

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


class _Shared(TypedDict):
    """The fields every verdict of one comparison shares: what was compared, and how much."""

    benchmark: str
    metric: str
    unit: str
    direction: str
    confidence: float
    tolerance: float
    base_n: int
    head_n: int
    base_workers: int
    head_workers: int


class _PairedShared(_Shared):
    base_location: float
    head_location: float
    design: str


def compare_groups(base: Groups, head: Groups, *, metric: Metric, benchmark: str = "",
                   tolerance: float = DEFAULT_TOLERANCE, confidence: float = 0.99,
                   resamples: int = 2000, seed: int = 0) -> Verdict:
    """Compare the values of ``metric`` in ``base`` and ``head``, each grouped by worker.

    ``base`` and ``head`` are either ``{worker: values}`` or a sequence of per-worker value
    sequences (``[values]`` for a single worker). ``resamples`` and ``seed`` drive the
    bootstrap check of the interval; the same inputs always give the same verdict.

    Raises :class:`~perfloop.errors.UsageError` for a confidence outside (0.5, 1), a tolerance
    outside (0, 1) (the bounds of :func:`perfloop.config.setting_problem`), a negative
    ``resamples`` or values that are not finite numbers.
    """
    _check_settings(tolerance, confidence, resamples)
    base_groups = _groups(base, "base")
    head_groups = _groups(head, "head")
    nb_w, nh_w = len(base_groups), len(head_groups)
    nb_v, nh_v = sum(map(len, base_groups)), sum(map(len, head_groups))
    common = _Shared(benchmark=benchmark, metric=metric.name, unit=metric.unit,
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
                     f"but its interval clears {THRESHOLD_SHARE * tolerance * 100:g}%")
    elif kind is VerdictKind.INCONCLUSIVE:
        more, note = _more_workers(iv, tol_low, tol_high, confidence, per_worker, min(nb_w, nh_w))
        notes.append(note)

    return Verdict(verdict=kind, change=change, ci_low=low, ci_high=high, p_value=iv.p_value,
                   base_location=iv.base_location, head_location=iv.head_location, test=test,
                   more_workers=more, note="; ".join(notes) or None, **common)


def compare_results(base: BenchmarkResult, head: BenchmarkResult, *, tolerance: float | None = None,
                    confidence: float = 0.99, metrics: Sequence[str] | None = None,
                    paired: bool = False, decide_on: str | None = None) -> list[Verdict]:
    """One :class:`Verdict` per metric measured (outside warmup) in both ``base`` and ``head``.

    Values are grouped by :attr:`Sample.worker`; warmup samples are ignored; metrics present on
    one side only are skipped, as are names in ``metrics`` that either side lacks. Custom
    metrics take their unit and direction from the results (head's, else base's). Without a
    ``tolerance``, head's recorded ``extra["tolerance"]`` is used, else the project default.

    ``paired``: the two sides were measured interleaved in A B B A blocks (the gate), and each
    metric is analysed block by block (:mod:`perfloop.analysis.paired`). One time metric
    decides the benchmark's time verdict (:mod:`perfloop.analysis.deciding`; ``decide_on``
    forces it); the other time metrics get ``role = "context"``.
    """
    if tolerance is None:
        tolerance = float(head.extra.get("tolerance", DEFAULT_TOLERANCE))
    base_groups = _measured(base)
    head_groups = _measured(head)
    names = [m for m in base_groups if m in head_groups and m not in HOST_METRICS]
    if metrics is not None:
        names = [m for m in dict.fromkeys(metrics) if m in base_groups and m in head_groups]
    status = [f"{side} result {r.status.value}: compared the samples it left"
              for side, r in (("base", base), ("head", head)) if r.status is not ResultStatus.OK]
    per_block = _workers_per_block(base, head) if paired else _same_seeds(base, head)
    verdicts = []
    for name in names:
        metric = get_metric(name, unit=head.units.get(name) or base.units.get(name, ""),
                            direction=head.directions.get(name) or base.directions.get(name, "lower"))
        if per_block is not None:
            verdict = compare_paired(base_groups[name], head_groups[name], metric=metric,
                                     benchmark=head.name, tolerance=tolerance,
                                     confidence=confidence, workers_per_block=per_block)
        else:
            verdict = compare_groups(base_groups[name], head_groups[name], metric=metric,
                                     benchmark=head.name, tolerance=tolerance,
                                     confidence=confidence)
        if status:
            verdict = replace(verdict, note="; ".join([*status, *filter(None, [verdict.note])]))
        verdicts.append(verdict)
    return with_deciding_metric(verdicts, base, head, tolerance=tolerance, decide_on=decide_on)


def with_deciding_metric(verdicts: Sequence[Verdict], base: BenchmarkResult, head: BenchmarkResult,
                         *, tolerance: float, decide_on: str | None = None) -> list[Verdict]:
    """``verdicts`` with the deciding time metric named on each, and the other time metrics
    marked as context."""
    choice = choose(base, head, [v.metric for v in verdicts], tolerance=tolerance,
                    decide_on=decide_on)
    if choice.metric is None:
        return list(verdicts)
    by_metric = {v.metric: v for v in verdicts}
    deciding, reason = {choice.metric}, choice.reason
    wall, steady = by_metric.get("wall_time"), by_metric.get(choice.metric)
    cpu = by_metric.get("cpu_time")
    if (choice.metric != "wall_time" and wall is not None and steady is not None
            and wall.verdict is VerdictKind.REGRESSED and steady.verdict is not VerdictKind.REGRESSED):
        if cpu is not None and not _waiting_added(wall, cpu, tolerance):
            reason = (f"{reason}; wall time moved with CPU time ({wall.change:+.1%} and "
                      f"{cpu.change:+.1%}): the host's speed, not waiting")
        else:
            # Wall time regressed where the steady metric did not: new waiting. It counts.
            deciding.add("wall_time")
            reason = (f"{reason}; but wall time regressed where {choice.metric} did not "
                      "(waiting added): wall time decides too")
    out = []
    for v in verdicts:
        role = "context" if v.metric in TIME_METRICS and v.metric not in deciding else "decides"
        out.append(replace(v, role=role, deciding_metric=choice.metric, deciding_reason=reason))
    return out


def _waiting_added(wall: Verdict, cpu: Verdict, tolerance: float) -> bool:
    """Whether wall time grew by more than CPU time did (by over half the tolerance).

    Waiting adds wall time and no CPU time. When CPU time grew as much as wall time while the
    deciding metric (``cpu_norm``, CPU time in units of the host's reference workload) did not,
    the host ran slower for both: that is not waiting, and wall time stays context.
    """
    if cpu.metric == wall.metric or not math.isfinite(cpu.change):
        return True
    return math.log1p(wall.change) - math.log1p(max(cpu.change, -0.99)) > THRESHOLD_SHARE * tolerance


def _same_seeds(base: BenchmarkResult, head: BenchmarkResult) -> int | None:
    """1 when worker ``w`` ran with the same hash seed on both sides: the two runs can then be
    compared worker by worker, like one-worker blocks (None otherwise)."""
    seeds = {r.extra.get("hash_seeds") for r in (base, head)}
    return 1 if len(seeds) == 1 and seeds != {None} else None


def _workers_per_block(base: BenchmarkResult, head: BenchmarkResult) -> int | None:
    """Workers per side in one A B B A block when both results say they were interleaved."""
    info = [r.extra.get("interleaved") for r in (base, head)]
    if not all(isinstance(i, Mapping) for i in info):
        return None
    sizes = {int(i.get("workers_per_block", paired_stats.WORKERS_PER_BLOCK)) for i in info}  # type: ignore[union-attr]
    return sizes.pop() if len(sizes) == 1 else None


def compare_paired(base: Groups, head: Groups, *, metric: Metric, benchmark: str = "",
                   tolerance: float = DEFAULT_TOLERANCE, confidence: float = 0.99,
                   workers_per_block: int = paired_stats.WORKERS_PER_BLOCK) -> Verdict:
    """Compare base and head measured interleaved: one log ratio per A B B A block.

    ``base`` and ``head`` map worker ids to values; worker ``w`` is in block
    ``w // workers_per_block``. Falls back to :func:`compare_groups` when the values are not
    all positive or no block is complete on both sides.
    """
    _check_settings(tolerance, confidence, 0)
    if not isinstance(base, Mapping) or not isinstance(head, Mapping):
        raise UsageError("a paired comparison needs {worker: values} on both sides")
    base_groups = {int(k): [float(v) for v in g] for k, g in base.items() if len(g)}
    head_groups = {int(k): [float(v) for v in g] for k, g in head.items() if len(g)}
    for side, groups in (("base", base_groups), ("head", head_groups)):
        if not all(math.isfinite(v) for g in groups.values() for v in g):
            raise UsageError(f"{side}: values must be finite numbers (no NaN or infinity)")
    ratios, no_spread = paired_stats.block_log_ratios(base_groups, head_groups, workers_per_block)
    if (not len(ratios) or not paired_stats.positive(base_groups)
            or not paired_stats.positive(head_groups)):
        return compare_groups(base_groups, head_groups, metric=metric, benchmark=benchmark,
                              tolerance=tolerance, confidence=confidence)
    b_med = [_median(g) for _, g in sorted(base_groups.items())]
    h_med = [_median(g) for _, g in sorted(head_groups.items())]
    common = _PairedShared(benchmark=benchmark, metric=metric.name, unit=metric.unit,
                           direction=metric.direction.value, confidence=confidence,
                           tolerance=tolerance, base_n=sum(map(len, base_groups.values())),
                           head_n=sum(map(len, head_groups.values())),
                           base_workers=len(base_groups), head_workers=len(head_groups),
                           base_location=stats.trimmed_mean(np.asarray(b_med)),
                           head_location=stats.trimmed_mean(np.asarray(h_med)), design="paired")
    n = len(ratios)
    # one-worker "blocks": two runs whose worker w ran with the same hash seed on both sides
    unit, units = ("worker pair", "worker pairs") if workers_per_block == 1 else ("block", "blocks")
    design = "paired workers (same hash seed)" if workers_per_block == 1 else "paired blocks"
    if n < 2 and not no_spread:
        change = math.expm1(float(ratios.mean()))
        return Verdict(verdict=VerdictKind.INCONCLUSIVE, change=change, ci_low=math.nan,
                       ci_high=math.nan, p_value=1.0, test=f"{design} (too few)",
                       more_workers=workers_per_block,
                       note=f"one {unit}: its spread is unknown until a second is measured",
                       **common)
    iv = paired_stats.paired_interval(ratios, confidence=confidence, exact=no_spread)
    change, low, high = math.expm1(iv.estimate), math.expm1(iv.low), math.expm1(iv.high)
    kind = decide(low, high, tolerance, metric.direction)
    notes = []
    test = f"{design}: {paired_stats.PAIRED_TRIM:.0%}-trimmed t (Yuen), {n} {units}"
    if iv.exact:
        test = "exact (no spread)"
        notes.append(f"no spread between the workers of either side in {n} "
                     f"{unit if n == 1 else units}: the change is exact")
    more: int | None = None
    if kind is VerdictKind.INCONCLUSIVE:
        tol = math.log1p(tolerance)
        target = max(min(tol - iv.estimate, iv.estimate + tol),
                     abs(iv.estimate) - math.log1p(THRESHOLD_SHARE * tolerance))
        extra = paired_stats.blocks_to_decide(iv, target_half_width=target, confidence=confidence,
                                              limit=MAX_MORE_WORKERS // workers_per_block)
        if extra is None:
            notes.append(f"inconclusive; more than {MAX_MORE_WORKERS // workers_per_block} more "
                         f"{units} would be needed at this noise")
        else:
            extra = max(extra, 1)
            more = extra * workers_per_block
            notes.append(f"inconclusive; about {extra} more {unit if extra == 1 else units} would "
                         "likely decide")
    elif kind is VerdictKind.UNCHANGED and (low > 0.0 or high < 0.0):
        notes.append("significant but within tolerance")
    return Verdict(verdict=kind, change=change, ci_low=low, ci_high=high, p_value=iv.p_value,
                   test=test, more_workers=more, note="; ".join(notes) or None, **common)


def decide(low: float, high: float, tolerance: float, direction: Direction) -> VerdictKind:
    """The three-way decision on an interval of the relative change.

    ``unchanged`` when the interval lies inside ``(-tolerance, tolerance)``: whatever the
    change is, it is smaller than what matters. Otherwise a change is called only when the
    interval clears ``THRESHOLD_SHARE * tolerance`` (half the tolerance by default), not
    merely zero: a change well inside the tolerance is never called a regression because its
    interval is wide. Anything else is ``inconclusive`` (sampling more can decide it).
    """
    if -tolerance < low and high < tolerance:
        return VerdictKind.UNCHANGED
    threshold = THRESHOLD_SHARE * tolerance
    larger_is_worse = direction is Direction.LOWER
    if low > threshold:
        return VerdictKind.REGRESSED if larger_is_worse else VerdictKind.IMPROVED
    if high < -threshold:
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
    target = max(within, abs(iv.estimate) - THRESHOLD_SHARE * tol_high)
    k = stats.units_to_decide(iv, target_half_width=target, confidence=confidence,
                              limit=MAX_MORE_WORKERS)
    if k is None:
        return None, (f"inconclusive; more than {MAX_MORE_WORKERS} more workers per side would be "
                      "needed at this noise: use a steadier metric (instructions) or interleaved "
                      "runs, or accept a larger tolerance")
    k = max(k, 1)
    return k, f"inconclusive; about {k} more worker{'s' if k > 1 else ''} per side would likely decide"


def _too_few(base_groups: list[list[float]], head_groups: list[list[float]],
             common: _Shared) -> Verdict:
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
    check_setting("confidence", confidence)   # the bounds a configuration file is held to
    check_setting("tolerance", tolerance)
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
