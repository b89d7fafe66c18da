"""Small Python programs whose profile has a known answer.

Shared by ``tests/test_profile_causes.py`` (which checks that profiles name the cause) and
``benchmarks/profile_overhead.py --part programs`` (which measures what each profiler costs on
them and whether row 1 of its hot-spot table is the true hot spot). Each program is a module:
``entry`` is the function a callable benchmark calls, and running the module as a script (a
command) does the same work for about a second.

- ``cpu``: a helper under a loop holds about 90% of the time; ``run`` owns it, ``unrelated``
  never runs.
- ``threads``: ``fan_out`` starts two threads that compute in ``crunch``, so an in-process
  profiler that records only the calling thread sees none of the work.
- ``lock``: four threads post to a ledger under one lock; most of the time is threads waiting in
  ``post`` at ``with LOCK:``, and ``apply_entry`` is the work done while holding it.
- ``poll``: a loop that sleeps and polls with ``select``: waiting that is not a lock.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Program:
    source: str        # the module's source
    entry: str         # the function a callable benchmark calls
    hot_spot: str      # the function that row 1 of the hot-spot table should name

    def write(self, directory: Path, module: str) -> Path:
        """Write the program as ``directory/module.py``; returns its path."""
        path = directory / f"{module}.py"
        path.write_text(textwrap.dedent(self.source))
        return path

    def line_of(self, text: str) -> int:
        """The 1-based line of the module that contains ``text`` (first match)."""
        lines = textwrap.dedent(self.source).splitlines()
        return next(n for n, line in enumerate(lines, 1) if text in line)


CPU = Program('''
def helper(n):
    s = 0
    for i in range(n):
        s += i * i % 7
    return s


def run(rounds):
    total = 0
    for _ in range(rounds):
        total += helper(4000)
        total += len([x for x in range(200)])
    return total


def unrelated():
    return sum(range(10))


def main():
    return run(20)


if __name__ == "__main__":
    import time
    end = time.time() + 1.5
    while time.time() < end:
        main()
''', entry="main", hot_spot="helper")

THREADS = Program('''
import threading


def crunch():
    s = 0
    for i in range(300000):
        s += i * i % 11
    return s


def fan_out():
    threads = [threading.Thread(target=crunch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', entry="fan_out", hot_spot="crunch")

LOCK = Program('''
import threading

LOCK = threading.Lock()
BALANCE = [0]


def apply_entry(amount):
    s = 0
    for i in range(20000):
        s += i % 3
    BALANCE[0] += amount + s * 0


def post(amount):
    with LOCK:
        apply_entry(amount)


def worker(n):
    for _ in range(n):
        post(1)


def main(n=30):
    threads = [threading.Thread(target=worker, args=(n,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main(60)
''', entry="main", hot_spot="post")

POLL = Program('''
import select
import time


def tick():
    return sum(range(200))


def poll(rounds=100):
    for _ in range(rounds):
        time.sleep(0.01)
        select.select([], [], [], 0.005)
        tick()


if __name__ == "__main__":
    poll(100)
''', entry="poll", hot_spot="poll")

PROGRAMS = {"cpu": CPU, "threads": THREADS, "lock": LOCK, "poll": POLL}
