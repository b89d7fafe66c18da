"""Profiling worker: runs a callable (or a Python program) under a profiler in a fresh process.

Started by :mod:`perfloop.analysis.profilers` as ``python profile_worker.py REQUEST.json``. It is
run by path, not as ``-m perfloop...``, and imports only the standard library (and pyinstrument
when asked), so the profiled process holds the user's modules and nothing of perfloop's.

Protocol, version 1. The request (JSON) holds:

    mode        "callable" | "module" | "script" | "code"
    callable, setup, teardown, params    (mode "callable": "module:function" names, a dict)
    suite       (mode "callable") a benchmark of a pytest or asv suite instead of a callable:
                perfloop.measure.suites.profile_side sets it up and hands over its call
    target, argv                         (other modes: module name, script path or code; sys.argv)
    paths       directories put first on sys.path
    duration    seconds to keep calling the callable (commands: stop the program after it; null)
    profiler    "pyinstrument" | "cprofile" | "none" (an outside profiler, py-spy, is attached)
    interval    pyinstrument sampling interval, seconds
    memory_check  run a short tracemalloc pass when RSS grew
    out         where to write the result (JSON)

The result holds ``ok``, the profiler actually used, ``notes`` (fallbacks), the profile
(``records`` from pyinstrument or ``cprofile`` statistics), call count, wall and CPU time of the
profiled window with its ``time.time()`` bounds (the parent's psutil trace is cut to them),
GC time and collections, allocated blocks, RSS, the memory pass, and ``threads_started`` (Python
threads started in the profiled window: pyinstrument records only the thread that runs the code). A failure writes ``ok:
false`` with the stage ("import", "setup", "call"), the error and the traceback, and exits 3.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from typing import Any, Callable

VERSION = 1
EXIT_TARGET_FAILED = 3
MEMORY_CHECK_MIN_GROWTH = 4 * 2**20


class _TimeUp(BaseException):
    """Raised in the main thread when a program profiled for a fixed duration runs out of time."""


class _TargetFailed(Exception):
    def __init__(self, stage: str, exc: BaseException) -> None:
        super().__init__(f"{stage}: {exc}")
        self.stage = stage
        self.exc = exc


def _rss() -> int | None:
    try:
        import psutil
        return int(psutil.Process().memory_info().rss)
    except Exception:
        pass
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _runqueue() -> float | None:
    """Seconds this process's threads have waited for a CPU (Linux schedstat), or None."""
    total = 0
    try:
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[1])
            except (OSError, ValueError, IndexError):
                continue   # a thread that ended meanwhile
    except OSError:
        return None
    return total / 1e9


def _resolve(name: str) -> Callable[..., Any]:
    module_name, _, attr = name.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{name} is not callable")
    return obj


class _GcTimer:
    """Time between gc.callbacks "start" and "stop", and collections per generation."""

    def __init__(self) -> None:
        self.time = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self.time += time.perf_counter() - self._started
            gen = int(info.get("generation", 0))
            if 0 <= gen < 3:
                self.collections[gen] += 1
            self._started = 0.0


class _Profiler:
    """pyinstrument, cProfile, or nothing (when py-spy watches from outside)."""

    def __init__(self, kind: str, interval: float, notes: list[str]) -> None:
        self.kind = kind
        self._impl: Any = None
        if kind == "pyinstrument":
            try:
                from pyinstrument import Profiler
                self._impl = Profiler(interval=interval, async_mode="disabled")
            except ImportError:
                notes.append("pyinstrument is not installed in the profiled interpreter; fell back "
                             "to cProfile (deterministic tracing: slower, and stacks are "
                             "reconstructed approximately). Fix: pip install pyinstrument")
                self.kind = "cprofile"
        if self.kind == "cprofile":
            import cProfile
            self._impl = cProfile.Profile()

    def start(self) -> None:
        if self.kind == "pyinstrument":
            self._impl.start()
        elif self.kind == "cprofile":
            self._impl.enable()

    def stop(self) -> dict[str, Any]:
        if self.kind == "pyinstrument":
            session = self._impl.stop()
            merged: Counter[tuple[str, ...]] = Counter()
            for stack, weight in session.frame_records:
                merged[tuple(stack)] += weight
            return {"records": [[list(k), v] for k, v in merged.items()],
                    "sys_path": list(session.sys_path)}
        if self.kind == "cprofile":
            self._impl.disable()
            self._impl.create_stats()
            rows = []
            for key, (cc, nc, tt, ct, callers) in self._impl.stats.items():
                rows.append([list(key), cc, nc, tt, ct,
                             [[list(ck), *edge] for ck, edge in callers.items()]])
            return {"cprofile": rows}
        return {}


