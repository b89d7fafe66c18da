"""The step test behind perfloop's detector, computed for many windows at once.

For a window ``y[a:b]`` and a split ``t`` inside it, the model is a line plus a step::

    y[a + u] = alpha + beta * u + c * (a + u >= t) + e[u],   u = 0 .. L-1,  L = b - a

and the test is Student's t on ``c``. Allowing the line means a smooth trend is not mistaken
for a staircase of level shifts; a real step still stands out, because a line cannot follow it.
The residuals' lag-1 autocorrelation ``rho`` (from the von Neumann ratio) inflates the
variance of ``c`` by ``(1 + rho) / (1 - rho)`` and deflates the degrees of freedom by as much,
so that slowly wandering series, whose neighbours are alike, do not pass for level shifts.

Every quantity comes from prefix sums, so one window costs O(1) once the sums exist (O(n)),
and numpy evaluates all windows of a scale in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# An autocorrelation this close to 1 already makes any step insignificant; capping it keeps
# the inflation factor finite.
_MAX_RHO = 0.98


@dataclass(frozen=True)
class PrefixSums:
    """Running sums of ``y``, ``y**2``, ``i*y`` and of squared first differences."""

    y: np.ndarray
    s: np.ndarray
    s2: np.ndarray
    si: np.ndarray
    d2: np.ndarray
    var_floor: float

    @classmethod
    def of(cls, y: np.ndarray) -> "PrefixSums":
        zero = np.zeros(1)
        idx = np.arange(len(y), dtype=float)
        diff = np.diff(y)
        scale = float(np.max(np.abs(y))) if len(y) else 0.0
        return cls(
            y=y,
            s=np.concatenate([zero, np.cumsum(y)]),
            s2=np.concatenate([zero, np.cumsum(y * y)]),
            si=np.concatenate([zero, np.cumsum(idx * y)]),
            d2=np.concatenate([zero, np.cumsum(diff * diff)]),
            # Below this residual variance the data are exact up to rounding (prefix sums
            # lose about this much); without a floor, rounding over rounding gives any t.
            var_floor=(1e-7 * scale) ** 2,
        )


@dataclass(frozen=True)
class WindowScan:
    """For each window, its best split and that split's log p-value (before Bonferroni)."""

    split: np.ndarray
    log_pvalue: np.ndarray


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
    sse_line = np.maximum(syy - sy * ybar - sxy * beta, 0.0)
    alpha = ybar - beta * ubar
    return length, ubar, suu, alpha, beta, sse_line


def _step_terms(ps: PrefixSums, a, b, t, length, suu, alpha, beta):
    """Projection of the step indicator and of ``y`` on what the line leaves over."""
    j = (t - a).astype(float)
    tail = length - j
    suffix_y = ps.s[b] - ps.s[t]
    suffix_u = tail * (j + length - 1.0) / 2.0
    dy = suffix_y - alpha * tail - beta * suffix_u
    gamma = tail * j / 2.0 / suu
    dd = tail - tail * tail / length - gamma * gamma * suu
    return dy, dd, gamma


def _log_pvalue(ps: PrefixSums, a, b, t, length, beta, sse_line, dy, dd, gamma):
    """Two-sided log p-value of the step, corrected for lag-1 autocorrelation."""
    dd = np.maximum(dd, 1e-300)
    reduction = dy * dy / dd
    sse = np.maximum(sse_line - reduction, 0.0)
    dof = length - 3.0
    var = np.maximum(sse / dof, ps.var_floor)
    c = dy / dd
    beta_full = beta - c * gamma
    # Sum of squared first differences of the residuals: those of y, less the slope, less
    # the jump where it happens.
    s1 = ps.y[b - 1] - ps.y[a]
    s2 = ps.d2[b - 1] - ps.d2[a]
    jump_diff = ps.y[t] - ps.y[t - 1] - beta_full
    ssd = s2 - 2.0 * beta_full * s1 + (length - 1.0) * beta_full ** 2 + c * c - 2.0 * c * jump_diff
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(sse > ps.var_floor * dof, 1.0 - ssd / (2.0 * sse), 0.0)
    rho = np.clip(rho, 0.0, _MAX_RHO)
    inflation = (1.0 + rho) / (1.0 - rho)
    t2 = reduction / var / inflation
    df = np.maximum(dof / inflation, 1.0)
    from scipy import stats  # scipy.stats costs a second to import: only when detecting

    return np.log(2.0) + stats.t.logsf(np.sqrt(t2), df)


def scan_windows(ps: PrefixSums, starts: np.ndarray, length: int, min_size: int) -> WindowScan:
    """Best split of each window ``[s, s + length)``, splits ``min_size`` from either end."""
    a = starts[:, None]
    b = a + length
    j = np.arange(min_size, length - min_size + 1)
    t = a + j[None, :]
    length_f, ubar, suu, alpha, beta, sse_line = _line_fit(ps, a, b)
    dy, dd, _ = _step_terms(ps, a, b, t, length_f, suu, alpha, beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        reduction = np.where(dd > 0, dy * dy / dd, 0.0)
    best = np.argmax(reduction, axis=1)
    split = starts + j[best]
    return WindowScan(split=split, log_pvalue=test_splits(ps, starts, split, starts + length))


def scan_segments(ps: PrefixSums, a: np.ndarray, b: np.ndarray, min_size: int) -> WindowScan:
    """Best split of each segment ``[a[k], b[k])`` (lengths may differ), in one pass."""
    lengths = b - a - 2 * min_size + 1
    seg = np.repeat(np.arange(len(a)), lengths)
    # Split offsets run from min_size within each segment.
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    t = a[seg] + min_size + (np.arange(int(lengths.sum())) - first[seg])
    aa, bb = a[seg], b[seg]
    length_f, _, suu, alpha, beta, _ = _line_fit(ps, aa, bb)
    dy, dd, _ = _step_terms(ps, aa, bb, t, length_f, suu, alpha, beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        reduction = np.where(dd > 0, dy * dy / dd, 0.0)
    # The last entry of each segment after sorting by (segment, reduction) is its best split.
    order = np.lexsort((-np.arange(len(t)), reduction, seg))
    best = order[np.cumsum(lengths) - 1]
    split = t[best]
    return WindowScan(split=split, log_pvalue=test_splits(ps, a, split, b))


def test_splits(ps: PrefixSums, a: np.ndarray, t: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Log p-value of a step at ``t`` in each window ``[a, b)`` (1-D arrays)."""
    a = np.asarray(a, dtype=np.int64)
    t = np.asarray(t, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    length, _, suu, alpha, beta, sse_line = _line_fit(ps, a, b)
    dy, dd, gamma = _step_terms(ps, a, b, t, length, suu, alpha, beta)
    return _log_pvalue(ps, a, b, t, length, beta, sse_line, dy, dd, gamma)


def log_bonferroni(log_p: np.ndarray, tests: int) -> np.ndarray:
    """``log(min(1, p * tests))``."""
    return np.minimum(log_p + np.log(max(tests, 1)), 0.0)


__all__ = ["PrefixSums", "WindowScan", "scan_segments", "scan_windows", "test_splits", "log_bonferroni"]
