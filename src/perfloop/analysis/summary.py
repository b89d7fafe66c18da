"""Descriptive statistics of one benchmark result: per metric n, median, IQR, p99."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..metrics import get_metric
from ..records import BenchmarkResult


@dataclass(frozen=True)
class MetricSummary:
    metric: str
    unit: str
    direction: str
    n: int
    workers: int
    warmup: int
    median: float
    q1: float
    q3: float
    p99: float
    min: float
    max: float
    mean: float
    cv: float          # coefficient of variation: stdev / mean (0 when mean is 0)

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "iqr": self.iqr}


def metric_of(result: BenchmarkResult, name: str):
    """The Metric for ``name`` in ``result``, honouring custom units and directions."""
    return get_metric(name, unit=result.units.get(name, ""),
                      direction=result.directions.get(name, "lower"))


def summarize(result: BenchmarkResult) -> list[MetricSummary]:
    """One summary per metric measured in ``result`` (warmup values excluded)."""
    out: list[MetricSummary] = []
    for name in result.metrics:
        values = np.asarray(result.values(name), dtype=float)
        warm = len(result.values(name, include_warmup=True)) - len(values)
        if values.size == 0:
            continue
        q1, median, q3, p99 = np.percentile(values, [25, 50, 75, 99])
        mean = float(values.mean())
        cv = float(values.std(ddof=1) / mean) if values.size > 1 and mean else 0.0
        metric = metric_of(result, name)
        out.append(MetricSummary(
            metric=name, unit=metric.unit, direction=metric.direction.value, n=int(values.size),
            workers=len(result.by_worker(name)), warmup=warm, median=float(median), q1=float(q1),
            q3=float(q3), p99=float(p99), min=float(values.min()), max=float(values.max()),
            mean=mean, cv=cv))
    return out
