"""Outlier replacement before segmentation: one spike must not look like a level shift.

A point is an outlier when it is far from the median of its neighbourhood, further than
``threshold`` times the local spread of the series (a Hampel filter). It is replaced by that
median. A median over ``2 * half_width + 1`` points passes steps through unchanged (the median
of a window that straddles a step is on the side that holds the majority), so a level shift
keeps its exact position, while runs of up to ``half_width`` outlying points vanish.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter

# Spread is estimated from the residuals around the rolling median in a wider window, so that
# a noisy stretch of a history does not make every point there look like an outlier.
_SPREAD_HALF_WIDTH = 10
_MAD_TO_SIGMA = 1.4826
# Far points make up more than this share of the 101 points around them: a mode, not outliers.
# A run of min_size - 1 = 4 outliers is 4%; at 5%, chance clusters of outliers (6 in 78 points,
# with one outlier per 100 points over 100,000) were taken for a mode and became levels.
_MODE_HALF_WIDTH = 50
_MODE_SHARE = 0.08


def rolling_median(values: np.ndarray, half_width: int) -> np.ndarray:
    """Centred rolling median, with the ends mirrored so the first and last points have a
    full window."""
    n = len(values)
    if n == 0 or half_width <= 0:
        return values.copy()
    h = min(half_width, n - 1)
    # scipy's "mirror" mode is the reflection without the edge point: v[h] .. v[1], v, ...
    return median_filter(values, size=2 * h + 1, mode="mirror")


def _local_share(mask: np.ndarray, half_width: int) -> np.ndarray:
    """Count of ``True`` in the window of ``2 * half_width + 1`` around each point, over the
    window's full width (so a short series does not make a short run look common)."""
    n = len(mask)
    sums = np.concatenate([[0], np.cumsum(mask)])
    lo = np.clip(np.arange(n) - half_width, 0, n)
    hi = np.clip(np.arange(n) + half_width + 1, 0, n)
    return (sums[hi] - sums[lo]) / (2 * half_width + 1)


def replace_outliers(values: np.ndarray, *, half_width: int, threshold: float = 8.0) -> np.ndarray:
    """A copy of ``values`` with runs of up to ``half_width`` outliers replaced by the local
    median.

    Two passes: lone spikes first (half-width 1), then runs (``half_width``), because a lone
    spike next to a step would otherwise tip a wide window's majority and move the step. Both
    use one spread, taken from the series as given, so the second pass does not judge the
    first pass's smoothed output by a narrower yardstick.
    """
    n = len(values)
    if n < 3 or half_width <= 0:
        return values.copy()
    residual = values - rolling_median(values, half_width)
    spread = _MAD_TO_SIGMA * rolling_median(np.abs(residual), _SPREAD_HALF_WIDTH)
    # A floor relative to the series' size keeps exact (noise-free) data exact: only a true
    # departure from the local median counts, not rounding.
    floor = 1e-9 * max(float(np.max(np.abs(values))), 1e-300)
    limit = np.maximum(threshold * spread, floor)
    # Where far points are common they are a second mode of the values (a bimodal
    # benchmark), not outliers: replacing them would carve runs of one mode, fake levels.
    far = np.abs(residual) > limit
    common = _local_share(far, _MODE_HALF_WIDTH) > _MODE_SHARE
    limit = np.where(common, np.inf, limit)
    cleaned = values
    for width in sorted({1, half_width}):
        median = rolling_median(cleaned, width)
        outlier = np.abs(cleaned - median) > limit
        cleaned = np.where(outlier, median, cleaned)
    return cleaned
