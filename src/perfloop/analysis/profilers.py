"""Profilers: record where a target spends its time, and the systemic signals around it.

Three entry points, one result type (:class:`ProfileResult`):

- :func:`profile_callable`: a benchmark's callable, called repeatedly for about ``duration``
  seconds in a fresh worker process (``profile_worker.py``) under pyinstrument (a wall-clock
  sampler, in-process, which records only the calling thread), or cProfile, or py-spy
  attached from outside (which sees every thread). ``"auto"`` (default) uses pyinstrument and
  profiles again with py-spy when the callable started threads. GC time and memory are
  measured inside the worker.
- :func:`profile_command`: a command, with py-spy attached from outside (``--idle`` so waiting
  shows). When py-spy is missing or not permitted and the command is a Python program, it is
  run under pyinstrument in the worker instead, and the result says so.
- :func:`profile_pid`: a running Python process (a service), with py-spy; no fallback exists.

While the target runs, a thread of this process samples it with psutil (CPU time, RSS, threads)
for :mod:`perfloop.analysis.signals`. The profile model lives in
:mod:`perfloop.analysis.profiles`, which this module fills.

Worker protocol: the request and result are JSON files; see ``profile_worker.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..config import BenchmarkSpec
from ..errors import TargetError, TargetTimeout, UsageError
from ..measure import profile_worker
from .profiles import Profile, from_cprofile, from_pyinstrument, from_speedscope, hot_spots
from .signals import ProcessPoint, ProcessTrace, RuntimeStats, Signal, compute_signals

WORKER = Path(profile_worker.__file__)  # run by path: it must import nothing of perfloop
DEFAULT_DURATION = 3.0          # seconds a callable is profiled for when no duration is given
DEFAULT_RATE = 100              # py-spy samples per second
SAMPLE_INTERVAL = 0.05          # seconds between psutil samples of the profiled process
PROFILERS = ("auto", "pyinstrument", "cprofile", "py-spy")

CPROFILE_CAVEAT = ("profiled with cProfile: it traces every call, so code making many small calls "
                   "looks slower than it is, and stacks are rebuilt from caller edges (approximate)")
PY_SPY_INSTALL = "pip install py-spy (or pip install 'perfloop[profile]'), or set PERFLOOP_PY_SPY to its path"
PY_SPY_PERMISSION = ("py-spy must be allowed to read another process's memory (ptrace): run as root, "
                     "or `sudo sysctl kernel.yama.ptrace_scope=0`; in Docker start the container with "
                     "`--cap-add SYS_PTRACE`; on macOS run with sudo")


@dataclass(frozen=True)
class ProfileResult:
    """A profile, the signals read around it, and what was actually done to get them.

    ``profiler`` is the profiler that recorded the profile; ``requested`` the one asked for.
    When they differ it was a fallback, and ``notes`` says why.
    """

    profile: Profile
    signals: tuple[Signal, ...]
    profiler: str
    requested: str
    target: str
    duration: float                       # wall seconds of the profiled window
    calls: int | None = None              # calls of the callable in that window
    notes: tuple[str, ...] = ()
    exit_code: int | None = None          # commands: the program's exit status
    trace: ProcessTrace | None = None
    runtime: RuntimeStats | None = None
    stderr_tail: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "signals", tuple(self.signals))
        object.__setattr__(self, "notes", tuple(self.notes))

    @property
    def fallback(self) -> bool:
        """The profiler asked for could not be used ("auto" chooses, it never falls back)."""
        return self.requested != "auto" and self.profiler != self.requested

    def signal(self, name: str) -> Signal | None:
        return next((s for s in self.signals if s.name == name), None)

    @property
    def warnings(self) -> list[Signal]:
        return [s for s in self.signals if s.severity == "warn"]

    def to_dict(self, *, limit: int = 15) -> dict[str, Any]:
        """A JSON-ready summary: what ran, the signals, and the hot spots (user code and all)."""
        def spots(scope: str) -> list[dict[str, Any]]:
            return [dataclasses.asdict(s) for s in hot_spots(self.profile, limit=limit, scope=scope)]
        return {"target": self.target, "profiler": self.profiler, "requested": self.requested,
                "duration": self.duration, "calls": self.calls, "exit_code": self.exit_code,
                "unit": self.profile.unit, "notes": list(self.notes),
                "signals": [s.to_dict() for s in self.signals],
                "hot_spots_user": spots("user"), "hot_spots": spots("all")}


# --------------------------------------------------------------------------------------------
# py-spy: where it is and whether it may attach here


@dataclass(frozen=True)
class PySpyStatus:
    ok: bool
    path: str | None
    problem: str | None = None
    fix: str | None = None

    def error(self, what: str) -> TargetError:
        return TargetError(f"cannot {what} with py-spy: {self.problem}", hint=self.fix)


def find_py_spy() -> str | None:
    """The py-spy executable: $PERFLOOP_PY_SPY, then PATH, then next to this Python."""
    env = os.environ.get("PERFLOOP_PY_SPY")
    if env:
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def _explain_py_spy_failure(stderr: str) -> tuple[str, str]:
    text = stderr.strip().splitlines()
    first = next((line for line in text if line.startswith("Error:")), text[0] if text else "failed")
    low = stderr.lower()
    if "permission denied" in low or "operation not permitted" in low or "ptrace" in low:
        return f"not permitted to attach ({first})", PY_SPY_PERMISSION
    return first, "run `py-spy dump --pid PID` by hand to see the full error"


@functools.lru_cache(maxsize=None)
def check_py_spy() -> PySpyStatus:
    """Whether py-spy is installed and may attach to a process here (probed once, cached).

    The probe starts a sleeping Python process of our own and runs ``py-spy dump`` on it, since
    permission to attach (ptrace) is only known by trying.
    """
    path = find_py_spy()
    if path is None:
        return PySpyStatus(False, None, "py-spy is not installed", PY_SPY_INSTALL)
    probe = subprocess.Popen([sys.executable, "-c",
                              "import sys, time; print('ready', flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert probe.stdout is not None
        probe.stdout.readline()
        try:
            done = subprocess.run([path, "dump", "--pid", str(probe.pid)], capture_output=True,
                                  text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return PySpyStatus(False, path, f"py-spy did not run: {exc}",
                               "check that the py-spy binary matches this platform; " + PY_SPY_INSTALL)
        if done.returncode != 0:
            problem, fix = _explain_py_spy_failure(done.stderr)
            return PySpyStatus(False, path, problem, fix)
        return PySpyStatus(True, path)
    finally:
        probe.kill()
        probe.wait()


# --------------------------------------------------------------------------------------------
# psutil sampling of the profiled process, from a thread of this one


class _Sampler:
    """Samples a process tree every ``interval`` seconds into a :class:`ProcessTrace`."""

    def __init__(self, pid: int, *, children: bool = True, interval: float = SAMPLE_INTERVAL) -> None:
        import psutil
        self._psutil = psutil
        self.pid = pid
        self.children = children
        self.interval = interval
        self.points: list[ProcessPoint] = []
        self._stop = threading.Event()
        self._procs: dict[int, Any] = {}
        self._thread = threading.Thread(target=self._run, name="perfloop-sampler", daemon=True)

    def start(self) -> _Sampler:
        self._thread.start()
        return self

    def stop(self) -> ProcessTrace:
        self._stop.set()
        self._thread.join(timeout=5)
        return ProcessTrace(tuple(self.points), self._psutil.cpu_count() or 1)

    def _proc(self, pid: int) -> Any:
        if pid not in self._procs:
            self._procs[pid] = self._psutil.Process(pid)
        return self._procs[pid]

    def _run(self) -> None:
        while True:
            point = self._sample()
            if point is not None:
                self.points.append(point)
            if self._stop.wait(self.interval):
                return

    def _sample(self) -> ProcessPoint | None:
        ps = self._psutil
        try:
            root = self._proc(self.pid)
            procs = [root] + (root.children(recursive=True) if self.children else [])
        except (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess):
            return None
        cpu = 0.0
        rss = threads = 0
        queued: float | None = 0.0
        thread_cpu: dict[int, float] = {}
        for p in procs:
            try:
                p = self._proc(p.pid)
                with p.oneshot():
                    times = p.cpu_times()
                    cpu += times.user + times.system
                    rss += p.memory_info().rss
                    threads += p.num_threads()
                    for t in p.threads():
                        thread_cpu[t.id] = t.user_time + t.system_time
                        if queued is not None:
                            queued = _schedstat_wait(p.pid, t.id, queued)
            except (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess):
                continue
        sys_times = ps.cpu_times()
        busy = sum(sys_times) - sys_times.idle - getattr(sys_times, "iowait", 0.0)
        return ProcessPoint(t=time.time(), cpu=cpu, rss=rss, threads=threads,
                            thread_cpu=thread_cpu, system_busy=busy, runqueue=queued)


def _schedstat_wait(pid: int, tid: int, total: float) -> float | None:
    """``total`` plus the seconds thread ``tid`` waited for a CPU; None where Linux has no schedstat."""
    try:
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            return total + int(f.read().split()[1]) / 1e9
    except FileNotFoundError:
        return total if os.path.isdir(f"/proc/{pid}") else None
    except (OSError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------------------------
# running things


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def _kill_tree(proc: subprocess.Popen[Any]) -> None:
    """Kill a process we started and whatever it started (py-spy's target, a shell's child)."""
    try:
        import psutil
        kids = psutil.Process(proc.pid).children(recursive=True)
    except Exception:
        kids = []
    for kid in kids:
        try:
            kid.kill()
        except Exception:
            pass
    proc.kill()
    proc.wait()


def _wait(proc: subprocess.Popen[Any], timeout: float | None, what: str) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        raise TargetTimeout(f"{what} ran past {timeout:g} s and was killed",
                            hint="pass a shorter duration, or a larger timeout") from None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _runtime(res: Mapping[str, Any]) -> RuntimeStats:
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


def _trim_to_loop(profile: Profile, worker_file: str) -> Profile:
    """Keep what py-spy saw inside the worker's profiled loop, and other threads' stacks.

    py-spy watches the whole worker process: start-up, imports, setup and the warm-up call are
    on the main thread outside ``_profiled_calls``; they are dropped, and stacks are cut below
    that frame so they start at the user's callable, as with pyinstrument.
    """
    from .profiles import Stack
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
                keep.append(Stack(rest, stack.weight, stack.thread))
        elif not any(fr.file == worker_file for fr in frames):
            keep.append(stack)
    return Profile(frames=profile.frames, stacks=tuple(keep), unit=profile.unit,
                   profiler=profile.profiler, duration=profile.duration, calls=profile.calls,
                   interval=profile.interval, meta=profile.meta)


def _worker_profile(res: Mapping[str, Any], *, user_modules: Sequence[str] = ()) -> Profile:
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


def _run_worker(request: dict[str, Any], *, cwd: str | None, env: Mapping[str, str] | None,
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
        full_env = {**os.environ, **(env or {})}
        with open(tmpdir / "stdout.txt", "wb") as out, open(stderr_path, "wb") as err:
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdout=out, stderr=err)
            except OSError as exc:
                raise TargetError(f"{what}: cannot start the profiling worker with {python}: {exc}",
                                  hint="check the Python interpreter path") from exc
            sampler = _Sampler(proc.pid).start()
            spy = None
            if py_spy is not None:
                spy = subprocess.Popen([py_spy[0], "record", "--pid", str(proc.pid), "--format",
                                        "speedscope", "-o", str(tmpdir / "profile.json"), *py_spy[1]],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                code = _wait(proc, timeout, what)
            except BaseException:
                if spy is not None and spy.poll() is None:
                    _kill_tree(spy)
                raise
            finally:
                trace = sampler.stop()
            spy_err = ""
            if spy is not None:
                try:
                    _, spy_err = spy.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    _kill_tree(spy)
        stderr = _tail(stderr_path)
        res = _read_json(tmpdir / "result.json")
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
            doc = _read_json(tmpdir / "profile.json")
            if doc is None:
                problem, fix = _explain_py_spy_failure(spy_err or "py-spy wrote no profile")
                raise TargetError(f"{what}: py-spy failed: {problem}", hint=fix)
        return res, trace, doc, stderr


def _resolve_paths(spec: BenchmarkSpec) -> list[str]:
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
    if want_spy and not check_py_spy().ok:
        status = check_py_spy()
        want_spy = False
        notes.append(f"py-spy is not usable here ({status.problem}); profiled with pyinstrument "
                     f"instead, which records only the thread that runs the callable. "
                     f"Fix: {status.fix}")
    used = "pyinstrument" if profiler in ("auto", "py-spy") else profiler
    result = _profile_callable_once(spec, duration, "py-spy" if want_spy else used, interval,
                                    memory_check, timeout)
    started = int((result.runtime.threads_started if result.runtime else 0) or 0)
    if profiler == "auto" and started and result.profiler != "py-spy":
        status = check_py_spy()
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
        path = check_py_spy().path
        assert path is not None
        py_spy = (path, ["--rate", str(DEFAULT_RATE), "--idle"])
    modules = [spec.callable.partition(":")[0]] if spec.callable else []
    request = {"version": 1, "mode": "callable", "callable": spec.callable, "setup": spec.setup,
               "teardown": spec.teardown, "params": dict(spec.params), "paths": _resolve_paths(spec),
               "duration": duration, "profiler": "none" if py_spy else profiler, "interval": interval,
               "memory_check": memory_check}
    if spec.suite is not None:   # a pytest or asv suite's benchmark: its tool sets it up
        request["suite"] = spec.suite.to_task(str(Path(spec.root).resolve()))
    cwd = str((Path(spec.root) / spec.cwd).resolve()) if spec.cwd else str(Path(spec.root).resolve())
    limit = timeout if timeout is not None else max(spec.settings.timeout, duration * 4 + 60)
    res, trace, doc, stderr = _run_worker(request, cwd=cwd, env=spec.env, timeout=limit,
                                          what=f"benchmark {spec.name}", py_spy=py_spy)
    notes = list(res.get("notes", []))
    if doc is not None:
        profile = from_speedscope(doc, paths=res.get("sys_path", []), profiler="py-spy",
                                  calls=res.get("calls"), user_modules=modules)
        profile = _trim_to_loop(profile, res.get("worker_file", str(WORKER)))
        profile = Profile(frames=profile.frames, stacks=profile.stacks, unit=profile.unit,
                          profiler="py-spy", duration=float(res.get("wall") or 0.0),
                          calls=res.get("calls"), meta=profile.meta)
        used = "py-spy"
    else:
        profile = _worker_profile(res, user_modules=modules)
        used = res.get("profiler", profiler)
    if used == "cprofile":
        notes.append(CPROFILE_CAVEAT)
    runtime = _runtime(res)
    window = trace.window(res["t_start"], res["t_end"])
    signals = compute_signals(trace=window, runtime=runtime, profiler=used)
    return ProfileResult(profile=profile, signals=tuple(signals), profiler=used, requested=profiler,
                         target=spec.callable or spec.name, duration=runtime.wall, calls=runtime.calls,
                         notes=tuple(notes), trace=window, runtime=runtime,
                         stderr_tail=stderr or None)

# --------------------------------------------------------------------------------------------
# commands and processes


_PYTHON_RE = re.compile(r"^(?:python|pypy)(?:\d+(?:\.\d+)?t?)?(?:\.exe)?$")
_FLAGS_NO_ARG = {"-u", "-B", "-O", "-OO", "-E", "-s", "-S", "-I", "-b", "-bb", "-q", "-v"}
_FLAGS_ARG = {"-X", "-W"}


@dataclass(frozen=True)
class _PythonProgram:
    python: str
    flags: tuple[str, ...]
    mode: str          # "module" | "script" | "code"
    target: str
    argv: tuple[str, ...] = field(default_factory=tuple)


def _python_program(argv: Sequence[str]) -> _PythonProgram | None:
    """How to run ``argv`` in perfloop's worker, if it is a Python program at all.

    ``python [flags] -m mod|-c code|script.py args`` and console scripts whose shebang names a
    Python interpreter (pytest, uvicorn) qualify; anything else (a shell script) does not.
    """
    if not argv:
        return None
    exe = argv[0]
    if _PYTHON_RE.match(os.path.basename(exe)) or os.path.abspath(exe) == sys.executable:
        i = 1
        flags: list[str] = []
        while i < len(argv) and (argv[i] in _FLAGS_NO_ARG or argv[i] in _FLAGS_ARG):
            flags.append(argv[i])
            if argv[i] in _FLAGS_ARG and i + 1 < len(argv):
                flags.append(argv[i + 1])
                i += 1
            i += 1
        if i >= len(argv):
            return None
        if argv[i] == "-m" and i + 1 < len(argv):
            return _PythonProgram(exe, tuple(flags), "module", argv[i + 1], (argv[i + 1], *argv[i + 2:]))
        if argv[i] == "-c" and i + 1 < len(argv):
            return _PythonProgram(exe, tuple(flags), "code", argv[i + 1], ("-c", *argv[i + 2:]))
        if argv[i].startswith("-"):
            return None
        return _PythonProgram(exe, tuple(flags), "script", argv[i], tuple(argv[i:]))
    path = shutil.which(exe)
    if path:
        try:
            with open(path, "rb") as f:
                first = f.readline(200).decode(errors="replace")
        except OSError:
            return None
        if first.startswith("#!"):
            interp = first[2:].strip().split()
            if interp and interp[0].endswith("/env") and len(interp) > 1:
                interp = interp[1:]
            if interp and _PYTHON_RE.match(os.path.basename(interp[0])):
                python = shutil.which(interp[0]) or interp[0]
                return _PythonProgram(python, (), "script", path, (path, *argv[1:]))
    return None


_SHELL_SYNTAX = re.compile(r"[|&;<>()$`*?~{}\[\]!]|^\s*\w+=")


def _command_argv(argv: Sequence[str] | str) -> list[str]:
    """An argv list; a string runs through the shell, as the command runner does, unless it is a
    simple command line (no pipes, redirections, variables or globs), which is split instead so
    that a Python program can still be recognised (and run under pyinstrument if need be)."""
    if not isinstance(argv, str):
        return list(argv)
    if _SHELL_SYNTAX.search(argv):
        return ["/bin/sh", "-c", argv]
    return shlex.split(argv)


def _command_paths(cwd: str | None, env: Mapping[str, str] | None,
                   program: _PythonProgram | None) -> list[str]:
    paths = [os.path.abspath(cwd or os.getcwd())]
    pythonpath = (env or {}).get("PYTHONPATH") or os.environ.get("PYTHONPATH", "")
    paths += [p for p in pythonpath.split(os.pathsep) if p]
    if program is not None and program.mode == "script":
        paths.append(os.path.dirname(os.path.abspath(os.path.join(cwd or ".", program.target))))
    return paths + [p for p in sys.path if p]


def _py_spy_flags(*, rate: int, idle: bool, gil: bool, subprocesses: bool, duration: float | None,
                  nonblocking: bool = False) -> list[str]:
    # no --function: each frame keeps the line it was at, which tells waiting from computing
    flags = ["--rate", str(rate)]
    if gil:
        flags.append("--gil")       # only samples that hold the GIL: waiting disappears
    elif idle:
        flags.append("--idle")
    if subprocesses:
        flags.append("--subprocesses")
    if duration:
        flags += ["--duration", str(max(1, round(duration)))]
    if nonblocking:
        flags.append("--nonblocking")
    return flags


def profile_command(argv: Sequence[str] | str, *, cwd: str | None = None,
                    env: Mapping[str, str] | None = None, duration: float | None = None,
                    profiler: str = "auto", idle: bool = True, gil: bool = False,
                    rate: int = DEFAULT_RATE, subprocesses: bool | None = None,
                    timeout: float = 600.0) -> ProfileResult:
    """Profile a command until it exits, or for ``duration`` seconds (then it is stopped).

    ``argv`` is an argv list or a string; a string that uses shell syntax runs under
    ``/bin/sh -c`` (py-spy then follows the shell's children), a simple one is split.

    With py-spy (default) the command runs as our child and py-spy attaches to it: ``--idle``
    so that waiting shows, ``--gil`` instead when ``gil=True`` (only code holding the GIL),
    ``--subprocesses`` when the command is not itself a Python program (a shell script that
    starts one). When py-spy is missing or not permitted and the command is a Python program,
    it runs under pyinstrument in perfloop's worker instead, and the result says so
    (``profiler``, ``notes``). ``profiler="auto"`` (default) is py-spy with that fallback;
    ``"pyinstrument"`` or ``"cprofile"`` runs a Python program under that profiler, as asked
    (only its main thread is recorded, and a note says so), and refuses any other command with
    the reason.
    """
    args = _command_argv(argv)
    if not args:
        raise UsageError("profile_command needs a command")
    if profiler not in PROFILERS:
        raise UsageError(f"unknown profiler {profiler!r}", hint=f"choose one of {', '.join(PROFILERS)}")
    if duration is not None and duration <= 0:
        raise UsageError("duration must be a positive number of seconds")
    what = f"command {shlex.join(args)}"
    program = _python_program(args)
    notes: list[str] = []
    if profiler == "auto":
        profiler = "py-spy"
    if profiler == "py-spy":
        status = check_py_spy()
        if status.ok and status.path:
            return _py_spy_command(status.path, args, cwd=cwd, env=env, duration=duration, idle=idle,
                                   gil=gil, rate=rate, timeout=timeout, program=program,
                                   subprocesses=program is None if subprocesses is None else subprocesses)
        if program is None:
            raise TargetError(f"cannot profile {what} with py-spy: {status.problem}, and it is not a "
                              f"Python program that could run under pyinstrument instead",
                              hint=status.fix)
        notes.append(f"py-spy is not usable here ({status.problem}); ran the Python program under "
                     f"pyinstrument in-process instead: only its main thread is recorded, and the "
                     f"profile starts after interpreter start-up. Fix: {status.fix}")
        used = "pyinstrument"
    else:
        if program is None:
            raise UsageError(f"{profiler} runs inside the Python interpreter it profiles, so it "
                             f"can only profile a Python program (python script.py, python -m "
                             f"module, or a script whose shebang names Python), not {what}",
                             hint="profile other commands with py-spy (--profiler py-spy), which "
                                  "attaches from outside and follows their Python children")
        used = profiler
        notes.append(f"profiled with {profiler}, as asked: it records only the program's main "
                     f"thread; py-spy (--profiler py-spy) records every thread")
    request = {"version": 1, "mode": program.mode, "target": program.target, "argv": list(program.argv),
               "paths": [], "duration": duration, "profiler": used, "interval": 0.001,
               "memory_check": False}
    res, trace, _doc, stderr = _run_worker(request, cwd=cwd, env=env, timeout=timeout, what=what,
                                           python=program.python, python_flags=program.flags)
    notes.extend(n for n in res.get("notes", []) if n)
    res = {**res, "sys_path": res.get("sys_path") or _command_paths(cwd, env, program)}
    profile = _worker_profile(res)
    used = res.get("profiler", used)
    if used == "cprofile":
        notes.append(CPROFILE_CAVEAT)
    runtime = _runtime(res)
    window = trace.window(res["t_start"], res["t_end"])
    return ProfileResult(profile=profile, signals=tuple(compute_signals(trace=window, runtime=runtime,
                                                                        profiler=used)),
                         profiler=used, requested=profiler, target=shlex.join(args),
                         duration=runtime.wall, notes=tuple(notes), exit_code=res.get("exit_code"),
                         trace=window, runtime=runtime, stderr_tail=stderr or None)


def _py_spy_command(py_spy: str, args: list[str], *, cwd: str | None, env: Mapping[str, str] | None,
                    duration: float | None, idle: bool, gil: bool, rate: int, timeout: float,
                    program: _PythonProgram | None, subprocesses: bool) -> ProfileResult:
    what = f"command {shlex.join(args)}"
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="perfloop-profile-") as tmp:
        out_path = Path(tmp) / "profile.json"
        stderr_path = Path(tmp) / "stderr.txt"
        with open(Path(tmp) / "stdout.txt", "wb") as out, open(stderr_path, "wb") as err:
            try:
                proc = subprocess.Popen(args, cwd=cwd, env={**os.environ, **(env or {})},
                                        stdout=out, stderr=err)
            except OSError as exc:
                raise TargetError(f"cannot start {what}: {exc}",
                                  hint="check the program name and the working directory") from exc
            sampler = _Sampler(proc.pid).start()
            started = time.time()
            if program is None and subprocesses and not _await_python_child(proc):
                sampler.stop()
                raise TargetError(f"{what} started no Python process (it exited with status "
                                  f"{proc.returncode})", hint="py-spy profiles Python processes only")
            # started by us, attached right away: py-spy retries until the interpreter is up, and
            # we keep the exit status, which py-spy does not pass on when it starts the program
            spy = subprocess.Popen([py_spy, "record", "--pid", str(proc.pid), "--format", "speedscope",
                                    "-o", str(out_path),
                                    *_py_spy_flags(rate=rate, idle=idle, gil=gil,
                                                   subprocesses=subprocesses, duration=duration)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if duration and round(duration) != duration:
                notes.append(f"py-spy samples for whole seconds: {duration:g} s became "
                             f"{max(1, round(duration))} s")
            try:
                try:
                    _, spy_err = spy.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                    _kill_tree(spy)
                    _kill_tree(proc)
                    raise TargetTimeout(f"{what} ran past {timeout:g} s and was killed",
                                        hint="pass a duration, or a larger timeout") from None
                ended = time.time()
                if proc.poll() is None and not duration:
                    # py-spy ends when the Python process does; a shell around it exits a moment
                    # later, and must not be killed for it (its exit status is the command's)
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        pass
                if proc.poll() is None:
                    if duration:
                        notes.append(f"the command was stopped after {duration:g} s of profiling")
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        _kill_tree(proc)
                exit_code = proc.returncode
            finally:
                trace = sampler.stop()
        doc = _read_json(out_path)
        stderr = _tail(stderr_path)
    if doc is None:
        problem, fix = _explain_py_spy_failure(spy_err or "py-spy wrote no profile")
        if "python version" in problem.lower() and not subprocesses:
            fix = "the command may not be a Python program: pass subprocesses=True to follow its children"
        raise TargetError(f"cannot profile {what} with py-spy: {problem}", hint=fix)
    profile = from_speedscope(doc, paths=_command_paths(cwd, env, program), profiler="py-spy")
    if profile.is_empty():
        notes.append("py-spy recorded no samples: the command finished before it could attach, or "
                     "it is not a Python program (subprocesses=True follows its children)")
    window = trace.window(started, ended)
    profile = Profile(frames=profile.frames, stacks=profile.stacks, unit=profile.unit, profiler="py-spy",
                      duration=ended - started, meta=profile.meta)
    notes.append("GC time and Python memory are measured only for callables (inside perfloop's "
                  "worker); for a command, the signals come from outside the process")
    return ProfileResult(profile=profile, signals=tuple(compute_signals(trace=window, profiler="py-spy")),
                         profiler="py-spy", requested="py-spy", target=shlex.join(args),
                         duration=ended - started, notes=tuple(notes), exit_code=exit_code,
                         trace=window, stderr_tail=stderr or None)


def _await_python_child(proc: subprocess.Popen[Any], timeout: float = 30.0) -> bool:
    """Wait until a command that is not Python itself (a shell) has started a Python process.

    py-spy attached to a shell with --subprocesses gives up when the shell has no Python child
    yet. False when the command exits first; True at the timeout, to let py-spy say what it sees.
    """
    import psutil
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            for child in psutil.Process(proc.pid).children(recursive=True):
                try:
                    if _PYTHON_RE.match(os.path.basename(child.exe())):
                        return True
                except (psutil.Error, OSError):
                    continue
        except psutil.Error:
            pass
        time.sleep(0.02)
    return True


def profile_pid(pid: int, *, duration: float, idle: bool = True, gil: bool = False,
                rate: int = DEFAULT_RATE, subprocesses: bool = False,
                nonblocking: bool = False) -> ProfileResult:
    """Profile a running Python process (a service) with py-spy for ``duration`` seconds.

    ``nonblocking=True`` does not pause the process for each sample: lower overhead for a live
    service, at the cost of occasionally torn stacks.
    """
    import psutil
    if duration <= 0:
        raise UsageError("duration must be a positive number of seconds")
    if not psutil.pid_exists(pid):
        raise TargetError(f"no process with pid {pid}", hint="check the pid with `ps` or `pgrep -f NAME`")
    status = check_py_spy()
    if not status.ok or not status.path:
        raise status.error(f"profile pid {pid}")
    try:
        cwd = psutil.Process(pid).cwd()
    except (psutil.Error, OSError):
        cwd = None
    with tempfile.TemporaryDirectory(prefix="perfloop-profile-") as tmp:
        out_path = Path(tmp) / "profile.json"
        sampler = _Sampler(pid, children=subprocesses).start()
        started = time.time()
        try:
            done = subprocess.run([status.path, "record", "--pid", str(pid), "--format", "speedscope",
                                   "-o", str(out_path),
                                   *_py_spy_flags(rate=rate, idle=idle, gil=gil, subprocesses=subprocesses,
                                                  duration=duration, nonblocking=nonblocking)],
                                  capture_output=True, text=True, timeout=duration + 60)
        except subprocess.TimeoutExpired as exc:
            raise TargetTimeout(f"py-spy did not finish profiling pid {pid}",
                                hint="is the process stopped (SIGSTOP) or in a debugger?") from exc
        finally:
            ended = time.time()
            trace = sampler.stop()
        doc = _read_json(out_path)
    if doc is None:
        problem, fix = _explain_py_spy_failure(done.stderr or "py-spy wrote no profile")
        raise TargetError(f"cannot profile pid {pid} with py-spy: {problem}", hint=fix)
    paths = [cwd] if cwd else []
    profile = from_speedscope(doc, paths=[*paths, *sys.path], profiler="py-spy")
    profile = Profile(frames=profile.frames, stacks=profile.stacks, unit=profile.unit, profiler="py-spy",
                      duration=ended - started, meta=profile.meta)
    notes = ["GC time and Python memory cannot be read from outside a running process; the signals "
             "come from psutil"]
    if profile.is_empty():
        notes.append("py-spy recorded no samples: the process may have exited")
    window = trace.window(started, ended)
    return ProfileResult(profile=profile, signals=tuple(compute_signals(trace=window, profiler="py-spy")),
                         profiler="py-spy", requested="py-spy", target=f"pid {pid}",
                         duration=ended - started, notes=tuple(notes), trace=window)
