"""HTTP-endpoint targets: an open-loop load at a fixed rate, latency percentiles per period.

:func:`measure_http` optionally starts the benchmark's server (:class:`~.server.ManagedServer`),
then runs ``settings.warmup`` short warmup periods and ``settings.processes`` periods of
``http.duration`` seconds each at ``http.rate`` requests per second (:func:`~.loadgen.run_load`).
Each period is one worker: it gives one sample of each latency percentile (seconds, measured from
each request's intended start, so queueing behind a stall counts), of throughput and of
error rate. The periods share one set of keep-alive connections, so only the first warmup
pays for connecting.

Requests go through :class:`HttpClient`, a small HTTP/1.1 client: one keep-alive connection per
load-generator slot and a request encoded once, because a general-purpose client's per-request
work (pooling, cookies, redirects, header models) would cap the rate this generator can offer
long before the server under test saturates.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence
from urllib.parse import urlsplit

from .. import __version__
from ..config import BenchmarkSpec, HttpSpec
from ..metrics import SUPPORTED_METRICS
from ..records import BenchmarkResult, ResultStatus, Sample
from .outcome import failed_result
from .process import describe_exit
from .loadgen import LoadStats, Send, TransportError, merge_histograms, percentiles, run_load
from .server import ManagedServer, ServerError

#: Longest warmup period: warmup only has to open connections and warm caches.
WARMUP_PERIOD = 1.0
#: A period sending below this share of the target rate gets a warning.
RATE_SHORTFALL = 0.95
#: Requests per period for p99.9 to differ from the maximum (and a tenth of it for p99).
TAIL_REQUESTS = 1000


class MalformedResponse(Exception):
    """The server's answer is not valid HTTP/1.x."""


class ConnectionClosed(Exception):
    """The connection closed before the first byte of a response."""


async def read_response(reader: asyncio.StreamReader, *, head: bool = False) -> tuple[int, bool]:
    """Read one HTTP/1.x response, discarding its body; return (status, connection reusable).

    Handles Content-Length, chunked and read-until-close bodies, interim 1xx responses, and
    responses without a body (HEAD, 204, 304).
    """
    first = True
    while True:
        try:
            block = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if first and not exc.partial:
                raise ConnectionClosed() from None
            raise MalformedResponse("the connection closed in the middle of the response head") from None
        except ConnectionResetError:
            if first:
                raise ConnectionClosed() from None
            raise
        first = False
        status_line, _, header_block = block.partition(b"\r\n")
        version, _, rest = status_line.partition(b" ")
        if not version.startswith(b"HTTP/1.") or not rest[:3].isdigit():
            raise MalformedResponse(f"not an HTTP/1.x status line: {status_line[:60]!r}")
        status = int(rest[:3])
        if status == 101:
            return status, False       # switched protocols: no more HTTP/1.1 on this connection
        if not 100 <= status < 200:
            break                      # a final response (interim 1xx ones are skipped)
    length: int | None = None
    chunked = False
    close = version == b"HTTP/1.0"
    for line in header_block.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            value = value.lower()
            if b"close" in value:
                close = True
            elif b"keep-alive" in value:
                close = False
    if head or status in (204, 304):
        return status, not close
    if chunked:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass               # trailer fields
                break
            await _discard(reader, size + 2)
    elif length is not None:
        await _discard(reader, length)
    else:
        while await reader.read(65536):
            pass
        close = True
    return status, not close


async def _discard(reader: asyncio.StreamReader, size: int) -> None:
    while size > 0:
        chunk = await reader.read(min(size, 65536))
        if not chunk:
            raise MalformedResponse("the connection closed in the middle of the response body")
        size -= len(chunk)


