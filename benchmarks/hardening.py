"""Costs of perfloop's input and process hardening, measured side by side.

1. Loading a configuration whose ``params`` grid expands to N benchmarks: the duplicate-name
   check as it was (``names.count`` per name, quadratic) against the one in use (a Counter).
2. Spawning a child: ``subprocess.Popen`` with a new session (as before) against
   :func:`perfloop.measure.process.spawn` (the same, plus one line to the watchdog), timed to
   the child's exit for ``true``: the cost a command benchmark's wall time could see.

    python benchmarks/hardening.py [--grid 10000] [--spawns 200]

Prints medians; rounds alternate the two variants so drift hits both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from perfloop.config import load_config
from perfloop.measure.process import release, spawn


def old_dupes(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


def new_dupes(names: list[str]) -> list[str]:
    return sorted(n for n, count in Counter(names).items() if count > 1)


def grid(size: int, rounds: int) -> None:
    side = int(size ** 0.5)
    with tempfile.TemporaryDirectory() as tmp:
        axis = ", ".join(str(i) for i in range(side))
        Path(tmp, "perfloop.toml").write_text(
            f'[[benchmark]]\nname = "g"\ncallable = "m:f"\nparams = {{ a = [{axis}], b = [{axis}] }}\n')
        started = time.perf_counter()
        names = [b.name for b in load_config(tmp).benchmarks]
        load = time.perf_counter() - started
    times: dict[str, list[float]] = {"quadratic": [], "counter": []}
    for _ in range(rounds):
        for label, fn in (("quadratic", old_dupes), ("counter", new_dupes)):
            started = time.perf_counter()
            fn(names)
            times[label].append(time.perf_counter() - started)
    print(f"grid of {len(names)} benchmarks: load_config {load:.3f} s (with the counter check)")
    for label, values in times.items():
        print(f"  duplicate check, {label:9s}: median {statistics.median(values):.4f} s over {rounds}")


def spawns(n: int) -> None:
    times: dict[str, list[float]] = {"Popen": [], "spawn": []}
    spawn(["true"]).wait()          # start the watchdog outside the timed rounds
    for _ in range(n):
        started = time.perf_counter()
        proc = subprocess.Popen(["true"], start_new_session=True)
        proc.wait()
        times["Popen"].append(time.perf_counter() - started)
        started = time.perf_counter()
        proc = spawn(["true"])
        proc.wait()
        release(proc.pid)
        times["spawn"].append(time.perf_counter() - started)
    base, new = statistics.median(times["Popen"]), statistics.median(times["spawn"])
    print(f"spawn+exit of `true`, {n} alternating rounds: Popen {base * 1e3:.2f} ms, "
          f"spawn {new * 1e3:.2f} ms (ratio {new / base:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spawns", type=int, default=200)
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    grid(args.grid, args.rounds)
    spawns(args.spawns)


if __name__ == "__main__":
    main()
