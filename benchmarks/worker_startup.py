"""Cost of starting callable workers, this perfloop side by side with an older one.

Each round runs, in a shuffled order, one fresh process per perfloop source tree that measures
a callable which does nothing (``settings.processes`` workers, 1 value each, no warmup), so
that nearly all of its time is the start-up, supervision and reaping of worker processes. Per
tree it records the whole process's wall time and CPU time (user + system of the process and
of the workers it reaped, from ``wait4``), and the in-process time of ``measure_callable``
divided by the number of workers. Printed: the median of each over the rounds, and the median
of the per-round ratios (this tree / the baseline), taken round by round so that both trees
ran under the same load.

    python benchmarks/worker_startup.py --baseline-src /path/to/older/checkout/src --rounds 15

Without ``--baseline-src`` only this tree is measured.
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

THIS_SRC = Path(__file__).resolve().parent.parent / "src"

# Run in each child with its tree first on PYTHONPATH; prints what it measured as JSON.
CHILD = """
import json, sys, time
import perfloop
from perfloop.config import BenchmarkSpec, Settings
from perfloop.measure.callable import measure_callable
root, processes = sys.argv[1], int(sys.argv[2])
settings = Settings(processes=processes, values=1, warmup=0, min_time=0.0001, timeout=120)
spec = BenchmarkSpec(name="noop", base_name="noop", kind="callable", settings=settings,
                     metrics=("wall_time",), callable="noopmod:noop", root=root)
started = time.perf_counter()
result = measure_callable(spec)
elapsed = time.perf_counter() - started
assert result.status.value == "ok", result.error
print(json.dumps({"per_worker": elapsed / processes, "file": perfloop.__file__}))
"""


def run_once(src: Path, root: str, processes: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, root, str(processes)], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the child with {src} failed")
    found = json.loads(out)
    if not found["file"].startswith(str(src)):
        raise SystemExit(f"the child imported {found['file']}, not the tree {src}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "per_worker": found["per_worker"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", type=Path, help="an older perfloop's src directory")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--processes", type=int, default=10, help="workers per measurement")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    trees = {"this": THIS_SRC}
    if args.baseline_src:
        trees["baseline"] = args.baseline_src.resolve()
    rng = random.Random(args.seed)
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="perfloop-worker-startup-") as root:
        Path(root, "noopmod.py").write_text("def noop():\n    pass\n")
        for name, src in trees.items():   # untimed: bytecode caches, page cache
            run_once(src, root, 1)
        for _ in range(args.rounds):
            order = list(trees)
            rng.shuffle(order)
            for name in order:
                figures[name].append(run_once(trees[name], root, args.processes))
    print(f"{args.rounds} rounds, {args.processes} workers per process; medians")
    print(f"{'tree':<10} {'wall s':>8} {'cpu s':>8} {'ms/worker':>10}")
    for name, rows in figures.items():
        print(f"{name:<10} {statistics.median(r['wall'] for r in rows):>8.3f} "
              f"{statistics.median(r['cpu'] for r in rows):>8.3f} "
              f"{statistics.median(r['per_worker'] for r in rows) * 1000:>10.1f}")
    if "baseline" in figures:
        pairs = list(zip(figures["this"], figures["baseline"]))
        print("ratio this/baseline, median of per-round ratios: " + ", ".join(
            f"{key} {statistics.median(a[key] / b[key] for a, b in pairs):.3f}"
            for key in ("wall", "cpu", "per_worker")))


if __name__ == "__main__":
    main()
