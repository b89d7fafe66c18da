"""Terminal charts: a sparkline of a series and a marker row under it.

Plain strings, no colours, so they work in any terminal, in logs and in tests; the CLI adds
styles. A series longer than the chart is shown by the median of each column's points (a mean
would let one outlier run draw a spike that the change-point detector rightly ignores).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

BARS = "▁▂▃▄▅▆▇█"


def column_of(index: int, n: int, width: int) -> int:
    """The column that point ``index`` of ``n`` falls in on a chart ``width`` columns wide."""
    if n <= width:
        return index
    return min(width - 1, index * width // n)


def _columns(values: Sequence[float] | np.ndarray, width: int | None) -> np.ndarray:
    data = np.asarray(values, dtype=float)
    if width is None or len(data) <= width:
        return data
    # With more points than columns, every column holds at least one point.
    owners = np.asarray([column_of(i, len(data), width) for i in range(len(data))])
    return np.asarray([float(np.median(data[owners == c])) for c in range(width)])


def sparkline(values: Sequence[float] | np.ndarray, width: int | None = None, *,
              low: float | None = None, high: float | None = None) -> str:
    """``[1, 1, 2, 2]`` -> ``"▁▁██"``: one bar per point, or per column when ``width`` is
    smaller than the series. ``low`` and ``high`` fix the scale (default: the data's range);
    a flat series is drawn at mid height.
    """
    columns = _columns(values, width)
    if len(columns) == 0:
        return ""
    lo = float(np.min(columns)) if low is None else low
    hi = float(np.max(columns)) if high is None else high
    if hi <= lo:
        return BARS[len(BARS) // 2 - 1] * len(columns)
    scaled = np.clip((columns - lo) / (hi - lo), 0.0, 1.0)
    return "".join(BARS[int(round(s * (len(BARS) - 1)))] for s in scaled)


def robust_range(values: Sequence[float] | np.ndarray, half_width: int = 2) -> tuple[float, float]:
    """The lowest and highest level of ``values``: the range of its centred rolling median,
    so that runs of up to ``half_width`` outlying points do not set the scale."""
    data = np.asarray(values, dtype=float)
    if len(data) <= 2 * half_width:
        return (float(np.min(data)), float(np.max(data))) if len(data) else (0.0, 0.0)
    windows = np.lib.stride_tricks.sliding_window_view(data, 2 * half_width + 1)
    medians = np.median(windows, axis=1)
    return float(np.min(medians)), float(np.max(medians))


def marker_line(n: int, marks: Mapping[int, str], width: int | None = None) -> str:
    """A row as wide as the sparkline of ``n`` points with ``marks[index]`` under each marked
    point (the first mark wins when two fall in one column)."""
    columns = n if width is None or n <= width else width
    row = [" "] * columns
    for index in sorted(marks):
        if 0 <= index < n:
            c = column_of(index, n, width or n)
            if row[c] == " ":
                row[c] = marks[index][:1] or " "
    return "".join(row).rstrip()


__all__ = ["BARS", "column_of", "marker_line", "robust_range", "sparkline"]
