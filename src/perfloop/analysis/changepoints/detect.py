"""``detect_change_points``: the one-call form of perfloop's level-shift detector."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .model import ChangePoint
from .seeded import SeededBinseg


def detect_change_points(values: Sequence[float] | np.ndarray, *, window: int | None = None,
                         max_pvalue: float = 0.001, min_magnitude: float = 0.0,
                         min_size: int = 5) -> list[ChangePoint]:
    """The level shifts of ``values``, in order: each :class:`ChangePoint` is where a new level
    starts. Deterministic: the same values and settings give the same answer.

    >>> [cp.index for cp in detect_change_points([10.0] * 20 + [12.0] * 20)]
    [20]

    See :class:`SeededBinseg` for the settings and ``docs/changepoints.md`` for the method.
    """
    detector = SeededBinseg(window=window, max_pvalue=max_pvalue, min_magnitude=min_magnitude,
                            min_size=min_size)
    return detector.fit(values).change_points()
