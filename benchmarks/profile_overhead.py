"""How much each profiler slows the profiled code down.

For two workloads (a loop-heavy one with few Python calls, and a call-heavy one, the worst case
for a tracing profiler), the profiling worker calls the function for ``--duration`` seconds
unprofiled and under pyinstrument, cProfile and py-spy, and the time per call is compared with
the unprofiled one. Orders are balanced (none, pyinstrument, cprofile, py-spy, then reversed)
so that drift on a shared machine hits every profiler alike; ratios are medians over rounds.

Wall time per call is what a user waits for; CPU time per call excludes the time py-spy keeps
the process paused while it reads a sample (py-spy's own CPU is in another process).

    python benchmarks/profile_overhead.py [--rounds 3] [--duration 1.0] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from perfloop.config import BenchmarkSpec, Settings          # noqa: E402
from perfloop.measure import profilers                       # noqa: E402

WORKLOADS = {
    "loop-heavy": "loop_heavy",
    "call-heavy": "call_heavy",
}

SOURCE = textwrap.dedent('''
    """Workloads for benchmarks/profile_overhead.py."""

    def loop_heavy():
        total = 0
        for i in range(200_000):
            total += (i * i) % 7
        return total

    def _fib(n):
        return n if n < 2 else _fib(n - 1) + _fib(n - 2)

    def call_heavy():
        return _fib(20)
''')


def _spec(project: Path, function: str) -> BenchmarkSpec:
    return BenchmarkSpec(name=function, base_name=function, kind="callable", settings=Settings(),
                         metrics=("wall_time",), callable=f"ovhmod:{function}", root=str(project))


def _per_call(spec: BenchmarkSpec, profiler: str, duration: float) -> tuple[float, float]:
    """(wall, cpu) seconds per call of the profiled loop."""
    if profiler == "none":
        request = {"version": 1, "mode": "callable", "callable": spec.callable, "params": {},
                   "paths": [spec.root], "duration": duration, "profiler": "none",
                   "memory_check": False}
        res, _trace, _doc, _err = profilers._run_worker(request, cwd=spec.root, env=None,
                                                        timeout=duration * 10 + 60, what=spec.name)
        return res["wall"] / res["calls"], res["cpu"] / res["calls"]
    result = profilers.profile_callable(spec, duration=duration, profiler=profiler, memory_check=False)
    if result.profiler != profiler:
        raise RuntimeError(f"{profiler} was not used: {'; '.join(result.notes)}")
    assert result.runtime is not None and result.calls
    return result.runtime.wall / result.calls, result.runtime.cpu / result.calls


def run(rounds: int, duration: float) -> dict[str, Any]:
    chosen = ["none", "pyinstrument", "cprofile"]
    if profilers.check_py_spy().ok:
        chosen.append("py-spy")
    out: dict[str, Any] = {"rounds": rounds, "duration": duration, "profilers": chosen[1:], "workloads": {}}
    with tempfile.TemporaryDirectory(prefix="perfloop-overhead-") as tmp:
        project = Path(tmp)
        (project / "ovhmod.py").write_text(SOURCE)
        for label, function in WORKLOADS.items():
            spec = _spec(project, function)
            times: dict[str, list[tuple[float, float]]] = {p: [] for p in chosen}
            for _ in range(rounds):
                for profiler in chosen + chosen[::-1]:
                    times[profiler].append(_per_call(spec, profiler, duration))
            base_wall = statistics.median(w for w, _ in times["none"])
            base_cpu = statistics.median(c for _, c in times["none"])
            rows = {}
            for profiler in chosen[1:]:
                walls = [w / base_wall for w, _ in times[profiler]]
                cpus = [c / base_cpu for _, c in times[profiler]]
                rows[profiler] = {"wall_ratio": statistics.median(walls), "wall_min": min(walls),
                                  "wall_max": max(walls), "cpu_ratio": statistics.median(cpus)}
            out["workloads"][label] = {"base_wall_per_call": base_wall, "base_cpu_per_call": base_cpu,
                                       "profilers": rows}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="balanced rounds (default 3)")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per profile (default 1)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    result = run(args.rounds, args.duration)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"profiler slowdown, median of {2 * args.rounds} runs of {args.duration:g} s "
          f"(balanced order); ratio to the unprofiled loop")
    for label, data in result["workloads"].items():
        print(f"\n{label}: {data['base_wall_per_call'] * 1e3:.2f} ms per call unprofiled")
        print(f"  {'profiler':<14}{'wall x':>8}{'range':>16}{'cpu x':>8}")
        for profiler, row in data["profilers"].items():
            spread = f"{row['wall_min']:.2f}-{row['wall_max']:.2f}"
            print(f"  {profiler:<14}{row['wall_ratio']:>8.2f}{spread:>16}{row['cpu_ratio']:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
