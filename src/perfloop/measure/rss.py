"""Resident memory of a process tree: polled while it runs, and wait4's high-water mark.

:class:`TreeRssSampler` polls the sum of resident memory over a process tree from a thread;
:func:`maxrss_floor` says when wait4's ``ru_maxrss`` of a child can be trusted as a floor.
Nothing here starts or stops a process (:mod:`perfloop.measure.process` does).
"""

from __future__ import annotations

import os
import resource
import sys
import threading
from pathlib import Path

RSS_INTERVAL = 0.01


class TreeRssSampler:
    """Polls the resident memory of a process tree from a background thread.

    On Linux the tree is walked through ``/proc/PID/task/TID/children`` and memory read from
    ``/proc/PID/status``, about 0.4 ms per poll; psutil's recursive ``children()`` scans every
    process on the machine and costs over 5 ms, which at a 10 ms interval would take half a
    core away from the benchmark on a 2-core machine. Elsewhere psutil is used, less often.
    """

    def __init__(self, pid: int, interval: float = RSS_INTERVAL) -> None:
        self.pid = pid
        self.peak = 0
        self._proc_children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()
        self.interval = interval if self._proc_children else max(interval, 0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"perfloop-rss-{pid}", daemon=True)

    def start(self) -> "TreeRssSampler":
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        return self.peak

    def _run(self) -> None:
        poll = self._poll_proc if self._proc_children else self._poll_psutil
        while True:
            try:
                self.peak = max(self.peak, poll())
            except Exception:  # a vanished process mid-walk; the next poll sees the new tree
                pass
            if self._stop.wait(self.interval):
                return

    def _poll_proc(self) -> int:
        total = single = 0
        todo = [self.pid]
        while todo:
            pid = todo.pop()
            rss, hwm = _proc_status_memory(pid)
            total += rss
            single = max(single, hwm)
            todo.extend(_proc_children(pid))
        return max(total, single)

    def _poll_psutil(self) -> int:
        import psutil
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total


def _proc_status_memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a live process in bytes; zeros for a zombie or a vanished one."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss, hwm


def _proc_children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                    found.extend(int(x) for x in f.read().split())
            except OSError:
                continue
    except OSError:
        pass
    return found


def ru_maxrss_bytes(maxrss: int) -> int:
    return int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024


def maxrss_floor(child_maxrss: int) -> int:
    """wait4's ru_maxrss when it can be trusted, else 0.

    On Linux a child's ru_maxrss starts from its parent's peak RSS (it is inherited across
    fork/vfork + exec), so a 2 MB command spawned by a 100 MB perfloop reports 100 MB. Only a
    value above our own peak must come from the child itself.
    """
    own = ru_maxrss_bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return child_maxrss if child_maxrss > own else 0
