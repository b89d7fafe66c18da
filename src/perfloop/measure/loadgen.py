"""Open-loop load generation: a fixed request rate, latencies free of coordinated omission.

Request ``i`` of a load is *scheduled* at ``t0 + i / rate``, whatever happened to the requests
before it. A closed-loop generator (send, wait, send again) stops sending while the server
stalls, so the requests that would have met the stall are never made and the stall shows up as a
single slow sample: "coordinated omission". Here the schedule never waits for the server, and a
request's latency runs from its *intended* start to the end of its response, so a request that
queued behind a stall (waiting for one of the ``connections`` to come free) carries that wait in
its latency, as a real user's request would.

The generator is transport-agnostic: it calls ``send(slot)``, an async function that performs
one request on connection ``slot`` (``0 <= slot < connections``, one request at a time per slot)
and returns the HTTP status, or raises :class:`TransportError` (or any exception, classified by
:func:`classify_error`) when no response came. Its clock is the running event loop's
(``loop.time()``): run it on a :class:`VirtualTimeLoop` and a whole load, stalls included,
plays out in simulated time, deterministically and without sleeping.

Latencies are recorded in microseconds in an HdrHistogram (1 µs to 60 s, 3 significant digits).
"""

from __future__ import annotations

import asyncio
import selectors
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from hdrh.histogram import HdrHistogram

#: Histogram range and precision: 1 µs to 60 s, 3 significant digits (0.1% resolution).
LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3

# epoll rounds timer waits *up* to the next millisecond, so a request woken exactly at its
# intended time would start up to 1 ms late and that lateness would be billed to the server.
# Waking this much early and starting the latency clock at the actual send instead removes the
# bias; sending up to 1 ms early does not change the offered rate.
TIMER_SLACK = 0.001

# How often a running load checks its stop conditions and reports progress.
TICK = 0.1

Send = Callable[[int], Awaitable[int]]


class TransportError(Exception):
    """A request that got no HTTP response. ``kind`` says why: connect, timeout or transport."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def classify_error(exc: BaseException) -> str:
    """The error kind of a failed request: ``connect``, ``timeout`` or ``transport``."""
    if isinstance(exc, TransportError):
        return exc.kind
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, (ConnectionRefusedError, ConnectionAbortedError)):
        return "connect"
    return "transport"


def new_histogram() -> HdrHistogram:
    """An empty latency histogram in microseconds (1 µs to 60 s, 3 significant digits)."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record_seconds(histogram: HdrHistogram, seconds: float) -> None:
    """Record a latency given in seconds; values beyond the range are clamped, never dropped."""
    histogram.record_value(min(max(int(seconds * 1e6), LOWEST_US), HIGHEST_US))


@dataclass
class LoadStats:
    """What one load (one period at a fixed rate) produced.

    ``latency`` runs from each request's intended start (open-loop, corrected for coordinated
    omission); ``service`` from its actual send. The two differ by the time requests queued in
    the generator waiting for a free connection: a large gap means the server could not keep up
    with ``rate`` on ``connections`` connections.
    """

    rate: float
    duration: float
    connections: int
    scheduled: int                     # requests the schedule holds: round(rate * duration)
    latency: HdrHistogram = field(default_factory=new_histogram)
    service: HdrHistogram = field(default_factory=new_histogram)
    sent: int = 0                      # requests handed to the transport
    ok: int = 0                        # responses with status < 400
    errors: dict[str, int] = field(default_factory=dict)  # kind (connect, timeout, http_500...) -> count
    first_error: str | None = None     # the first failure's message, for diagnosis
    elapsed: float = 0.0               # from t0 to the last response (or the stop)
    send_window: float = 0.0           # from t0 to the last send, plus one interval
    connection_waits: int = 0          # requests that found every connection busy at their time
    max_connection_wait: float = 0.0   # longest such wait, seconds
    max_send_lag: float = 0.0          # latest start of a request that had a free connection
    abandoned: int = 0                 # in flight when the load was stopped early
    cpu_time: float = 0.0              # CPU seconds the generator's process used during the load
    stopped: str | None = None         # None, "deadline" or "aborted": the load did not finish

    @property
    def complete(self) -> bool:
        return self.stopped is None

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def requests(self) -> int:
        """Requests the load issued and accounted for (sent, or failed waiting for a connection)."""
        return self.ok + self.failed

    @property
    def error_rate(self) -> float:
        return self.failed / self.requests if self.requests else 0.0

    @property
    def throughput(self) -> float:
        """Successful responses per second over the scheduled span (or longer, if it overran)."""
        span = max(self.scheduled / self.rate, self.elapsed)
        return self.ok / span if span > 0 else 0.0

    @property
    def generator_busy(self) -> float:
        """Share of the load's wall time the generator's process spent on the CPU.

        Near 1 the generator (one event loop, one core) is saturated and its own delays are
        in the latencies; on a shared machine it can fall behind well below 1, when other
        processes hold the cores. Meaningless on simulated time.
        """
        return self.cpu_time / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def achieved_rate(self) -> float:
        """Requests actually sent per second: below ``rate`` when the generator fell behind."""
        return self.sent / self.send_window if self.send_window > 0 else 0.0

    def add_error(self, kind: str, message: str, count: int = 1) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + count
        if self.first_error is None:
            self.first_error = f"{kind}: {message}" if message else kind


