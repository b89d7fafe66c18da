"""py-spy: where it is, whether it may attach here, its flags, and profiling a running process.

py-spy samples a Python process from outside (every thread, waiting included). Commands run
under it in :mod:`.commands`; callables in :mod:`.callables`.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ...errors import TargetError, TargetTimeout, UsageError
from ..profiles import Profile, from_speedscope
from ..signals import compute_signals
from ...measure.process import run_captured
from .process import Sampler, kill_tree, read_json, start
from .result import DEFAULT_RATE, ProfileResult

PY_SPY_INSTALL = "pip install py-spy (or pip install 'perfloop[profile]'), or set PERFLOOP_PY_SPY to its path"
PY_SPY_PERMISSION = ("py-spy must be allowed to read another process's memory (ptrace): run as root, "
                     "or `sudo sysctl kernel.yama.ptrace_scope=0`; in Docker start the container with "
                     "`--cap-add SYS_PTRACE`; on macOS run with sudo")



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


def explain_py_spy_failure(stderr: str) -> tuple[str, str]:
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
    probe = start([sys.executable, "-c",
                   "import sys, time; print('ready', flush=True); time.sleep(60)"],
                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert probe.stdout is not None
        probe.stdout.readline()
        try:
            done = run_captured([path, "dump", "--pid", str(probe.pid)], timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return PySpyStatus(False, path, f"py-spy did not run: {exc}",
                               "check that the py-spy binary matches this platform; " + PY_SPY_INSTALL)
        if done.returncode != 0:
            problem, fix = explain_py_spy_failure(done.stderr)
            return PySpyStatus(False, path, problem, fix)
        return PySpyStatus(True, path)
    finally:
        kill_tree(probe)



def py_spy_flags(*, rate: int, idle: bool, gil: bool, subprocesses: bool, duration: float | None,
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
        sampler = Sampler(pid, children=subprocesses).start()
        started = time.time()
        try:
            done = run_captured([status.path, "record", "--pid", str(pid), "--format", "speedscope",
                                 "-o", str(out_path),
                                 *py_spy_flags(rate=rate, idle=idle, gil=gil, subprocesses=subprocesses,
                                               duration=duration, nonblocking=nonblocking)],
                                timeout=duration + 60)
        except subprocess.TimeoutExpired as exc:
            raise TargetTimeout(f"py-spy did not finish profiling pid {pid}",
                                hint="is the process stopped (SIGSTOP) or in a debugger?") from exc
        finally:
            ended = time.time()
            trace = sampler.stop()
        doc = read_json(out_path)
    if doc is None:
        problem, fix = explain_py_spy_failure(done.stderr or "py-spy wrote no profile")
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
