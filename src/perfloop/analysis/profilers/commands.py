"""Profiling a command: with py-spy attached from outside, or a Python program in the worker.

A command string that uses shell syntax runs under ``/bin/sh -c``; a simple one is split, so a
Python program is recognised (and can run under pyinstrument when py-spy cannot attach).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ...errors import TargetError, TargetTimeout, UsageError
from ..profiles import Profile, from_speedscope
from ..signals import compute_signals
from . import pyspy
from .process import Sampler, kill_tree, read_json, start, tail
from .result import CPROFILE_CAVEAT, DEFAULT_RATE, PROFILERS, ProfileResult
from .worker import run_worker, runtime_stats, worker_profile


_PYTHON_RE = re.compile(r"^(?:python|pypy)(?:\d+(?:\.\d+)?t?)?(?:\.exe)?$")
_FLAGS_NO_ARG = {"-u", "-B", "-O", "-OO", "-E", "-s", "-S", "-I", "-b", "-bb", "-q", "-v"}
_FLAGS_ARG = {"-X", "-W"}


@dataclass(frozen=True)
class PythonProgram:
    python: str
    flags: tuple[str, ...]
    mode: str          # "module" | "script" | "code"
    target: str
    argv: tuple[str, ...] = field(default_factory=tuple)


def python_program(argv: Sequence[str]) -> PythonProgram | None:
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
            return PythonProgram(exe, tuple(flags), "module", argv[i + 1], (argv[i + 1], *argv[i + 2:]))
        if argv[i] == "-c" and i + 1 < len(argv):
            return PythonProgram(exe, tuple(flags), "code", argv[i + 1], ("-c", *argv[i + 2:]))
        if argv[i].startswith("-"):
            return None
        return PythonProgram(exe, tuple(flags), "script", argv[i], tuple(argv[i:]))
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
                return PythonProgram(python, (), "script", path, (path, *argv[1:]))
    return None


_SHELL_SYNTAX = re.compile(r"[|&;<>()$`*?~{}\[\]!]|^\s*\w+=")


def command_argv(argv: Sequence[str] | str) -> list[str]:
    """An argv list; a string runs through the shell, as the command runner does, unless it is a
    simple command line (no pipes, redirections, variables or globs), which is split instead so
    that a Python program can still be recognised (and run under pyinstrument if need be)."""
    if not isinstance(argv, str):
        return list(argv)
    if _SHELL_SYNTAX.search(argv):
        return ["/bin/sh", "-c", argv]
    return shlex.split(argv)


def command_paths(cwd: str | None, env: Mapping[str, str] | None,
                   program: PythonProgram | None) -> list[str]:
    paths = [os.path.abspath(cwd or os.getcwd())]
    pythonpath = (env or {}).get("PYTHONPATH") or os.environ.get("PYTHONPATH", "")
    paths += [p for p in pythonpath.split(os.pathsep) if p]
    if program is not None and program.mode == "script":
        paths.append(os.path.dirname(os.path.abspath(os.path.join(cwd or ".", program.target))))
    return paths + [p for p in sys.path if p]



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
    args = command_argv(argv)
    if not args:
        raise UsageError("profile_command needs a command")
    if profiler not in PROFILERS:
        raise UsageError(f"unknown profiler {profiler!r}", hint=f"choose one of {', '.join(PROFILERS)}")
    if duration is not None and duration <= 0:
        raise UsageError("duration must be a positive number of seconds")
    what = f"command {shlex.join(args)}"
    program = python_program(args)
    notes: list[str] = []
    if profiler == "auto":
        profiler = "py-spy"
    if profiler == "py-spy":
        status = pyspy.check_py_spy()
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
    res, trace, _doc, stderr = run_worker(request, cwd=cwd, env=env, timeout=timeout, what=what,
                                           python=program.python, python_flags=program.flags)
    notes.extend(n for n in res.get("notes", []) if n)
    res = {**res, "sys_path": res.get("sys_path") or command_paths(cwd, env, program)}
    profile = worker_profile(res)
    used = res.get("profiler", used)
    if used == "cprofile":
        notes.append(CPROFILE_CAVEAT)
    runtime = runtime_stats(res)
    window = trace.window(res["t_start"], res["t_end"])
    return ProfileResult(profile=profile, signals=tuple(compute_signals(trace=window, runtime=runtime,
                                                                        profiler=used)),
                         profiler=used, requested=profiler, target=shlex.join(args),
                         duration=runtime.wall, notes=tuple(notes), exit_code=res.get("exit_code"),
                         trace=window, runtime=runtime, stderr_tail=stderr or None)


def _py_spy_command(py_spy: str, args: list[str], *, cwd: str | None, env: Mapping[str, str] | None,
                    duration: float | None, idle: bool, gil: bool, rate: int, timeout: float,
                    program: PythonProgram | None, subprocesses: bool) -> ProfileResult:
    what = f"command {shlex.join(args)}"
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="perfloop-profile-") as tmp:
        out_path = Path(tmp) / "profile.json"
        stderr_path = Path(tmp) / "stderr.txt"
        with open(Path(tmp) / "stdout.txt", "wb") as out, open(stderr_path, "wb") as err:
            try:
                proc = start(args, cwd=cwd, env=env, stdout=out, stderr=err)
            except OSError as exc:
                raise TargetError(f"cannot start {what}: {exc}",
                                  hint="check the program name and the working directory") from exc
            spy = None
            try:
                sampler = Sampler(proc.pid).start()
                started = time.time()
                if program is None and subprocesses and not _await_python_child(proc):
                    sampler.stop()
                    raise TargetError(f"{what} started no Python process (it exited with status "
                                      f"{proc.returncode})",
                                      hint="py-spy profiles Python processes only")
                # started by us, attached right away: py-spy retries until the interpreter is
                # up, and we keep the exit status, which py-spy does not pass on when it starts
                # the program
                spy = start([py_spy, "record", "--pid", str(proc.pid), "--format", "speedscope",
                             "-o", str(out_path),
                             *pyspy.py_spy_flags(rate=rate, idle=idle, gil=gil,
                                                 subprocesses=subprocesses, duration=duration)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if duration and round(duration) != duration:
                    notes.append(f"py-spy samples for whole seconds: {duration:g} s became "
                                 f"{max(1, round(duration))} s")
                try:
                    spy_err, ended, exit_code = _until_py_spy_ends(proc, spy, timeout, duration,
                                                                  what, notes)
                finally:
                    trace = sampler.stop()
            finally:
                # on every way out (Ctrl-C and timeouts too): nothing started here outlives it
                if spy is not None:
                    kill_tree(spy)
                kill_tree(proc)
        doc = read_json(out_path)
        stderr = tail(stderr_path)
    if doc is None:
        problem, fix = pyspy.explain_py_spy_failure(spy_err or "py-spy wrote no profile")
        if "python version" in problem.lower() and not subprocesses:
            fix = "the command may not be a Python program: pass subprocesses=True to follow its children"
        raise TargetError(f"cannot profile {what} with py-spy: {problem}", hint=fix)
    profile = from_speedscope(doc, paths=command_paths(cwd, env, program), profiler="py-spy")
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


def _until_py_spy_ends(proc: subprocess.Popen[Any], spy: subprocess.Popen[Any], timeout: float,
                       duration: float | None, what: str, notes: list[str]
                       ) -> tuple[str, float, int | None]:
    """Wait for py-spy to end, then for the command (stopped if a duration ran out):
    (py-spy's stderr, when it ended, the command's exit status)."""
    try:
        _, spy_err = spy.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TargetTimeout(f"{what} ran past {timeout:g} s and was killed",
                            hint="pass a duration, or a larger timeout") from None
    ended = time.time()
    if proc.poll() is None and not duration:
        # py-spy ends when the Python process does; a shell around it exits a moment later,
        # and must not be killed for it (its exit status is the command's)
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
            pass              # killed with its group by the caller
    return spy_err, ended, proc.returncode


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

