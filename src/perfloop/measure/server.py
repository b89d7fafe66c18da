"""The lifecycle of a server that an HTTP benchmark starts, waits for, watches and stops.

:class:`ManagedServer` starts the configured command in its own process group (so stopping it
also stops the workers it forked), sends its output to a temporary file (whose tail goes into
error messages), polls ``ready_url`` until the server answers, and on exit stops the whole group:
SIGTERM, a grace period, then SIGKILL. POSIX only, like process groups.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from ..config import ServerSpec
from ..errors import TargetError
from .process import child_env, describe_exit, group_exists, kill_group, release, spawn

#: Seconds a server gets between SIGTERM and SIGKILL.
DEFAULT_GRACE = 5.0
TAIL_LINES = 30
TAIL_CHARS = 4000


class ServerError(TargetError):
    """The server of an HTTP benchmark would not start, never became ready, or died.

    ``tail`` holds the end of its output; ``timed_out`` is true when the benchmark's deadline,
    not the server, cut the wait short.
    """

    def __init__(self, message: str, *, tail: str | None = None, exit_code: int | None = None,
                 timed_out: bool = False, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.tail = tail
        self.server_exit_code = exit_code   # not exit_code: that is the CLI's exit status
        self.timed_out = timed_out


class ManagedServer:
    """A server process for the duration of a ``with`` block, ready when the block starts.

    ``root`` is the project directory that a relative ``spec.cwd`` is taken from. ``deadline``
    (a ``time.monotonic()`` value) bounds the wait for readiness as well as ``ready_timeout``.
    """

    def __init__(self, spec: ServerSpec, root: str, *, deadline: float | None = None,
                 grace: float = DEFAULT_GRACE) -> None:
        self.spec = spec
        self.root = root
        self.deadline = deadline
        self.grace = grace
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._pgid: int | None = None
        self._final_tail = ""

    def __enter__(self) -> ManagedServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            # Also on Ctrl-C while waiting: a half-started server must not outlive us.
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def exit_code(self) -> int | None:
        """The process's return code once it has exited (negative: killed by that signal)."""
        return self._proc.poll() if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the command; raise :class:`ServerError` when it cannot be run at all."""
        if self._proc is not None:
            raise RuntimeError("the server is already started")
        self._refuse_if_taken()
        cwd = Path(self.root) / self.spec.cwd if self.spec.cwd else Path(self.root)
        env = child_env(self.spec.env)
        shell = isinstance(self.spec.command, str)
        command = self.spec.command if shell else list(self.spec.command)
        self._output = tempfile.TemporaryFile(prefix="perfloop-server-")
        try:
            self._proc = spawn(command, shell=shell, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=self._output, stderr=subprocess.STDOUT)
        except OSError as exc:
            self._output.close()
            self._output = None
            raise ServerError(f"could not start the server {self._shown_command()}: {exc}",
                              hint="check server.command and server.cwd") from exc
        self._pgid = self._proc.pid  # start_new_session makes it the leader of a new group

    def _refuse_if_taken(self) -> None:
        """Raise :class:`ServerError` when something already answers at ``ready_url`` before
        the server is started: another process holds the port, and the benchmark would time
        that process (or the new server would fail to bind, and the run with it)."""
        try:
            with httpx.Client(trust_env=False, follow_redirects=False) as client:
                answer = client.get(self.spec.ready_url, timeout=1.0)
        except httpx.HTTPError:
            return          # nothing answers: the port is free for the server
        raise ServerError(f"{self.spec.ready_url} already answers (HTTP {answer.status_code}) "
                          "before the server is started: another process holds its port",
                          hint="stop that process (another perfloop run, a test, a dev "
                               "server), or give this benchmark a port of its own in "
                               "server.command and server.ready_url")

    def wait_ready(self) -> None:
        """Poll ``ready_url`` until it answers with a status below 500.

        Raises :class:`ServerError` (with the output tail) when the process exits first, or
        when ``ready_timeout`` or the deadline passes.
        """
        assert self._proc is not None, "start() first"
        started = time.monotonic()
        limit = started + self.spec.ready_timeout
        timed_out = False
        if self.deadline is not None and self.deadline < limit:
            limit, timed_out = self.deadline, True
        pause = 0.02
        last = "no answer yet"
        # trust_env=False: a proxy from the environment must not stand between us and the server.
        with httpx.Client(trust_env=False, follow_redirects=False) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise ServerError(f"the server {describe_exit(code)} before it was ready",
                                      tail=self.tail(), exit_code=code,
                                      hint="its output is below; run server.command by hand to "
                                           "reproduce")
                remaining = limit - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    answer = client.get(self.spec.ready_url, timeout=min(2.0, max(remaining, 0.05)))
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                else:
                    if answer.status_code < 500:
                        return
                    last = f"HTTP {answer.status_code}"
                time.sleep(max(0.0, min(pause, limit - time.monotonic())))
                pause = min(pause * 1.5, 0.25)
        waited = time.monotonic() - started
        if timed_out:
            raise ServerError(f"the benchmark's time ran out after {waited:.1f} s waiting for the "
                              f"server at {self.spec.ready_url} ({last})", tail=self.tail(),
                              timed_out=True, hint="raise the benchmark's timeout")
        raise ServerError(f"the server was not ready after {self.spec.ready_timeout:g} s: "
                          f"{self.spec.ready_url} gave {last}", tail=self.tail(),
                          hint="raise server.ready_timeout, or check server.ready_url and the "
                               "server's output below")

    def tail(self, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
        """The last ``lines`` lines (at most ``chars`` characters) of the server's output."""
        if self._output is None:
            return self._final_tail  # stopped: what the output said last
        fd = self._output.fileno()
        size = os.fstat(fd).st_size
        # pread leaves the file offset alone: the server shares it and is still writing.
        data = os.pread(fd, chars, max(0, size - chars))
        text = data.decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server's whole process group: SIGTERM, ``grace`` seconds, then SIGKILL."""
        proc, pgid = self._proc, self._pgid
        if proc is None or pgid is None:
            return
        try:
            if self._group_exists(pgid):
                self._signal_group(pgid, signal.SIGTERM)
                end = time.monotonic() + self.grace
                try:
                    proc.wait(timeout=self.grace)
                except subprocess.TimeoutExpired:
                    pass
                # Children may outlive the leader (a shell that forked the real server).
                while self._group_exists(pgid) and time.monotonic() < end:
                    time.sleep(0.02)
                if self._group_exists(pgid):
                    self._signal_group(pgid, signal.SIGKILL)
            proc.wait()
        finally:
            release(pgid)
            self._pgid = None
            if self._output is not None:
                self._final_tail = self.tail()
                self._output.close()
                self._output = None

    _group_exists = staticmethod(group_exists)
    _signal_group = staticmethod(kill_group)

    def _shown_command(self) -> str:
        command = self.spec.command
        return repr(command if isinstance(command, str) else " ".join(command))
