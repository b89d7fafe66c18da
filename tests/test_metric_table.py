"""The metric table: every category (time, memory, tail, drift, deciding) is read from
``perfloop.metrics.BUILTIN``, and the places that use them see the same sets."""

from __future__ import annotations

from perfloop import metrics
from perfloop.analysis import comparison, deciding
from perfloop.workflows import cycles


def test_categories_of_the_builtin_metrics() -> None:
    latencies = {"latency_p50", "latency_p90", "latency_p99", "latency_p999", "latency_max"}
    assert metrics.TIME_METRICS == {"wall_time", "cpu_time", "cpu_norm", "instructions",
                                    *latencies}
    assert metrics.MEMORY_METRICS == {"peak_rss", "peak_alloc"}
    assert metrics.TAIL_METRICS == ("latency_p99", "latency_p999", "latency_max")
    assert metrics.UPPER_PERCENTILES == latencies - {"latency_p50"}
    # the host's reference workload drifts with the host; cpu_norm is meant to drift less
    assert metrics.DRIFTING_METRICS == {"wall_time", "cpu_time", "cpu_norm", "host_reference",
                                        "runqueue_time", "throughput", *latencies}
    assert metrics.DECIDING_TIME_METRICS == ("instructions", "cpu_norm", "cpu_time", "wall_time")
    assert metrics.HOST_METRICS == {"host_reference", "runqueue_time"}


def test_users_of_the_table_see_its_categories() -> None:
    assert deciding.TIME_METRICS == metrics.DECIDING_TIME_METRICS
    assert cycles.TAIL_METRICS == metrics.TAIL_METRICS
    # drift is estimated from repeat runs for every drifting metric, latencies included
    assert comparison.DRIFTING_METRICS == metrics.DRIFTING_METRICS


def test_custom_metrics_by_name_and_unit() -> None:
    assert metrics.drifts("latency_checkout") and not metrics.drifts("cost")
    assert not metrics.drifts("instructions") and not metrics.drifts("peak_rss")
    assert metrics.is_time("cost", "s") and metrics.is_time("http_request_duration_seconds:p99")
    assert not metrics.is_time("cost", "units")
    assert metrics.is_memory("cache_size", "B") and not metrics.is_memory("cost", "units")
    assert metrics.kind_of_metric("mem", "B") == "memory" and metrics.kind_of_metric("cost") == "cost"
    assert not metrics.is_tail("latency_p90") and metrics.is_tail("latency_max")
    assert not metrics.get_metric("cost").is_time      # custom metrics belong to no category