class _Schedule:
    """The fixed-rate schedule of one load: which request is due next, and what came back."""

    def __init__(self, send: Send, stats: LoadStats, now: Callable[[], float], interval: float) -> None:
        self.send, self.stats, self.now, self.interval = send, stats, now, interval
        self.scheduled = stats.scheduled
        self.t0 = self.last_send = self.last_end = now()
        self.next_index = 0
        self.in_flight = 0

    async def worker(self, slot: int) -> None:
        # One worker per connection: a worker takes the next request of the schedule as soon as
        # its connection is free, so requests queue for connections, never for the schedule.
        now, stats = self.now, self.stats
        while self.next_index < self.scheduled:
            intended = self.t0 + self.next_index * self.interval
            self.next_index += 1
            await self._wait_until(intended)
            start = now()
            clock_start = start if start < intended else intended
            stats.sent += 1
            self.last_send = start
            self.in_flight += 1
            try:
                status = await self.send(slot)
            except Exception as exc:  # a failed request is a measurement, not a crash
                end = now()
                self.in_flight -= 1
                kind = classify_error(exc)
                stats.add_error(kind, str(exc))
                if kind == "timeout":
                    # It lasted at least this long: keep the lower bound rather than hide the tail.
                    record_seconds(stats.latency, end - clock_start)
            else:
                end = now()
                self.in_flight -= 1
                record_seconds(stats.latency, end - clock_start)
                record_seconds(stats.service, end - start)
                if status >= 400:
                    stats.add_error(f"http_{status}", "")
                else:
                    stats.ok += 1
            self.last_end = end

    async def _wait_until(self, intended: float) -> None:
        stats = self.stats
        wait = intended - self.now()
        if wait > TIMER_SLACK:
            await asyncio.sleep(wait - TIMER_SLACK)
            lag = self.now() - intended
            if lag > stats.max_send_lag:
                stats.max_send_lag = lag
        elif wait < -TIMER_SLACK:
            # Picked up late: every connection was busy when this request was due.
            stats.connection_waits += 1
            if -wait > stats.max_connection_wait:
                stats.max_connection_wait = -wait

    async def watch(self, workers: list[asyncio.Task[None]], *, limit: float, drain_end: float,
                    stop_at: float | None, abort: Callable[[], bool] | None,
                    progress: Callable[[float], None] | None) -> None:
        """Wait for the workers until ``limit``, an abort or the end; cancel those left."""
        stats, now = self.stats, self.now
        try:
            pending: set[asyncio.Task[None]] = set(workers)
            while pending:
                remaining = limit - now()
                if remaining <= 0:
                    stats.stopped = "deadline" if stop_at is not None and stop_at <= drain_end else None
                    break
                _, pending = await asyncio.wait(pending, timeout=min(remaining, TICK))
                if pending and abort is not None and abort():
                    stats.stopped = "aborted"
                    break
                if pending and progress is not None:
                    progress(min(1.0, (now() - self.t0) / (self.scheduled * self.interval)))
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)


