"""The worker side of the callable protocol: ``python -m perfloop.measure.worker``.

The parent (:mod:`perfloop.measure.callable`) starts one fresh worker process per repetition
and hands it an explicit task as JSON on the command line::

    python -m perfloop.measure.worker --result-fd 5 --task '{"version": 1, "target": ...}'

and a per-worker random *token* on stdin (one line; never on the command line or in the
environment, which the benchmarked code can read). The worker reads the token, points stdin at
``/dev/null``, moves the result pipe to a private descriptor (closing ``--result-fd``, which the
benchmarked code could find in ``sys.argv`` or ``/proc/self/cmdline``) that no child inherits,
and empties ``sys.argv`` of its own arguments. It then imports the target, times it and streams
its results back as JSON lines over that pipe, never over stdout: the benchmarked code may print
whatever it likes without corrupting the protocol. One line goes out per value as soon as it is
measured, so a crash half-way keeps the values already sent.

Every message carries the token. The parent accepts exactly what it asked for: a ``hello``
first, value indexes ``0 .. warmup + values - 1`` once each, and nothing after ``end``. A line
without the token, a value it did not ask for, or an ``end`` before all values fails the
benchmark with a message saying that something other than the worker wrote to the pipe: code
under test cannot add, repeat or replace measurements (it runs in the same process, so a
determined one could still read the token from memory; the token stops accidents and naive
forgeries, not a debugger).

Messages, in order (each a JSON object on one line, ``"type"`` first, ``"token"`` in each)::

    hello        {"version", "pid", "timer_resolution"}
    calibration  {"loops"}                       only when the task asked to calibrate
    value        {"index", "warmup", "loops", "wall_time", "cpu_time", "custom"[, "reference"]
                  [, "runqueue"]}
                 wall_time/cpu_time are totals over ``loops`` calls; custom is the dict of
                 numbers the last call returned (or {}); reference, when the task asked for
                 it, is the CPU time of one call of the reference workload run just before
                 this value (see :func:`.timers.reference_workload`); runqueue, where the kernel
                 reports it, the total time the thread waited for a core during the value
    alloc        {"peak_alloc"}                  only with the tracemalloc flag
    end          {"peak_rss"}                    the worker finished cleanly
    error        {"phase", "error"}              then a traceback on stderr and exit code 1

Protocol versions (``PROTOCOL_VERSION``):
    1: first version.
    2: a task may carry ``count_calls`` (instruction counting under cachegrind): the worker
       then makes ``warmup`` x ``loops`` calls and ``count_calls`` calls, and sends no values.
    3: the token on stdin and in every message; the result pipe moved to a private
       descriptor; the parent checks the count and the indexes of the values.
    4: a task may carry ``reference`` (seconds): before every value the worker times a fixed
       reference workload for about that long and sends its CPU time per call with the value.
       Where Linux reports it, every value carries ``runqueue``: the seconds the measuring
       thread spent ready to run but waiting for a core during the value.

This module imports only the standard library and its two halves, :mod:`.channel` (the result
pipe) and :mod:`.timers` (the timing loop), which import only the standard library too: whatever
they import is in the memory and the start-up time of every worker, and so in the target's peak
RSS.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any, Callable

from . import channel as _channel_module
from . import timers as _timers_module
from .channel import PROTOCOL_VERSION, ResultChannel, peak_rss_bytes
from .timers import calibrate, make_timer, send_values

#: Frames of these files are left out of the traceback the user sees (the worker's own).
_OWN_FILES = frozenset({__file__, _channel_module.__file__, _timers_module.__file__})

class WorkerFailure(Exception):
    """A phase of the task failed; carries the phase name for the parent's error message."""

    def __init__(self, phase: str, exc: BaseException) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.phase = phase


def resolve(target: str) -> Callable[..., Any]:
    """The object named by ``"package.module:attr.path"``."""
    module_name, _, attr_path = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is not callable")
    return obj


