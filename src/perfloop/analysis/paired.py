"""Paired analysis of interleaved measurements: the A B B A block as the unit.

The gate measures base (A) and head (B) in blocks ``A B B A`` of fresh single-process calls,
each block minutes long at most and run with one hash seed for all four calls. Whatever moves
the machine between blocks (load, frequency, a neighbour) moves both sides of a block alike, so
the natural observation is the *within-block* log ratio

    d_k = mean(log head workers of block k) - mean(log base workers of block k)

and the change is a one-sample location of the ``d_k``. Compared with the unpaired analysis of
all workers (:func:`perfloop.analysis.stats.compare_units`), pairing removes the spread between
blocks from the interval instead of counting it twice.

The location is the 20%-trimmed mean of the block ratios with Yuen's one-sample t interval
(winsorised variance, ``h - 1`` degrees of freedom): from 5 blocks on, the single most extreme
block on each side is set aside, so one wild block (a burst of load that hit one side) moves
neither the estimate nor the interval much. For planning how many more blocks would decide, the
spread is the MAD of the block ratios, which one wild block cannot inflate either: sampling
goes on instead of giving up as hopeless. ``docs/statistics.md`` shows the simulations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from . import stats

#: Share of blocks trimmed from each end. 20% sets aside one block per end from 5 blocks on.
PAIRED_TRIM = 0.2
#: Base (and head) workers per A B B A block: the gate's calls are single-process.
WORKERS_PER_BLOCK = 2
#: MAD to standard deviation under normality.
_MAD_SD = 1.4826


@dataclass(frozen=True)
class PairedInterval:
    """The change on the log scale from paired blocks, with its uncertainty."""

    estimate: float          # trimmed mean of the block log ratios
    se: float
    df: float
    critical: float
    low: float
    high: float
    p_value: float
    blocks: int
    robust_sd: float         # MAD-based spread of one block's ratio, for planning
    exact: bool              # no spread at all inside either side: the change is exact


def block_log_ratios(base: Mapping[int, Sequence[float]], head: Mapping[int, Sequence[float]],
                     workers_per_block: int = WORKERS_PER_BLOCK) -> tuple[np.ndarray, bool]:
    """Per complete block, ``mean(log head) - mean(log base)`` of the worker medians.

    ``base`` and ``head`` map worker ids to values; worker ``w`` belongs to block
    ``w // workers_per_block`` on each side. Blocks missing on a side are left out. Also
    returns whether every worker median equals every other of its side (no spread at all).
    """
    def medians(groups: Mapping[int, Sequence[float]]) -> dict[int, list[float]]:
        out: dict[int, list[float]] = {}
        for w, values in groups.items():
            if values:
                out.setdefault(int(w) // workers_per_block, []).append(float(np.median(values)))
        return out

    b, h = medians(base), medians(head)
    blocks = sorted(set(b) & set(h))
    ratios = [float(np.mean(np.log(h[k])) - np.mean(np.log(b[k]))) for k in blocks]
    flat_b = [m for k in blocks for m in b[k]]
    flat_h = [m for k in blocks for m in h[k]]
    no_spread = bool(blocks) and len(set(flat_b)) == 1 and len(set(flat_h)) == 1
    return np.asarray(ratios, dtype=float), no_spread


def positive(groups: Mapping[int, Sequence[float]]) -> bool:
    """True when every value is positive (log ratios need it)."""
    return all(v > 0.0 for values in groups.values() for v in values)


def paired_interval(ratios: np.ndarray, *, confidence: float, exact: bool = False) -> PairedInterval:
    """Yuen's one-sample trimmed-t interval of the block log ratios (needs 2+ blocks unless exact)."""
    d = np.sort(np.asarray(ratios, dtype=float))
    n = len(d)
    if n == 0:
        raise ValueError("no complete block on both sides")
    if exact:
        est = float(d.mean())
        return PairedInterval(est, 0.0, float(max(n - 1, 1)), 0.0, est, est,
                              1.0 if est == 0.0 else 0.0, n, 0.0, True)
    if n < 2:
        raise ValueError("a paired interval needs 2 or more blocks")
    est = stats.trimmed_mean(d, PAIRED_TRIM)
    h = stats.effective_units(n, PAIRED_TRIM)
    var = stats.yuen_variance(d, PAIRED_TRIM)       # variance of the trimmed mean
    se = math.sqrt(var)
    df = float(max(h - 1, 1))
    robust = _MAD_SD * float(np.median(np.abs(d - np.median(d))))
    if se == 0.0:
        return PairedInterval(est, 0.0, df, 0.0, est, est, 1.0 if est == 0.0 else 0.0, n,
                              robust, True)
    alpha = 1.0 - confidence
    critical = stats.t_quantile(df, 1.0 - alpha / 2.0)
    p = stats.t_two_sided_p(est / se, df)
    return PairedInterval(est, se, df, critical, est - critical * se, est + critical * se,
                          min(p, 1.0), n, robust, False)


def blocks_to_decide(iv: PairedInterval, *, target_half_width: float, confidence: float,
                     limit: int) -> int | None:
    """Fewest extra blocks after which the half-width would likely be ``target_half_width``.

    Uses the robust spread (the larger of the MAD-based one and none: a wild block does not
    inflate it) and the t quantile of the larger sample. ``None`` beyond ``limit``.
    """
    if target_half_width <= 0.0:
        return None
    sd = iv.robust_sd if iv.robust_sd > 0.0 else iv.se * math.sqrt(max(iv.blocks, 1))
    if sd == 0.0:
        return 1
    q = 0.5 + confidence / 2.0
    for extra in range(0, limit + 1):
        n = iv.blocks + extra
        h = stats.effective_units(n, PAIRED_TRIM)
        if h < 2:
            continue
        # Yuen's se of a trimmed mean with spread sd: sd / ((1 - 2 trim) sqrt(n)), roughly.
        half = stats.t_quantile(h - 1, q) * sd / ((h / n) * math.sqrt(n))
        if half <= target_half_width:
            return extra
    return None


__all__ = ["PAIRED_TRIM", "PairedInterval", "WORKERS_PER_BLOCK", "block_log_ratios",
           "blocks_to_decide", "paired_interval", "positive"]
