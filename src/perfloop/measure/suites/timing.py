"""The value loop of a suite worker: perfloop's calibration, warmup and values around one call.

A suite benchmark reaches perfloop as a zero-argument call (the function a pytest test hands
to ``benchmark(...)``, an asv method bound to its parameters) only once the tool has set it up,
so the loop is called from inside the tool's run rather than around it. It sends the same
messages as :func:`perfloop.measure.worker.run_task` (``calibration``, ``value``), so the parent
cannot tell a suite worker from a callable worker.

Like the callable worker, this module imports only the standard library.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable

from ..channel import ResultChannel
from ..timers import calibrate, send_values, zero_arg_timer

Timer = Callable[[int], tuple[float, float, Any]]


def call_timer(fn: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
               setup: Callable[[], Any] | None = None) -> Timer:
    """``time(loops) -> (wall total, cpu total, last return value)`` for ``fn(*args, **kwargs)``.

    With ``setup`` (pytest-benchmark's ``pedantic(setup=...)``), ``setup()`` runs before every
    call, untimed, and may return ``(args, kwargs)`` for that call; each call is timed alone.
    """
    perf_counter, process_time, repeat = time.perf_counter, time.process_time, itertools.repeat
    kwargs = kwargs or {}
    if setup is not None:
        def timer_with_setup(loops: int) -> tuple[float, float, Any]:
            wall = cpu = 0.0
            ret = None
            for _ in repeat(None, loops):
                a, k = _setup_arguments(setup(), args, kwargs)
                c0 = process_time()
                t0 = perf_counter()
                ret = fn(*a, **k)
                t1 = perf_counter()
                c1 = process_time()
                wall += t1 - t0
                cpu += c1 - c0
            return wall, cpu, ret
        return timer_with_setup
    if args or kwargs:
        def timer_args(loops: int) -> tuple[float, float, Any]:
            it, ret = repeat(None, loops), None
            c0 = process_time()
            t0 = perf_counter()
            for _ in it:
                ret = fn(*args, **kwargs)
            t1 = perf_counter()
            c1 = process_time()
            return t1 - t0, c1 - c0, ret
        return timer_args

    return zero_arg_timer(fn)


def _setup_arguments(made: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
                     ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """pytest-benchmark's rule: a setup that returns something returns ``(args, kwargs)``."""
    if made is None:
        return args, kwargs
    if args or kwargs:
        raise TypeError("pedantic: a setup function that returns arguments cannot be combined "
                        "with args or kwargs")
    try:
        new_args, new_kwargs = made
    except (TypeError, ValueError) as exc:
        raise TypeError(f"pedantic: setup must return None or (args, kwargs), got {made!r}") from exc
    return tuple(new_args), dict(new_kwargs)


def timed_values(task: dict[str, Any], channel: ResultChannel, timer: Timer, *,
                 loops: int | None = None) -> Any:
    """Calibrate (unless the task or ``loops`` fixes the loop count), then send the warmup and
    measured values; returns the value of the last call.

    The values carry no custom metrics: what a test's function returns is data, not a metric.
    """
    loops = loops or task.get("loops")
    if not loops:
        loops = calibrate(timer, float(task.get("min_time", 0.0)))
        channel.send("calibration", loops=loops)
    warmup, values = int(task.get("warmup", 0)), int(task["values"])
    ret = None
    counted = task.get("count_calls")
    if counted is not None:
        # Under cachegrind (perfloop.measure.instructions): the same rule as the callable worker,
        # warmup calls then ``count_calls`` calls, nothing sent per value.
        for _ in range(warmup):
            ret = timer(loops)[2]
        return timer(int(counted))[2] if counted else ret
    return send_values(task, channel, timer, loops, warmup, values, custom=lambda _: {},
                       keep_last=True)
