"""Start-up cost of the ``perfloop`` command, side by side with ``python -c pass`` as the floor.

Each round runs every command once, in a shuffled order, as a fresh process; the CPU time
(user + system of that child, from ``wait4``'s resource usage: what ``RUSAGE_CHILDREN`` adds up)
and the wall time of each are recorded, and the medians over the rounds are printed next to the
targets: 0.15 s of CPU for ``perfloop --help`` and a command's ``--help``, 0.4 s for ``perfloop
runs`` on a store of 500 runs (a temporary SQLite file made for the purpose).

The children may write bytecode caches (``PYTHONDONTWRITEBYTECODE`` is dropped from their
environment) and one untimed round runs first, so that what is timed is an installed perfloop,
not the compiler.

    python benchmarks/startup.py --rounds 15 [--json results.json]
    python benchmarks/startup.py --rounds 15 --baseline-src /path/to/older/checkout/src
    python benchmarks/startup.py --rounds 11 --every-command     # every command's --help

``--baseline-src`` adds every perfloop command run again with an older perfloop first on
``PYTHONPATH``, interleaved in the same rounds, so that before and after are measured side by
side under the same load.

``--instructions`` also counts the instructions each command executes, once, under valgrind's
cachegrind with a fixed hash seed (:mod:`perfloop.measure.instructions`): a figure the load of a
shared machine does not move, to read next to the CPU times that it does.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perfloop.measure.environment import fingerprint
from perfloop.measure.instructions import cachegrind_argv, counting_env, find_valgrind, read_count
from perfloop.records import BenchmarkResult, ResultStatus, RunStatus, Sample
from perfloop.store import Store

PERFLOOP = [sys.executable, "-m", "perfloop"]
RUNS = "perfloop runs (500-run store)"
# The top-level help, and a command's help for a command of each kind: one with many options,
# one that reads the store, a sub-command of a group, and a group.
HELP_COMMANDS = {
    "perfloop --help": ["--help"],
    "perfloop run --help": ["run", "--help"],
    "perfloop gate --help": ["gate", "--help"],
    "perfloop runs --help": ["runs", "--help"],
    "perfloop incident open --help": ["incident", "open", "--help"],
    "perfloop journal --help": ["journal", "--help"],
}



def every_command_help() -> dict[str, list[str]]:
    """HELP_COMMANDS and the ``--help`` of every other command ``perfloop --help`` lists."""
    from perfloop.cli.app import COMMANDS
    out = dict(HELP_COMMANDS)
    for entry in COMMANDS:
        out.setdefault(f"perfloop {entry.name} --help", [entry.name, "--help"])
    return out


TARGETS = {"--help": 0.15, RUNS: 0.4}   # seconds of CPU
# The second floor: the help of a one-command Typer app rendered as perfloop's is (Rich,
# Markdown), i.e. what Typer and Rich cost before perfloop adds anything.
TYPER_FLOOR = (
    "import typer\n"
    "app = typer.Typer(rich_markup_mode='markdown', add_completion=False)\n"
    "@app.command()\n"
    "def hello(name: str = 'world') -> None:\n"
    "    'Say hello. Example: `hello --name you`'\n"
    "app()\n")


def target_of(name: str) -> float | None:
    """The CPU-time target a command's median is held to (None for the floor and baselines)."""
    if name.endswith("[baseline]") or not name.startswith("perfloop "):
        return None
    return TARGETS[RUNS] if name == RUNS else TARGETS["--help"]


def make_store(path: Path, runs: int = 500) -> str:
    """A store of ``runs`` complete runs of two benchmarks each."""
    url = f"sqlite:///{path}"
    env = fingerprint()
    with Store.open(url) as store:
        for i in range(runs):
            run = store.begin_run(label=f"nightly-{i}", commit=f"{i:040x}", branch="main", dirty=False,
                                  environment=env, settings={}, project=str(path.parent))
            for name in ("parse", "render"):
                store.add_result(run, BenchmarkResult(
                    name=name, kind="callable", status=ResultStatus.OK,
                    samples=tuple(Sample("wall_time", 0.01 + j * 1e-5, worker=j) for j in range(10))))
            store.finish_run(run, RunStatus.COMPLETE)
    return url


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run of ``argv``."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, wall


def instructions(argv: list[str], env: dict[str, str]) -> int:
    """Instructions ``argv`` executes, counted by cachegrind with a fixed hash seed."""
    valgrind = find_valgrind()
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind: apt-get install valgrind")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cachegrind.out"
        subprocess.run([*cachegrind_argv(valgrind, str(out), children=False), *argv], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=counting_env(env, {}))
        return read_count(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--baseline-src", type=Path, help="an older perfloop's src directory")
    parser.add_argument("--every-command", action="store_true",
                        help="time the --help of every command, not one of each kind")
    parser.add_argument("--instructions", action="store_true",
                        help="also count each command's instructions once under valgrind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = make_store(Path(tmp) / "perfloop.db")
        env = {**os.environ, "PERFLOOP_STORE": url, "COLUMNS": "120"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        commands = {"python -c pass": [sys.executable, "-c", "pass"],
                    "typer, one command: --help": [sys.executable, "-c", TYPER_FLOOR, "--help"]}
        for name, argv in (every_command_help() if args.every_command else HELP_COMMANDS).items():
            commands[name] = [*PERFLOOP, *argv]
        commands[RUNS] = [*PERFLOOP, "runs", "-C", tmp]
        envs = {name: env for name in commands}
        if args.baseline_src:
            old = {**env, "PYTHONPATH": str(args.baseline_src.resolve())}
            for name in [n for n in commands if n.startswith("perfloop")]:
                commands[f"{name} [baseline]"] = commands[name]
                envs[f"{name} [baseline]"] = old
        cpu: dict[str, list[float]] = {k: [] for k in commands}
        wall: dict[str, list[float]] = {k: [] for k in commands}
        order = list(commands)
        for name in order:   # untimed: writes the bytecode caches an installation would have
            timed(commands[name], envs[name])
        for _ in range(args.rounds):
            random.shuffle(order)
            for name in order:
                c, w = timed(commands[name], envs[name])
                cpu[name].append(c)
                wall[name].append(w)
        counts = {name: instructions(commands[name], envs[name]) for name in commands} \
            if args.instructions else {}
    load = os.getloadavg()
    floor = statistics.median(cpu["python -c pass"])
    rows = {name: {"cpu_median": statistics.median(cpu[name]), "wall_median": statistics.median(wall[name]),
                   "cpu_above_floor": statistics.median(cpu[name]) - floor} for name in commands}
    print(f"{args.rounds} rounds, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
          f"({os.cpu_count()} cores)")
    print(f"{'command':43} {'CPU median':>11} {'wall median':>12} {'CPU above floor':>16} "
          f"{'target':>7}")
    for name, row in rows.items():
        target = target_of(name)
        verdict = "" if target is None else f"{target:.2f}s " + ("met" if row["cpu_median"] <= target
                                                               else "MISSED")
        row["target"] = target
        print(f"{name:43} {row['cpu_median']:10.3f}s {row['wall_median']:11.3f}s "
              f"{row['cpu_above_floor']:15.3f}s {verdict}")
    if counts:
        print(f"\n{'command':43} {'instructions':>14} {'x python -c pass':>17}")
        for name, count in counts.items():
            rows[name]["instructions"] = count
            print(f"{name:43} {count:14,} {count / counts['python -c pass']:16.1f}x")
    if args.json:
        args.json.write_text(json.dumps({"rounds": args.rounds, "load": load, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
