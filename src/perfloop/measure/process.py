"""Every child process of perfloop: its environment, spawning, supervision and killing.

Nothing else under :mod:`perfloop.measure` starts or signals a process; every target goes
through this module: callable workers, commands (timed and under valgrind), suite collection,
HTTP servers, and the short helpers (git) the measurement needs.

- :func:`child_env`: the one environment every child gets (the interpreter first on PATH).
- :func:`spawn`: ``Popen`` as the leader of a new session and process group, registered with
  the watchdog, so that the whole tree it starts can be killed at once (:func:`kill_group`).
- :func:`run_child`: one measured child under a deadline: its exit timestamped, the tail of
  its stderr kept, the pipes it was handed read, its group killed on the deadline or on any
  exception (Ctrl-C included), reaped with its resource usage.
- :func:`run_captured`: a short helper run to its end with its output captured; its group is
  killed past its timeout.

Three ways out, one guarantee (nothing keeps running):

- **Ctrl-C, errors**: the code that spawned a child kills its group on the way out
  (``except BaseException`` in :func:`run_child` and :func:`run_captured`, ``stop()`` of
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
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any, Callable, Iterator, Mapping, Sequence

from .rss import RSS_INTERVAL, TreeRssSampler, ru_maxrss_bytes

TAIL_LINES = 40
#: Bytes of stderr kept while a child runs: enough for TAIL_LINES long lines, and bounded so a
#: chatty target cannot fill the parent's memory.
TAIL_BYTES = 64 * 1024
#: After a child exits, how long to keep reading pipes that something outside its process
#: group may still hold open.
DRAIN_GRACE = 1.0
#: What :func:`run_captured` raises past its timeout (the group is killed by then).
ChildTimeout = subprocess.TimeoutExpired

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


def child_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every child: ``os.environ`` with the running interpreter's directory
    first on PATH, then ``overrides`` (a benchmark's, a suite's or a server's ``env``).

    ``python`` in a benchmark's command means the interpreter perfloop runs under, so that a
    command such as ``["python", "-m", "uvicorn", ...]`` finds the packages of the project's
    virtual environment even when that environment is not activated.
    """
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    path = env.get("PATH", "")
    if bindir and path.split(os.pathsep)[0] != bindir:
        env["PATH"] = bindir + (os.pathsep + path if path else "")
    env.update(overrides or {})
    return env


