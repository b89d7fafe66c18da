"""Seeded binary segmentation: perfloop's level-shift detector.

1. Isolated outliers are replaced by the local median (``robust``).
2. The series is covered by deterministic windows at every scale, from the whole series (or
   ``window`` points) down to ``2 * min_size`` points, each scale a factor ``sqrt(2)`` shorter,
   its windows overlapping by half (Kovács, Li, Bühlmann and Munk, "Seeded binary
   segmentation", Biometrika 2023). In each window the best split is tested for a step on top
   of a local line, corrected for autocorrelation (``_stats``). Each p-value is multiplied by
   the number of (window, split) pairs tested (Bonferroni), so ``max_pvalue`` bounds the
   chance of reporting any change point in a series that has none.
3. Significant splits are accepted most significant first, skipping any whose window holds an
   accepted change point (that window tested the wrong model) or that is closer than
   ``min_size`` to one.
4. The stretches between accepted change points are searched again, as plain binary
   segmentation, because a weak shift's seeded windows are often blocked by a strong neighbour.
5. Each change point is re-tested in its window cut at its neighbours, and the weakest dropped
   until all pass ``max_pvalue`` and ``min_magnitude``; the survivors are moved, by at most
   ``min_size // 2`` points, to where two flat levels fit best.

Each scale is one vectorised pass over about ``2n`` values and there are about
``2 log2(n / min_size)`` scales: O(n log n) in all.
"""

from __future__ import annotations

import bisect
import math
from typing import Sequence

import numpy as np

from perfloop.errors import UsageError

from . import _stats
from .model import ChangePoint, relative_change
from .robust import replace_outliers

_SCALE_DECAY = math.sqrt(2.0)


class SeededBinseg:
    """Level-shift detector with ruptures' shape: ``SeededBinseg().fit(signal).predict()``.

    ``predict()`` returns the indices where a new level starts (ruptures' ``predict`` also
    appends ``len(signal)``; this one does not). ``change_points()`` returns them as
    :class:`ChangePoint` records with their means, relative change and p-value.

    Settings:
        window: the longest window tested, in points; ``None`` is the whole series. Shorter
            windows make each change point depend only on the points around it.
        max_pvalue: family-wise significance level (see the module docstring).
        min_magnitude: smallest relative change reported (``0.05`` is 5%).
        min_size: fewest points of a level; a level shift is reported once ``min_size``
            points stand on each side of it. Runs of up to ``min_size // 2`` outlying points
            are replaced by the local median before the search, so they are never levels.
    """

    def __init__(self, *, window: int | None = None, max_pvalue: float = 0.001,
                 min_magnitude: float = 0.0, min_size: int = 5) -> None:
        if window is not None and window < 2 * min_size:
            raise UsageError(f"window={window} is shorter than two levels of min_size={min_size}",
                             hint=f"use window >= {2 * min_size} or window=None for the whole series")
        if not 0.0 < max_pvalue <= 1.0:
            raise UsageError(f"max_pvalue={max_pvalue} is not in (0, 1]", hint="0.001 is the default")
        if min_magnitude < 0.0:
            raise UsageError(f"min_magnitude={min_magnitude} is negative",
                             hint="it is a relative change: 0.05 for 5%")
        if min_size < 2:
            raise UsageError(f"min_size={min_size} is below 2", hint="a level needs at least 2 points")
        self.window = window
        self.max_pvalue = max_pvalue
        self.min_magnitude = min_magnitude
        self.min_size = min_size
        self._change_points: list[ChangePoint] | None = None

    def fit(self, signal: Sequence[float] | np.ndarray) -> "SeededBinseg":
        """Find the change points of ``signal`` (a 1-D sequence, or an ``(n, 1)`` array)."""
        values = _as_series(signal)
        self._change_points = _detect(values, window=self.window, max_pvalue=self.max_pvalue,
                                      min_magnitude=self.min_magnitude, min_size=self.min_size)
        return self

    def predict(self) -> list[int]:
        """Indices where a new level starts, in increasing order."""
        return [cp.index for cp in self.change_points()]

    def change_points(self) -> list[ChangePoint]:
        """The change points found by :meth:`fit`."""
        if self._change_points is None:
            raise UsageError("predict() before fit()", hint="call .fit(signal) first")
        return list(self._change_points)

    def fit_predict(self, signal: Sequence[float] | np.ndarray) -> list[int]:
        """``fit(signal).predict()``."""
        return self.fit(signal).predict()


