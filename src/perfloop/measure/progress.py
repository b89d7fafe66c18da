"""How the runner reports progress, and a rough duration estimate for an ETA.

The runner calls a :class:`Progress` in this order::

    run_started(specs, estimated_seconds)
    for each benchmark:
        benchmark_started(spec, index, total)
        update(spec, fraction)            zero or more times, fraction in 0..1
        benchmark_finished(result)
    run_finished(summary)                 also after Ctrl-C, with summary.interrupted set

Implementations render it (the CLI draws a Rich progress bar); :class:`NullProgress` ignores it.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from ..config import BenchmarkSpec
from ..records import BenchmarkResult
from .summary import RunSummary

#: Start-up of one callable worker: interpreter, perfloop's worker, the target's imports. A
#: guess: heavy imports (numpy, pandas) take longer.
WORKER_STARTUP = 0.15
#: What one run of a command costs is unknown before it has run once; a typical script.
COMMAND_RUN_GUESS = 0.2


class Progress(Protocol):
    """Receives the runner's progress; see the module docstring for the order of calls."""

    def run_started(self, specs: Sequence[BenchmarkSpec], estimated_seconds: float) -> None: ...

    def benchmark_started(self, spec: BenchmarkSpec, index: int, total: int) -> None: ...

    def update(self, spec: BenchmarkSpec, fraction: float) -> None: ...

    def benchmark_finished(self, result: BenchmarkResult) -> None: ...

    def run_finished(self, summary: RunSummary) -> None: ...


class NullProgress:
    """A Progress that shows nothing (library use, --json output)."""

    def run_started(self, specs: Sequence[BenchmarkSpec], estimated_seconds: float) -> None:
        pass

    def benchmark_started(self, spec: BenchmarkSpec, index: int, total: int) -> None:
        pass

    def update(self, spec: BenchmarkSpec, fraction: float) -> None:
        pass

    def benchmark_finished(self, result: BenchmarkResult) -> None:
        pass

    def run_finished(self, summary: RunSummary) -> None:
        pass


def estimate_seconds(spec: BenchmarkSpec) -> float:
    """A rough duration of ``spec`` from its settings alone, for an ETA; never above its timeout.

    Callables: calibration makes each value last between min_time and twice that (1.5x on
    average), plus worker start-up. Commands and HTTP targets cost what the target costs, which
    only a previous run knows: a command run is guessed at COMMAND_RUN_GUESS, an HTTP
    repetition at its configured load duration.
    """
    s = spec.settings
    if spec.kind == "callable":
        per_worker = WORKER_STARTUP + (s.warmup + s.values) * 1.5 * s.min_time
        calibration = 3 * s.min_time   # doubling loops: the sum of the series is about twice the last
        estimate = s.processes * per_worker + calibration
    elif spec.kind == "command":
        estimate = (s.warmup + s.processes) * COMMAND_RUN_GUESS
    elif spec.kind == "http" and spec.http is not None:
        estimate = (s.warmup + s.processes) * spec.http.duration
        if spec.server is not None:
            estimate += 1.0    # typical server start; ready_timeout is only the upper bound
    else:
        estimate = 1.0
    return min(estimate, s.timeout)
