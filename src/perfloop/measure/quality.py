"""Warnings about the quality of a measurement, each with the next step to take (hyperfine-style).

A poor measurement is never silent: values too short for the timer, noise larger than the
tolerance, outliers and a slow first value each give one warning sentence that names what was
seen and what to change. The checks are pure functions of a result and its settings.

The checks look at one timing metric: ``wall_time`` when the result has it, else the first of
``cpu_time`` and ``latency_p50``. Warmup samples are left out, as in the statistics.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Sequence

from ..config import Settings
from ..records import BenchmarkResult, ResultStatus

#: A value (all loops of it) should last this many times the timer's resolution at least.
TIMER_RESOLUTION_FACTOR = 1000
#: Commands faster than this mostly measure process start-up (hyperfine's 5 ms limit).
MIN_COMMAND_TIME = 0.005
#: Outliers lie beyond Q1 - FENCE * IQR or Q3 + FENCE * IQR (Tukey's fences) ...
OUTLIER_FENCE = 1.5
#: ... and are worth a warning when more than this share of the values are outliers (a normal
#: distribution puts 0.7% beyond the fences).
OUTLIER_SHARE = 0.05
#: A first value is "slow" when it lies this many robust standard deviations (1.4826 * MAD)
#: above the median of the other values (hyperfine's outlier threshold), and also above that
#: median by more than the tolerance, so that it would matter for a verdict.
SLOW_FIRST_SCORE = 10.0
MIN_VALUES_FOR_SPREAD = 3
MIN_VALUES_FOR_OUTLIERS = 5

TIMING_METRICS = ("wall_time", "cpu_time", "latency_p50")


def quality_warnings(result: BenchmarkResult, settings: Settings) -> list[str]:
    """Warnings about ``result``'s measurement, each ending with what to do about it.

    Failed and timed-out results get none: their error says what matters.
    """
    if result.status is not ResultStatus.OK:
        return []
    metric = next((m for m in TIMING_METRICS if result.values(m)), None)
    if metric is None:
        return []
    values = result.values(metric)
    checks = (
        too_short_warning(result, metric, values, settings),
        variation_warning(metric, values, settings),
        outlier_warning(metric, values, settings),
        slow_first_warning(result, metric, settings),
    )
    return [w for w in checks if w]


def too_short_warning(result: BenchmarkResult, metric: str, values: Sequence[float],
                      settings: Settings) -> str | None:
    """Values too short for the timer (callables) or for process start-up (commands)."""
    if metric != "wall_time" or not values:
        return None
    median = statistics.median(values)
    if result.kind == "command":
        if median < MIN_COMMAND_TIME:
            return (f"each run of the command takes {format_seconds(median)}, under "
                    f"{format_seconds(MIN_COMMAND_TIME)}: process start-up dominates what is measured; "
                    f"make each run do more work, or measure the code as a callable target")
        return None
    loops = {s.loops for s in result.samples if s.metric == metric and not s.warmup}
    per_value = median * (max(loops) if loops else 1)
    resolution = result.extra.get("timer_resolution") or time.get_clock_info("perf_counter").resolution
    if per_value < TIMER_RESOLUTION_FACTOR * resolution:
        return (f"values last {format_seconds(per_value)} each, under {TIMER_RESOLUTION_FACTOR}x the timer "
                f"resolution ({format_seconds(resolution)}), so the timer's granularity distorts them; "
                f"raise min_time (now {settings.min_time:g} s, e.g. min_time = 0.02) so fast calls "
                f"are looped for longer")
    return None


def variation_warning(metric: str, values: Sequence[float], settings: Settings) -> str | None:
    """Noise above the tolerance: a change of the tolerance's size cannot be seen."""
    if len(values) < MIN_VALUES_FOR_SPREAD:
        return None
    mean, median = statistics.fmean(values), statistics.median(values)
    if mean <= 0 or median <= 0:
        return None
    cv = statistics.stdev(values) / mean
    q1, q3 = quartiles(values)
    iqr_ratio = (q3 - q1) / median
    if max(cv, iqr_ratio) <= settings.tolerance:
        return None
    return (f"{metric} varies by {cv:.1%} (coefficient of variation; IQR/median {iqr_ratio:.1%}), more than "
            f"the {settings.tolerance:.0%} tolerance: this benchmark's noise exceeds its tolerance; "
            f"use more processes (now {settings.processes}) or, for CPU-bound code, the instructions "
            f"metric")


def outlier_warning(metric: str, values: Sequence[float], settings: Settings) -> str | None:
    """A share of values beyond Tukey's fences larger than noise alone would give."""
    if len(values) < MIN_VALUES_FOR_OUTLIERS:
        return None
    q1, q3 = quartiles(values)
    low, high = q1 - OUTLIER_FENCE * (q3 - q1), q3 + OUTLIER_FENCE * (q3 - q1)
    outliers = sum(1 for v in values if v < low or v > high)
    share = outliers / len(values)
    if share <= OUTLIER_SHARE:
        return None
    return (f"{outliers} of {len(values)} {metric} values ({share:.0%}) are outliers beyond the IQR fences: "
            f"something else on the machine disturbed the measurement; rerun on a quiet machine "
            f"(close other programs, fix the CPU frequency governor) or with more processes "
            f"(now {settings.processes}) so single disturbances weigh less")


def slow_first_warning(result: BenchmarkResult, metric: str, settings: Settings) -> str | None:
    """The first measured value far above the others: warm-up was not finished.

    For callables the first measured value of every worker is checked, and the warning needs
    it slow in at least half of the workers (a warm-up effect repeats in each fresh process).
    For commands, whose runs have one value each, the first run is checked.
    """
    groups = [g for _, g in sorted(result.by_worker(metric).items()) if g]
    if not groups:
        return None
    if all(len(g) >= 2 for g in groups):
        firsts = [g[0] for g in groups]
        rest = [v for g in groups for v in g[1:]]
    else:
        ordered = [v for g in groups for v in g]
        firsts, rest = ordered[:1], ordered[1:]
    if len(rest) < 2:
        return None
    median = statistics.median(rest)
    mad = statistics.median(abs(v - median) for v in rest)
    if median <= 0:
        return None

    def slow(value: float) -> bool:
        if value <= median * (1 + settings.tolerance):
            return False
        return mad == 0 or (value - median) / (1.4826 * mad) > SLOW_FIRST_SCORE

    slow_firsts = [v for v in firsts if slow(v)]
    if not slow_firsts or 2 * len(slow_firsts) < len(firsts):
        return None
    ratio = statistics.median(slow_firsts) / median
    if len(firsts) == 1:
        seen = f"the first measured {metric} value ({format_seconds(slow_firsts[0])}) was"
    else:
        seen = f"in {len(slow_firsts)} of {len(firsts)} workers the first measured {metric} value was"
    return (f"{seen} {ratio:.1f}x the median of the others ({format_seconds(median)}): caches, imports or "
            f"lazy initialisation were still warming up; raise warmup (now {settings.warmup})")


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """First and third quartiles (linear interpolation between order statistics)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0], ordered[0]
    q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return q1, q3


def format_seconds(seconds: float) -> str:
    """A duration with a readable unit: 85 ns, 12.3 us, 4.56 ms, 1.23 s."""
    if not math.isfinite(seconds):
        return str(seconds)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"
