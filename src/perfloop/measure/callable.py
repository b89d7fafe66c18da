"""Python-callable targets: the parent side of the worker protocol (pyperf's manager/worker).

:func:`measure_callable` starts ``settings.processes`` fresh worker processes one after another
(``python -m perfloop.measure.worker``), each with an explicit task as JSON, and reads the
results back as JSON lines over a dedicated pipe (see :mod:`perfloop.measure.worker` for the
messages). Fresh processes make the worker the statistical unit: hash seeds, memory layout and
allocator state differ between processes, so values within one process are not independent.

The first worker calibrates the loop count (how many calls make one value last at least
``settings.min_time``); the parent hands that count to the other workers so all values are
averaged over the same number of calls. Each worker measures ``settings.warmup`` warmup values
(recorded with ``warmup=True``), then ``settings.values`` values. Values are per call.

Samples per worker ``w`` (``Sample.worker = w``, ``Sample.index`` = position in the worker,
warmup values included):

- ``wall_time`` and ``cpu_time`` per value (``perf_counter`` / ``process_time``, total / loops);
- custom metrics: the numbers of a dict the callable returned, from the last call of each value
  (keys that name a built-in metric are ignored, so a return value cannot forge a timing);
- ``peak_rss`` once per worker: the worker process's peak resident memory, interpreter included;
- ``peak_alloc`` once per worker, only when the benchmark asks for it: the peak of Python
  allocations during one separate, untimed call under tracemalloc;
- ``instructions`` per call, only when the benchmark asks for it: counted under valgrind in
  processes of their own, after the timed ones (:mod:`perfloop.measure.instructions`).

A worker that exits non-zero fails the benchmark with its exit code and the tail of its
stderr, keeping every value it sent before; a benchmark past its deadline has its worker killed
and records ``timeout``. The worker's stdout is discarded.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable

from ..config import BenchmarkSpec
from ..records import BenchmarkResult, ResultStatus, Sample
from .instructions import count_callable
from .outcome import failed_result, missing_cwd, ok_result, resolve_dir, timeout_message
from .process import ChildExit, child_env
from .protocol import ProtocolError, WorkerSession, new_token, run_worker, worker_error, worker_task

#: Name of the rule giving each worker its hash seed (recorded in ``extra["hash_seeds"]``).
HASH_SEEDS = "by-worker-1"


def hash_seed(worker: int) -> int:
    """The ``PYTHONHASHSEED`` of worker ``worker`` in every run (scheme :data:`HASH_SEEDS`).

    String hashes change where dict and set entries land, and so the speed of code that uses
    them: one benchmark of the example shop spread 28% between workers with a random seed each
    and 4% with one seed. A run still spreads its workers over as many seeds as it has
    workers, but worker ``w`` of any run has the same seed as worker ``w`` of any other, so two
    runs can be compared seed by seed (:func:`perfloop.analysis.compare.compare_results`).
    """
    return 1 + (worker * 2654435761) % 4294967295


def worker_env(env: dict[str, str], worker: int) -> dict[str, str]:
    """``env`` for worker ``worker``: with its hash seed, unless the benchmark or the user set
    one (the gate sets one per block; a seed in the environment is respected)."""
    if "PYTHONHASHSEED" in env:
        return env
    return {**env, "PYTHONHASHSEED": str(hash_seed(worker))}


class _Workers:
    """The timed workers of one callable benchmark, one after another, and what they sent."""

    def __init__(self, spec: BenchmarkSpec, deadline: float | None,
                 on_progress: Callable[[float], None] | None, python: str,
                 clock: Callable[[], float]) -> None:
        settings = spec.settings
        self.spec, self.deadline, self.on_progress = spec, deadline, on_progress
        self.python, self.clock = python, clock
        self.metrics = frozenset(spec.metrics)
        self.cwd = resolve_dir(spec, spec.cwd)
        self.env = child_env(spec.env)
        self.per_worker = settings.warmup + settings.values
        self.counting = "instructions" in self.metrics   # valgrind's processes come after the timed ones
        self.timed = bool(self.metrics - {"instructions"})
        self.expected = (settings.processes * self.per_worker * self.timed
                         + (settings.processes + 1) * self.counting)
        self.received = 0
        self.samples: list[Sample] = []
        self.loops: int | None = None
        self.extra: dict[str, Any] = {"loops": None, "timer_resolution": None, "workers": 0}
        if "PYTHONHASHSEED" not in self.env:
            self.extra["hash_seeds"] = HASH_SEEDS
        self.started = time.perf_counter()

    def on_value(self) -> None:
        self.received += 1
        if self.on_progress is not None:
            self.on_progress(min(self.received / self.expected, 1.0))

    def fail(self, status: ResultStatus, error: str, stderr_tail: str | None = None) -> BenchmarkResult:
        return failed_result(self.spec, status, error, self.samples, stderr_tail=stderr_tail,
                             duration=time.perf_counter() - self.started, extra=self.extra)

    def run(self, worker: int) -> BenchmarkResult | None:
        """Run timed worker ``worker``; a failed result when it (or the deadline) stops the benchmark."""
        spec, processes = self.spec, self.spec.settings.processes
        done = f"{worker} of {processes} worker processes"
        if self.deadline is not None and self.clock() >= self.deadline:
            return self.fail(ResultStatus.TIMEOUT, timeout_message(spec, done))
        try:
            task = json.dumps(worker_task(spec, self.loops))
        except (TypeError, ValueError) as exc:
            return self.fail(ResultStatus.FAILED, f"params of {spec.name!r} cannot be sent to a worker: "
                                                  f"{exc}; params must be JSON values (numbers, strings, "
                                                  "lists, tables)")
        session = WorkerSession(worker, self.metrics, self.on_value, token=new_token(),
                                values=self.per_worker)
        try:
            child = run_worker(session, task, python=self.python, cwd=self.cwd,
                               env=worker_env(self.env, worker), deadline=self.deadline, clock=self.clock)
        except ProtocolError as exc:
            self.samples.extend(session.samples)
            return self.fail(ResultStatus.FAILED, str(exc))
        except OSError as exc:
            return self.fail(ResultStatus.FAILED, f"could not start a worker with {self.python}: {exc}")
        self.samples.extend(session.samples)
        return self._ended(session, child, done)

    def _ended(self, session: WorkerSession, child: ChildExit, done: str) -> BenchmarkResult | None:
        if session.loops is not None:
            self.loops = session.loops
            self.extra["loops"] = self.loops
        if session.timer_resolution is not None:
            self.extra["timer_resolution"] = session.timer_resolution
        if child.timed_out:
            return self.fail(ResultStatus.TIMEOUT, timeout_message(self.spec, done), child.stderr_tail)
        if child.returncode != 0:
            return self.fail(ResultStatus.FAILED, worker_error(session, child.returncode, child.stderr_tail),
                             child.stderr_tail)
        if not session.ended:
            return self.fail(ResultStatus.FAILED,
                             f"worker {session.worker} exited with code 0 before sending all its results; "
                             "does the benchmarked code call sys.exit() or os._exit()?", child.stderr_tail)
        self.extra["workers"] = session.worker + 1
        return None


def measure_callable(spec: BenchmarkSpec, *, deadline: float | None = None,
                     on_progress: Callable[[float], None] | None = None,
                     python: str = sys.executable, valgrind: str | None = None,
                     clock: Callable[[], float] = time.monotonic) -> BenchmarkResult:
    """Measure a ``module:function`` target in ``settings.processes`` fresh worker processes.

    ``deadline`` is an absolute ``clock()`` (``time.monotonic``) value for the whole benchmark.
    Never raises for a failing target: import errors, exceptions, non-zero exits give a
    ``failed`` result and the deadline a ``timeout`` result, each with the samples measured
    before and the tail of the failing worker's stderr. KeyboardInterrupt kills the running
    worker and propagates.
    """
    if spec.callable is None and spec.suite is None:
        raise ValueError(f"benchmark {spec.name!r} has no callable (kind {spec.kind!r})")
    if spec.suite is not None and spec.suite.error:
        return failed_result(spec, ResultStatus.FAILED, spec.suite.error, ())
    workers = _Workers(spec, deadline, on_progress, python, clock)
    error = missing_cwd(spec, workers.cwd)
    if error is not None:
        return workers.fail(ResultStatus.FAILED, error)
    for worker in range(spec.settings.processes if workers.timed else 0):
        failed = workers.run(worker)
        if failed is not None:
            return failed
    if workers.counting:
        counted = count_callable(spec, loops=workers.loops, cwd=workers.cwd, env=workers.env,
                                 deadline=deadline, python=python, valgrind=valgrind,
                                 on_step=workers.on_value, clock=clock)
        workers.samples.extend(counted.samples)
        workers.extra.update(counted.extra)
        if counted.error:
            return workers.fail(counted.status, counted.error, counted.stderr_tail)
    return ok_result(spec, workers.samples, duration=time.perf_counter() - workers.started,
                     extra=workers.extra)
