"""The HTTP target: response parsing, the client, periods and warnings (fast), and measure_http
and ManagedServer against the fixture server on a loopback port (slow).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from perfloop.config import BenchmarkSpec, HttpSpec, ServerSpec, Settings
from perfloop.measure.http import (
    ConnectionClosed,
    HttpClient,
    MalformedResponse,
    load_warnings,
    measure_http,
    period_samples,
    plan_periods,
    read_response,
    run_periods,
)
from perfloop.measure.loadgen import run_load, run_virtual
from perfloop.measure.server import ManagedServer, ServerError
from perfloop.metrics import DEFAULT_METRICS
from perfloop.records import ResultStatus

FIXTURE = Path(__file__).parent / "fixtures" / "http_server.py"
METRICS = DEFAULT_METRICS["http"]


def spec_for(url: str = "http://127.0.0.1:9/fast", *, server: ServerSpec | None = None,
             processes: int = 2, warmup: int = 1, rate: float = 50.0, duration: float = 1.0,
             connections: int = 8, metrics: tuple[str, ...] = METRICS, root: str = ".") -> BenchmarkSpec:
    return BenchmarkSpec(name="api", base_name="api", kind="http",
                         settings=Settings(processes=processes, warmup=warmup, timeout=60.0),
                         metrics=metrics, server=server, root=root,
                         http=HttpSpec(url=url, rate=rate, duration=duration, connections=connections,
                                       request_timeout=5.0))


# -- response parsing and the client (no network) ---------------------------------------------

def parse(data: bytes, *, head: bool = False) -> tuple[int, bool, bytes]:
    """(status, reusable, what is left in the stream) for ``data`` fed to read_response."""
    async def main() -> tuple[int, bool, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        status, reusable = await read_response(reader, head=head)
        return status, reusable, await reader.read()
    return asyncio.run(main())


def test_read_response_with_content_length_leaves_the_next_response() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n"
    assert parse(data) == (200, True, b"HTTP/1.1 204 No Content\r\n\r\n")


def test_read_response_chunked_with_trailers() -> None:
    data = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT")
    assert parse(data) == (200, True, b"NEXT")


def test_read_response_skips_interim_responses() -> None:
    data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\nnoNEXT"
    assert parse(data) == (503, True, b"NEXT")


def test_read_response_without_a_body() -> None:
    assert parse(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", head=True) == (200, True, b"")
    assert parse(b"HTTP/1.1 304 Not Modified\r\n\r\nNEXT") == (304, True, b"NEXT")


def test_read_response_connection_rules() -> None:
    assert parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")[1] is False
    assert parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")[1] is False
    assert parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")[1] is True
    # No length: the body runs until the server closes.
    assert parse(b"HTTP/1.1 200 OK\r\n\r\nall of it") == (200, False, b"")


def test_read_response_errors() -> None:
    with pytest.raises(ConnectionClosed):
        parse(b"")
    with pytest.raises(MalformedResponse):
        parse(b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(MalformedResponse):
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    with pytest.raises(MalformedResponse):
        parse(b"HTTP/1.1 200 OK\r\nContent")


def test_client_encodes_the_request_once() -> None:
    http = HttpSpec(url="http://127.0.0.1:8000/items?page=2", method="POST",
                    headers={"Content-Type": "application/json", "host": "api.local",
                             "Content-Length": "999"}, body='{"a": 1}')
    request = HttpClient(http).request
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /items?page=2 HTTP/1.1"
    assert b"host: api.local" in lines                 # the user's Host wins
    assert b"Content-Type: application/json" in lines
    assert b"Content-Length: 8" in lines               # ours, computed from the body
    assert b"Content-Length: 999" not in lines
    assert body == b'{"a": 1}'
    plain = HttpClient(HttpSpec(url="http://[::1]:8080")).request
    assert plain.startswith(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n")


def test_client_refuses_what_it_cannot_send() -> None:
    with pytest.raises(ValueError, match="line break"):
        HttpClient(HttpSpec(url="http://127.0.0.1/", headers={"X-A": "1\r\nX-B: 2"}))
    with pytest.raises(ValueError):
        HttpClient(HttpSpec(url="ftp://127.0.0.1/"))


# -- periods, samples, warnings (simulated time) -----------------------------------------------

def test_plan_periods_warmup_first_and_short() -> None:
    plan = plan_periods(spec_for(processes=3, warmup=2, duration=5.0))
    assert [(p.worker, p.warmup, p.duration) for p in plan] == [
        (0, True, 1.0), (1, True, 1.0), (2, False, 5.0), (3, False, 5.0), (4, False, 5.0)]
    assert [p.duration for p in plan_periods(spec_for(warmup=1, duration=0.5))] == [0.5, 0.5, 0.5]


async def _ok(slot: int) -> int:
    await asyncio.sleep(0.004)
    return 200


def test_period_samples_are_seconds_and_only_the_chosen_metrics() -> None:
    stats = run_virtual(run_load(_ok, rate=100.0, duration=1.0, connections=4))
    period = plan_periods(spec_for())[1]
    samples = period_samples(stats, period, ("latency_p50", "latency_max", "throughput"))
    values = {s.metric: s.value for s in samples}
    assert set(values) == {"latency_p50", "latency_max", "throughput"}
    assert values["latency_p50"] == pytest.approx(0.004, rel=0.01)
    assert values["throughput"] == pytest.approx(100.0)
    assert all(s.worker == 1 and not s.warmup for s in samples)


def test_run_periods_stops_at_the_deadline_keeping_complete_periods() -> None:
    spec = spec_for(processes=3, warmup=1, duration=1.0)
    seen: list[float] = []

    async def main():  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        return await run_periods(plan_periods(spec), _ok, spec.http, stop_at=loop.time() + 2.5,
                                 on_progress=seen.append)

    outcome = run_virtual(main())
    assert outcome.stopped == "deadline"
    assert [(p.worker, s.complete) for p, s in outcome.runs] == [(0, True), (1, True), (2, False)]
    assert len(outcome.measured()) == 1
    assert seen == sorted(seen) and seen[-1] < 1.0


def test_warnings_for_errors_a_short_rate_and_a_thin_tail() -> None:
    async def slow_errors(slot: int) -> int:
        await asyncio.sleep(0.1)
        return 500

    spec = spec_for(rate=100.0, connections=2)
    stats = run_virtual(run_load(slow_errors, rate=100.0, duration=1.0, connections=2))
    warnings = load_warnings(spec, [stats])
    assert len(warnings) == 3
    assert "100 of 100 requests failed (http_500: 100), error_rate 1" in warnings[0]
    assert "sent 20 requests/s of the 100 asked (20%)" in warnings[1]
    assert "raise http.connections" in warnings[1]
    assert "only 100 requests per period: latency_p999" in warnings[2]
    good = run_virtual(run_load(_ok, rate=1000.0, duration=1.0, connections=16))
    assert load_warnings(spec_for(rate=1000.0), [good]) == []


def test_a_warning_when_requests_queue_for_connections() -> None:
    # 1000 requests, the server stalls 0.5 s: the schedule catches up (the rate is kept) but
    # the requests due during the stall waited for a connection.
    async def stalling(slot: int) -> int:
        now = asyncio.get_running_loop().time()
        await asyncio.sleep(0.5 if 0.2 <= now < 0.21 else 0.001)
        return 200

    stats = run_virtual(run_load(stalling, rate=1000.0, duration=1.0, connections=4))
    assert stats.achieved_rate > 0.95 * 1000
    warnings = load_warnings(spec_for(rate=1000.0, connections=4), [stats])
    assert len(warnings) == 1
    assert "found all 4 connections busy (waiting up to 49" in warnings[0]


def test_a_spec_without_http_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        measure_http(replace(spec_for(), http=None))


# -- against the fixture server on loopback ----------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixture_server(port: int, *args: str, ready_timeout: float = 10.0) -> ServerSpec:
    return ServerSpec(command=(sys.executable, str(FIXTURE), str(port), *args),
                      ready_url=f"http://127.0.0.1:{port}/health", ready_timeout=ready_timeout)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def read_pid(path: Path) -> int:
    return int(path.read_text())


@pytest.mark.slow
def test_a_short_run_gives_all_seven_metrics(tmp_path: Path) -> None:
    port = free_port()
    pidfile = tmp_path / "server.pid"
    spec = spec_for(f"http://127.0.0.1:{port}/fast",
                    server=fixture_server(port, "--pidfile", str(pidfile)), root=str(tmp_path))
    seen: list[float] = []
    result = measure_http(spec, deadline=time.monotonic() + 60, on_progress=seen.append)
    assert result.status is ResultStatus.OK, result.error
    assert result.kind == "http"
    assert set(result.metrics) == set(METRICS)
    assert sorted(result.by_worker("latency_p50")) == [1, 2]
    for worker in (1, 2):
        v = {m: result.by_worker(m)[worker][0] for m in METRICS}
        assert 0 < v["latency_p50"] <= v["latency_p90"] <= v["latency_p99"] <= v["latency_p999"] <= v["latency_max"]
        assert v["error_rate"] == 0.0
        assert v["throughput"] == pytest.approx(50.0, rel=0.1)
    assert len(result.values("latency_p50", include_warmup=True)) == 3
    assert result.extra["requests"] == 100 and result.extra["errors"] == {}
    assert result.extra["target_rate"] == 50.0 and result.extra["histogram"]
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert gone(read_pid(pidfile))


@pytest.mark.slow
def test_only_the_chosen_metrics_are_kept_and_no_server_is_needed(tmp_path: Path) -> None:
    port = free_port()
    with ManagedServer(fixture_server(port), str(tmp_path)):
        spec = spec_for(f"http://127.0.0.1:{port}/slow?ms=20", processes=1, warmup=0,
                        metrics=("latency_p50", "error_rate"))
        result = measure_http(spec, deadline=time.monotonic() + 30)
    assert result.status is ResultStatus.OK, result.error
    assert result.metrics == ["latency_p50", "error_rate"]
    assert result.values("latency_p50")[0] >= 0.02


@pytest.mark.slow
def test_an_error_endpoint_gives_error_rate_1_and_a_warning(tmp_path: Path) -> None:
    port = free_port()
    spec = spec_for(f"http://127.0.0.1:{port}/error", server=fixture_server(port), processes=1,
                    root=str(tmp_path))
    result = measure_http(spec, deadline=time.monotonic() + 60)
    assert result.status is ResultStatus.OK, result.error
    assert result.values("error_rate") == [1.0]
    assert result.values("throughput") == [0.0]
    assert result.extra["errors"] == {"http_500": 50}
    assert any("50 of 50 requests failed (http_500: 50)" in w for w in result.warnings)
    assert result.stderr_tail and "fixture server: ready" in result.stderr_tail


@pytest.mark.slow
def test_a_server_that_never_becomes_ready_fails_with_its_output(tmp_path: Path) -> None:
    port = free_port()
    spec = spec_for(f"http://127.0.0.1:{port}/fast", root=str(tmp_path),
                    server=fixture_server(port, "--unhealthy", ready_timeout=1.0))
    started = time.monotonic()
    result = measure_http(spec, deadline=time.monotonic() + 60)
    assert result.status is ResultStatus.FAILED
    assert "not ready after 1 s" in result.error and "HTTP 503" in result.error
    assert "cache is cold" in result.stderr_tail
    assert result.samples == ()
    assert time.monotonic() - started < 15


@pytest.mark.slow
def test_the_deadline_passing_while_the_server_starts_is_a_timeout(tmp_path: Path) -> None:
    port = free_port()
    pidfile = tmp_path / "server.pid"
    spec = spec_for(f"http://127.0.0.1:{port}/fast", root=str(tmp_path),
                    server=fixture_server(port, "--startup-delay", "30", "--pidfile", str(pidfile)))
    result = measure_http(spec, deadline=time.monotonic() + 1.0)
    assert result.status is ResultStatus.TIMEOUT
    assert re.search(r"time ran out after [\d.]+ s waiting for the server", result.error)
    assert "starting on port" in result.stderr_tail
    assert gone(read_pid(pidfile))


@pytest.mark.slow
def test_a_server_that_exits_at_start_fails_with_its_output(tmp_path: Path) -> None:
    port = free_port()
    spec = spec_for(f"http://127.0.0.1:{port}/fast", root=str(tmp_path),
                    server=fixture_server(port, "--fail-at-start"))
    result = measure_http(spec, deadline=time.monotonic() + 60)
    assert result.status is ResultStatus.FAILED
    assert "exited with code 2 before it was ready" in result.error
    assert "cannot open database 'missing.db'" in result.stderr_tail


@pytest.mark.slow
def test_a_server_that_crashes_during_the_load_is_reported_as_died(tmp_path: Path) -> None:
    # Warmup sends 50 requests; the server crashes on the 60th, in the first measured period.
    port = free_port()
    pidfile = tmp_path / "server.pid"
    spec = spec_for(f"http://127.0.0.1:{port}/fast", processes=3, root=str(tmp_path),
                    server=fixture_server(port, "--exit-after", "60", "--pidfile", str(pidfile)))
    started = time.monotonic()
    result = measure_http(spec, deadline=time.monotonic() + 60)
    assert result.status is ResultStatus.FAILED
    assert "the server exited with code 3 during the load" in result.error
    assert "crashing on request 60" in result.stderr_tail
    assert result.extra["server_exit_code"] == 3
    # The warmup period was complete and is kept; the period it died in is not.
    assert [s.warmup for s in result.samples] == [True] * len(METRICS)
    assert time.monotonic() - started < 10       # aborted, not three periods of refused requests
    assert gone(read_pid(pidfile))


@pytest.mark.slow
def test_a_deadline_shorter_than_the_load_gives_timeout_with_the_samples_so_far(tmp_path: Path) -> None:
    port = free_port()
    with ManagedServer(fixture_server(port), str(tmp_path)):
        spec = spec_for(f"http://127.0.0.1:{port}/fast", processes=3, warmup=0)
        started = time.monotonic()
        result = measure_http(spec, deadline=started + 1.5)
        took = time.monotonic() - started
    assert result.status is ResultStatus.TIMEOUT
    assert "timeout" in result.error and "after 1 of 3 measured periods" in result.error
    assert sorted(result.by_worker("latency_p50")) == [0]
    assert len(result.samples) == len(METRICS)
    assert took < 5


@pytest.mark.slow
def test_nothing_listening_fails_with_connect_errors() -> None:
    port = free_port()
    spec = spec_for(f"http://127.0.0.1:{port}/fast", processes=1, warmup=0, rate=20.0)
    result = measure_http(spec, deadline=time.monotonic() + 30)
    assert result.status is ResultStatus.FAILED
    assert "none of the 20 requests" in result.error and "connect: 20" in result.error
    assert result.values("error_rate") == [1.0]


@pytest.mark.slow
def test_managed_server_shell_command_cwd_env_and_group_stop(tmp_path: Path) -> None:
    # A shell that forks the server (no exec): stopping must reach the child in its group.
    port = free_port()
    (tmp_path / "srv").mkdir()
    pidfile = tmp_path / "srv" / "server.pid"
    spec = ServerSpec(command=f'"{sys.executable}" "{FIXTURE}" "$PORT" --pidfile server.pid; echo after',
                      ready_url=f"http://127.0.0.1:{port}/health", cwd="srv", env={"PORT": str(port)})
    with ManagedServer(spec, str(tmp_path)) as server:
        assert server.alive()
        child = read_pid(pidfile)
        assert child != server.pid
    assert gone(child)
    assert not server.alive()
    assert "fixture server: ready" in server.tail()


@pytest.mark.slow
def test_managed_server_kills_a_server_that_ignores_sigterm(tmp_path: Path) -> None:
    port = free_port()
    spec = ServerSpec(command=f"trap '' TERM; exec \"{sys.executable}\" \"{FIXTURE}\" {port}",
                      ready_url=f"http://127.0.0.1:{port}/health")
    server = ManagedServer(spec, str(tmp_path), grace=0.5)
    with server:
        pass
    assert server.exit_code == -signal.SIGKILL


def test_managed_server_reports_a_command_that_cannot_start(tmp_path: Path) -> None:
    spec = ServerSpec(command=("perfloop-no-such-server-binary",), ready_url="http://127.0.0.1:9/")
    with pytest.raises(ServerError, match="could not start the server"):
        with ManagedServer(spec, str(tmp_path)):
            pass


@pytest.mark.slow
def test_a_port_another_process_answers_on_is_refused_before_starting(tmp_path: Path) -> None:
    # Another server (another run, a test, a dev server) answers on the benchmark's port: the
    # new one would fail to bind, or, worse, the benchmark would time the other process.
    port = free_port()
    with ManagedServer(fixture_server(port), str(tmp_path)) as first:
        second = ManagedServer(fixture_server(port), str(tmp_path))
        with pytest.raises(ServerError) as caught:
            with second:
                pass
        assert "already answers" in str(caught.value) and "another process" in str(caught.value)
        assert "server.ready_url" in (caught.value.hint or "")
        assert second.pid is None and first.alive()      # nothing was started; the first runs on


@pytest.mark.slow
def test_ctrl_c_stops_the_load_and_the_server(tmp_path: Path) -> None:
    port = free_port()
    pidfile = tmp_path / "server.pid"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_http import spec_for, fixture_server
        from perfloop.measure.http import measure_http
        spec = spec_for("http://127.0.0.1:{port}/fast", processes=50, root={str(tmp_path)!r},
                        server=fixture_server({port}, "--pidfile", {str(pidfile)!r}))
        measure_http(spec, deadline=time.monotonic() + 120)
    """))
    child = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if pidfile.exists() and pidfile.read_text():
                break
            time.sleep(0.05)
        time.sleep(1.5)                           # ready, and into the load
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert b"KeyboardInterrupt" in stderr
    assert gone(read_pid(pidfile))
