"""The parent's side of the worker protocol: the task it sends, the messages it accepts.

A callable worker (``python -m perfloop.measure.worker``, see :mod:`perfloop.measure.worker`
for the messages) receives an explicit task as JSON and a per-worker token on stdin, and sends
JSON lines over a dedicated pipe. :func:`run_worker` starts one worker through
:func:`perfloop.measure.process.run_child` and feeds what it sends to a
:class:`WorkerSession`, which accepts exactly what was asked for and raises
:class:`ProtocolError` on anything else. Timed workers (:mod:`.callable`) and counting workers
under valgrind (:mod:`.instructions`) both go through here.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..config import BenchmarkSpec
from ..metrics import BUILTIN, CPU_NORM, HOST_REFERENCE, RUNQUEUE_TIME
from ..records import Sample, SampleTag
from .process import ChildExit, describe_exit, run_child, stderr_note
from .channel import PROTOCOL_VERSION

WORKER_MODULE = "perfloop.measure.worker"
#: Bounds of the reference workload's time before each value (:func:`reference_seconds`).
REFERENCE_MIN, REFERENCE_MAX = 0.002, 0.05


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


def run_worker(session: WorkerSession, task: str, *, python: str, cwd: str,
               env: Mapping[str, str], deadline: float | None, clock: Callable[[], float],
               prefix: Sequence[str] = ()) -> ChildExit:
    """Run one worker on ``task`` (JSON text, after ``prefix``, e.g. valgrind's command line), feeding its
    messages to ``session``. Raises :class:`ProtocolError` on a message the session refuses
    (the worker is killed first) and OSError when it cannot be started."""
    read_fd, write_fd = os.pipe()
    argv = [*prefix, python, "-m", WORKER_MODULE, "--result-fd", str(write_fd),
            "--task", task]
    try:
        return run_child(argv, cwd=cwd, env=env, deadline=deadline, pass_fds=(write_fd,),
                         readers={read_fd: session.feed}, stdin_data=f"{session.token}\n".encode(),
                         clock=clock)
    finally:
        os.close(read_fd)
