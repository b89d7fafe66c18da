"""Process checks for tests of targets that must leave nothing running."""

from __future__ import annotations

import time

import psutil


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_dead(pids: list[int], limit: float = 5.0) -> list[int]:
    """The pids still alive after up to ``limit`` seconds (SIGKILL delivery is asynchronous)."""
    end = time.monotonic() + limit
    while time.monotonic() < end and any(alive(p) for p in pids):
        time.sleep(0.02)
    return [p for p in pids if alive(p)]