class _ThreadCount:
    """Counts the Python threads started while the profile runs (pyinstrument sees only one).

    ``threading.Thread.start`` is wrapped for the profiled window only; the wrapper calls the
    original, so the program behaves as it would without it.
    """

    def __init__(self) -> None:
        self.started = 0
        self._original = threading.Thread.start

    def __enter__(self) -> "_ThreadCount":
        original, counter = self._original, self

        def start(thread: threading.Thread) -> None:
            counter.started += 1
            original(thread)

        threading.Thread.start = start  # type: ignore[method-assign, assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        threading.Thread.start = self._original  # type: ignore[method-assign]


def _profiled_calls(call: Callable[[], Any], duration: float) -> int:
    """Call until ``duration`` has passed (at least once). py-spy's stacks are cut at this frame.

    Nothing else happens in the loop, so nothing of perfloop's shows in the profile.
    """
    calls = 0
    start = time.perf_counter()
    while True:
        call()
        calls += 1
        if time.perf_counter() - start >= duration:
            return calls


def _memory_pass(call: Callable[[], Any], duration: float) -> dict[str, Any]:
    """Python memory kept per call, and where it was allocated, with tracemalloc on."""
    import tracemalloc
    tracemalloc.start()
    try:
        skip = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__))
        before = tracemalloc.take_snapshot().filter_traces(skip)
        base = tracemalloc.get_traced_memory()[0]
        calls = 0
        start = time.perf_counter()
        while calls < 2 or (time.perf_counter() - start < duration and calls < 200):
            call()
            calls += 1
        grown = tracemalloc.get_traced_memory()[0] - base
        after = tracemalloc.take_snapshot().filter_traces(skip)
        diffs = [d for d in after.compare_to(before, "lineno")[:3] if d.size_diff > 0]
        # a site far below the first is noise from the pass itself, not what holds the memory
        sites = [(f"{d.traceback[0].filename}:{d.traceback[0].lineno}", d.size_diff)
                 for d in diffs if d.size_diff >= 0.1 * diffs[0].size_diff]
    finally:
        tracemalloc.stop()
    return {"calls": calls, "retained_per_call": grown / calls, "sites": sites}


def _window_start() -> dict[str, Any]:
    return {"t": time.time(), "wall": time.perf_counter(), "cpu": time.process_time(),
            "blocks": sys.getallocatedblocks(), "rss": _rss(), "runqueue": _runqueue()}


def _window_end(start: dict[str, Any], gc_timer: _GcTimer) -> dict[str, Any]:
    queued = _runqueue()
    return {"t_start": start["t"], "t_end": time.time(),
            "runqueue": queued - start["runqueue"] if queued is not None and start["runqueue"] is not None
            else None,
            "wall": time.perf_counter() - start["wall"], "cpu": time.process_time() - start["cpu"],
            "gc_time": gc_timer.time, "gc_collections": gc_timer.collections,
            "blocks_start": start["blocks"], "blocks_end": sys.getallocatedblocks(),
            "rss_start": start["rss"], "rss_end": _rss()}


