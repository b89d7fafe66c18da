"""Numerical core of the verdict engine: the interval of a change between two sets of units.

A *unit* is one independent observation: a worker process's median (the normal case), or a
single value when one worker must stand alone. This module turns the base and head units into
an estimate of the change, its standard error, a confidence interval and a two-sided p-value.
It knows nothing of metrics, directions or verdicts; :mod:`perfloop.analysis.compare` does.

The method, justified with simulations in ``docs/statistics.md``:

* location of a side: the 10%-trimmed mean of its units;
* standard error: Yuen's winsorised estimate, on the log scale when every unit is positive;
* interval: Student t with Welch-Satterthwaite degrees of freedom (Yuen-Welch, capped for
  unequal sides), widened when a bootstrap of the units (bootstrap-t) finds heavier tails than
  the t distribution assumes.

Bootstrap resampling patterns depend only on the number of units, so they are drawn once per
``(n, resamples, seed)`` and cached as weight matrices; a comparison then costs a few
matrix-vector products, well under a millisecond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

#: Share of units cut from each end before averaging. With the default 10 workers it sets aside
#: the single most extreme worker on each side (a process hit by a noisy neighbour) at a small
#: cost in power on clean data; below 10 units nothing is trimmed.
TRIM = 0.1

#: Scales on which an interval can be computed.
LOG = "log"            # log of the location ratio: every unit positive
LINEAR = "linear"      # difference of locations in the metric's unit: zero or negative values

#: Resampling patterns are cached only up to this many units (a pattern is resamples x n).
_CACHE_MAX_UNITS = 256


def trim_count(n: int, trim: float = TRIM) -> int:
    """How many units a trimmed mean drops from each end of ``n`` sorted units."""
    return int(math.floor(trim * n))


def effective_units(n: int, trim: float = TRIM) -> int:
    """Units left after trimming (``h`` in Yuen's test); they set the degrees of freedom."""
    return n - 2 * trim_count(n, trim)


def trimmed_mean(units: np.ndarray, trim: float = TRIM) -> float:
    """The trimmed mean of a 1-d array (the plain mean when nothing is trimmed)."""
    x = np.sort(np.asarray(units, dtype=float))
    g = trim_count(len(x), trim)
    return float(x[g:len(x) - g].mean())


def yuen_variance(units: np.ndarray, trim: float = TRIM) -> float:
    """Yuen's estimate of the variance of the trimmed mean of ``units`` (needs 2+ units).

    ``(n - 1) * s_w^2 / (h * (h - 1))`` with ``s_w^2`` the winsorised variance; for ``trim = 0``
    this is the familiar ``s^2 / n``.
    """
    x = np.sort(np.asarray(units, dtype=float))
    n = len(x)
    g = trim_count(n, trim)
    h = n - 2 * g
    if x[g] == x[n - g - 1]:
        return 0.0      # exactly: a float mean of equal values may differ from them in the last bit
    w = x.copy()
    w[:g] = x[g]
    w[n - g:] = x[n - g - 1]
    d = w - w.mean()
    return float((d @ d) / (h * (h - 1)))


def welch_df(var_a: float, h_a: int, var_b: float, h_b: int) -> float:
    """Welch-Satterthwaite degrees of freedom of a difference of two independent estimates.

    ``var_*`` are the variances of the two estimates and ``h_*`` their effective unit counts
    (with trimmed means this is the Yuen-Welch df).
    """
    den = var_a ** 2 / (h_a - 1) + var_b ** 2 / (h_b - 1)
    if den <= 0.0:
        # No spread on either side: the interval is degenerate whatever the df.
        return float(h_a + h_b - 2)
    return float((var_a + var_b) ** 2 / den)


def interval_df(var_a: float, h_a: int, var_b: float, h_b: int) -> float:
    """Degrees of freedom of the interval: Welch's, capped by what the design supports.

    The cap is Welch's df when both sides have the same spread per unit, which depends only
    on the unit counts. With equal counts it is the largest Welch value possible, so nothing
    changes; with unequal counts it stops the small side's chance low spread from inflating
    the df (uncapped, 3 against 10 workers gave 1.7% false alarms at a nominal 1%).
    """
    return min(welch_df(var_a, h_a, var_b, h_b), welch_df(1.0 / h_a, h_a, 1.0 / h_b, h_b))


def t_quantile(df: float, p: float) -> float:
    """Quantile ``p`` of Student's t with ``df`` degrees of freedom."""
    return float(special.stdtrit(df, p))


def t_two_sided_p(statistic: float, df: float) -> float:
    """Two-sided tail probability of ``|statistic|`` under Student's t with ``df`` df."""
    return float(2.0 * special.stdtr(df, -abs(statistic)))


@lru_cache(maxsize=64)
def _resample_weights(n: int, resamples: int, seed: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """Weight matrices of ``resamples`` bootstrap resamples of ``n`` sorted units.

    Row ``b`` of ``trimmed`` holds, per unit, how often it falls inside the trimmed part of
    resample ``b`` divided by ``h`` (so ``trimmed @ units`` is the resamples' trimmed means);
    row ``b`` of ``winsorised`` counts each unit in the winsorised resample (so
    ``winsorised @ units`` and ``winsorised @ units**2`` give its sums). Valid for any units
    sorted ascending, which is why the pattern can be drawn once and reused.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream, n]))
    idx = np.sort(rng.integers(0, n, size=(resamples, n)), axis=1)
    g = trim_count(n)
    h = n - 2 * g
    base = (np.arange(resamples) * n)[:, None]
    kept = np.bincount((base + idx[:, g:n - g]).ravel(), minlength=resamples * n)
    trimmed = kept.reshape(resamples, n) / h
    positions = np.clip(np.arange(n), g, n - g - 1)
    counts = np.bincount((base + idx[:, positions]).ravel(), minlength=resamples * n)
    winsorised = counts.reshape(resamples, n).astype(float)
    for a in (trimmed, winsorised):
        a.setflags(write=False)
    return trimmed, winsorised


def bootstrap_side(units: np.ndarray, scale: str, resamples: int, seed: int,
                   stream: int) -> tuple[np.ndarray, np.ndarray]:
    """Per resample: the side's estimate on ``scale`` and its Yuen variance on that scale.

    ``units`` must be sorted ascending. Resampling whole units keeps each worker's values
    together, so the spread reflects differences between processes.
    """
    n = len(units)
    if n <= _CACHE_MAX_UNITS:
        trimmed, winsorised = _resample_weights(n, resamples, seed, stream)
    else:
        trimmed, winsorised = _resample_weights.__wrapped__(n, resamples, seed, stream)
    h = effective_units(n)
    tm = trimmed @ units
    sums = winsorised @ np.column_stack((units, units * units))
    # Yuen's variance from the winsorised sums, in place: (s2 - s1^2 / n) / (h (h - 1)).
    var = sums[:, 0] * sums[:, 0]
    var *= -1.0 / n
    var += sums[:, 1]
    np.maximum(var, 0.0, out=var)       # rounding can leave a tiny negative for tied units
    var *= 1.0 / (h * (h - 1))
    if scale == LOG:
        var /= tm
        var /= tm
        return np.log(tm), var
    return tm, var


@dataclass(frozen=True)
class Interval:
    """The change between two sides on one scale, with its uncertainty.

    On the ``log`` scale ``estimate`` is ``log(head_location / base_location)``; on the
    ``linear`` scale it is ``head_location - base_location`` in the metric's unit.
    """

    scale: str
    base_location: float
    head_location: float
    estimate: float
    se: float
    df: float
    critical: float       # multiplier of se: the larger of the t quantile and the bootstrap's
    low: float
    high: float
    p_value: float
    base_n: int
    head_n: int
    base_var: float       # variance of each side's estimate on the scale (for planning)
    head_var: float
    bootstrapped: bool    # whether the bootstrap-t check ran (it needs 5+ units per side)


#: Fewest units per side for the bootstrap-t check: with fewer, a sizeable share of resamples
#: repeat a single unit and have no spread at all, and the resampled t is meaningless.
MIN_BOOTSTRAP_UNITS = 5


def compare_units(base: np.ndarray, head: np.ndarray, *, confidence: float, resamples: int,
                  seed: int) -> Interval:
    """Estimate, interval and p-value of the change from ``base`` units to ``head`` units.

    Each side needs at least 2 units. ``resamples`` below what the interval's tail needs
    (5 resamples beyond the quantile) skip the bootstrap-t check.
    """
    base = np.sort(np.asarray(base, dtype=float))
    head = np.sort(np.asarray(head, dtype=float))
    nb, nh = len(base), len(head)
    if nb < 2 or nh < 2:
        raise ValueError("each side needs at least 2 units")
    lb, lh = trimmed_mean(base), trimmed_mean(head)
    vb, vh = yuen_variance(base), yuen_variance(head)
    scale = LOG if base[0] > 0.0 and head[0] > 0.0 else LINEAR
    if scale == LOG:
        estimate = math.log(lh) - math.log(lb)
        vb, vh = vb / (lb * lb), vh / (lh * lh)
    else:
        estimate = lh - lb
    hb, hh = effective_units(nb), effective_units(nh)
    df = interval_df(vb, hb, vh, hh)
    se = math.sqrt(vb + vh)
    alpha = 1.0 - confidence

    if se == 0.0:
        # Identical values within each side: nothing is uncertain, the change is what it is.
        p = 1.0 if estimate == 0.0 else 0.0
        return Interval(scale, lb, lh, estimate, 0.0, df, 0.0, estimate, estimate, p, nb, nh,
                        vb, vh, False)

    critical = t_quantile(df, 1.0 - alpha / 2.0)
    statistic = abs(estimate) / se
    p = t_two_sided_p(statistic, df)
    bootstrapped = False
    if min(nb, nh) >= MIN_BOOTSTRAP_UNITS and resamples * alpha >= 5:
        boot = _bootstrap_t(base, head, scale, estimate, resamples, seed)
        tail = int(math.ceil(alpha * resamples - 1e-9))
        # Heavily tied units (identical counts in most workers) leave many resamples without
        # any spread; when they reach the tail the resampled t says nothing, and t alone is used.
        boot_critical = float(np.partition(boot, resamples - tail)[resamples - tail])
        if math.isfinite(boot_critical):
            # Symmetric bootstrap-t: the distribution of |T*| replaces the t distribution when
            # its tail is heavier (skewed or unbalanced workers); it never narrows the interval.
            # Critical value and p-value use the same order statistic, so they always agree.
            critical = max(critical, boot_critical)
            p = max(p, int(np.count_nonzero(boot >= statistic)) / resamples)
            bootstrapped = True
    half = critical * se
    return Interval(scale, lb, lh, estimate, se, df, critical, estimate - half, estimate + half,
                    min(p, 1.0), nb, nh, vb, vh, bootstrapped)


def _bootstrap_t(base: np.ndarray, head: np.ndarray, scale: str, estimate: float, resamples: int,
                 seed: int) -> np.ndarray:
    """``|T*|``, the studentised change, over bootstrap resamples of both sides."""
    eb, vb = bootstrap_side(base, scale, resamples, seed, 0)
    eh, vh = bootstrap_side(head, scale, resamples, seed, 1)
    se = np.sqrt(vb + vh)
    dev = eh - eb
    dev -= estimate
    np.abs(dev, out=dev)
    degenerate = se == 0.0
    if degenerate.any():
        # A resample with no spread is as extreme as it gets unless it also shows no change.
        with np.errstate(divide="ignore", invalid="ignore"):
            t = dev / se
        t[degenerate] = np.where(dev[degenerate] == 0.0, 0.0, np.inf)
        return t
    dev /= se
    return dev


def units_to_decide(interval: Interval, *, target_half_width: float, confidence: float,
                    limit: int) -> int | None:
    """Fewest extra units per side after which the interval's half-width is ``target_half_width``.

    Assumes each side's variance falls as ``1/n`` (the spread between units stays the same) and
    recomputes the t quantile for the larger samples; the bootstrap widening, when it applied,
    is kept in proportion. ``None`` when ``limit`` extra units per side would not be enough.
    """
    if target_half_width <= 0.0 or interval.se == 0.0:
        return None
    q = 0.5 + confidence / 2.0
    widen = interval.critical / t_quantile(interval.df, q)
    nb, nh = interval.base_n, interval.head_n
    a, c = interval.base_var * nb, interval.head_var * nh     # variance x units, per side

    def df_at(k: int) -> float:
        return interval_df(a / (nb + k), effective_units(nb + k), c / (nh + k), effective_units(nh + k))

    def half_width(k: int) -> float:
        return widen * t_quantile(df_at(k), q) * math.sqrt(a / (nb + k) + c / (nh + k))

    def extra_for(critical: float) -> float:
        # Solve a / (nb + k) + c / (nh + k) = (target / critical)^2 for k: a quadratic.
        r = (target_half_width / critical) ** 2
        qa, qb, qc = r, r * (nb + nh) - a - c, r * nb * nh - a * nh - c * nb
        if qc >= 0.0:
            return 0.0          # narrow enough already
        return (-qb + math.sqrt(qb * qb - 4.0 * qa * qc)) / (2.0 * qa)

    # The t quantile lies between the normal one (infinitely many units) and its value at the
    # normal-based answer, which brackets the answer tightly; a short binary search finishes.
    lower = extra_for(widen * float(special.ndtri(q)))
    if lower > limit:
        return None
    lo = max(int(math.floor(lower)) - 1, 0)
    hi = min(int(math.ceil(extra_for(widen * t_quantile(df_at(lo), q)))) + 1, limit)
    if half_width(hi) > target_half_width:
        if hi >= limit or half_width(limit) > target_half_width:
            return None
        hi = limit
    if half_width(lo) <= target_half_width:
        return lo
    # half_width(lo) > target >= half_width(hi); it falls with k, up to small steps where
    # trimming starts to drop one more unit.
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if half_width(mid) <= target_half_width:
            hi = mid
        else:
            lo = mid
    return hi
