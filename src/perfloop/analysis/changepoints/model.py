"""The result of change-point detection: one level shift in a series."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ChangePoint:
    """A level shift: the series has a new level from ``index`` on.

    ``mean_before`` and ``mean_after`` are the means of the whole segments on either side (from
    the previous change point, or the start, to the next one, or the end), computed after
    isolated outliers were replaced by the local median, so that one spike does not move them.
    ``magnitude`` is the signed relative change ``(mean_after - mean_before) / |mean_before|``
    (``+0.05`` is 5% up). ``pvalue`` is the family-wise p-value of the shift: the chance that a
    step at least this strong, given the local trend and autocorrelation, appears anywhere in a
    series of the same length that has no level shift (see ``docs/changepoints.md``).
    """

    index: int
    mean_before: float
    mean_after: float
    magnitude: float
    pvalue: float

    def __post_init__(self) -> None:
        if self.index < 1:
            raise ValueError(f"a change point starts a new level, so its index is >= 1, not {self.index}")
        if not 0.0 <= self.pvalue <= 1.0:
            raise ValueError(f"pvalue must be in [0, 1], not {self.pvalue}")


def relative_change(before: float, after: float) -> float:
    """``(after - before) / |before|``; infinite when a zero level becomes non-zero."""
    if before == 0.0:
        if after == 0.0:
            return 0.0
        return math.copysign(math.inf, after)
    return (after - before) / abs(before)
