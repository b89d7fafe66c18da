"""The in-process profilers, pyinstrument and cProfile, run in perfloop's profiling worker.

The worker (``measure/profile_worker.py``) is started by path with a JSON request file and
writes a JSON result file; py-spy may watch it from outside. This module starts it, samples it,
and turns its result into a :class:`~perfloop.analysis.profiles.Profile`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from ...errors import TargetError
from ...measure import profile_worker
from ..profiles import Profile, Stack, from_cprofile, from_pyinstrument
from ..signals import ProcessTrace, RuntimeStats
from .process import Sampler, kill_tree, read_json, start, tail, wait
from .pyspy import explain_py_spy_failure

WORKER = Path(profile_worker.__file__)  # run by path: it must import nothing of perfloop


def runtime_stats(res: Mapping[str, Any]) -> RuntimeStats:
    memory = res.get("memory") or {}
    return RuntimeStats(
        wall=float(res.get("wall") or 0.0), cpu=float(res.get("cpu") or 0.0),
        calls=int(res.get("calls") or 0), runqueue=res.get("runqueue"), gc_time=res.get("gc_time"),
        gc_collections=tuple(res.get("gc_collections") or (0, 0, 0)),
        blocks_start=res.get("blocks_start"), blocks_end=res.get("blocks_end"),
        rss_start=res.get("rss_start"), rss_end=res.get("rss_end"),
        retained_per_call=memory.get("retained_per_call"),
        retained_sites=tuple((str(loc), int(n)) for loc, n in memory.get("sites", [])),
        threads_max=res.get("threads_max"), threads_started=res.get("threads_started"))


def trim_to_loop(profile: Profile, worker_file: str) -> Profile:
    """Keep what py-spy saw inside the worker's profiled loop, and other threads' stacks.

    py-spy watches the whole worker process: start-up, imports, setup and the warm-up call are
    on the main thread outside ``_profiled_calls``; they are dropped, and stacks are cut below
    that frame so they start at the user's callable, as with pyinstrument.
    """
    keep = []
    for stack in profile.stacks:
        frames = [profile.frames[i] for i in stack.frames]
        loop = next((n for n, fr in enumerate(frames)
                     if fr.function == "_profiled_calls" and fr.file == worker_file), None)
        if loop is not None:
            rest = stack.frames[loop + 1:]
            while rest and profile.frames[rest[0]].file == worker_file:   # the worker's call wrapper
                rest = rest[1:]
            if rest:
                # the innermost line stays: it tells a thread waiting at time.sleep from one computing
                keep.append(Stack(rest, stack.weight, stack.thread, stack.line))
        elif not any(fr.file == worker_file for fr in frames):
            keep.append(stack)
    return Profile(frames=profile.frames, stacks=tuple(keep), unit=profile.unit,
                   profiler=profile.profiler, duration=profile.duration, calls=profile.calls,
                   interval=profile.interval, meta=profile.meta)


def worker_profile(res: Mapping[str, Any], *, user_modules: Sequence[str] = ()) -> Profile:
    paths = list(res.get("sys_path") or [])
    skip = [res.get("worker_file", str(WORKER)), *res.get("skip_files", [])]
    calls = res.get("calls")
    if res.get("profiler") == "cprofile":
        stats = {tuple(r[0]): (r[1], r[2], r[3], r[4], {tuple(c[0]): tuple(c[1:]) for c in r[5]})
                 for r in res.get("cprofile", [])}
        profile = from_cprofile(stats, paths=paths, skip_files=skip, calls=calls,
                                duration=float(res.get("wall") or 0.0), user_modules=user_modules)
    else:
        profile = from_pyinstrument(res.get("records", []), paths=paths, skip_files=skip,
                                    calls=calls, user_modules=user_modules)
    return Profile(frames=profile.frames, stacks=profile.stacks, unit=profile.unit,
                   profiler=profile.profiler, duration=float(res.get("wall") or profile.duration),
                   calls=calls, interval=profile.interval, meta=profile.meta)


def run_worker(request: dict[str, Any], *, cwd: str | None, env: Mapping[str, str] | None,
                timeout: float, what: str, python: str = sys.executable,
                python_flags: Sequence[str] = (), py_spy: tuple[str, Sequence[str]] | None = None
                ) -> tuple[dict[str, Any], ProcessTrace, dict[str, Any] | None, str]:
    """Start the worker (under py-spy when asked), sample it, return its result and trace.

    Returns (worker result, psutil trace, py-spy speedscope document or None, stderr tail).
    """
    with tempfile.TemporaryDirectory(prefix="perfloop-profile-") as tmp:
        tmpdir = Path(tmp)
        request = {**request, "out": str(tmpdir / "result.json")}
        (tmpdir / "request.json").write_text(json.dumps(request, default=str))
        argv = [python, *python_flags, str(WORKER), str(tmpdir / "request.json")]
        stderr_path = tmpdir / "stderr.txt"
        with open(tmpdir / "stdout.txt", "wb") as out, open(stderr_path, "wb") as err:
            try:
                proc = start(argv, cwd=cwd, env=env, stdout=out, stderr=err)
            except OSError as exc:
                raise TargetError(f"{what}: cannot start the profiling worker with {python}: {exc}",
                                  hint="check the Python interpreter path") from exc
            spy = None
            try:
                sampler = Sampler(proc.pid).start()
                if py_spy is not None:
                    spy = start([py_spy[0], "record", "--pid", str(proc.pid), "--format",
                                 "speedscope", "-o", str(tmpdir / "profile.json"), *py_spy[1]],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                try:
                    code = wait(proc, timeout, what)
                finally:
                    trace = sampler.stop()
                spy_err = ""
                if spy is not None:
                    try:
                        _, spy_err = spy.communicate(timeout=30)
                    except subprocess.TimeoutExpired:
                        pass          # killed below
            finally:
                # on every way out (Ctrl-C and timeouts too): nothing started here outlives it
                if spy is not None:
                    kill_tree(spy)
                kill_tree(proc)
        stderr = tail(stderr_path)
        res = read_json(tmpdir / "result.json")
        if res is None:
            raise TargetError(f"{what}: the profiling worker exited with status {code} without a result",
                              hint=f"its stderr ends with:\n{stderr}" if stderr else
                              "the target may have called os._exit() or been killed (out of memory?)")
        if not res.get("ok"):
            stage = res.get("stage", "call")
            raise TargetError(f"{what}: {stage} failed: {res.get('error')}\n{res.get('traceback', '')}",
                              hint="fix the error above; the callable must run outside perfloop too")
        doc = None
        if py_spy is not None:
            doc = read_json(tmpdir / "profile.json")
            if doc is None:
                problem, fix = explain_py_spy_failure(spy_err or "py-spy wrote no profile")
                raise TargetError(f"{what}: py-spy failed: {problem}", hint=fix)
        return res, trace, doc, stderr

