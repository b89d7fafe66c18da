"""The step test behind perfloop's detector, computed for many windows at once.

For a window ``y[a:b]`` and a split ``t`` inside it, two models are fitted:

    two levels:          y[a + u] = alpha + c * (a + u >= t) + e[u]
    a line plus a step:  y[a + u] = alpha + beta * u + c * (a + u >= t) + e[u]

(``u = 0 .. L-1``, ``L = b - a``), and the test is Student's t on ``c``. The line is used
only where the window shows one: when adding it to the two levels cuts the residual sum of
squares by more than ``LINE_F`` times the residual variance (an F test at about the 5%
level). So a smooth trend is not mistaken for a staircase of level shifts, and a step on flat
ground keeps the power of the plain two-means test, which a line would halve: a line follows
a centred step well enough to take three quarters of its signal.

The residuals' lag-1 autocorrelation ``rho`` (from the von Neumann ratio) inflates the
variance of ``c`` by ``(1 + rho) / (1 - rho)`` and deflates the degrees of freedom by as much,
so that slowly wandering series, whose neighbours are alike, do not pass for level shifts.
Where the two-level model is used, the window's estimate is pooled with the series' own
(``series_autocorrelation``), each weighted by its precision, and taken no lower than the
series' floor (``lag_one_autocorrelation``): a short window's estimate is too noisy to
protect it alone, and, taken as it is, too noisy not to cost white noise power.
(Not where the line is used: on smooth series, trends and curves, first differences are
alike and that estimate says 0.98, which would silence every step there.)

Every quantity comes from prefix sums, so one window costs O(1) once the sums exist (O(n)),
and numpy evaluates all windows of all scales in a few passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# An autocorrelation this close to 1 already makes any step insignificant; capping it keeps
# the inflation factor finite.
_MAX_RHO = 0.98
#: Adding a line to the two levels must cut the residual sum of squares by this many residual
#: variances (F with 1 and L - 3 degrees of freedom; P(F > 4) is about 5%) before it is used.
LINE_F = 4.0
# Of the trimmed mean of squared differences / 2 (0.61 of the variance for Gaussian noise):
# the floor is about half the noise variance.
_NOISE_FLOOR = 0.8
# (window, split) pairs evaluated per numpy pass: bounds the memory of a 100,000-point scan.
_CHUNK = 1 << 19


@dataclass(frozen=True)
class PrefixSums:
    """Running sums of ``y``, ``y**2``, ``i*y`` and of squared first differences."""

    y: np.ndarray
    s: np.ndarray
    s2: np.ndarray
    si: np.ndarray
    d2: np.ndarray
    var_floor: float
    rho_floor: float = 0.0
    rho_series: float = 0.0
    rho_weight: float = 0.0

    @classmethod
    def of(cls, y: np.ndarray, rho_floor: float = 0.0, rho_series: float = 0.0,
           rho_weight: float = 0.0) -> "PrefixSums":
        """The sums of ``y``. ``rho_floor`` is the least autocorrelation a two-level window is
        given; ``rho_series`` an estimate of the series' own, worth ``rho_weight`` points of
        a window's estimate (see ``series_autocorrelation``)."""
        zero = np.zeros(1)
        idx = np.arange(len(y), dtype=float)
        diff = np.diff(y)
        scale = float(np.max(np.abs(y))) if len(y) else 0.0
        # No window's variance is taken below half the series' noise variance, estimated from
        # first differences (the 10% largest left out: steps and spikes): a handful of points
        # that happen to fall into two tight groups (a bimodal benchmark, values rounded to a
        # few levels) would otherwise make a short window's variance near zero and any t huge.
        squares = np.sort(diff * diff)[: max(1, int(0.9 * len(diff)))] if len(diff) else np.zeros(1)
        noise_floor = _NOISE_FLOOR * float(np.mean(squares)) / 2.0
        return cls(
            y=y,
            s=np.concatenate([zero, np.cumsum(y)]),
            s2=np.concatenate([zero, np.cumsum(y * y)]),
            si=np.concatenate([zero, np.cumsum(idx * y)]),
            d2=np.concatenate([zero, np.cumsum(diff * diff)]),
            # Below this residual variance the data are exact up to rounding (prefix sums
            # lose about this much); without a floor, rounding over rounding gives any t.
            var_floor=max((1e-7 * scale) ** 2, noise_floor),
            rho_floor=rho_floor,
            rho_series=rho_series,
            rho_weight=rho_weight,
        )


@dataclass(frozen=True)
class StepTest:
    """For each window: the split tested, the squared t statistic and its degrees of freedom."""

    split: np.ndarray
    t2: np.ndarray
    df: np.ndarray


