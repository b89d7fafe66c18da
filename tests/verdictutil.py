"""Verdicts made up for a test: real :class:`~perfloop.analysis.compare.Verdict` objects with
the given kind and numbers, as an injected ``decide`` returns them to the gate."""

from __future__ import annotations

import math

from perfloop.analysis.compare import Verdict, VerdictKind


def made_verdict(benchmark: str, metric: str, verdict: str, change: float = 0.0,
                 p_value: float = 0.5, ci_low: float = -0.5, ci_high: float = 0.5, *,
                 unit: str = "units", direction: str = "lower",
                 more_workers: int | None = None) -> Verdict:
    """A verdict on ``metric`` of ``benchmark``; its locations are undefined (NaN)."""
    return Verdict(benchmark=benchmark, metric=metric, unit=unit, direction=direction,
                   verdict=VerdictKind(verdict), change=change, ci_low=ci_low, ci_high=ci_high,
                   confidence=0.99, tolerance=0.05, p_value=p_value, base_location=math.nan,
                   head_location=math.nan, base_n=0, head_n=0, base_workers=0, head_workers=0,
                   test="made up", more_workers=more_workers)
