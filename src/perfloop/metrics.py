"""Metrics: what a sample measures, its unit and which direction is better.

A metric's *direction* decides what "regressed" means: for ``wall_time`` a larger value is
worse, for ``throughput`` a smaller one is. Custom metrics (a callable may return a dict of
values) default to lower-is-better unless the benchmark's configuration says otherwise.

:data:`BUILTIN` is also the one table of what each built-in metric *is*: a time (or its proxy,
instructions), a memory size, a latency percentile, whether it drifts with the machine's state
between runs, and whether it may decide a benchmark's time verdict. Every category below
(:data:`TIME_METRICS`, :data:`TAIL_METRICS`, :func:`drifts`...) is read from it.
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
    #: Measures time, or stands in for it (instructions).
    is_time: bool = False
    #: Measures memory.
    is_memory: bool = False
    #: Moves with the machine's state (speed, contention) between two separate runs, so a
    #: comparison of separate runs carries run-to-run drift. Memory, instruction counts and
    #: error rates do not.
    drifts: bool = False
    #: A latency percentile: 0.5 the median, 1.0 the largest.
    quantile: float | None = None
    #: Rank among the time metrics one of which decides a benchmark's time verdict (0: the
    #: steadiest); None: never decides it.
    deciding_rank: int | None = None

    @property
    def is_tail(self) -> bool:
        """A far-tail latency (p99 and beyond): what a better median can hide."""
        return self.quantile is not None and self.quantile >= TAIL_QUANTILE

    def worse(self, base: float, head: float) -> bool:
        """True when ``head`` is worse than ``base`` for this metric."""
        return head > base if self.direction is Direction.LOWER else head < base


#: Latency percentiles from this one on are the tail.
TAIL_QUANTILE = 0.99

_L, _H = Direction.LOWER, Direction.HIGHER


def _latency(name: str, quantile: float, description: str) -> Metric:
    return Metric(name, "s", _L, description, is_time=True, drifts=True, quantile=quantile)


BUILTIN: dict[str, Metric] = {m.name: m for m in (
    Metric("wall_time", "s", _L, "elapsed wall-clock time per call", is_time=True, drifts=True,
           deciding_rank=3),
    Metric("cpu_norm", "ref", _L, "CPU time per call in units of the host's reference "
           "workload timed beside it: a change of the host's speed does not move it",
           is_time=True, drifts=True, deciding_rank=1),
    Metric("cpu_time", "s", _L, "user + system CPU time per call", is_time=True, drifts=True,
           deciding_rank=2),
    Metric("host_reference", "s", _L, "CPU time of the fixed reference workload beside each "
           "value: the host's speed, not the code's", drifts=True),
    Metric("runqueue_time", "s", _L, "time per call the process was ready to run but waited "
           "for a core (Linux schedstat): the machine's load, not the code", drifts=True),
    Metric("peak_rss", "B", _L, "peak resident set size of the process (tree)", is_memory=True),
    Metric("peak_alloc", "B", _L, "peak Python allocation (tracemalloc; slows the code)",
           is_memory=True),
    Metric("instructions", "count", _L, "instructions executed (valgrind)", is_time=True,
           deciding_rank=0),
    _latency("latency_p50", 0.5, "median request latency"),
    _latency("latency_p90", 0.9, "90th percentile request latency"),
    _latency("latency_p99", 0.99, "99th percentile request latency"),
    _latency("latency_p999", 0.999, "99.9th percentile request latency"),
    _latency("latency_max", 1.0, "largest request latency"),
    Metric("throughput", "req/s", _H, "completed requests per second", drifts=True),
    Metric("error_rate", "ratio", _L, "share of requests that failed"),
)}

#: Built-in time metrics (instructions included: a proxy for time).
TIME_METRICS = frozenset(n for n, m in BUILTIN.items() if m.is_time)
#: Built-in memory metrics.
MEMORY_METRICS = frozenset(n for n, m in BUILTIN.items() if m.is_memory)
#: Far-tail latencies, lowest percentile first.
TAIL_METRICS = tuple(n for n, m in BUILTIN.items() if m.is_tail)
#: Latency percentiles above the median (p90 on): what shows a tail at all.
UPPER_PERCENTILES = frozenset(n for n, m in BUILTIN.items()
                              if m.quantile is not None and m.quantile > 0.5)
#: Built-in metrics that drift between separate runs.
DRIFTING_METRICS = frozenset(n for n, m in BUILTIN.items() if m.drifts)
#: The time metrics one of which decides a benchmark's time verdict, steadiest first; the
#: others are shown as context.
DECIDING_TIME_METRICS = tuple(sorted((n for n, m in BUILTIN.items() if m.deciding_rank is not None),
                                     key=lambda n: BUILTIN[n].deciding_rank or 0))

#: CPU time relative to the reference workload, and the reference itself (measured with
#: ``cpu_time`` by callables, see :func:`perfloop.measure.worker.reference_workload`).
CPU_NORM, HOST_REFERENCE = "cpu_norm", "host_reference"
#: Time spent waiting for a core, per call (measured with ``wall_time`` where Linux reports it).
RUNQUEUE_TIME = "runqueue_time"
#: Metrics that describe the host, not the code: shown, never given a verdict.
HOST_METRICS = frozenset({HOST_REFERENCE, RUNQUEUE_TIME})

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


def drifts(metric: str) -> bool:
    """Whether ``metric`` drifts between separate runs; a custom ``latency_*`` metric does."""
    known = BUILTIN.get(metric)
    return known.drifts if known is not None else metric.startswith("latency_")


def is_time(metric: str, unit: str = "") -> bool:
    """Whether ``metric`` measures time: a built-in time metric, or a custom one in seconds or
    named as a scraped latency summary (``...:p50``, ``...:p99``, ``...:mean``)."""
    known = BUILTIN.get(metric)
    if known is not None:
        return known.is_time
    return unit == "s" or metric.endswith((":p50", ":p99", ":mean"))


def is_memory(metric: str, unit: str = "") -> bool:
    """Whether ``metric`` measures memory: a built-in memory metric, or a custom one in bytes."""
    known = BUILTIN.get(metric)
    return known.is_memory if known is not None else unit == "B"


def is_tail(metric: str) -> bool:
    """Whether ``metric`` is a built-in far-tail latency (p99 and beyond)."""
    known = BUILTIN.get(metric)
    return known is not None and known.is_tail


def kind_of_metric(metric: str, unit: str = "") -> str:
    """``time``, ``memory``, or the metric's own name: what a trade between metrics trades."""
    return "time" if is_time(metric, unit) else "memory" if is_memory(metric, unit) else metric


def get_metric(name: str, *, unit: str = "", direction: str | Direction = Direction.LOWER) -> Metric:
    """The built-in metric called ``name``, or a custom one with the given unit and direction."""
    if name in BUILTIN:
        return BUILTIN[name]
    return Metric(name, unit, Direction(direction), "custom metric")
