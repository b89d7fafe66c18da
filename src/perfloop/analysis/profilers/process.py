"""The profiled process seen from outside: psutil sampling, and starting, waiting and killing.

While the target runs, a thread of this process samples it with psutil (CPU time, RSS, threads)
for :mod:`perfloop.analysis.signals`.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ...errors import TargetTimeout
from ...measure.process import child_env, kill_group, release, spawn
from ..signals import ProcessPoint, ProcessTrace

SAMPLE_INTERVAL = 0.05          # seconds between psutil samples of the profiled process


class Sampler:
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

    def start(self) -> Sampler:
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



def tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def start(args: Sequence[str], *, env: Mapping[str, str] | None = None,
          **popen: Any) -> subprocess.Popen[Any]:
    """Start a profiled program, py-spy or a probe like every child of perfloop
    (:mod:`perfloop.measure.process`): the leader of a process group of its own that the
    watchdog knows, with the environment :func:`~perfloop.measure.process.child_env` builds.
    Pair it with :func:`kill_tree` in a ``finally``: nothing it started may outlive it."""
    return spawn(list(args), env=child_env(env), **popen)


def kill_tree(proc: subprocess.Popen[Any]) -> None:
    """Kill what is left of the group ``proc`` leads (py-spy's target, a shell's child), reap
    ``proc`` and tell the watchdog the group is gone. Harmless once everything has exited."""
    kill_group(proc.pid)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    release(proc.pid)


def wait(proc: subprocess.Popen[Any], timeout: float | None, what: str) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        raise TargetTimeout(f"{what} ran past {timeout:g} s and was killed",
                            hint="pass a shorter duration, or a larger timeout") from None


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None

