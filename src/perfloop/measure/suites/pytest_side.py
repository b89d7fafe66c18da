"""pytest-benchmark suites: collection by pytest itself, and the worker's own ``benchmark`` fixture.

**Collection** (:func:`collect`, in a subprocess): ``pytest --collect-only`` on the suite, so
conftest files, fixtures, ``parametrize`` and markers work as in the team's own runs. Every item
that requests the ``benchmark`` fixture is a benchmark, named by its pytest node id; a module
that fails to collect is reported with its error.

**Measurement** (:func:`run`, in a perfloop worker): pytest runs the one test. perfloop
registers its own ``benchmark`` fixture *after* pytest-benchmark's plugin, so it takes
precedence: when the test calls ``benchmark(fn, *args)`` or ``benchmark.pedantic(fn, ...)``,
perfloop's loop (:mod:`.timing`) calibrates, warms up and times ``fn`` with the test's
fixtures alive, then hands the last return value back to the test, which goes on (its asserts
run). Fixtures are thus set up once per worker process, never per value. A test that fails,
is skipped, or never calls the fixture is an error the parent reports as a failed benchmark.

pytest's own ``addopts`` are cleared (``-o addopts=``): coverage, xdist or pytest-benchmark
options there would change what is timed or run the test elsewhere. Arguments a suite needs go
in the suite's ``args``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

from ..channel import ResultChannel, peak_rss_bytes
from .fixture_state import FixtureState, Handler, start_test
from .timing import call_timer, timed_values

#: pytest arguments perfloop always adds, for collection and for every worker.
BASE_ARGS = ("-p", "no:cacheprovider", "-o", "addopts=", "-q", "--no-header")
FIXTURE = "benchmark"


class SuiteError(Exception):
    """A benchmark of a suite could not be measured: ``phase`` says where, the message what."""

    def __init__(self, phase: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.phase = phase
        self.details = details


# --------------------------------------------------------------------------------------------
# collection


def _json_value(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else repr(value)


class _Collector:
    """A pytest plugin that records the benchmark items and the collection errors."""

    def __init__(self) -> None:
        self.benchmarks: list[dict[str, Any]] = []
        self.errors: list[dict[str, str]] = []
        self.others = 0

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.errors.append({"name": report.nodeid or "<collection>", "error": _text(report)})

    def pytest_collection_finish(self, session: Any) -> None:
        invocation = Path(session.config.invocation_params.dir)
        for item in session.items:
            if FIXTURE not in getattr(item, "fixturenames", ()):
                self.others += 1
                continue
            _, sep, rest = item.nodeid.partition("::")
            select = os.path.relpath(Path(item.path), invocation) + (sep + rest if sep else "")
            callspec = getattr(item, "callspec", None)
            params = {k: _json_value(v) for k, v in callspec.params.items()} if callspec else {}
            base = item.nodeid.split("[", 1)[0] if callspec else item.nodeid
            self.benchmarks.append({"name": item.nodeid, "base_name": base, "select": select,
                                    "params": params})


def collect(path: str, args: list[str]) -> dict[str, Any]:
    """Collect the benchmarks of the pytest suite at ``path`` (run in a subprocess)."""
    import pytest
    collector = _Collector()
    code = pytest.main(["--collect-only", *BASE_ARGS, *args, path], plugins=[collector])
    # 0 ok, 2 interrupted by collection errors (reported per module), 5 nothing collected
    if int(code) not in (0, 2, 5) and not collector.errors:
        collector.errors.append({"name": path, "error": f"pytest --collect-only exited with code {int(code)}"})
    return {"benchmarks": collector.benchmarks, "errors": collector.errors, "others": collector.others}


def _text(report: Any) -> str:
    """The short form of a failure (the exception line), and its full text."""
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message)
    text = str(getattr(report, "longreprtext", "") or report.longrepr or "")
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "failed"


# --------------------------------------------------------------------------------------------
# measurement inside a worker


class _Runner:
    """The pytest plugin of a worker: registers the fixture last, records the reports."""

    def __init__(self, state: FixtureState) -> None:
        self.state = state

    def pytest_configure(self, config: Any) -> None:
        config.addinivalue_line("markers", "benchmark(**kwargs): pytest-benchmark options "
                                           "(perfloop ignores them)")
        # Registered now, after the entry-point plugins (pytest-benchmark among them): of two
        # plugin fixtures with one name the last registered wins.
        from . import pytest_fixture
        if not config.pluginmanager.is_registered(pytest_fixture):
            config.pluginmanager.register(pytest_fixture, "perfloop-benchmark-fixture")

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.state.reports.append(report)


def run(task: dict[str, Any], channel: ResultChannel) -> None:
    """Measure one test of a pytest suite in this worker; raises :class:`SuiteError` when it fails."""
    def measure(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], setup: Any) -> Any:
        return timed_values(task, channel, call_timer(fn, args, kwargs, setup))

    run_test(task["suite"], measure)
    channel.send("end", peak_rss=peak_rss_bytes())


def run_test(suite: dict[str, Any], handle: Handler) -> None:
    """Run one test with perfloop's ``benchmark`` fixture handing its callable to ``handle``."""
    try:
        import pytest
    except ImportError as exc:
        raise SuiteError("import", f"pytest is not importable by {sys.executable}: {exc}") from exc
    state = start_test(handle)
    extra = ["-p", "no:randomly"] if _has_randomly() else []
    code = pytest.main([*BASE_ARGS, *extra, *suite.get("args", []), suite["select"]],
                       plugins=[_Runner(state)])
    sys.stdout.flush()
    for report in state.reports:
        if report.failed:
            phase = {"setup": "setup", "call": "call", "teardown": "teardown"}.get(report.when, "call")
            raise SuiteError(phase, f"the test failed in {report.when}: {_text(report)}",
                             str(getattr(report, "longreprtext", "")))
    for report in state.reports:
        if report.skipped:
            raise SuiteError("setup", f"pytest skipped the test: {_skip_reason(report)}")
    if not state.reports:
        raise SuiteError("import", f"pytest ran no test for {suite['select']} (exit code {int(code)}): "
                                   "was it renamed or removed?")
    if not state.used:
        raise SuiteError("call", "the test never called benchmark(...) or benchmark.pedantic(...)")
    if not state.measured:
        raise SuiteError("call", "the test failed inside benchmark(...)")


def _has_randomly() -> bool:
    """Whether pytest-randomly is installed: it reseeds ``random`` per test, and a benchmark's
    input should not change from one worker to the next, so it is disabled when present."""
    try:
        import importlib.util
        return importlib.util.find_spec("pytest_randomly") is not None
    except (ImportError, ValueError):
        return False


def _skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)