def run_callable(req: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    try:
        fn = _resolve(req["callable"])
        setup = _resolve(req["setup"]) if req.get("setup") else None
        teardown = _resolve(req["teardown"]) if req.get("teardown") else None
    except BaseException as exc:  # an import can fail with anything, SystemExit included
        raise _TargetFailed("import", exc) from exc
    params = req.get("params") or {}
    try:
        ctx = setup(**params) if setup else None
    except BaseException as exc:
        raise _TargetFailed("setup", exc) from exc

    def call() -> Any:
        return fn(ctx) if setup else fn(**params)

    result = _profile_call(call, req, notes)
    if teardown:
        try:
            teardown(ctx) if setup else teardown(**params)
        except Exception as exc:
            notes.append(f"teardown failed: {type(exc).__name__}: {exc}")
    return result


def run_suite(req: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """A benchmark of a pytest or asv suite: the tool sets it up and hands over the call."""
    from perfloop.measure.suites.profile_side import SuiteError, with_call
    results: list[dict[str, Any]] = []
    try:
        with_call(req["suite"], lambda call: results.append(_profile_call(call, req, notes)))
    except SuiteError as exc:
        raise _TargetFailed(exc.phase, exc) from exc
    return results[0]


def _profile_call(call: Callable[[], Any], req: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """Warm up, then call ``call`` under the profiler for the request's duration."""
    try:
        call()   # warm-up, unprofiled: first-call imports and caches are not the hot spot
        profiler = _Profiler(req.get("profiler", "pyinstrument"), float(req.get("interval", 0.001)), notes)
        gc_timer = _GcTimer()
        threads_before = threading.active_count()
        gc.callbacks.append(gc_timer)
        start = _window_start()
        profiler.start()
        try:
            with _ThreadCount() as counted:
                calls = _profiled_calls(call, float(req.get("duration") or 1.0))
        finally:
            data = profiler.stop()
            gc.callbacks.remove(gc_timer)
        result = {**data, **_window_end(start, gc_timer), "calls": calls,
                  "profiler": profiler.kind, "threads_started": counted.started,
                  "threads_max": max(threads_before, threading.active_count())}
        grown = (result["rss_end"] or 0) - (result["rss_start"] or 0)
        if req.get("memory_check", True) and grown >= MEMORY_CHECK_MIN_GROWTH:
            result["memory"] = _memory_pass(call, min(1.0, max(0.2, 0.2 * float(req.get("duration") or 1.0))))
    except BaseException as exc:
        raise _TargetFailed("call", exc) from exc
    return result


def run_program(req: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """A Python program (``-m module``, a script, ``-c code``) profiled as ``__main__``."""
    import runpy
    mode, target = req["mode"], req["target"]
    sys.argv = list(req.get("argv") or [target])
    if mode == "script":
        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
    else:
        sys.path.insert(0, os.getcwd())
    duration = req.get("duration")
    if duration and hasattr(signal, "SIGALRM"):
        def _alarm(_signum: int, _frame: Any) -> None:
            raise _TimeUp()
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, float(duration))
    profiler = _Profiler(req.get("profiler", "pyinstrument"), float(req.get("interval", 0.001)), notes)
    gc_timer = _GcTimer()
    gc.callbacks.append(gc_timer)
    exit_code = 0
    counted = _ThreadCount().__enter__()
    start = _window_start()
    profiler.start()
    try:
        if mode == "module":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        elif mode == "script":
            runpy.run_path(target, run_name="__main__")
        else:
            exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
    except _TimeUp:
        notes.append(f"the program was stopped after {duration:g} s, as asked")
    except SystemExit as exc:
        code = exc.code
        exit_code = code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException as exc:
        exit_code = 1
        notes.append(f"the program raised {type(exc).__name__}: {exc}")
        notes.append("".join(traceback.format_exception(exc))[-2000:])
    finally:
        if duration and hasattr(signal, "SIGALRM"):
            signal.setitimer(signal.ITIMER_REAL, 0)
        data = profiler.stop()
        gc.callbacks.remove(gc_timer)
        counted.__exit__()
    return {**data, **_window_end(start, gc_timer), "calls": None, "profiler": profiler.kind,
            "exit_code": exit_code, "skip_files": [runpy.__file__],
            "threads_started": counted.started}


def main(argv: list[str]) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    # python puts this script's directory first on sys.path; it must not shadow user modules
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    with open(argv[1]) as f:
        req = json.load(f)
    sys.path[:0] = [p for p in req.get("paths", []) if p not in sys.path]
    notes: list[str] = []
    try:
        if req.get("suite"):
            result = run_suite(req, notes)
        elif req.get("mode", "callable") == "callable":
            result = run_callable(req, notes)
        else:
            result = run_program(req, notes)
        out: dict[str, Any] = {"version": VERSION, "ok": True, "notes": notes,
                               "worker_file": os.path.abspath(__file__), "pid": os.getpid(), **result}
        code = 0
    except _TargetFailed as failed:
        exc = failed.exc
        out = {"version": VERSION, "ok": False, "stage": failed.stage, "notes": notes,
               "error": f"{type(exc).__name__}: {exc}",
               "traceback": "".join(traceback.format_exception(exc))[-4000:]}
        code = EXIT_TARGET_FAILED
    out.setdefault("sys_path", list(sys.path))
    tmp = req["out"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, default=str)
    os.replace(tmp, req["out"])
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
