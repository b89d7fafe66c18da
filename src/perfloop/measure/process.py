"""Child processes that never outlive perfloop: process groups, a watchdog, SIGTERM as Ctrl-C.

Every process perfloop starts to measure something (callable workers, command runs, HTTP
servers) goes through :func:`spawn`, which makes it the leader of a new session and process
group, so that the whole tree it starts can be killed at once with :func:`kill_group`.

Three ways out, one guarantee (nothing keeps running):

- **Ctrl-C, errors**: the code that spawned a child kills its group on the way out
  (``except BaseException`` in :func:`perfloop.measure.command.run_child`, ``stop()`` of
  :class:`perfloop.measure.server.ManagedServer`).
- **SIGTERM** (a CI runner cancelling a job, ``kill PID``): :func:`sigterm_as_interrupt` turns it
  into :class:`Terminated`, a ``KeyboardInterrupt``, so the same clean-up paths run; the CLI
  then exits 143.
- **SIGKILL** (and any death that runs no Python code): a *watchdog* process, started with the
  first child, holds the read end of a pipe whose write end only perfloop holds, and the list of
  live process groups perfloop reports to it. When the pipe reaches end-of-file, perfloop is
  gone: the watchdog sends SIGTERM to every group still registered, then SIGKILL after a short
  grace, and exits. It ignores SIGINT and SIGTERM and runs in its own session, so it outlives
  whatever killed perfloop just long enough.

Why a watchdog and not ``prctl(PR_SET_PDEATHSIG)``: the death signal reaches only the direct
child, not the grandchildren of a shell command or a server's workers; it fires when the
*thread* that spawned the child exits; it needs ``preexec_fn``, which makes ``subprocess``
fall back from ``vfork`` to ``fork``, and the cost of forking perfloop would then be part of
every command's measured wall time. The watchdog works for whole trees, on every POSIX system,
at the cost of one idle process per perfloop process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from types import FrameType
from typing import Any, Iterator, Sequence

#: Seconds between the watchdog's SIGTERM and SIGKILL to the groups left behind.
WATCHDOG_GRACE = 0.5

# The watchdog's whole program: standard library only, started with -I -S so it is quick.
_WATCHDOG = f"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
groups = set()
buf = b""
while True:
    try:
        data = os.read(0, 4096)
    except InterruptedError:
        continue
    if not data:
        break
    buf += data
    *lines, buf = buf.split(b"\\n")
    for line in lines:
        if line[:1] == b"+":
            groups.add(int(line[1:]))
        elif line[:1] == b"-":
            groups.discard(int(line[1:]))
def send(sig):
    alive = []
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
            alive.append(pgid)
        except OSError:
            pass
    return alive
if send(signal.SIGTERM):
    time.sleep({WATCHDOG_GRACE})
    send(signal.SIGKILL)
"""


class Terminated(KeyboardInterrupt):
    """perfloop received SIGTERM; handled like Ctrl-C, so every clean-up path runs."""


class _Watchdog:
    """The one watchdog process of this perfloop process, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pipe: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = 0

    def _ensure(self) -> int | None:
        if self._pipe is not None and self._owner == os.getpid():
            return self._pipe
        read_fd, write_fd = os.pipe()   # both ends non-inheritable: no other child holds them
        try:
            self._proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _WATCHDOG],
                                          stdin=read_fd, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            os.close(write_fd)
            return None   # no watchdog: SIGKILL may leave children, every other way out is covered
        finally:
            os.close(read_fd)
        self._pipe, self._owner = write_fd, os.getpid()
        return write_fd

    def tell(self, line: str) -> None:
        with self._lock:
            fd = self._ensure()
            if fd is None:
                return
            try:
                os.write(fd, line.encode())
            except OSError:   # the watchdog died; the next child starts a new one
                os.close(fd)
                self._pipe = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._owner == os.getpid() else None


_watchdog = _Watchdog()


def watchdog_pid() -> int | None:
    """The pid of this process's watchdog, once a child was spawned (for tests and doctors)."""
    return _watchdog.pid


def spawn(args: Sequence[str] | str, **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` as the leader of a new process group the watchdog knows about.

    Call :func:`release` with its pid once the group is gone (reaped and killed). Ctrl-C and
    SIGTERM are held back until the watchdog knows the group: one arriving while the child or
    the watchdog is being started would otherwise leave a child nobody kills.
    """
    with _signals_held():
        proc: subprocess.Popen[bytes] = subprocess.Popen(args, start_new_session=True, **popen)
        _watchdog.tell(f"+{proc.pid}\n")
    return proc


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends, then reach their handlers (main thread
    only: other threads cannot swap handlers, and signals are handled in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    # A handler installed outside Python reads as None and could not be put back: left alone.
    held = [signum for signum in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(signum) is not None]
    previous = {signum: signal.signal(signum, lambda signum, frame: pending.append(signum))
                for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for number in pending:
            handler = previous[signal.Signals(number)]
            if callable(handler):
                handler(number, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(number)


def release(pgid: int) -> None:
    """The group ``pgid`` is gone: the watchdog must not signal it (its id may be reused)."""
    _watchdog.tell(f"-{pgid}\n")


def kill_group(pgid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    """Send ``sig`` to the process group ``pgid``; nothing when it is gone already."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_exists(pgid: int) -> bool:
    """True while any process of the group ``pgid`` (even a zombie leader) exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_terminated = threading.Event()


def terminated() -> bool:
    """True once :func:`sigterm_as_interrupt` turned a SIGTERM into :class:`Terminated`."""
    return _terminated.is_set()


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    _terminated.set()
    raise Terminated(f"received signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the main
    thread, as Ctrl-C raises KeyboardInterrupt. Does nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