def _as_series(signal: Sequence[float] | np.ndarray) -> np.ndarray:
    try:
        values = np.asarray(signal, dtype=float)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"the series must be numbers: {exc}") from exc
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise UsageError(f"the series must be one-dimensional, got shape {values.shape}",
                         hint="run the detector on each column and merge the results")
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise UsageError(f"the series has a missing or infinite value at index {bad}",
                         hint="drop or fill missing values before detecting change points")
    return values


def _scales(n: int, window: int | None, min_size: int) -> list[int]:
    longest = n if window is None else min(window, n)
    lengths = []
    length = float(longest)
    while length >= 2 * min_size:
        lengths.append(int(round(length)))
        length /= _SCALE_DECAY
    # The shortest scale always runs: two levels of min_size, the closest shifts allowed.
    if longest >= 2 * min_size:
        lengths.append(2 * min_size)
    return sorted(set(lengths), reverse=True)


def _window_starts(n: int, length: int) -> np.ndarray:
    """Windows of ``length`` overlapping by half, the last one flush with the end."""
    starts = np.arange(0, n - length + 1, max(1, length // 2))
    if starts[-1] != n - length:
        starts = np.append(starts, n - length)
    return starts


def _tests_made(min_size: int, scales: list[int], tiles: list[np.ndarray]) -> int:
    """How many (window, split) pairs the scan tests: the Bonferroni factor."""
    return sum(len(starts) * (length - 2 * min_size + 1) for length, starts in zip(scales, tiles))


def _detect(values: np.ndarray, *, window: int | None, max_pvalue: float, min_magnitude: float,
            min_size: int) -> list[ChangePoint]:
    n = len(values)
    if n < 2 * min_size:
        return []
    cleaned = replace_outliers(values, half_width=max(1, min_size - 1))
    # Centred and scaled so prefix sums stay small; the test does not depend on either.
    centre = float(np.median(cleaned))
    scale = float(np.max(np.abs(cleaned - centre)))
    if scale == 0.0:
        return []
    ps = _stats.PrefixSums.of((cleaned - centre) / scale)
    scales = _scales(n, window, min_size)
    tiles = [_window_starts(n, length) for length in scales]
    tests = _tests_made(min_size, scales, tiles)
    log_alpha = math.log(max_pvalue)

    # Candidates: (log p, window length, split, window start, window end).
    candidates: list[tuple[float, int, int, int, int]] = []
    for length, starts in zip(scales, tiles):
        scan = _stats.scan_windows(ps, starts, length, min_size)
        log_p = _stats.log_bonferroni(scan.log_pvalue, tests)
        keep = np.flatnonzero(log_p <= log_alpha)
        candidates.extend(zip(log_p[keep].tolist(), [length] * len(keep), scan.split[keep].tolist(),
                              starts[keep].tolist(), (starts[keep] + length).tolist()))
    candidates.sort()

    chosen: list[int] = []
    windows: dict[int, tuple[int, int]] = {}
    for _, _, split, start, end in candidates:
        # A window that holds an accepted change point tested the wrong model (one step).
        i = bisect.bisect_right(chosen, start)
        if i < len(chosen) and chosen[i] < end:
            continue
        i = bisect.bisect_left(chosen, split)
        if (i < len(chosen) and chosen[i] - split < min_size) or (i > 0 and split - chosen[i - 1] < min_size):
            continue
        chosen.insert(i, split)
        windows[split] = (start, end)

    _refill(ps, chosen, windows, n=n, longest=scales[0], min_size=min_size, log_factor=math.log(tests),
            log_alpha=log_alpha)
    return _prune(cleaned, ps, chosen, windows, n=n, tests=tests, log_alpha=log_alpha,
                  min_magnitude=min_magnitude, min_size=min_size)


def _refill(ps: _stats.PrefixSums, chosen: list[int], windows: dict[int, tuple[int, int]], *, n: int,
            longest: int, min_size: int, log_factor: float, log_alpha: float) -> None:
    """Binary segmentation of the stretches between accepted change points.

    The seeded windows that hold a weaker shift often also hold a stronger neighbour, which
    blocks them; the stretch between two accepted change points holds neither.
    """
    done: set[tuple[int, int]] = set()
    while True:
        bounds = [0] + chosen + [n]
        todo = [(a, b) for a, b in zip(bounds[:-1], bounds[1:])
                if 2 * min_size <= b - a <= longest and (a, b) not in done]
        if not todo:
            return
        done.update(todo)
        starts = np.asarray([a for a, _ in todo], dtype=np.int64)
        ends = np.asarray([b for _, b in todo], dtype=np.int64)
        scan = _stats.scan_segments(ps, starts, ends, min_size)
        hits = np.flatnonzero(scan.log_pvalue + log_factor <= log_alpha)
        if not len(hits):
            return
        for k in hits.tolist():
            split = int(scan.split[k])
            bisect.insort(chosen, split)
            windows[split] = (int(starts[k]), int(ends[k]))


def _refine(ps: _stats.PrefixSums, idx: np.ndarray, a: np.ndarray, b: np.ndarray, min_size: int) -> list[int]:
    """Move each change point to where two flat levels fit its window best, within reach.

    The line-plus-step test rejects trends but places a step less precisely than two flat
    levels, the maximum-likelihood split for a step in independent noise. Moves are limited
    to ``min_size // 2`` points so a trend cannot drag a change point away.
    """
    reach = max(1, min_size // 2)
    offsets = np.arange(-reach, reach + 1)
    t = idx[:, None] + offsets[None, :]
    lo = (a + min_size)[:, None]
    hi = (b - min_size)[:, None]
    valid = (t >= lo) & (t <= hi)
    t = np.clip(t, lo, np.maximum(lo, hi))
    a2, b2 = a[:, None], b[:, None]
    total = ps.s[b2] - ps.s[a2]
    left = ps.s[t] - ps.s[a2]
    n1 = (t - a2).astype(float)
    n2 = (b2 - t).astype(float)
    gain = left ** 2 / n1 + (total - left) ** 2 / n2
    gain = np.where(valid, gain, -np.inf)
    # Ties go to the original position, which sits in the middle of the offsets.
    gain[:, reach] = np.where(valid[:, reach], gain[:, reach] + 1e-12 * np.abs(gain[:, reach]), gain[:, reach])
    best = t[np.arange(len(idx)), np.argmax(gain, axis=1)]
    return [int(x) for x in best]


def _prune(cleaned: np.ndarray, ps: _stats.PrefixSums, chosen: list[int],
           windows: dict[int, tuple[int, int]], *, n: int, tests: int, log_alpha: float,
           min_magnitude: float, min_size: int) -> list[ChangePoint]:
    """Drop the weakest change point until all pass, re-testing its neighbours each time."""
    sums = np.concatenate([[0.0], np.cumsum(cleaned)])
    cps = list(chosen)
    refined = False
    while True:
        if not cps:
            return []
        idx = np.asarray(cps, dtype=np.int64)
        bounds = np.concatenate([[0], idx, [n]])
        prev, nxt = bounds[:-2], bounds[2:]
        win = np.asarray([windows[c] for c in cps], dtype=np.int64)
        a = np.maximum(prev, win[:, 0])
        b = np.minimum(nxt, win[:, 1])
        # Each change point is re-tested in the window that found it, cut at its neighbours:
        # whole segments would mix in trends and shifts from far away.
        log_p = _stats.log_bonferroni(_stats.test_splits(ps, a, idx, b), tests)
        before = (sums[idx] - sums[prev]) / (idx - prev)
        after = (sums[nxt] - sums[idx]) / (nxt - idx)
        magnitude = np.asarray([relative_change(x, y) for x, y in zip(before.tolist(), after.tolist())])
        failing = (log_p > log_alpha) | (np.abs(magnitude) < min_magnitude)
        if not failing.any() and not refined:
            refined = True
            moved = _refine(ps, idx, a, b, min_size)
            if moved != cps:
                windows.update({m: windows[c] for m, c in zip(moved, cps)})
                cps = moved
                continue
        if not failing.any():
            return [ChangePoint(index=int(c), mean_before=float(m0), mean_after=float(m1),
                                magnitude=float(mag), pvalue=float(min(1.0, math.exp(lp))))
                    for c, m0, m1, mag, lp in zip(cps, before, after, magnitude, log_p)]
        # The least significant goes first; when all are significant, the smallest change.
        if (log_p > log_alpha).any():
            worst = int(np.argmax(log_p))
        else:
            worst = int(np.argmin(np.where(failing, np.abs(magnitude), np.inf)))
        del cps[worst]
