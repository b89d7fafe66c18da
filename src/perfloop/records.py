"""Immutable measurement records: samples and the result of one benchmark in one run.

Records check their values on construction, so a malformed measurement fails where it is made,
not later in the statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, Mapping, TypedDict


class ResultStatus(str, Enum):
    OK = "ok"
    FAILED = "failed"      # the target crashed or exited non-zero
    TIMEOUT = "timeout"    # killed at the benchmark's timeout


class RunStatus(str, Enum):
    RUNNING = "running"
    COMPLETE = "complete"          # every benchmark ran (some may have failed)
    INTERRUPTED = "interrupted"    # Ctrl-C or a crash of perfloop itself: what was measured is kept


class SampleTag(TypedDict):
    """Where a :class:`Sample` came from, shared by the samples of one measured value."""

    worker: int
    index: int
    warmup: bool


@dataclass(frozen=True)
class Sample:
    """One measured value of one metric, tagged with the worker process it came from.

    ``worker`` numbers the process (or repetition) that produced the value: values from one
    worker are not independent of each other, and the statistics treat the worker as the unit.
    ``loops`` is how many calls the value was averaged over (calibration of fast callables).
    """

    metric: str
    value: float
    worker: int = 0
    index: int = 0
    warmup: bool = False
    loops: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.value, (int, float)) or math.isnan(self.value) or math.isinf(self.value):
            raise ValueError(f"sample of {self.metric!r}: value must be a finite number, got {self.value!r}")
        if self.loops < 1:
            raise ValueError(f"sample of {self.metric!r}: loops must be >= 1, got {self.loops}")
        if self.worker < 0 or self.index < 0:
            raise ValueError(f"sample of {self.metric!r}: worker and index must be >= 0")


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class BenchmarkResult:
    """What one benchmark produced in one run: its samples, status, warnings and errors."""

    name: str
    kind: str
    status: ResultStatus
    samples: tuple[Sample, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)           # metric -> unit (custom ones)
    directions: Mapping[str, str] = field(default_factory=dict)      # metric -> "lower"/"higher"
    warnings: tuple[str, ...] = ()
    error: str | None = None
    stderr_tail: str | None = None
    duration: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)           # e.g. histograms, loops

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a benchmark result needs a name")
        object.__setattr__(self, "status", ResultStatus(self.status))
        object.__setattr__(self, "samples", tuple(self.samples))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "params", _frozen(self.params))
        object.__setattr__(self, "units", _frozen(self.units))
        object.__setattr__(self, "directions", _frozen(self.directions))
        object.__setattr__(self, "extra", _frozen(self.extra))
        if self.status is not ResultStatus.OK and not self.error:
            raise ValueError(f"benchmark {self.name!r}: a {self.status.value} result needs an error message")

    @property
    def metrics(self) -> list[str]:
        """Names of the metrics with at least one sample, in first-seen order."""
        return list(dict.fromkeys(s.metric for s in self.samples))

    def values(self, metric: str, *, include_warmup: bool = False) -> list[float]:
        return [s.value for s in self.samples
                if s.metric == metric and (include_warmup or not s.warmup)]

    def by_worker(self, metric: str) -> dict[int, list[float]]:
        """Measured (non-warmup) values of ``metric`` grouped by worker process."""
        groups: dict[int, list[float]] = {}
        for s in self.samples:
            if s.metric == metric and not s.warmup:
                groups.setdefault(s.worker, []).append(s.value)
        return groups


#: The kinds of tuning change, from adjusting a parameter to redesigning a component: the
#: journal, the risk score and the risk-budgeted workflow all speak of these.
CHANGE_KINDS = ("config", "index", "cache", "code path", "dependency", "infrastructure",
                "algorithm", "concurrency")
