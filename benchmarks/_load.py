"""A controlled background load: N busy processes that a benchmark starts and always stops.

On a 2-core machine 3 busy processes make a load average of 3 on their own, on top of whatever
else runs: the "busy CI runner" condition, reproducible on demand. Each process is a
``python -c`` spin loop in its own session; :class:`BackgroundLoad` kills exactly the
processes it started (by pid) when its ``with`` block ends, on an exception, on Ctrl-C, and on
SIGTERM (turned into a ``KeyboardInterrupt`` while the block runs), so none is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType, TracebackType
from typing import Any

SPIN = "import itertools\nfor _ in itertools.count():\n    pass\n"


class BackgroundLoad:
    """``with BackgroundLoad(3): ...`` runs the block with 3 busy processes beside it."""

    def __init__(self, processes: int) -> None:
        if processes < 0:
            raise ValueError(f"processes must be >= 0, got {processes}")
        self.processes = processes
        self._procs: list[subprocess.Popen[bytes]] = []
        self._old_term: Any = None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def __enter__(self) -> "BackgroundLoad":
        if self.processes:
            self._old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            for _ in range(self.processes):
                self._procs.append(subprocess.Popen(
                    [sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """Kill and reap every process this object started; safe to call twice."""
        for proc in self._procs:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._procs = []
        if self._old_term is not None:
            signal.signal(signal.SIGTERM, self._old_term)
            self._old_term = None


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
