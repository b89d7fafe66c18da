"""Profiling a callable benchmark in a fresh worker, with pyinstrument, cProfile or py-spy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ...config import BenchmarkSpec
from ...errors import UsageError
from ..profiles import Profile, from_speedscope
from ..signals import compute_signals
from . import pyspy
from .result import CPROFILE_CAVEAT, DEFAULT_DURATION, DEFAULT_RATE, PROFILERS, ProfileResult
from .worker import WORKER, run_worker, runtime_stats, trim_to_loop, worker_profile


def resolve_paths(spec: BenchmarkSpec) -> list[str]:
    root = Path(spec.root).resolve()
    return [str((root / p).resolve()) for p in spec.pythonpath] + [str(root)]


def profile_callable(spec: BenchmarkSpec, *, duration: float | None = None, profiler: str = "auto",
                     interval: float = 0.001, memory_check: bool = True,
                     timeout: float | None = None) -> ProfileResult:
    """Profile a callable benchmark: call it repeatedly for about ``duration`` seconds.

    The worker imports the callable (``sys.path`` gets ``spec.pythonpath`` and ``spec.root``),
    calls ``setup(**params)`` once and then ``fn(ctx)`` (or ``fn(**params)`` without setup),
    once unprofiled as a warm-up and then in a loop under the profiler. ``profiler``:
    ``"auto"`` (default: pyinstrument, and py-spy again when the callable started threads,
    which pyinstrument does not record), ``"pyinstrument"`` (wall-clock sampling of the
    calling thread only), ``"cprofile"`` (deterministic, heavier, calling thread only), or
    ``"py-spy"`` (outside the process, every thread; falls back to pyinstrument with a note
    when py-spy cannot attach here).
    """
    if spec.kind != "callable" or not (spec.callable or spec.suite):
        raise UsageError(f"benchmark {spec.name!r} is a {spec.kind} benchmark, not a callable",
                         hint="use profile_command for commands")
    if profiler not in PROFILERS:
        raise UsageError(f"unknown profiler {profiler!r}", hint=f"choose one of {', '.join(PROFILERS)}")
    duration = DEFAULT_DURATION if duration is None else float(duration)
    if duration <= 0:
        raise UsageError("duration must be a positive number of seconds")
    notes: list[str] = []
    want_spy = profiler == "py-spy"
    if want_spy and not pyspy.check_py_spy().ok:
        status = pyspy.check_py_spy()
        want_spy = False
        notes.append(f"py-spy is not usable here ({status.problem}); profiled with pyinstrument "
                     f"instead, which records only the thread that runs the callable. "
                     f"Fix: {status.fix}")
    used = "pyinstrument" if profiler in ("auto", "py-spy") else profiler
    result = _profile_callable_once(spec, duration, "py-spy" if want_spy else used, interval,
                                    memory_check, timeout)
    started = int((result.runtime.threads_started if result.runtime else 0) or 0)
    if profiler == "auto" and started and result.profiler != "py-spy":
        status = pyspy.check_py_spy()
        if status.ok:
            notes.append(f"the callable started {started} thread(s) while profiled, and "
                         f"{result.profiler} records only the thread that calls it: profiled again "
                         f"with py-spy, which records every thread")
            result = _profile_callable_once(spec, duration, "py-spy", interval, memory_check, timeout)
        else:
            notes.append(f"the callable started {started} thread(s) while profiled; "
                         f"{result.profiler} recorded only the thread that calls it, and py-spy, "
                         f"which records every thread, is not usable here ({status.problem}). "
                         f"Fix: {status.fix}")
    return dataclasses.replace(result, requested=profiler, notes=(*notes, *result.notes))


def _profile_callable_once(spec: BenchmarkSpec, duration: float, profiler: str, interval: float,
                           memory_check: bool, timeout: float | None) -> ProfileResult:
    """One profile of a callable with ``profiler`` (py-spy must be usable when asked for)."""
    py_spy = None
    if profiler == "py-spy":
        path = pyspy.check_py_spy().path
        assert path is not None
        py_spy = (path, ["--rate", str(DEFAULT_RATE), "--idle"])
    modules = [spec.callable.partition(":")[0]] if spec.callable else []
    request = {"version": 1, "mode": "callable", "callable": spec.callable, "setup": spec.setup,
               "teardown": spec.teardown, "params": dict(spec.params), "paths": resolve_paths(spec),
               "duration": duration, "profiler": "none" if py_spy else profiler, "interval": interval,
               "memory_check": memory_check}
    if spec.suite is not None:   # a pytest or asv suite's benchmark: its tool sets it up
        request["suite"] = spec.suite.to_task(str(Path(spec.root).resolve()))
    cwd = str((Path(spec.root) / spec.cwd).resolve()) if spec.cwd else str(Path(spec.root).resolve())
    limit = timeout if timeout is not None else max(spec.settings.timeout, duration * 4 + 60)
    res, trace, doc, stderr = run_worker(request, cwd=cwd, env=spec.env, timeout=limit,
                                          what=f"benchmark {spec.name}", py_spy=py_spy)
    notes = list(res.get("notes", []))
    if doc is not None:
        profile = from_speedscope(doc, paths=res.get("sys_path", []), profiler="py-spy",
                                  calls=res.get("calls"), user_modules=modules)
        profile = trim_to_loop(profile, res.get("worker_file", str(WORKER)))
        profile = Profile(frames=profile.frames, stacks=profile.stacks, unit=profile.unit,
                          profiler="py-spy", duration=float(res.get("wall") or 0.0),
                          calls=res.get("calls"), meta=profile.meta)
        used = "py-spy"
    else:
        profile = worker_profile(res, user_modules=modules)
        used = res.get("profiler", profiler)
    if used == "cprofile":
        notes.append(CPROFILE_CAVEAT)
    runtime = runtime_stats(res)
    window = trace.window(res["t_start"], res["t_end"])
    signals = compute_signals(trace=window, runtime=runtime, profiler=used)
    return ProfileResult(profile=profile, signals=tuple(signals), profiler=used, requested=profiler,
                         target=spec.callable or spec.name, duration=runtime.wall, calls=runtime.calls,
                         notes=tuple(notes), trace=window, runtime=runtime,
                         stderr_tail=stderr or None)
