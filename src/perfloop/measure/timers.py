"""The worker's timing loop: timers over a number of calls, calibration, the values it sends.

Used inside a worker process (:mod:`perfloop.measure.worker` and the suite workers of
:mod:`perfloop.measure.suites`). Like the worker, this module imports only the standard library:
whatever it imports is in the memory and the start-up time of every worker.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from typing import Any, Callable

from .channel import ResultChannel

#: Calibration stops doubling here even if one value is still shorter than min_time: a
#: callable that fast is a no-op, and more loops would only overflow the patience of the user.
MAX_LOOPS = 2 ** 32


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
