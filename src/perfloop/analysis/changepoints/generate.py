"""Signals with known change points, shared by the tests and the benchmarks.

Like ruptures' ``datasets``: each generator is deterministic for a given ``seed`` and returns
the values with the answer key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Planted:
    """A generated series with the indices where its levels start and its planted outliers."""

    values: np.ndarray
    change_points: tuple[int, ...]
    outliers: tuple[int, ...] = ()


def steps(levels: Sequence[float], lengths: Sequence[int]) -> Planted:
    """A noise-free piecewise-constant series: ``lengths[k]`` points at ``levels[k]``."""
    if len(levels) != len(lengths) or not levels:
        raise ValueError("give one length per level, and at least one level")
    if any(length < 1 for length in lengths):
        raise ValueError("every level needs at least one point")
    values = np.repeat(np.asarray(levels, dtype=float), lengths)
    starts = np.cumsum(lengths)[:-1]
    # Equal neighbouring levels make no change point.
    change_points = tuple(int(s) for s, lo, hi in zip(starts, levels[:-1], levels[1:]) if lo != hi)
    return Planted(values=values, change_points=change_points)


def history(n: int, *, shifts: int = 3, min_shift: float = 0.05, max_shift: float = 0.20,
            noise: float = 0.02, min_segment: int = 30, outliers: int = 0,
            outlier_factor: float = 1.5, base: float = 100.0, seed: int = 0) -> Planted:
    """A benchmark history: ``shifts`` level shifts of a relative size in
    ``[min_shift, max_shift]`` (up or down at random, kept within half and twice ``base``),
    Gaussian noise of relative size ``noise``, and ``outliers`` single points multiplied or
    divided by ``outlier_factor``, each at least 3 points from any change point.
    """
    if n < (shifts + 1) * min_segment:
        raise ValueError(f"{shifts} shifts with segments of at least {min_segment} need n >= "
                         f"{(shifts + 1) * min_segment}, not {n}")
    rng = np.random.default_rng(seed)
    # Segment lengths: min_segment each plus a random share of what is left over.
    spare = n - (shifts + 1) * min_segment
    cuts = np.sort(rng.integers(0, spare + 1, size=shifts))
    lengths = np.diff(np.concatenate([[0], cuts, [spare]])) + min_segment
    change_points = tuple(int(c) for c in np.cumsum(lengths)[:-1])
    values = _noisy_levels(rng, lengths, min_shift, max_shift, base, noise)
    placed: list[int] = []
    if outliers:
        allowed = np.ones(n, dtype=bool)
        for cp in change_points:
            allowed[max(0, cp - 3):cp + 3] = False
        placed = sorted(int(i) for i in rng.choice(np.flatnonzero(allowed), size=outliers, replace=False))
        for i in placed:
            values[i] = values[i] * outlier_factor if rng.integers(0, 2) else values[i] / outlier_factor
    return Planted(values=values, change_points=change_points, outliers=tuple(placed))


def noise(n: int, *, level: float = 100.0, relative_sd: float = 0.02, seed: int = 0) -> np.ndarray:
    """A stable series: one level with Gaussian noise, no change point."""
    rng = np.random.default_rng(seed)
    return level * (1.0 + relative_sd * rng.standard_normal(n))


def noisy_steps(n: int = 1000, *, steps: int = 9, noise: float = 0.05, min_step: float = 0.05,
                max_step: float = 0.10, min_segment: int = 20, max_segment: int = 200,
                base: float = 100.0, seed: int = 0) -> Planted:
    """A noisy benchmark history: ``steps`` level shifts of a relative size drawn uniformly
    from ``[min_step, max_step]`` (up or down at random, kept within half and twice ``base``),
    segments of ``min_segment`` to ``max_segment`` points, and Gaussian noise whose standard
    deviation is ``noise`` times the current level (``0.05`` is 5%).

    Segment lengths are ``min_segment`` plus a uniform random share of the rest, drawn again
    until none exceeds ``max_segment``; so with ``n=1000, steps=9`` they average 100 points
    and run from 20 to 200.
    """
    segments = steps + 1
    if not segments * min_segment <= n <= segments * max_segment:
        raise ValueError(f"{segments} segments of {min_segment} to {max_segment} points cannot "
                         f"make n={n}")
    rng = np.random.default_rng(seed)
    spare = n - segments * min_segment
    while True:
        cuts = np.sort(rng.integers(0, spare + 1, size=steps))
        lengths = np.diff(np.concatenate([[0], cuts, [spare]])) + min_segment
        if lengths.max() <= max_segment:
            break
    change_points = tuple(int(c) for c in np.cumsum(lengths)[:-1])
    values = _noisy_levels(rng, lengths, min_step, max_step, base, noise)
    return Planted(values=values, change_points=change_points)


def _noisy_levels(rng: np.random.Generator, lengths: np.ndarray, low: float, high: float,
                  base: float, noise: float) -> np.ndarray:
    """Values of segments of ``lengths``: from ``base``, each next level a relative step of
    ``[low, high]`` up or down at random (kept within half and twice ``base``), with Gaussian
    noise of relative size ``noise``. Draws from ``rng`` in a fixed order: a seed keeps its
    series."""
    level = base
    levels = [level]
    for _ in range(len(lengths) - 1):
        size = rng.uniform(low, high)
        up = bool(rng.integers(0, 2))
        if (up and level * (1 + size) > 2 * base) or (not up and level * (1 - size) < base / 2):
            up = not up
        level = level * (1 + size) if up else level * (1 - size)
        levels.append(level)
    mean = np.repeat(levels, lengths)
    return mean * (1.0 + noise * rng.standard_normal(int(np.sum(lengths))))