def spawn(args: Sequence[str] | str, **popen: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` as the leader of a new process group the watchdog knows about.

    Call :func:`release` with its pid once the group is gone (reaped and killed). Ctrl-C and
    SIGTERM are held back until the watchdog knows the group: one arriving while the child or
    the watchdog is being started would otherwise leave a child nobody kills.
    """
    with _signals_held():
        proc: subprocess.Popen[Any] = subprocess.Popen(args, start_new_session=True, **popen)
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


# -- supervision -----------------------------------------------------------------------------

class StderrTail:
    """The last TAIL_BYTES of a stream, rendered as its last ``lines`` lines."""

    def __init__(self, limit: int = TAIL_BYTES) -> None:
        self.limit = limit
        self.buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > self.limit:
            del self.buffer[:-self.limit]

    def text(self, lines: int = TAIL_LINES) -> str:
        decoded = self.buffer.decode("utf-8", errors="replace")
        return "\n".join(decoded.rstrip("\n").splitlines()[-lines:])


@dataclass(frozen=True)
class ChildExit:
    """How one supervised child process ended."""

    returncode: int
    timed_out: bool
    wall_time: float            # seconds from spawn to exit
    cpu_time: float             # user + sys of the process and the descendants it waited for
    maxrss: int                 # wait4's ru_maxrss in bytes (see rss.maxrss_floor before using it)
    peak_tree_rss: int          # polled; 0 when not sampled
    stderr_tail: str


def run_child(args: Sequence[str] | str, *, shell: bool = False, cwd: str | None = None,
              env: Mapping[str, str] | None = None, deadline: float | None = None,
              pass_fds: Sequence[int] = (), readers: Mapping[int, Callable[[bytes], None]] | None = None,
              sample_rss: bool = False, rss_interval: float = RSS_INTERVAL,
              stdin_data: bytes | None = None,
              clock: Callable[[], float] = time.monotonic) -> ChildExit:
    """Run one child process in a new session until it exits or ``deadline`` passes.

    ``pass_fds`` are handed to the child and closed in the parent once it is spawned;
    ``readers`` maps file descriptors the parent reads while the child runs (the read ends of
    those pipes) to callbacks receiving each chunk. The caller closes the reader fds.
    ``stdin_data`` (at most a pipe's buffer, 4 KiB) is the child's whole stdin; without it stdin
    is ``/dev/null``. Its stdout is discarded. The child is spawned through :func:`spawn`, so a
    SIGKILL of perfloop does not leave it running.

    The exit is detected by a thread blocked in ``waitid(WNOWAIT)``, which timestamps it at
    once without reaping the process: while the zombie holds the process group, whatever the
    child left behind in it is killed, and ``wait4`` then reaps it with its resource usage.
    On the deadline the whole process group is killed and ``timed_out`` is set. On any
    exception (KeyboardInterrupt included) the group is killed and reaped before re-raising.
    """
    start = time.perf_counter()
    proc = _spawn_fed(args, shell=shell, cwd=cwd, env=env, pass_fds=pass_fds, stdin_data=stdin_data)
    try:
        watch = _Supervision(proc, readers or {})
    except BaseException:
        _kill_reap_release(proc)
        raise
    peak = 0
    try:
        sampler = TreeRssSampler(proc.pid, rss_interval).start() if sample_rss else None
        try:
            usage = watch.until_exit(deadline, clock)
        finally:
            peak = sampler.stop() if sampler is not None else 0
    finally:
        watch.close()
    return ChildExit(returncode=proc.returncode, timed_out=watch.timed_out,
                     wall_time=(watch.exited_at or time.perf_counter()) - start,
                     cpu_time=usage.ru_utime + usage.ru_stime,
                     maxrss=ru_maxrss_bytes(usage.ru_maxrss), peak_tree_rss=peak,
                     stderr_tail=watch.tail.text())


def _spawn_fed(args: Sequence[str] | str, *, shell: bool, cwd: str | None,
               env: Mapping[str, str] | None, pass_fds: Sequence[int],
               stdin_data: bytes | None) -> subprocess.Popen[Any]:
    """:func:`spawn` with stderr piped, stdout discarded and stdin fed from ``stdin_data``;
    ``pass_fds`` are closed in the parent whatever happens."""
    feed_w: int | None = None
    try:
        stdin: int = subprocess.DEVNULL
        if stdin_data is not None:
            stdin, feed_w = os.pipe()
        try:
            proc = spawn(args, shell=shell, cwd=cwd, env=dict(env) if env is not None else None,
                         stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         pass_fds=tuple(pass_fds))
        finally:
            if feed_w is not None:
                os.close(stdin)
    except BaseException:
        if feed_w is not None:
            os.close(feed_w)
        raise
    finally:
        for fd in pass_fds:
            os.close(fd)
    if feed_w is not None:
        try:
            os.write(feed_w, stdin_data or b"")   # fits the pipe's buffer: never blocks
        except OSError:
            pass   # the child is gone already; its exit says why
        finally:
            os.close(feed_w)
    return proc


def _kill_reap_release(proc: subprocess.Popen[Any]) -> None:
    """Kill ``proc``'s group, reap it (waiting at most 5 s) and tell the watchdog."""
    kill_group(proc.pid)
    try:
        proc.wait(timeout=5.0)
    except (subprocess.TimeoutExpired, ChildProcessError):
        pass
    release(proc.pid)
    if proc.stderr is not None:
        proc.stderr.close()


class _Supervision:
    """The parent's side of one running child: its exit, its deadline, the pipes it writes."""

    def __init__(self, proc: subprocess.Popen[Any], readers: Mapping[int, Callable[[bytes], None]]) -> None:
        assert proc.stderr is not None
        self.proc = proc
        self.tail = StderrTail()
        self.callbacks: dict[int, Callable[[bytes], None]] = {proc.stderr.fileno(): self.tail.feed,
                                                              **readers}
        self.timed_out = self.exited = self.reaped = False
        self.exited_at: float | None = None
        self.drain_until = 0.0
        self.wake_r, self.wake_w = os.pipe()
        self.selector = selectors.DefaultSelector()
        for fd in self.callbacks:
            self.selector.register(fd, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.waiter = threading.Thread(target=self._wait_for_exit, name=f"perfloop-wait-{proc.pid}",
                                       daemon=True)
        self.waiter.start()

    def _wait_for_exit(self) -> None:
        try:
            os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass
        self.exited_at = time.perf_counter()
        os.write(self.wake_w, b"x")

    def until_exit(self, deadline: float | None, clock: Callable[[], float]) -> Any:
        """Serve the pipes until the child exits and they are drained; reap it, return its rusage."""
        try:
            while (timeout := self._next_timeout(deadline, clock)) is not None:
                for key, _ in self.selector.select(timeout):
                    self._ready(key.fd)
            _, status, usage = os.wait4(self.proc.pid, 0)
            self.reaped = True
            self.proc.returncode = os.waitstatus_to_exitcode(status)
        except BaseException:
            kill_group(self.proc.pid)
            if not self.reaped:
                try:
                    self.proc.wait(timeout=5.0)
                except (subprocess.TimeoutExpired, ChildProcessError):
                    pass
            raise
        return usage

    def _next_timeout(self, deadline: float | None, clock: Callable[[], float]) -> float | None:
        """How long to wait for the pipes next; None once the child exited and they are drained."""
        if self.exited:
            left = self.drain_until - time.monotonic()
            return None if not self.selector.get_map() or left <= 0 else left
        if deadline is None:
            return 1.0
        left = deadline - clock()
        if left <= 0 and not self.timed_out:
            self.timed_out = True
            kill_group(self.proc.pid)
        # Bounded so an injected or adjusted clock is re-read now and then.
        return 0.1 if self.timed_out else min(max(left, 0.0), 0.25)

    def _ready(self, fd: int) -> None:
        if fd == self.wake_r:
            os.read(self.wake_r, 1)
            self.selector.unregister(self.wake_r)
            self.exited = True
            # The zombie still holds the group id, so this reaches only its leftovers.
            kill_group(self.proc.pid)
            self.drain_until = time.monotonic() + DRAIN_GRACE
            return
        data = os.read(fd, 65536)
        if data:
            self.callbacks[fd](data)
        else:
            self.selector.unregister(fd)

    def close(self) -> None:
        release(self.proc.pid)
        self.selector.close()
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        self.waiter.join(timeout=5.0)
        if not self.waiter.is_alive():   # never close a pipe the waiter may still write to
            os.close(self.wake_r)
            os.close(self.wake_w)


def run_captured(args: Sequence[str], *, cwd: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None, timeout: float,
                 text: bool = True) -> subprocess.CompletedProcess[Any]:
    """Run a short helper (git, a suite's collector) to its end, capturing stdout and stderr.

    Spawned like every child (its own group, known to the watchdog), with stdin ``/dev/null``.
    Past ``timeout`` seconds its whole group is killed and :data:`ChildTimeout` raised; on any
    exception (Ctrl-C included) the group is killed and reaped before re-raising. An
    executable that cannot be started raises OSError, as ``subprocess.run`` does.
    """
    proc = spawn(list(args), cwd=cwd, env=dict(env) if env is not None else None,
                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=text)
    try:
        with proc:
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                kill_group(proc.pid)
                proc.communicate()   # reaps it; the pipes end with the group
                raise
            except BaseException:
                kill_group(proc.pid)
                proc.wait()
                raise
    finally:
        release(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def describe_exit(returncode: int) -> str:
    """``exited with code 2`` or ``was killed by signal SIGSEGV``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"was killed by signal {name}"
    return f"exited with code {returncode}"


def stderr_note(tail: str | None) -> str:
    """How an error message points at the stderr tail: only when there are lines to show."""
    if tail and tail.strip():
        return "its stderr ends with the lines shown"
    return "it wrote nothing on stderr"
