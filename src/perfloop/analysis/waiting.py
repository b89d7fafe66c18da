"""Waiting, told apart: which samples of a profile are threads waiting, and on what.

A wall-clock profile (py-spy with ``--idle``, pyinstrument) records a thread whether it runs or
waits. The stacks say which: the innermost frame of a waiting thread is a blocking call. This
module classifies each stack by its innermost frames into one of

- ``lock``: acquiring a lock (``with lock:``, ``lock.acquire()``, ``Semaphore.acquire``);
- ``wait``: waiting on a condition, an event, a queue or a future (``Condition.wait``,
  ``Event.wait``, ``Queue.get``) - usually for another thread's work;
- ``join``: waiting for threads or processes to finish (``Thread.join``, ``Process.wait``);
- ``sleep``: ``time.sleep``;
- ``io``: sockets, files, pipes and selectors (``select``, ``recv``, ``read``, ``accept``,
  ``urlopen``);
- ``cpu``: anything else (the thread was running).

Where the innermost frame is the standard library (``threading.Condition.wait``) its name
decides; where it is a built-in function (pyinstrument records ``acquire``, ``sleep``) its name
decides; where it is user code, the sampled line is read from the source (py-spy records the
line each frame was at): ``with self._lock:`` is a lock, ``time.sleep(0.1)`` a sleep. A stack
whose innermost line is unknown counts as ``cpu``.

:func:`waiting` sums this up: the share of recorded thread time per kind, and per *waiting call
site*, the innermost user function where the thread waited and the user function that called
it, so that a reading can say "73% of the recorded thread time is threads waiting to acquire a
lock in ledger:post (called from ledger:worker)". For a lock, what running threads did inside
that same function (the code under the lock) is named as its likely holder: the stacks show
who waits, not who holds.
"""

from __future__ import annotations

import linecache
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from .profile_model import Frame, Profile, Stack

KINDS = ("lock", "wait", "join", "sleep", "io")
DESCRIBE = {
    "lock": "waiting to acquire a lock",
    "wait": "waiting on a condition, event or queue (for other threads' work)",
    "join": "waiting for threads or processes to finish",
    "sleep": "sleeping (time.sleep)",
    "io": "waiting for I/O (sockets, files, pipes, select)",
}
#: Waiting at or above this share of the recorded time: the time is waiting, not CPU.
MOSTLY_WAITING = 0.5

# standard-library functions by module: the kind a stack ending there is waiting for
_STDLIB = {
    "threading": {"Lock.acquire": "lock", "RLock.acquire": "lock", "_RLock.acquire": "lock",
                  "Semaphore.acquire": "lock", "BoundedSemaphore.acquire": "lock",
                  "Condition.wait": "wait", "Condition.wait_for": "wait", "Event.wait": "wait",
                  "Barrier.wait": "wait", "Thread.join": "join",
                  "Thread._wait_for_tstate_lock": "join"},
    "queue": {"Queue.get": "wait", "Queue.put": "wait", "Queue.join": "join"},
    "concurrent.futures._base": {"Future.result": "wait", "as_completed": "wait", "wait": "wait",
                                 "_result_or_cancel": "wait"},
    "concurrent.futures.thread": {"ThreadPoolExecutor.shutdown": "join"},
    "concurrent.futures.process": {"ProcessPoolExecutor.shutdown": "join"},
    "subprocess": {"Popen.wait": "join", "Popen._wait": "join", "Popen.communicate": "join",
                   "Popen._communicate": "io", "_try_wait": "join"},
    "multiprocessing.connection": {"Connection.recv": "io", "Connection.recv_bytes": "io",
                                   "Connection._recv": "io", "Connection._recv_bytes": "io",
                                   "wait": "io"},
    "multiprocessing.pool": {"ApplyResult.get": "wait", "ApplyResult.wait": "wait",
                             "Pool.join": "join"},
    "selectors": {"*": "io"},
    "socket": {"*": "io"},
    "ssl": {"*": "io"},
    "socketserver": {"_eintr_retry": "io", "BaseServer.serve_forever": "io"},
    "http.client": {"*": "io"},
    "urllib.request": {"*": "io"},
    "asyncio.base_events": {"BaseEventLoop._run_once": "io"},
    "time": {"sleep": "sleep"},
}
# built-in (C) functions, as pyinstrument records them: the last part of the name
_NATIVE = {"acquire": "lock", "acquire_lock": "lock", "sleep": "sleep", "select": "io",
           "poll": "io", "epoll": "io", "recv": "io", "recv_into": "io", "recvfrom": "io",
           "accept": "io", "read": "io", "readinto": "io", "readline": "io", "write": "io",
           "sendall": "io", "send": "io", "connect": "io", "waitpid": "join", "wait": "wait"}
