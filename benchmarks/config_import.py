"""What validating the configuration costs a command's start-up: perfloop's own schema
(``perfloop.config_schema``: frozen dataclasses and three small rule classes) against the
import of a validation library it could have used instead (pydantic; msgspec where installed).

Each round runs every child once, in a shuffled order, as a fresh interpreter; the CPU time
(user + system of the child, from ``wait4``) is recorded and the medians over the rounds are
printed. One untimed round runs first so that bytecode caches exist.

    python benchmarks/config_import.py --rounds 21
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

SHOP = Path(__file__).resolve().parents[1] / "examples" / "shop"

CHILDREN = {
    "python -c pass": "pass",
    "import perfloop.config": "import perfloop.config",
    "load_config(examples/shop)": f"from perfloop.config import load_config; load_config({str(SHOP)!r})",
    "import pydantic": "import pydantic",
    "import pydantic + a model": "import pydantic\nclass S(pydantic.BaseModel):\n    processes: int = 10\n"
                                 "S(processes=3)",
}
if importlib.util.find_spec("msgspec"):
    CHILDREN["import msgspec"] = "import msgspec"


def cpu_seconds(code: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child failed: {code}")
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for code in CHILDREN.values():
        cpu_seconds(code)
    times: dict[str, list[float]] = {name: [] for name in CHILDREN}
    for _ in range(args.rounds):
        names = list(CHILDREN)
        rng.shuffle(names)
        for name in names:
            times[name].append(cpu_seconds(CHILDREN[name]))
    floor = statistics.median(times["python -c pass"])
    print(f"{'child':<30} {'median CPU':>11} {'above python -c pass':>21}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<30} {median * 1000:>8.1f} ms {(median - floor) * 1000:>18.1f} ms")
    print(f"({args.rounds} rounds, medians; {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