def run_task(task: dict[str, Any], channel: ResultChannel) -> None:
    """Carry out one task: import, set up, calibrate, time, measure memory, tear down."""
    channel.send("hello", version=PROTOCOL_VERSION, pid=os.getpid(),
                 timer_resolution=time.get_clock_info("perf_counter").resolution)
    for path in reversed(task.get("sys_path", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    params: dict[str, Any] = dict(task.get("params") or {})

    try:
        fn = resolve(task["target"])
        setup = resolve(task["setup"]) if task.get("setup") else None
        teardown = resolve(task["teardown"]) if task.get("teardown") else None
    except Exception as exc:
        raise WorkerFailure("import", exc) from exc

    try:
        ctx = setup(**params) if setup else None
    except Exception as exc:
        raise WorkerFailure("setup", exc) from exc

    timer = make_timer(fn, ctx, setup is not None, params)
    try:
        loops = task.get("loops")
        if not loops:
            loops = calibrate(timer, float(task.get("min_time", 0.0)))
            channel.send("calibration", loops=loops)
        warmup, values = int(task.get("warmup", 0)), int(task["values"])
        counted = task.get("count_calls")
        if counted is not None:
            # Run under cachegrind (perfloop.measure.instructions): nothing is timed or sent per
            # value; the parent subtracts a process making 0 calls from one making ``counted``,
            # so start-up, imports, setup and these warmup calls cancel out of the count.
            for _ in range(warmup):
                timer(loops)
            timer(int(counted))
            warmup = values = 0
        send_values(task, channel, timer, loops, warmup, values)
    except Exception as exc:
        raise WorkerFailure("call", exc) from exc

    # Read the RSS peak before tracemalloc runs: its own bookkeeping would inflate it.
    peak_rss = peak_rss_bytes()

    if task.get("tracemalloc"):
        import tracemalloc
        try:
            # Separate untimed call: tracemalloc slows allocation-heavy code several-fold.
            tracemalloc.start()
            tracemalloc.reset_peak()
            ret = fn(ctx) if setup is not None else fn(**params)
            _, peak = tracemalloc.get_traced_memory()
            del ret
        except Exception as exc:
            raise WorkerFailure("call", exc) from exc
        finally:
            tracemalloc.stop()
        channel.send("alloc", peak_alloc=peak)

    try:
        if teardown is not None:
            teardown(ctx) if setup is not None else teardown(**params)
    except Exception as exc:
        raise WorkerFailure("teardown", exc) from exc

    channel.send("end", peak_rss=peak_rss)


def print_user_traceback(exc: BaseException) -> None:
    """The traceback on stderr without this module's frames: the stderr tail the user sees
    should point at their code, and it is only 40 lines long."""
    te = traceback.TracebackException.from_exception(exc)
    te.stack = traceback.StackSummary.from_list(
        [frame for frame in te.stack
         if frame.filename not in _OWN_FILES and not frame.filename.startswith("<frozen importlib")])
    sys.stderr.write("".join(te.format()))
    sys.stderr.flush()


def read_token() -> str:
    """The token line the parent wrote on stdin; stdin then reads from /dev/null, so the
    benchmarked code can neither read the token nor block on the parent's pipe."""
    data = b""
    while not data.endswith(b"\n") and len(data) < 4096:
        chunk = os.read(0, 4096)
        if not chunk:
            break
        data += chunk
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return data.decode("ascii", errors="replace").strip()


def private_channel(fd: int, token: str) -> ResultChannel:
    """The result pipe on a new, non-inheritable descriptor; the one named on the command line is
    closed, so writing to it from the benchmarked code fails with EBADF."""
    private = os.dup(fd)          # os.dup's descriptor is non-inheritable
    os.close(fd)
    return ResultChannel(private, token)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perfloop.measure.worker",
                                     description="perfloop's benchmark worker (started by perfloop).")
    parser.add_argument("--result-fd", type=int, required=True, help="pipe to write JSON lines to")
    parser.add_argument("--task", required=True, help="the task, as JSON")
    args = parser.parse_args(argv)
    # Processes the benchmarked code starts must not hold the result pipe open (the parent
    # waits for end-of-file on it), and the benchmarked code must not find it by its number.
    channel = private_channel(args.result_fd, read_token())
    del sys.argv[1:]
    try:
        task = json.loads(args.task)
        if task.get("version") != PROTOCOL_VERSION:
            raise WorkerFailure("protocol", ValueError(
                f"task version {task.get('version')} != worker version {PROTOCOL_VERSION}"))
        if task.get("suite"):
            # A benchmark of a pytest or asv suite: the tool finds the callable (measure/suites).
            from .suites.worker_side import run_suite_task
            return run_suite_task(task, channel)
        run_task(task, channel)
    except WorkerFailure as exc:
        channel.send("error", phase=exc.phase, error=str(exc))
        print_user_traceback(exc.__cause__ or exc)
        return 1
    finally:
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