async def run_load(send: Send, *, rate: float, duration: float, connections: int,
                   drain_timeout: float = 10.0, stop_at: float | None = None,
                   abort: Callable[[], bool] | None = None,
                   progress: Callable[[float], None] | None = None) -> LoadStats:
    """Send ``round(rate * duration)`` requests at a fixed rate on at most ``connections`` at once.

    Bounded in count (the schedule) and in time: after the last scheduled send, requests still
    in flight or still waiting for a connection get ``drain_timeout`` seconds, then count as
    ``timeout`` errors. ``stop_at`` (a ``loop.time()`` value) and ``abort()`` (checked every
    :data:`TICK` seconds) end the load early; the stats then say ``stopped`` and are partial.
    ``progress`` receives the fraction of the schedule elapsed, every tick.
    """
    if rate <= 0 or duration <= 0 or connections < 1:
        raise ValueError("rate and duration must be > 0 and connections >= 1")
    now = asyncio.get_running_loop().time
    interval = 1.0 / rate
    scheduled = max(1, round(rate * duration))
    stats = LoadStats(rate=rate, duration=duration, connections=connections, scheduled=scheduled)
    cpu_start = time.process_time()
    plan = _Schedule(send, stats, now, interval)
    t0 = plan.t0
    workers = [asyncio.create_task(plan.worker(slot)) for slot in range(min(connections, scheduled))]
    drain_end = t0 + (scheduled - 1) * interval + drain_timeout
    limit = drain_end if stop_at is None else min(drain_end, stop_at)
    await plan.watch(workers, limit=limit, drain_end=drain_end, stop_at=stop_at, abort=abort,
                     progress=progress)
    stats.abandoned = plan.in_flight
    unfinished = plan.in_flight + scheduled - stats.sent
    if stats.complete and unfinished:
        # Past the drain limit: the requests in flight and those that never got a connection
        # waited longer than any answer is worth. They failed; they are not forgotten.
        stats.add_error("timeout", f"no response within {drain_timeout:g} s after the last "
                                   "scheduled request", unfinished)
    stats.elapsed = (now() if unfinished else plan.last_end) - t0
    stats.cpu_time = time.process_time() - cpu_start
    stats.send_window = plan.last_send - t0 + interval if stats.sent else 0.0
    return stats


def merge_histograms(histograms: list[HdrHistogram]) -> HdrHistogram:
    """One histogram holding every value of ``histograms``."""
    merged = new_histogram()
    for h in histograms:
        if h.get_total_count():
            merged.add(h)
    return merged


def percentiles(histogram: HdrHistogram) -> dict[str, float]:
    """p50, p90, p99, p99.9 and max of a microsecond histogram, in seconds (empty if no values)."""
    if not histogram.get_total_count():
        return {}
    values = histogram.get_percentile_to_value_dict([50.0, 90.0, 99.0, 99.9])
    return {
        "latency_p50": values[50.0] / 1e6,
        "latency_p90": values[90.0] / 1e6,
        "latency_p99": values[99.0] / 1e6,
        "latency_p999": values[99.9] / 1e6,
        "latency_max": histogram.get_max_value() / 1e6,
    }


class _JumpingSelector(selectors.BaseSelector):
    """A selector that, when nothing is ready, advances its loop's clock instead of waiting."""

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self.loop: VirtualTimeLoop | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("virtual time: every task waits and no timer is set (a deadlock)")
        assert self.loop is not None
        self.loop.advance(timeout)
        return []

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on simulated time: when every task waits, the clock jumps to the next timer.

    For deterministic tests and simulations of a load (``asyncio.sleep`` in a fake transport
    models service times and stalls). Real I/O still works but takes no simulated time.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._virtual_now = start
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        self._virtual_now += seconds


def run_virtual(coro: Awaitable[Any], *, start: float = 0.0) -> Any:
    """Run ``coro`` to completion on a fresh :class:`VirtualTimeLoop`."""
    loop = VirtualTimeLoop(start)
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