def best_splits(ps: PrefixSums, a: np.ndarray, b: np.ndarray, min_size: int) -> np.ndarray:
    """For each window ``[a[k], b[k])`` (lengths may differ), the split ``min_size`` or more
    from either end where two levels fit best (the largest cut in the sum of squares; the
    first such split on ties)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    out = np.empty(len(a), dtype=np.int64)
    counts = b - a - 2 * min_size + 1
    ends = np.cumsum(counts)
    first = 0
    while first < len(a):
        # Windows first..last-1 hold about _CHUNK splits between them.
        last = int(np.searchsorted(ends, (ends[first - 1] if first else 0) + _CHUNK, side="right"))
        last = max(last, first + 1)
        out[first:last] = _best_splits_chunk(ps, a[first:last], b[first:last], counts[first:last],
                                             min_size)
        first = last
    return out


def _best_splits_chunk(ps: PrefixSums, a: np.ndarray, b: np.ndarray, counts: np.ndarray,
                       min_size: int) -> np.ndarray:
    total = int(counts.sum())
    seg = np.repeat(np.arange(len(a)), counts)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    j = (np.arange(total) - offsets[seg] + min_size).astype(float)
    length = (b - a).astype(float)[seg]
    tail = length - j
    sum_b = ps.s[b][seg]
    mean = (sum_b - ps.s[a][seg]) / length
    dy = sum_b - ps.s[a[seg] + j.astype(np.int64)] - tail * mean
    # The cut in the sum of squares of a split into two levels, up to the window's constant.
    gain = dy * dy * length / (tail * j)
    best = np.maximum.reduceat(gain, offsets)
    at_best = np.flatnonzero(gain >= best[seg])
    _, first = np.unique(seg[at_best], return_index=True)
    return a + min_size + (at_best[first] - offsets)


def _line_fit(ps: PrefixSums, a: np.ndarray, b: np.ndarray):
    """Per-window sums for the local-time regression; arrays shaped like ``a``."""
    length = (b - a).astype(float)
    sy = ps.s[b] - ps.s[a]
    syy = ps.s2[b] - ps.s2[a]
    suy = (ps.si[b] - ps.si[a]) - a * sy
    ubar = (length - 1.0) / 2.0
    suu = length * (length * length - 1.0) / 12.0
    sxy = suy - ubar * sy
    beta = sxy / suu
    ybar = sy / length
    sst = np.maximum(syy - sy * ybar, 0.0)
    sse_line = np.maximum(sst - sxy * beta, 0.0)
    alpha = ybar - beta * ubar
    return length, suu, alpha, beta, sse_line, sst, ybar


def step_test(ps: PrefixSums, a: np.ndarray, t: np.ndarray, b: np.ndarray) -> StepTest:
    """The step test at split ``t`` of each window ``[a, b)`` (1-D arrays; see the module
    docstring): two levels, or a line plus a step where the window shows a line."""
    a = np.asarray(a, dtype=np.int64)
    t = np.asarray(t, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    length, suu, alpha, beta, sse_line, sst, ybar = _line_fit(ps, a, b)
    j = (t - a).astype(float)
    tail = length - j
    suffix_y = ps.s[b] - ps.s[t]
    s1 = ps.y[b - 1] - ps.y[a]
    s2 = ps.d2[b - 1] - ps.d2[a]
    step_diff = ps.y[t] - ps.y[t - 1]
    # Line plus step: the step indicator and y, each less what the line explains.
    suffix_u = tail * (j + length - 1.0) / 2.0
    dy = suffix_y - alpha * tail - beta * suffix_u
    gamma = tail * j / 2.0 / suu
    dd = np.maximum(tail - tail * tail / length - gamma * gamma * suu, 1e-300)
    red_line = dy * dy / dd
    sse_ls = np.maximum(sse_line - red_line, 0.0)
    c = dy / dd
    beta_full = beta - c * gamma
    # Squared first differences of the residuals: those of y, less the slope, less the jump.
    ssd_ls = (s2 - 2.0 * beta_full * s1 + (length - 1.0) * beta_full ** 2 + c * c
              - 2.0 * c * (step_diff - beta_full))
    # Two levels.
    dy0 = suffix_y - tail * ybar
    dd0 = np.maximum(tail * j / length, 1e-300)
    red0 = dy0 * dy0 / dd0
    sse0 = np.maximum(sst - red0, 0.0)
    c0 = dy0 / dd0
    ssd0 = s2 + c0 * c0 - 2.0 * c0 * step_diff
    with np.errstate(divide="ignore", invalid="ignore"):
        line = (sse0 - sse_ls) > LINE_F * np.maximum(sse_ls / (length - 3.0), ps.var_floor)
    reduction = np.where(line, red_line, red0)
    sse = np.where(line, sse_ls, sse0)
    ssd = np.where(line, ssd_ls, ssd0)
    dof = np.where(line, length - 3.0, length - 2.0)
    var = np.maximum(sse / dof, ps.var_floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(sse > ps.var_floor * dof, 1.0 - ssd / (2.0 * sse), 0.0)
    # A short window's own estimate swings by about 1 / sqrt(L) on white noise, half the time
    # upwards, which inflated the variance of a step on flat ground for nothing. Where the
    # two-level model is used it is pooled with the series' estimate, each weighted by its
    # precision (L points for the window's; the series' is worth rho_weight). Not on a line:
    # there the series' estimate says nothing (see above), and the window's is all there is.
    pooled = (length * rho + ps.rho_weight * ps.rho_series) / (length + ps.rho_weight)
    rho = np.where(line, rho, pooled)
    rho = np.clip(np.where(line, rho, np.maximum(rho, ps.rho_floor)), 0.0, _MAX_RHO)
    inflation = (1.0 + rho) / (1.0 - rho)
    return StepTest(split=t, t2=reduction / var / inflation, df=np.maximum(dof / inflation, 1.0))


def log_pvalue(test: StepTest) -> np.ndarray:
    """Two-sided log p-value of each step (before any correction for multiple tests)."""
    from scipy import stats  # scipy.stats costs a second to import: only when detecting

    return np.log(2.0) + stats.t.logsf(np.sqrt(test.t2), test.df)


def normal_t2(log_p: float) -> float:
    """The squared normal quantile of a two-sided ``log_p``: no t statistic below it reaches
    ``log_p`` at any degrees of freedom, so windows below it need no exact p-value."""
    from scipy import stats

    return float(stats.norm.isf(math.exp(log_p - math.log(2.0))) ** 2)


#: Shortest series whose autocorrelation is estimated at all. Below it the ratio of two MADs of
#: a score of differences swings too far by chance (ratios over 1.6 in about one series of 20
#: points in twenty), and one such swing set the floor at its cap and hid a step 250 times the
#: noise; short series are taken as independent, as before the floor existed.
MIN_RHO_POINTS = 30
# Share of first differences equal to their median above which the values are taken to lie on
# a grid; 10% is what a grid of 2.5 quanta per noise standard deviation gives (Gaussian noise).
_MAX_TIED_DIFFERENCES = 0.10


def series_autocorrelation(y: np.ndarray) -> tuple[float, float]:
    """Lag-1 autocorrelation of the noise, robust to level shifts and outliers, and what it is
    worth: ``(rho, points)``, where ``points`` is the length of a window whose own estimate
    would be as precise (``(0.0, 0.0)``, no estimate, below ``MIN_RHO_POINTS``; ``points`` is
    0 when the values lie on a coarse grid).

    For AR(1) noise, ``Var(y[i+2] - y[i]) / Var(y[i+1] - y[i]) = 1 + rho``; both variances
    are taken as squared MADs of the differences, which a few level shifts (a few large
    differences) do not move. On white noise this estimate's standard deviation is about
    ``3 / sqrt(n)`` (measured, 2,000 series each of 24, 100 and 1,000 points), a window's
    own about ``1 / sqrt(L)``: the series' estimate is worth ``n / 9`` points of a window.
    """
    if len(y) < MIN_RHO_POINTS:
        return 0.0, 0.0
    d1 = np.diff(y)
    d2 = y[2:] - y[:-2]
    m1 = float(np.median(np.abs(d1 - np.median(d1))))
    m2 = float(np.median(np.abs(d2 - np.median(d2))))
    if m1 <= 0.0:
        return 0.0, 0.0
    rho = (m2 / m1) ** 2 - 1.0
    # Values on a coarse grid (rounded, a timer's resolution) make many differences equal and
    # the MADs multiples of one quantum: the ratio then says little (0 for TCPD's
    # children_per_woman, a smooth decline in steps of 0.007), so it is not pooled.
    tied = np.abs(d1 - np.median(d1)) <= 1e-9 * float(np.max(np.abs(y)))
    if np.mean(tied) > _MAX_TIED_DIFFERENCES:
        return rho, 0.0
    return rho, len(y) / 9.0


def lag_one_autocorrelation(y: np.ndarray) -> float:
    """The series' noise autocorrelation (``series_autocorrelation``) less one standard error,
    ``3 / sqrt(n)``, in ``[0, 0.98]``: a floor, not an estimate, so that a short series'
    chance excursion does not silence its steps."""
    if len(y) < MIN_RHO_POINTS:
        return 0.0
    rho, _ = series_autocorrelation(y)
    rho -= 3.0 / math.sqrt(len(y))
    return float(min(max(rho, 0.0), _MAX_RHO))


__all__ = ["LINE_F", "PrefixSums", "StepTest", "best_splits", "lag_one_autocorrelation",
           "log_pvalue", "normal_t2", "series_autocorrelation", "step_test"]
