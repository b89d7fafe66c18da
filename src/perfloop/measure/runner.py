"""The runner: measure benchmarks one after another and hand each result to a sink at once.

:func:`run_benchmarks` dispatches every benchmark on its kind (callable, command, http), gives
it a deadline from its ``timeout`` setting, attaches quality warnings and passes the finished
result to ``sink.add_result`` before the next benchmark starts, so the store has committed
everything measured whatever happens next. A failing benchmark does not stop the run: a
failing target is a ``failed`` or ``timeout`` result, and an unexpected error inside perfloop's
own measurement of one benchmark is recorded as ``failed`` too (as Otava logs and counts a
failing item while the rest goes on).

Ctrl-C stops the run: the measurement in progress kills its processes, and
:class:`RunInterrupted` is raised with the results finished so far, all already in the sink.
A result being handed to the sink when Ctrl-C arrives is delivered first: the interrupt is held
back until ``add_result`` returns, so the sink never sees half a result.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import replace
from typing import Callable, Iterator, Protocol, Sequence

from ..config import BenchmarkSpec
from ..errors import Interrupted
from ..records import BenchmarkResult, ResultStatus
from .process import raise_terminated
from .progress import NullProgress, Progress, estimate_seconds
from .quality import quality_warnings
from .summary import RunSummary

#: ``measure(spec, deadline, on_progress) -> result``: how the runner measures one benchmark.
MeasureFunction = Callable[[BenchmarkSpec, float | None, Callable[[float], None]], BenchmarkResult]


class ResultSink(Protocol):
    """Receives each finished result as soon as it is finished (the store commits it)."""

    def add_result(self, result: BenchmarkResult) -> None: ...


class RunInterrupted(Interrupted):
    """The run was stopped by Ctrl-C; ``results`` (all in the sink already) are what finished."""

    def __init__(self, summary: RunSummary, total: int) -> None:
        done = len(summary.results)
        super().__init__(f"interrupted after {done} of {total} benchmark(s); the {done} finished "
                         f"result(s) were kept",
                         hint="run the remaining benchmarks by name, e.g. perfloop run NAME")
        self.summary = summary
        self.results = summary.results


def measure_spec(spec: BenchmarkSpec, deadline: float | None,
                 on_progress: Callable[[float], None]) -> BenchmarkResult:
    """Measure one benchmark with the target kind's measure function."""
    if spec.kind == "callable":
        from .callable import measure_callable
        return measure_callable(spec, deadline=deadline, on_progress=on_progress)
    if spec.kind == "command":
        from .command import measure_command
        return measure_command(spec, deadline=deadline, on_progress=on_progress)
    if spec.kind == "http":
        # Imported lazily: the HTTP target pulls in its own client and load generator.
        from .http import measure_http
        return measure_http(spec, deadline=deadline, on_progress=on_progress)
    raise ValueError(f"benchmark {spec.name!r}: unknown kind {spec.kind!r}")


def run_benchmarks(specs: Sequence[BenchmarkSpec], *, sink: ResultSink, progress: Progress | None = None,
                   measure: MeasureFunction | None = None,
                   clock: Callable[[], float] = time.monotonic) -> RunSummary:
    """Measure ``specs`` in order, handing each finished result to ``sink`` immediately.

    ``measure`` replaces the real measurement (tests inject a fake); ``clock`` gives the
    deadlines (``clock() + spec.settings.timeout``) and the durations. The real measure
    functions compare deadlines with ``time.monotonic``, so replace the clock only together
    with the measure function. Returns the run's
    summary; raises :class:`RunInterrupted` on Ctrl-C. An error raised by the sink propagates:
    a result that cannot be stored must stop the run.
    """
    progress = progress if progress is not None else NullProgress()
    measure = measure if measure is not None else measure_spec
    started = clock()
    results: list[BenchmarkResult] = []

    def summary(interrupted: bool) -> RunSummary:
        failed = sum(1 for r in results if r.status is not ResultStatus.OK)
        return RunSummary(tuple(results), failed, clock() - started, interrupted)

    progress.run_started(specs, sum(estimate_seconds(s) for s in specs))
    try:
        for index, spec in enumerate(specs):
            progress.benchmark_started(spec, index, len(specs))
            result = _measure_one(spec, measure, progress, clock)
            with _interrupt_deferred():
                result = replace(result, warnings=(*result.warnings, *quality_warnings(result, spec.settings)))
                sink.add_result(result)
                results.append(result)
            progress.benchmark_finished(result)
    except KeyboardInterrupt as exc:
        final = summary(interrupted=True)
        progress.run_finished(final)
        raise RunInterrupted(final, len(specs)) from exc
    final = summary(interrupted=False)
    progress.run_finished(final)
    return final


def _measure_one(spec: BenchmarkSpec, measure: MeasureFunction, progress: Progress,
                 clock: Callable[[], float]) -> BenchmarkResult:
    """One benchmark's result; perfloop's own errors become a failed result, not a stopped run."""
    started = clock()
    deadline = started + spec.settings.timeout
    try:
        return measure(spec, deadline, lambda fraction: progress.update(spec, fraction))
    except Exception as exc:
        return BenchmarkResult(
            name=spec.name, kind=spec.kind, status=ResultStatus.FAILED, params=spec.params,
            error=f"perfloop could not measure this benchmark: {type(exc).__name__}: {exc}",
            duration=clock() - started)


@contextlib.contextmanager
def _interrupt_deferred() -> Iterator[None]:
    """Hold back SIGINT inside the block and raise KeyboardInterrupt after it.

    Only the main thread can swap signal handlers, and only Python's default handler is
    replaced: elsewhere (a thread, a host application with its own handler) the block runs
    unprotected.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    pending: list[int] = []
    # SIGTERM too, when perfloop handles it as Ctrl-C (perfloop.measure.process).
    term = signal.getsignal(signal.SIGTERM)
    held = (signal.SIGINT, signal.SIGTERM) if term is raise_terminated else (signal.SIGINT,)
    for signum in held:
        signal.signal(signum, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if term is raise_terminated:
            signal.signal(signal.SIGTERM, term)
    if pending:
        if signal.SIGTERM in pending:
            raise_terminated(signal.SIGTERM, None)
        raise KeyboardInterrupt
