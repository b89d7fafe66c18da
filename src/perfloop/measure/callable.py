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
import math
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ..config import BenchmarkSpec
from ..metrics import BUILTIN, CPU_NORM, HOST_REFERENCE, RUNQUEUE_TIME
from ..records import BenchmarkResult, ResultStatus, Sample, SampleTag
from .command import (_declared, describe_exit, failed_result, resolve_dir, run_child, stderr_note,
                      timeout_message)
from .worker import PROTOCOL_VERSION

WORKER_MODULE = "perfloop.measure.worker"
#: Bounds of the reference workload's time before each value (:func:`reference_seconds`).
REFERENCE_MIN, REFERENCE_MAX = 0.002, 0.05
#: Name of the rule giving each worker its hash seed (recorded in ``extra["hash_seeds"]``).
HASH_SEEDS = "by-worker-1"


class ProtocolError(Exception):
    """The worker sent something the parent does not understand (a different perfloop?)."""


FORGED = ("something other than the worker wrote to perfloop's result pipe (does the benchmarked "
          "code write to file descriptors it did not open?); the values of this worker are not "
          "trusted, and the benchmark failed")


class WorkerSession:
    """Parses one worker's result stream and turns its values into samples as they arrive.

    Accepts exactly what the parent asked for (see :mod:`perfloop.measure.worker`): messages
    carrying ``token``, a ``hello`` first, value indexes ``0 .. values - 1`` once each, all of
    them before ``end``, and nothing after it; anything else raises :class:`ProtocolError`.
    """

    def __init__(self, worker: int, metrics: frozenset[str], on_value: Callable[[], None], *,
                 token: str, values: int) -> None:
        self.worker = worker
        self.metrics = metrics
        self.on_value = on_value
        self.token = token
        self.expected = values
        self.samples: list[Sample] = []
        self.loops: int | None = None
        self.timer_resolution: float | None = None
        self.error: str | None = None
        self.phase: str | None = None
        self.ended = False
        self._hello = False
        self._seen: set[int] = set()
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self._handle(line)

    def _reject(self, what: str) -> ProtocolError:
        return ProtocolError(f"worker {self.worker}: {what}; {FORGED}")

    def _handle(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
            kind = msg["type"]
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise self._reject(f"a malformed line reached the result pipe: {line[:200]!r}") from exc
        if msg.get("token") != self.token:
            raise self._reject(f"a {str(kind)[:40]!r} message without this worker's token")
        if self.ended:
            raise self._reject(f"a {kind!r} message after the worker's end")
        if kind == "hello":
            if msg.get("version") != PROTOCOL_VERSION:
                raise ProtocolError(
                    f"worker {self.worker} speaks protocol {msg.get('version')}, this perfloop speaks "
                    f"{PROTOCOL_VERSION}: the worker's Python imports a different perfloop; check "
                    f"the benchmark's pythonpath")
            self._hello = True
            self.timer_resolution = float(msg["timer_resolution"])
            return
        if not self._hello:
            raise self._reject(f"a {kind!r} message before the worker's hello")
        try:
            self._dispatch(kind, msg)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise self._reject(f"a {kind!r} message perfloop cannot read ({type(exc).__name__}: {exc})") \
                from exc

    def _dispatch(self, kind: str, msg: dict[str, Any]) -> None:
        if kind == "calibration":
            self.loops = int(msg["loops"])
        elif kind == "value":
            self._value(msg)
        elif kind == "alloc":
            if "peak_alloc" in self.metrics:
                self.samples.append(Sample("peak_alloc", float(msg["peak_alloc"]), worker=self.worker))
        elif kind == "end":
            if len(self._seen) != self.expected:
                raise self._reject(f"the worker ended after {len(self._seen)} of the "
                                   f"{self.expected} values it was asked for")
            if "peak_rss" in self.metrics:
                self.samples.append(Sample("peak_rss", float(msg["peak_rss"]), worker=self.worker))
            self.ended = True
        elif kind == "error":
            self.phase, self.error = msg.get("phase"), msg.get("error")
        else:
            raise ProtocolError(f"worker {self.worker} sent an unknown message type {kind!r}")

    def _value(self, msg: dict[str, Any]) -> None:
        index, loops = msg["index"], msg["loops"]
        if type(index) is not int or not 0 <= index < self.expected or index in self._seen:
            raise self._reject(f"value {index!r}, which the parent did not ask for (it asked for "
                               f"{self.expected} values, indexes 0 to {self.expected - 1}, once each)")
        if type(loops) is not int or loops < 1:
            raise ValueError(f"loops must be a positive integer, got {loops!r}")
        self._seen.add(index)
        self.loops = loops
        tag: SampleTag = {"worker": self.worker, "index": index, "warmup": bool(msg["warmup"])}
        for metric in ("wall_time", "cpu_time"):
            if metric in self.metrics:
                self.samples.append(Sample(metric, float(msg[metric]) / loops, loops=loops, **tag))
        queued = msg.get("runqueue")
        if queued is not None and "wall_time" in self.metrics:
            queued = float(queued)
            if not (math.isfinite(queued) and queued >= 0.0):
                raise ValueError(f"runqueue must be a time of at least 0, got {queued!r}")
            self.samples.append(Sample(RUNQUEUE_TIME, queued / loops, loops=loops, **tag))
        reference = msg.get("reference")
        if reference is not None and "cpu_time" in self.metrics:
            reference = float(reference)
            if not (math.isfinite(reference) and reference > 0.0):
                raise ValueError(f"reference must be a positive time, got {reference!r}")
            self.samples += [
                Sample(HOST_REFERENCE, reference, **tag),
                Sample(CPU_NORM, float(msg["cpu_time"]) / loops / reference, loops=loops, **tag)]
        for metric, value in (msg.get("custom") or {}).items():
            if metric not in BUILTIN:
                self.samples.append(Sample(metric, float(value), **tag))
        self.on_value()


def new_token() -> str:
    """A fresh per-worker token: 128 random bits."""
    return secrets.token_hex(16)


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


def reference_seconds(spec: BenchmarkSpec) -> float | None:
    """How long the reference workload runs before each value (None: not at all).

    Half of ``min_time``, between 2 and 50 ms: long enough that its own noise stays below the
    host's, short enough to cost less than the value it accompanies. Only with ``cpu_time``.
    """
    if not spec.settings.reference or "cpu_time" not in spec.metrics:
        return None
    return min(REFERENCE_MAX, max(REFERENCE_MIN, spec.settings.min_time / 2.0))


def worker_task(spec: BenchmarkSpec, loops: int | None) -> dict[str, Any]:
    """The explicit task one worker receives; ``loops=None`` asks it to calibrate."""
    root = Path(spec.root)
    sys_path = [str((root / p).resolve()) for p in spec.pythonpath] + [str(root.resolve())]
    s = spec.settings
    return {"version": PROTOCOL_VERSION, "target": spec.callable, "setup": spec.setup,
            "teardown": spec.teardown, "params": dict(spec.params), "loops": loops,
            "values": s.values, "warmup": s.warmup, "min_time": s.min_time,
            "metrics": list(spec.metrics), "tracemalloc": spec.tracemalloc, "sys_path": sys_path,
            "reference": reference_seconds(spec),
            # a benchmark of a pytest or asv suite (perfloop.measure.suites): the tool finds it
            **({"suite": spec.suite.to_task(str(root.resolve()))} if spec.suite is not None else {})}


def worker_error(session: WorkerSession, returncode: int, stderr_tail: str | None = None) -> str:
    exit_text = describe_exit(returncode)
    if session.error:
        where = {"import": "importing the target", "setup": "in setup", "call": "calling the target",
                 "teardown": "in teardown"}.get(session.phase or "", session.phase or "")
        return f"worker {session.worker} failed {where}: {session.error} ({exit_text})"
    return f"worker {session.worker} {exit_text}; {stderr_note(stderr_tail)}"


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
    settings = spec.settings
    metrics = frozenset(spec.metrics)
    cwd = resolve_dir(spec, spec.cwd)
    env = {**os.environ, **spec.env}
    per_worker = settings.warmup + settings.values
    counting = "instructions" in metrics          # valgrind's processes come after the timed ones
    timed = bool(metrics - {"instructions"})
    expected = settings.processes * per_worker * timed + (settings.processes + 1) * counting
    received = 0
    samples: list[Sample] = []
    loops: int | None = None
    extra: dict[str, Any] = {"loops": None, "timer_resolution": None, "workers": 0}
    if "PYTHONHASHSEED" not in env:
        extra["hash_seeds"] = HASH_SEEDS
    started = time.perf_counter()

    def on_value() -> None:
        nonlocal received
        received += 1
        if on_progress is not None:
            on_progress(min(received / expected, 1.0))

    def fail(status: ResultStatus, error: str, stderr_tail: str | None = None) -> BenchmarkResult:
        return failed_result(spec, status, error, samples, stderr_tail=stderr_tail,
                             duration=time.perf_counter() - started, extra=extra)

    if not Path(cwd).is_dir():
        return fail(ResultStatus.FAILED, f"cwd {cwd} is not a directory; fix cwd for {spec.base_name!r} "
                                         "in perfloop.toml (it is relative to the project)")
    for worker in range(settings.processes if timed else 0):
        done = f"{worker} of {settings.processes} worker processes"
        if deadline is not None and clock() >= deadline:
            return fail(ResultStatus.TIMEOUT, timeout_message(spec, done))
        try:
            task = json.dumps(worker_task(spec, loops))
        except (TypeError, ValueError) as exc:
            return fail(ResultStatus.FAILED, f"params of {spec.name!r} cannot be sent to a worker: {exc}; "
                                             "params must be JSON values (numbers, strings, lists, tables)")
        token = new_token()
        session = WorkerSession(worker, metrics, on_value, token=token, values=per_worker)
        read_fd, write_fd = os.pipe()
        argv = [python, "-m", WORKER_MODULE, "--result-fd", str(write_fd), "--task", task]
        try:
            child = run_child(argv, cwd=cwd, env=worker_env(env, worker), deadline=deadline,
                              pass_fds=(write_fd,),
                              readers={read_fd: session.feed}, stdin_data=f"{token}\n".encode(),
                              clock=clock)
        except ProtocolError as exc:
            samples.extend(session.samples)
            return fail(ResultStatus.FAILED, str(exc))
        except OSError as exc:
            return fail(ResultStatus.FAILED, f"could not start a worker with {python}: {exc}")
        finally:
            os.close(read_fd)
        samples.extend(session.samples)
        if session.loops is not None:
            loops = session.loops
            extra["loops"] = loops
        if session.timer_resolution is not None:
            extra["timer_resolution"] = session.timer_resolution
        if child.timed_out:
            return fail(ResultStatus.TIMEOUT, timeout_message(spec, done), child.stderr_tail)
        if child.returncode != 0:
            return fail(ResultStatus.FAILED, worker_error(session, child.returncode, child.stderr_tail),
                        child.stderr_tail)
        if not session.ended:
            return fail(ResultStatus.FAILED,
                        f"worker {worker} exited with code 0 before sending all its results; does the "
                        "benchmarked code call sys.exit() or os._exit()?", child.stderr_tail)
        extra["workers"] = worker + 1
    if counting:
        from .instructions import count_callable
        counted = count_callable(spec, loops=loops, cwd=cwd, env=env, deadline=deadline, python=python,
                                 valgrind=valgrind, on_step=on_value, clock=clock)
        samples.extend(counted.samples)
        extra.update(counted.extra)
        if counted.error:
            return fail(counted.status, counted.error, counted.stderr_tail)
    return BenchmarkResult(name=spec.name, kind=spec.kind, status=ResultStatus.OK, samples=tuple(samples),
                           params=spec.params, duration=time.perf_counter() - started, extra=extra,
                           **_declared(spec))
