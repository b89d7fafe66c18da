"""The open-loop load generator, on simulated time with fake transports: no network, no sleeping.

Every load here runs on a VirtualTimeLoop: ``asyncio.sleep`` in a fake transport models a
service time or a stall, and the clock jumps from timer to timer, so the figures are exact.
"""

from __future__ import annotations

import asyncio

import pytest

from perfloop.measure.loadgen import (
    HIGHEST_US,
    TIMER_SLACK,
    LoadStats,
    TransportError,
    classify_error,
    merge_histograms,
    new_histogram,
    percentiles,
    record_seconds,
    run_load,
    run_virtual,
)


class FakeServer:
    """A server model: a fixed service time, and optionally one stall of the whole server.

    A request arriving during the stall (or queued on a connection during it) finishes when the
    stall ends plus its service time, as with a stop-the-world pause.
    """

    def __init__(self, service: float = 0.002, stall: tuple[float, float] | None = None,
                 status: int = 200) -> None:
        self.service = service
        self.stall = stall
        self.status = status
        self.sends: list[tuple[float, int]] = []   # (time since t0, slot)
        self.in_flight = 0
        self.max_in_flight = 0
        self.t0 = 0.0

    async def send(self, slot: int) -> int:
        now = asyncio.get_running_loop().time() - self.t0
        self.sends.append((now, slot))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.stall and self.stall[0] <= now < self.stall[1]:
                await asyncio.sleep(self.stall[1] - now + self.service)
            else:
                await asyncio.sleep(self.service)
            return self.status
        finally:
            self.in_flight -= 1


def load(server: FakeServer, **kwargs: object) -> LoadStats:
    async def main() -> LoadStats:
        server.t0 = asyncio.get_running_loop().time()
        return await run_load(server.send, **kwargs)  # type: ignore[arg-type]
    return run_virtual(main())


def test_requests_follow_the_schedule() -> None:
    server = FakeServer()
    stats = load(server, rate=50.0, duration=2.0, connections=8)
    assert stats.scheduled == stats.sent == stats.ok == 100
    assert stats.complete and stats.errors == {}
    times = sorted(t for t, _ in server.sends)
    for i, t in enumerate(times):
        # Woken up to TIMER_SLACK early (so a late timer is not billed to the server), never late.
        assert i / 50 - TIMER_SLACK - 1e-9 <= t <= i / 50 + 1e-9
    assert stats.achieved_rate == pytest.approx(50.0, rel=0.01)
    assert stats.throughput == pytest.approx(50.0)
    assert stats.connection_waits == 0


def test_a_slow_server_does_not_slow_the_generator_down() -> None:
    # 0.5 s per request at 100/s needs 50 connections; with 64 the schedule is kept exactly.
    server = FakeServer(service=0.5)
    stats = load(server, rate=100.0, duration=3.0, connections=64)
    times = sorted(t for t, _ in server.sends)
    assert len(times) == 300
    assert times[-1] == pytest.approx(2.99 - TIMER_SLACK)
    assert server.max_in_flight <= 51           # 50, plus one sent early as another ends
    p = percentiles(stats.latency)
    assert p["latency_p50"] == pytest.approx(0.5, rel=0.01)
    assert p["latency_max"] == pytest.approx(0.5, rel=0.01)
    assert stats.achieved_rate == pytest.approx(100.0, rel=0.01)


def test_a_stall_shows_in_the_tail_with_open_loop_accounting() -> None:
    # 1000 requests at 100/s; the server stops for 1 s at t = 2 s. The 100 requests scheduled
    # during the stall wait for it to end: latencies from 1.0 s down to 0.01 s.
    server = FakeServer(service=0.002, stall=(2.0, 3.0))
    stats = load(server, rate=100.0, duration=10.0, connections=4)
    p = percentiles(stats.latency)
    assert p["latency_p50"] == pytest.approx(0.002, rel=0.01)
    assert p["latency_max"] == pytest.approx(1.0, rel=0.01)
    # The 10 largest of 1000 are 0.91 s and up: p99 reports the stall, as users saw it.
    assert 0.85 <= p["latency_p99"] <= 0.95
    assert p["latency_p90"] >= 0.005
    slow = sum(1 for v in _values(stats.latency) if v >= 0.5)
    assert 48 <= slow <= 52
    # The uncorrected view (from the actual send) is what a closed-loop tool would report: only
    # the requests on the 4 connections saw the stall, and p99 is the service time.
    service = percentiles(stats.service)
    assert service["latency_p99"] == pytest.approx(0.002, rel=0.01)
    assert stats.connection_waits > 80
    assert stats.max_connection_wait == pytest.approx(0.96, abs=0.02)


def test_concurrency_is_bounded_and_queued_requests_keep_their_clock() -> None:
    # 2 connections at 0.1 s per request serve 20/s; 100/s for 1 s piles up a queue. Request k
    # completes at (k // 2 + 1) * 0.1 s, so the last (due at 0.99 s) ends at 5.0 s.
    server = FakeServer(service=0.1)
    stats = load(server, rate=100.0, duration=1.0, connections=2)
    assert server.max_in_flight == 2
    assert {slot for _, slot in server.sends} == {0, 1}
    assert stats.ok == 100
    assert percentiles(stats.latency)["latency_max"] == pytest.approx(5.0 - 0.99, rel=0.01)
    assert percentiles(stats.service)["latency_max"] == pytest.approx(0.1, rel=0.01)
    assert stats.achieved_rate == pytest.approx(100 / 5.0, rel=0.05)
    assert stats.throughput == pytest.approx(100 / 5.0, rel=0.05)