class HttpClient:
    """Sends the one request of an :class:`HttpSpec`, one keep-alive connection per slot.

    ``send(slot)`` returns the response's status, or raises
    :class:`~.loadgen.TransportError` (kind ``connect``, ``timeout`` or ``transport``) when no
    response came within ``request_timeout``. No proxy, no redirects, no cookies: the endpoint
    itself is measured. Raises ValueError for a URL or header it cannot send.
    """

    def __init__(self, http: HttpSpec) -> None:
        url = urlsplit(http.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"cannot send to {http.url!r}: the url needs http:// or https:// and a host")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if url.scheme == "https" else None
        self.timeout = http.request_timeout
        self.head = http.method == "HEAD"
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        headers = {"host": ("Host", f"{host}:{url.port}" if url.port else host),
                   "user-agent": ("User-Agent", f"perfloop/{__version__}"),
                   "accept": ("Accept", "*/*")}
        for name, value in http.headers.items():
            if any(c in name + value for c in "\r\n") or not name.strip():
                raise ValueError(f"header {name!r} has an empty name or a line break")
            if name.lower() not in ("content-length", "transfer-encoding"):
                headers[name.lower()] = (name, value)
        body = http.body.encode() if http.body is not None else b""
        if body or http.method in ("POST", "PUT", "PATCH"):
            headers["content-length"] = ("Content-Length", str(len(body)))
        lines = [f"{http.method} {target} HTTP/1.1", *(f"{n}: {v}" for n, v in headers.values())]
        try:
            self.request = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body
        except UnicodeEncodeError as exc:
            raise ValueError(f"the url or a header of {http.url!r} is not ASCII: percent-encode it") from exc
        self._connections: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def send(self, slot: int) -> int:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(slot)
        except TimeoutError:
            self._drop(slot)
            raise TransportError("timeout", f"no response within {self.timeout:g} s") from None

    async def _exchange(self, slot: int) -> int:
        connection = self._connections.get(slot)
        reused = connection is not None
        if connection is None:
            connection = await self._connect(slot)
        try:
            return await self._roundtrip(slot, *connection)
        except ConnectionClosed:
            if not reused:
                raise TransportError("transport", "the server closed the connection without answering") from None
        # A kept-alive connection the server had already closed (the usual race, as the request
        # went out): the request did not reach the application, so send it on a fresh one.
        try:
            return await self._roundtrip(slot, *await self._connect(slot))
        except ConnectionClosed:
            raise TransportError("transport", "the server closed the connection without answering") from None

    async def _connect(self, slot: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            connection = await asyncio.open_connection(self.host, self.port, ssl=self.ssl)
        except OSError as exc:
            raise TransportError("connect", f"{self.host}:{self.port}: {exc.strerror or exc}") from None
        self._connections[slot] = connection
        return connection

    async def _roundtrip(self, slot: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
        try:
            writer.write(self.request)
            status, reusable = await read_response(reader, head=self.head)
        except ConnectionClosed:
            self._drop(slot)
            raise
        except (OSError, ValueError, MalformedResponse, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as exc:
            self._drop(slot)
            raise TransportError("transport", str(exc) or type(exc).__name__) from None
        if not reusable:
            self._drop(slot)
        return status

    def _drop(self, slot: int) -> None:
        connection = self._connections.pop(slot, None)
        if connection is not None:
            connection[1].close()

    async def aclose(self) -> None:
        """Close every connection (and wait, briefly, for the sockets to be released)."""
        writers = [writer for _, writer in self._connections.values()]
        self._connections.clear()
        for writer in writers:
            writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)


@dataclass(frozen=True)
class Period:
    """One stretch of load at the target rate; measured periods are the statistical workers."""

    worker: int
    warmup: bool
    duration: float


def plan_periods(spec: BenchmarkSpec) -> list[Period]:
    """``settings.warmup`` short warmup periods, then ``settings.processes`` measured ones."""
    assert spec.http is not None
    settings = spec.settings
    warm = min(spec.http.duration, WARMUP_PERIOD)
    periods = [Period(i, True, warm) for i in range(settings.warmup)]
    periods += [Period(settings.warmup + i, False, spec.http.duration) for i in range(settings.processes)]
    return periods


def period_values(stats: LoadStats) -> dict[str, float]:
    """The seven metrics of one period; latencies only when some request got a response."""
    values = percentiles(stats.latency)
    values["throughput"] = stats.throughput
    values["error_rate"] = stats.error_rate
    return values


def period_samples(stats: LoadStats, period: Period, metrics: Sequence[str]) -> list[Sample]:
    """One sample per metric in ``metrics`` that the period measured, tagged with its worker."""
    values = period_values(stats)
    return [Sample(m, values[m], worker=period.worker, index=0, warmup=period.warmup)
            for m in metrics if m in values]


@dataclass
class LoadOutcome:
    """The periods a load ran (the last one possibly cut short) and why it stopped early."""

    runs: list[tuple[Period, LoadStats]]
    stopped: str | None = None       # None, "deadline" or "aborted"

    def measured(self) -> list[LoadStats]:
        return [stats for period, stats in self.runs if not period.warmup and stats.complete]


async def run_periods(plan: Sequence[Period], send: Send, http: HttpSpec, *, stop_at: float | None = None,
                      abort: Callable[[], bool] | None = None,
                      on_progress: Callable[[float], None] | None = None) -> LoadOutcome:
    """Run ``plan`` period after period with ``send``; stop at ``stop_at`` (loop time) or abort."""
    loop = asyncio.get_running_loop()
    total = sum(p.duration for p in plan) or 1.0
    done = 0.0
    outcome = LoadOutcome(runs=[])
    for period in plan:
        if stop_at is not None and loop.time() >= stop_at:
            outcome.stopped = "deadline"
            break
        progress = None
        if on_progress is not None:
            progress = _scaled(on_progress, done / total, period.duration / total)
        stats = await run_load(send, rate=http.rate, duration=period.duration,
                               connections=http.connections, drain_timeout=http.request_timeout,
                               stop_at=stop_at, abort=abort, progress=progress)
        outcome.runs.append((period, stats))
        done += period.duration
        if not stats.complete:
            outcome.stopped = stats.stopped
            break
        if on_progress is not None:
            on_progress(done / total)
        if abort is not None and abort():
            outcome.stopped = "aborted"
            break
    return outcome


def _scaled(report: Callable[[float], None], offset: float, scale: float) -> Callable[[float], None]:
    """A period's progress (0 to 1) as progress of the whole plan."""
    return lambda fraction: report(offset + fraction * scale)


def answered(stats: LoadStats) -> int:
    """Requests that got an HTTP response, whatever its status."""
    return stats.ok + sum(n for kind, n in stats.errors.items() if kind.startswith("http_"))


def _error_summary(errors: dict[str, int]) -> str:
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(errors.items(), key=lambda kv: -kv[1]))


def _sum_errors(stats: Sequence[LoadStats]) -> dict[str, int]:
    total: dict[str, int] = {}
    for s in stats:
        for kind, count in s.errors.items():
            total[kind] = total.get(kind, 0) + count
    return total


def load_warnings(spec: BenchmarkSpec, measured: Sequence[LoadStats]) -> list[str]:
    """What the user should know about the load itself: errors, a saturated generator, a thin tail."""
    assert spec.http is not None
    http = spec.http
    warnings: list[str] = []
    if not measured:
        return warnings
    requests = sum(s.requests for s in measured)
    failed = sum(s.failed for s in measured)
    if failed:
        warnings.append(
            f"{failed} of {requests} requests failed ({_error_summary(_sum_errors(measured))}), "
            f"error_rate {failed / requests:.3g}: the latencies include the failed responses; "
            f"check {http.url} and the server's output")
    worst = min(measured, key=lambda s: s.achieved_rate)
    waits = sum(s.connection_waits for s in measured)
    sent = sum(s.sent for s in measured)
    crowded = waits > 0.05 * sent
    if worst.achieved_rate < RATE_SHORTFALL * http.rate:
        if crowded:
            cause = (f"{waits} requests found all {http.connections} connections busy: raise "
                     f"http.connections if the server has capacity to spare, or lower http.rate")
        else:
            cause = ("the generator itself is saturated (its CPU cannot keep up, so latencies "
                     "include its own delay): lower http.rate or use more connections")
        warnings.append(f"the load generator sent {worst.achieved_rate:.0f} requests/s of the "
                        f"{http.rate:g} asked ({worst.achieved_rate / http.rate:.0%}); {cause}")
    elif crowded:
        longest = max(s.max_connection_wait for s in measured)
        warnings.append(f"{waits} of {sent} requests found all {http.connections} connections busy "
                        f"(waiting up to {longest * 1e3:.0f} ms, which is part of their latency, as "
                        f"for real clients): the server does not keep up with {http.rate:g} "
                        f"requests/s; raise http.connections if it has capacity to spare")
    per_period = min(s.requests for s in measured)
    tail = [m for m, n in (("latency_p99", TAIL_REQUESTS // 10), ("latency_p999", TAIL_REQUESTS))
            if m in spec.metrics and per_period < n]
    if tail:
        need = TAIL_REQUESTS if "latency_p999" in tail else TAIL_REQUESTS // 10
        verb = "is" if len(tail) == 1 else "are"
        warnings.append(f"only {per_period} requests per period: {' and '.join(tail)} {verb} little "
                        f"more than the largest value; raise http.duration or http.rate for at least "
                        f"{need} requests per period")
    unsupported = [m for m in spec.metrics if m not in SUPPORTED_METRICS["http"]]
    if unsupported:
        warnings.append(f"an http benchmark does not measure {', '.join(unsupported)}; remove it from "
                        f"metrics")
    return warnings


def load_extra(spec: BenchmarkSpec, outcome: LoadOutcome) -> dict[str, object]:
    """The load's details for the result: the merged histograms, request counts, rates."""
    assert spec.http is not None
    measured = outcome.measured()
    sent = sum(s.sent for s in measured)
    window = sum(s.send_window for s in measured)
    extra: dict[str, object] = {
        "target_rate": spec.http.rate,
        "achieved_rate": sent / window if window else 0.0,
        "connections": spec.http.connections,
        "requests": sum(s.requests for s in measured),
        "responses": sum(answered(s) for s in measured),
        "errors": _sum_errors(measured),
        "connection_waits": sum(s.connection_waits for s in measured),
        "max_connection_wait": max((s.max_connection_wait for s in measured), default=0.0),
        "periods": [{"worker": p.worker, "warmup": p.warmup, "complete": s.complete,
                     "requests": s.requests, "sent": s.sent, "errors": dict(s.errors),
                     "achieved_rate": s.achieved_rate, "throughput": s.throughput,
                     "elapsed": s.elapsed, "busy": s.generator_busy, "first_error": s.first_error}
                    for p, s in outcome.runs],
        "histogram_unit": "us",
    }
    latency = merge_histograms([s.latency for s in measured])
    if latency.get_total_count():
        # Latency from the intended start (open loop); "service" from the actual send. Decode
        # with hdrh's HdrHistogram.decode().
        extra["histogram"] = latency.encode().decode("ascii")
        extra["service_histogram"] = merge_histograms([s.service for s in measured]).encode().decode("ascii")
    return extra


def measure_http(spec: BenchmarkSpec, *, deadline: float | None = None,
                 on_progress: Callable[[float], None] | None = None) -> BenchmarkResult:
    """Measure an HTTP target: start its server (if any), load it, stop the server.

    ``deadline`` is an absolute ``time.monotonic()`` value for the whole benchmark. Never raises
    for a failing target: a server that will not start, dies during the load, or a load where
    no request got a response gives a ``failed`` result; the deadline a ``timeout`` result;
    each with the samples of the periods completed before and the server's output tail.
    Ctrl-C stops the load and the server, then propagates.
    """
    if spec.http is None:
        raise ValueError(f"benchmark {spec.name!r} has no http table (kind {spec.kind!r})")
    http = spec.http
    started = time.monotonic()
    plan = plan_periods(spec)
    try:
        client = HttpClient(http)
    except ValueError as exc:
        return failed_result(spec, ResultStatus.FAILED, f"{exc}; fix http for {spec.base_name!r} in perfloop.toml",
                             (), duration=time.monotonic() - started)
    server: ManagedServer | None = None
    tail: str | None = None
    exit_code: int | None = None
    try:
        with _server(spec, deadline) as server:
            abort = (lambda: not server.alive()) if server is not None else None
            outcome = asyncio.run(_load(plan, client, http, deadline, abort, on_progress))
            if server is not None:
                exit_code = server.exit_code
                tail = server.tail()
    except ServerError as exc:
        status = ResultStatus.TIMEOUT if exc.timed_out else ResultStatus.FAILED
        return failed_result(spec, status, str(exc), (), stderr_tail=exc.tail,
                             duration=time.monotonic() - started)

    samples = [sample for period, stats in outcome.runs if stats.complete
               for sample in period_samples(stats, period, spec.metrics)]
    extra = load_extra(spec, outcome)
    duration = time.monotonic() - started
    measured = outcome.measured()
    where = f"{len(measured)} of {spec.settings.processes} measured periods"
    if exit_code is not None:
        extra["server_exit_code"] = exit_code
        return failed_result(spec, ResultStatus.FAILED,
                             f"the server {describe_exit(exit_code)} during the load (after {where}); "
                             f"its output ends with the lines shown", samples, stderr_tail=tail,
                             duration=duration, extra=extra)
    if outcome.stopped == "deadline":
        return failed_result(spec, ResultStatus.TIMEOUT,
                             f"stopped at the benchmark's timeout ({spec.settings.timeout:g} s) after "
                             f"{where}; raise timeout for {spec.base_name!r} in perfloop.toml, or lower "
                             f"processes or http.duration", samples, stderr_tail=tail,
                             duration=duration, extra=extra)
    every = [stats for _, stats in outcome.runs]
    if not sum(answered(s) for s in every):
        first = next((s.first_error for s in every if s.first_error), "no error recorded")
        total = sum(s.requests for s in every)
        return failed_result(spec, ResultStatus.FAILED,
                             f"none of the {total} requests to {http.url} got a response "
                             f"({_error_summary(_sum_errors(every))}); first error: {first}",
                             samples, stderr_tail=tail, duration=duration, extra=extra)
    warnings = load_warnings(spec, measured)
    # The server's output helps explain failed requests; without any it is noise.
    show_tail = tail if any(s.failed for s in measured) else None
    return BenchmarkResult(name=spec.name, kind=spec.kind, status=ResultStatus.OK, samples=tuple(samples),
                           params=spec.params, warnings=tuple(warnings), stderr_tail=show_tail or None,
                           duration=duration, extra=extra)


@contextlib.contextmanager
def _server(spec: BenchmarkSpec, deadline: float | None) -> Iterator[ManagedServer | None]:
    if spec.server is None:
        yield None
        return
    with ManagedServer(spec.server, spec.root, deadline=deadline) as server:
        yield server


async def _load(plan: Sequence[Period], client: HttpClient, http: HttpSpec, deadline: float | None,
                abort: Callable[[], bool] | None,
                on_progress: Callable[[float], None] | None) -> LoadOutcome:
    loop = asyncio.get_running_loop()
    # The deadline is on time.monotonic(); the load runs on the loop's clock.
    stop_at = None if deadline is None else loop.time() + (deadline - time.monotonic())
    try:
        return await run_periods(plan, client.send, http, stop_at=stop_at, abort=abort,
                                 on_progress=on_progress)
    finally:
        await client.aclose()