# a user line that blocks: the first pattern that matches names the kind
_LINES = (
    ("lock", re.compile(r"^\s*(async\s+)?with\s+[\w.\[\]()]*(lock|mutex|sem|semaphore)\w*\b[^:]*:"
                        r"|\.acquire\(|acquire_lock\(", re.IGNORECASE)),
    ("sleep", re.compile(r"\bsleep\(")),
    ("join", re.compile(r"\.join\(\s*(timeout\s*=\s*[\w.]+\s*)?\)|\.wait\(\)\s*$|waitpid\(|\.communicate\(")),
    ("wait", re.compile(r"\.wait\(|\.wait_for\(|\.result\(|\bqueue\w*\.get\(|\bq\.get\(|\.get\(\s*(block|timeout)")),
    ("io", re.compile(r"\b(select|poll|epoll|recv\w*|accept|urlopen|read\w*|sendall|connect|"
                      r"getresponse|request|fetch\w*)\(")),
)


def _stdlib_kind(fr: Frame) -> str | None:
    table = _STDLIB.get(fr.module)
    if table is None:
        return None
    if fr.function in table:
        return table[fr.function]
    # py-spy 0.3 and cProfile give no class: "wait" for "Condition.wait"
    for name, kind in table.items():
        if name != "*" and name.rsplit(".", 1)[-1] == fr.function and "." in name:
            return kind
    return table.get("*")


def line_kind(file: str, line: int) -> str | None:
    """The waiting kind the source line ``file:line`` shows, or None (it computes, or unknown)."""
    if not line or file.startswith("<"):
        return None
    text = linecache.getline(file, line)
    if not text:
        return None
    code = text.split("#", 1)[0]
    for kind, pattern in _LINES:
        if pattern.search(code):
            return kind
    return None


def stack_kind(profile: Profile, stack: Stack) -> str:
    """``cpu`` or the kind of waiting (:data:`KINDS`) the innermost frames of ``stack`` show.

    A built-in call (``acquire``) says that the thread blocks; the Python frame that made it
    says why when it is a known one (``Thread.join`` acquires a lock to wait for a thread: a
    join, not lock contention).
    """
    native: str | None = None
    for depth, i in enumerate(reversed(stack.frames)):
        fr = profile.frames[i]
        if fr.kind == "native":
            native = native or _NATIVE.get(fr.function.rsplit(".", 1)[-1])
            continue                      # look at its caller: it may say why
        if fr.kind in ("stdlib", "library"):
            found = _stdlib_kind(fr)
            if found:
                return found
            if native:
                return native
            continue                      # a library frame: the blocking call may be further up
        if fr.kind in ("user", "generated"):
            if native:
                return native
            if depth == 0 and stack.line:
                return line_kind(fr.file, stack.line) or "cpu"
            return "cpu"
    return native or "cpu"


@dataclass(frozen=True)
class WaitSite:
    """Where threads waited: the innermost user function, its caller, the kind and the share."""

    kind: str
    function: str            # "module:function", or "(outside user code)"
    caller: str | None
    line: int                # the line it waited at, 0 when unknown
    share: float
    holder: str | None = None        # lock sites: what threads inside the same function ran
    holder_share: float = 0.0

    @property
    def description(self) -> str:
        where = self.function + (f" (line {self.line})" if self.line else "")
        where += f", called from {self.caller}" if self.caller else ""
        if self.holder:
            where += (f"; meanwhile threads inside {self.function} ran {self.holder} "
                      f"({self.holder_share:.0%}): likely the lock's holders")
        return where


