"""Change-point detection: where the level of a benchmark history shifts.

    >>> from perfloop.analysis.changepoints import detect_change_points
    >>> [cp.index for cp in detect_change_points([10.0] * 20 + [12.0] * 20)]
    [20]

- :func:`detect_change_points` returns :class:`ChangePoint` records (index where the new level
  starts, means before and after, relative change, p-value);
- :class:`SeededBinseg` is the same detector with ruptures' shape, ``fit(signal).predict()``;
- :func:`minimum_detectable_step` says how small a step a series could have shown
  (:class:`Sensitivity`), so that "no change points" has a meaning;
- :mod:`.generate` makes series with known change points for tests and benchmarks.

The method (seeded binary segmentation with narrowest-over-threshold selection, a step
t-test on two levels or on a line where the window shows one, corrected for
autocorrelation, outliers replaced first, each step placed where it most probably lies within
``min_size`` points) and its measured quality are in ``docs/changepoints.md``.
"""

from __future__ import annotations

from . import generate
from .detect import detect_change_points
from .model import ChangePoint
from .seeded import SeededBinseg
from .sensitivity import Sensitivity, minimum_detectable_step

__all__ = ["ChangePoint", "SeededBinseg", "Sensitivity", "detect_change_points", "generate",
           "minimum_detectable_step"]
