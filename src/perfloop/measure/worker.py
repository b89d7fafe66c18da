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
                 this value (see :func:`reference_workload`); runqueue, where the kernel
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

This module imports only the standard library: whatever it imports is in the memory and the
start-up time of every worker, and so in the target's peak RSS.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import math
import os
import resource
import sys
import time
import traceback
from typing import Any, Callable

PROTOCOL_VERSION = 4

#: Calibration stops doubling here even if one value is still shorter than min_time: a
#: callable that fast is a no-op, and more loops would only overflow the patience of the user.
MAX_LOOPS = 2 ** 32


class WorkerFailure(Exception):
    """A phase of the task failed; carries the phase name for the parent's error message."""

    def __init__(self, phase: str, exc: BaseException) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.phase = phase


class ResultChannel:
    """Writes protocol messages to the result pipe, one JSON object per line, with the token."""

    def __init__(self, fd: int, token: str = "") -> None:
        self.fd = fd
        self.token = token

    def send(self, kind: str, **fields: Any) -> None:
        data = (json.dumps({"type": kind, "token": self.token, **fields}) + "\n").encode()
        # A blocking pipe write can still be partial when a signal interrupts it.
        while data:
            written = os.write(self.fd, data)
            data = data[written:]


def resolve(target: str) -> Callable[..., Any]:
    """The object named by ``"package.module:attr.path"``."""
    module_name, _, attr_path = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is not callable")
    return obj


def peak_rss_bytes() -> int:
    """This process's peak resident set size, in bytes.

    On Linux ``getrusage().ru_maxrss`` is inherited across fork/vfork + exec: a worker started
    by a 300 MB parent reports 300 MB even if it never used more than 9 MB. ``VmHWM`` in
    /proc/self/status is the high-water mark of this process's own address space since exec,
    so it is used where it exists.
    """
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux (and most Unixes) report KiB; macOS reports bytes.
    return int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024


def custom_metrics(returned: Any) -> dict[str, float]:
    """The numbers of a dict the callable returned; anything else is not a metric."""
    if not isinstance(returned, dict):
        return {}
    out: dict[str, float] = {}
    for key, value in returned.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[str(key)] = float(value)
    return out


def make_timer(fn: Callable[..., Any], ctx: Any, use_ctx: bool,
               params: dict[str, Any]) -> Callable[[int], tuple[float, float, Any]]:
    """A function ``time(loops) -> (wall total, cpu total, last return value)``.

    One loop per call shape, so the timed loop pays no ``*args``/``**kwargs`` unpacking
    when there is nothing to unpack (the same trick as pyperf's bench_func).
    """
    perf_counter, process_time, repeat = time.perf_counter, time.process_time, itertools.repeat

    if use_ctx:
        def timer(loops: int) -> tuple[float, float, Any]:
            it, ret = repeat(None, loops), None   # ret: loops may be 0 (instruction baseline)
            c0 = process_time()
            t0 = perf_counter()
            for _ in it:
                ret = fn(ctx)
            t1 = perf_counter()
            c1 = process_time()
            return t1 - t0, c1 - c0, ret
    elif params:
        def timer(loops: int) -> tuple[float, float, Any]:
            it, ret = repeat(None, loops), None   # ret: loops may be 0 (instruction baseline)
            c0 = process_time()
            t0 = perf_counter()
            for _ in it:
                ret = fn(**params)
            t1 = perf_counter()
            c1 = process_time()
            return t1 - t0, c1 - c0, ret
    else:
        return zero_arg_timer(fn)
    return timer


def zero_arg_timer(fn: Callable[[], Any]) -> Callable[[int], tuple[float, float, Any]]:
    """``time(loops)`` for ``fn()``: the loop with nothing to unpack (suite workers use it too)."""
    perf_counter, process_time, repeat = time.perf_counter, time.process_time, itertools.repeat

    def timer(loops: int) -> tuple[float, float, Any]:
        it, ret = repeat(None, loops), None   # ret: loops may be 0 (instruction baseline)
        c0 = process_time()
        t0 = perf_counter()
        for _ in it:
            ret = fn()
        t1 = perf_counter()
        c1 = process_time()
        return t1 - t0, c1 - c0, ret
    return timer