@dataclass(frozen=True)
class Waiting:
    """The share of recorded thread time spent waiting, by kind and by call site."""

    share: float                             # all waiting kinds together
    by_kind: dict[str, float]
    sites: tuple[WaitSite, ...]              # largest first
    threads: int

    @property
    def mostly(self) -> bool:
        return self.share >= MOSTLY_WAITING

    @property
    def main_kind(self) -> str | None:
        return max(self.by_kind, key=lambda k: self.by_kind[k]) if self.by_kind else None

    def reading(self) -> str:
        """One sentence per kind that holds a tenth of the time, the largest first."""
        if not self.sites:
            return "The recorded threads were running, not waiting."
        parts: list[str] = []
        for kind, share in sorted(self.by_kind.items(), key=lambda kv: -kv[1]):
            if share < 0.1 and parts:
                continue
            site = next(s for s in self.sites if s.kind == kind)
            parts.append(f"{share:.0%} of the recorded thread time is threads {DESCRIBE[kind]} "
                         f"in {site.description}")
        return "; ".join(parts) + "."

    def to_dict(self) -> dict[str, object]:
        return {"share": self.share, "by_kind": dict(self.by_kind), "threads": self.threads,
                "sites": [{"kind": s.kind, "function": s.function, "caller": s.caller,
                           "line": s.line, "share": s.share, "holder": s.holder,
                           "holder_share": s.holder_share} for s in self.sites]}


def _user_frames(profile: Profile, stack: Stack) -> list[int]:
    return [i for i in stack.frames if profile.frames[i].kind == "user"]


def _holder(profile: Profile, running: Sequence[Stack], function: str, total: float
            ) -> tuple[str | None, float]:
    """What running threads did inside ``function`` (where others wait for the lock): the
    innermost user function of running samples with ``function`` on the stack. The stacks
    cannot say who holds a lock; code running inside the function that takes it is the
    likely holder, and the reading says "likely"."""
    ran: dict[str, float] = defaultdict(float)
    for stack in running:
        names = [profile.frames[i].name for i in _user_frames(profile, stack)]
        if function in names:
            ran[names[-1]] += stack.weight
    if not ran:
        return None, 0.0
    name = max(ran, key=lambda n: ran[n])
    return name, ran[name] / total


def waiting(profile: Profile, *, min_site: float = 0.01) -> Waiting:
    """How much of the recorded thread time was waiting, on what, and where (see module doc)."""
    total = profile.total
    by_kind: dict[str, float] = defaultdict(float)
    sites: dict[tuple[str, str, str | None, int], float] = defaultdict(float)
    for stack in profile.stacks:
        kind = stack_kind(profile, stack)
        if kind == "cpu":
            continue
        by_kind[kind] += stack.weight
        users = _user_frames(profile, stack)
        function = profile.frames[users[-1]].name if users else "(outside user code)"
        caller = profile.frames[users[-2]].name if len(users) > 1 else None
        at_leaf = bool(users) and users[-1] == stack.frames[-1]
        sites[(kind, function, caller, stack.line if at_leaf else 0)] += stack.weight
    if total <= 0:
        return Waiting(0.0, {}, (), len(profile.threads))
    running = [s for s in profile.stacks if stack_kind(profile, s) == "cpu"]
    # one site per (kind, function, caller): its most sampled line
    merged: dict[tuple[str, str, str | None], tuple[float, int, float]] = {}
    for (kind, function, caller, line), w in sites.items():
        weight, best, best_w = merged.get((kind, function, caller), (0.0, 0, 0.0))
        merged[(kind, function, caller)] = (weight + w, line if w > best_w else best, max(w, best_w))
    out = sorted((WaitSite(k, f, c, line, w / total, *_holder(profile, running, f, total) if k == "lock"
                           else (None, 0.0))
                  for (k, f, c), (w, line, _) in merged.items() if w / total >= min_site),
                 key=lambda s: (-s.share, s.function))
    return Waiting(share=sum(by_kind.values()) / total,
                   by_kind={k: v / total for k, v in by_kind.items()}, sites=tuple(out),
                   threads=len(profile.threads))


__all__ = ["DESCRIBE", "KINDS", "MOSTLY_WAITING", "WaitSite", "Waiting", "line_kind", "stack_kind",
           "waiting"]
