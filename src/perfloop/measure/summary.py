"""What a run of benchmarks produced: the record the runner returns and the progress sees last."""

from __future__ import annotations

from dataclasses import dataclass

from ..records import BenchmarkResult


@dataclass(frozen=True)
class RunSummary:
    """What a run of benchmarks produced."""

    results: tuple[BenchmarkResult, ...]
    n_failed: int          # results with status failed or timeout
    duration: float        # seconds, by the runner's clock
    interrupted: bool = False
