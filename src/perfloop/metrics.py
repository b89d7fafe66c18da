"""Metrics: what a sample measures, its unit and which direction is better.

A metric's *direction* decides what "regressed" means: for ``wall_time`` a larger value is
worse, for ``throughput`` a smaller one is. Custom metrics (a callable may return a dict of
values) default to lower-is-better unless the benchmark's configuration says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Direction(str, Enum):
    LOWER = "lower"    # lower is better (times, memory, error rate)
    HIGHER = "higher"  # higher is better (throughput)


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    direction: Direction
    description: str = ""

    def worse(self, base: float, head: float) -> bool:
        """True when ``head`` is worse than ``base`` for this metric."""
        return head > base if self.direction is Direction.LOWER else head < base


_L, _H = Direction.LOWER, Direction.HIGHER

BUILTIN: dict[str, Metric] = {m.name: m for m in (
    Metric("wall_time", "s", _L, "elapsed wall-clock time per call"),
    Metric("cpu_time", "s", _L, "user + system CPU time per call"),
    Metric("cpu_norm", "ref", _L, "CPU time per call in units of the host's reference "
           "workload timed beside it: a change of the host's speed does not move it"),
    Metric("host_reference", "s", _L, "CPU time of the fixed reference workload beside each "
           "value: the host's speed, not the code's"),
    Metric("peak_rss", "B", _L, "peak resident set size of the process (tree)"),
    Metric("peak_alloc", "B", _L, "peak Python allocation (tracemalloc; slows the code)"),
    Metric("instructions", "count", _L, "instructions executed (valgrind)"),
    Metric("latency_p50", "s", _L, "median request latency"),
    Metric("latency_p90", "s", _L, "90th percentile request latency"),
    Metric("latency_p99", "s", _L, "99th percentile request latency"),
    Metric("latency_p999", "s", _L, "99.9th percentile request latency"),
    Metric("latency_max", "s", _L, "largest request latency"),
    Metric("throughput", "req/s", _H, "completed requests per second"),
    Metric("error_rate", "ratio", _L, "share of requests that failed"),
)}

#: CPU time relative to the reference workload, and the reference itself (measured with
#: ``cpu_time`` by callables, see :func:`perfloop.measure.worker.reference_workload`).
CPU_NORM, HOST_REFERENCE = "cpu_norm", "host_reference"
#: Metrics that describe the host, not the code: shown, never given a verdict.
HOST_METRICS = frozenset({HOST_REFERENCE})

#: Metrics each kind of target measures when a benchmark names none.
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "callable": ("wall_time", "cpu_time", "peak_rss"),
    "command": ("wall_time", "cpu_time", "peak_rss"),
    "http": ("latency_p50", "latency_p90", "latency_p99", "latency_p999", "latency_max",
             "throughput", "error_rate"),
}

#: Metrics each kind of target can measure at all (custom metrics aside).
SUPPORTED_METRICS: dict[str, frozenset[str]] = {
    "callable": frozenset({"wall_time", "cpu_time", "peak_rss", "peak_alloc", "instructions"}),
    "command": frozenset({"wall_time", "cpu_time", "peak_rss", "instructions"}),
    "http": frozenset(DEFAULT_METRICS["http"]),
}


def get_metric(name: str, *, unit: str = "", direction: str | Direction = Direction.LOWER) -> Metric:
    """The built-in metric called ``name``, or a custom one with the given unit and direction."""
    if name in BUILTIN:
        return BUILTIN[name]
    return Metric(name, unit, Direction(direction), "custom metric")