def test_errors_are_counted_by_kind() -> None:
    calls = 0

    async def send(slot: int) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.001)
        if calls % 10 == 1:
            raise TransportError("connect", "connection refused")
        if calls % 10 == 2:
            await asyncio.sleep(0.5)
            raise TimeoutError()
        if calls % 10 == 3:
            raise ConnectionResetError("reset by peer")
        return 500 if calls % 10 == 4 else 200

    stats = run_virtual(run_load(send, rate=100.0, duration=1.0, connections=16))
    assert stats.errors == {"connect": 10, "timeout": 10, "transport": 10, "http_500": 10}
    assert stats.ok == 60
    assert stats.requests == 100
    assert stats.error_rate == pytest.approx(0.4)
    assert stats.first_error == "connect: connection refused"
    # Responses (any status) and timeouts have a latency; refused and broken requests do not.
    assert stats.latency.get_total_count() == 80
    assert percentiles(stats.latency)["latency_max"] == pytest.approx(0.501, rel=0.01)


def test_classify_error() -> None:
    assert classify_error(TransportError("timeout", "x")) == "timeout"
    assert classify_error(asyncio.TimeoutError()) == "timeout"
    assert classify_error(ConnectionRefusedError()) == "connect"
    assert classify_error(ValueError("bad")) == "transport"


def test_a_server_that_never_answers_is_bounded_by_the_drain_timeout() -> None:
    async def send(slot: int) -> int:
        await asyncio.sleep(3600)
        return 200

    async def main() -> tuple[LoadStats, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        stats = await run_load(send, rate=10.0, duration=1.0, connections=4, drain_timeout=2.0)
        return stats, loop.time() - start

    stats, took = run_virtual(main())
    assert took == pytest.approx(0.9 + 2.0)
    assert stats.complete
    assert stats.sent == 4                      # the other 6 never got a connection
    assert stats.errors == {"timeout": 10}
    assert stats.error_rate == 1.0
    assert stats.abandoned == 4


def test_stop_at_ends_the_load_early_with_partial_stats() -> None:
    server = FakeServer(service=0.01)

    async def main() -> LoadStats:
        loop = asyncio.get_running_loop()
        server.t0 = loop.time()
        return await run_load(server.send, rate=100.0, duration=5.0, connections=8,
                              stop_at=loop.time() + 1.0)

    stats = run_virtual(main())
    assert stats.stopped == "deadline" and not stats.complete
    assert 95 <= stats.sent <= 101
    assert stats.errors == {}                   # cut short, not failed


def test_abort_is_checked_while_the_load_runs() -> None:
    server = FakeServer(service=0.01)
    seen: list[float] = []

    def abort() -> bool:
        return asyncio.get_running_loop().time() - server.t0 >= 0.5

    stats = load(server, rate=100.0, duration=5.0, connections=8, abort=abort, progress=seen.append)
    assert stats.stopped == "aborted"
    assert stats.sent <= 60
    assert seen == sorted(seen) and 0 < seen[-1] < 0.2


def test_progress_reports_the_share_of_the_schedule() -> None:
    seen: list[float] = []
    load(FakeServer(), rate=20.0, duration=2.0, connections=4, progress=seen.append)
    assert len(seen) >= 15
    assert seen == sorted(seen)
    assert 0 < seen[0] and seen[-1] <= 1.0


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        run_virtual(run_load(FakeServer().send, rate=0, duration=1.0, connections=1))


def test_virtual_time_reports_a_deadlock() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()   # nothing will ever set it

    with pytest.raises(RuntimeError, match="deadlock"):
        run_virtual(main())


def test_histogram_helpers() -> None:
    h = new_histogram()
    for ms in range(1, 1001):
        record_seconds(h, ms / 1000)
    record_seconds(h, 3600.0)                   # beyond the range: clamped, not dropped
    p = percentiles(h)                          # 3 significant digits, plus the rank rounding
    assert p["latency_p50"] == pytest.approx(0.5, rel=0.005)
    assert p["latency_p90"] == pytest.approx(0.9, rel=0.005)
    assert p["latency_p99"] == pytest.approx(0.99, rel=0.005)
    assert p["latency_max"] == pytest.approx(HIGHEST_US / 1e6, rel=0.005)
    assert p["latency_p50"] <= p["latency_p90"] <= p["latency_p99"] <= p["latency_p999"] <= p["latency_max"]
    assert percentiles(new_histogram()) == {}
    merged = merge_histograms([h, h, new_histogram()])
    assert merged.get_total_count() == 2 * 1001


def _values(histogram) -> list[float]:  # type: ignore[no-untyped-def]
    """Every recorded value in seconds (each bucket's value repeated by its count)."""
    values: list[float] = []
    for item in histogram.get_recorded_iterator():
        values += [item.value_iterated_to / 1e6] * item.count_at_value_iterated_to
    return values