def reference_workload() -> int:
    """The host's yardstick: fixed pure-Python work, timed beside every value when asked.

    A shared host's speed changes from one minute to the next (another tenant, a frequency
    change) by up to tens of percent, and every benchmark measured meanwhile moves with it. The
    same fixed work, timed in the same process just before each value, moves too, so CPU time
    divided by it (``cpu_norm``) keeps the code's cost and loses much of the host's. It mixes
    what interpreted code does (integer arithmetic, int-keyed dict and list operations, calls,
    attribute-free loops) and hashes no strings, so ``PYTHONHASHSEED`` does not move it. Never
    change it: stored ``cpu_norm`` values are in units of this function.
    """
    table: dict[int, int] = {}
    items: list[int] = []
    x = 0
    for i in range(600):
        x = (x * 31 + i) & 0xFFFF
        table[x & 255] = table.get(x & 255, 0) + i
        items.append(x % 97)
    items.sort()
    return x + len(table) + sum(items[::7]) + max(abs(v) for v in table.values())


SCHEDSTAT = "/proc/thread-self/schedstat"


def runqueue_clock() -> Callable[[], float] | None:
    """A clock of the seconds this thread has waited for a core, or None where the kernel
    does not report it (``/proc/thread-self/schedstat``, second field, in nanoseconds).

    Waiting for a core adds wall time that is neither the code's computing nor its own waiting
    (I/O, locks, sleep): on a busy machine it is most of a value's wall time, and subtracting
    it tells code that computes from code that waits however loaded the machine is.
    """
    def read() -> float:
        with open(SCHEDSTAT, "rb") as f:
            return int(f.read().split()[1]) / 1e9
    try:
        read()
    except (OSError, ValueError, IndexError):
        return None
    return read


def timed_value(timer: Callable[[int], tuple[float, float, Any]], loops: int,
                runqueue: Callable[[], float] | None) -> tuple[float, float, Any, dict[str, float]]:
    """``timer(loops)`` and, when there is a runqueue clock, the time it waited for a core."""
    if runqueue is None:
        wall, cpu, ret = timer(loops)
        return wall, cpu, ret, {}
    q0 = runqueue()
    wall, cpu, ret = timer(loops)
    return wall, cpu, ret, {"runqueue": max(runqueue() - q0, 0.0)}


def send_values(task: dict[str, Any], channel: ResultChannel,
                timer: Callable[[int], tuple[float, float, Any]], loops: int, warmup: int,
                values: int, *, custom: Callable[[Any], dict[str, float]] = custom_metrics,
                keep_last: bool = False) -> Any:
    """Time ``warmup + values`` values and send each as it is measured, with the reference
    workload's time when the task asks for it and the time spent waiting for a core where the
    kernel reports it. Each call's return value is dropped once sent (it is not kept alive
    through the next call); with ``keep_last`` the last one is returned."""
    reference = reference_timer(float(task["reference"])) if task.get("reference") else None
    queue = runqueue_clock()
    last = None
    for index in range(warmup + values):
        extra = {"reference": reference()} if reference is not None else {}
        wall, cpu, ret, waited = timed_value(timer, loops, queue)
        channel.send("value", index=index, warmup=index < warmup, loops=loops,
                     wall_time=wall, cpu_time=cpu, custom=custom(ret), **extra, **waited)
        last = ret if keep_last else None
        del ret
    return last


def reference_timer(seconds: float) -> Callable[[], float]:
    """Calibrate the reference workload to last about ``seconds``; returns a function timing
    one such run, as the CPU time of one call."""
    timer = zero_arg_timer(reference_workload)
    loops = calibrate(timer, seconds)

    def measure() -> float:
        return timer(loops)[1] / loops
    return measure


def calibrate(timer: Callable[[int], tuple[float, float, Any]], min_time: float) -> int:
    """The smallest power-of-two loop count whose total lasts at least ``min_time``."""
    loops = 1
    if min_time <= 0:
        return loops
    while loops < MAX_LOOPS:
        wall, _, _ = timer(loops)
        if wall >= min_time:
            break
        loops *= 2
    return loops


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
         if frame.filename != __file__ and not frame.filename.startswith("<frozen importlib")])
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
