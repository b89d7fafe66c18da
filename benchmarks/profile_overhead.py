"""How much each profiler slows the example shop's benchmarks down, and whether it finds the hot spot.

For each callable benchmark of ``examples/shop`` (``checkout[items=5]``, ``checkout[items=20]``,
``serialize-order[items=20]``), perfloop's profiling worker calls the function for
``--duration`` seconds unprofiled and under pyinstrument, cProfile and py-spy, exactly as
``profile_callable`` does (same worker, same loop, same setup; the unprofiled run only asks the
worker for no profiler). Within a round every benchmark runs in the balanced order none,
pyinstrument, cprofile, py-spy, py-spy, cprofile, pyinstrument, none, so that drift on a shared
machine hits every profiler alike. Each profiled run's time per call is divided by the mean of
the same round's two unprofiled runs; the table gives the median of these ratios and their
range.

Wall time per call is what a user waits for. On a loaded machine part of it is waiting for a
CPU, which hits whichever run was unlucky; "wall - queue" takes out the run-queue wait the
worker measures (Linux schedstat) and keeps everything else, py-spy's pauses included. CPU
time per call excludes the time py-spy keeps the process paused while it reads a sample
(py-spy's own CPU is in another process).

Each profile is also read the way ``perfloop profile`` reads it: the first row of its hot-spot
table (``workflows.profiling.hot_spot_table``: user functions by total share, pass-through
wrappers left out) and ``check_hypothesis`` against the hot spot the example's README names,
``shop.pricing:apply_discounts``. ``serialize-order`` encodes an order priced in its setup, so
it has no named hot spot: what each profiler ranks first below ``serialize_order`` itself is
shown instead (its own row holds 100% and says nothing).

    python benchmarks/profile_overhead.py [--rounds 3] [--duration 1.0] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from perfloop.analysis.profiles import check_hypothesis                 # noqa: E402
from perfloop.config import BenchmarkSpec, load_config                  # noqa: E402
from perfloop.analysis import profilers                                  # noqa: E402
from perfloop.workflows.profiling import hot_spot_table                 # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shop"
HOT_SPOT = {"checkout": "shop.pricing:apply_discounts"}   # by base name; from the example's README


def _per_call(res: dict[str, Any]) -> tuple[float, float, float]:
    """(wall, wall minus run-queue wait, cpu) seconds per call of the worker's profiled loop."""
    calls = res["calls"]
    queue = res.get("runqueue") or 0.0
    return res["wall"] / calls, (res["wall"] - queue) / calls, res["cpu"] / calls


def _unprofiled(spec: BenchmarkSpec, duration: float) -> tuple[float, float, float]:
    """Seconds per call (as :func:`_per_call`) of the worker's loop with no profiler: the request
    ``profile_callable`` sends when py-spy watches from outside, without py-spy."""
    request = {"version": 1, "mode": "callable", "callable": spec.callable, "setup": spec.setup,
               "teardown": spec.teardown, "params": dict(spec.params),
               "paths": profilers._resolve_paths(spec), "duration": duration, "profiler": "none",
               "memory_check": False}
    res, _trace, _doc, _err = profilers._run_worker(request, cwd=str(Path(spec.root).resolve()),
                                                    env=spec.env, timeout=duration * 4 + 60,
                                                    what=spec.name)
    return _per_call(res)


def _profiled(spec: BenchmarkSpec, profiler: str, duration: float) -> dict[str, Any]:
    """Time per call under ``profiler``, and how perfloop reads the profile."""
    result = profilers.profile_callable(spec, duration=duration, profiler=profiler, memory_check=False)
    if result.profiler != profiler:
        raise RuntimeError(f"{profiler} was not used: {'; '.join(result.notes)}")
    assert result.runtime is not None and result.calls
    runtime = result.runtime
    expect = HOT_SPOT.get(spec.base_name)
    modules = [expect.partition(":")[0]] if expect else []
    table = hot_spot_table(result.profile, user_modules=modules)
    if not expect:   # the benchmarked function itself holds 100%: show what comes below it
        table = [s for s in table if s.function != spec.callable]
    first = table[0].function if table else None
    wall, busy, cpu = _per_call({"calls": runtime.calls, "wall": runtime.wall, "cpu": runtime.cpu,
                                 "runqueue": runtime.runqueue})
    run: dict[str, Any] = {"wall": wall, "busy": busy, "cpu": cpu, "first": first, "first_share": table[0].total_share if table else None}
    if expect:
        check = check_hypothesis(result.profile, [expect])
        rank = next((s.rank for s in table if s.function in check.matched), None)
        run.update(hot_spot_first=rank == 1, rank=rank, share=check.share, verdict=check.verdict)
    return run


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios of each run to its round's unprofiled mean; hot-spot ranks over all runs."""
    walls = [r["wall"] / r["base"][0] for r in runs]
    busy = [r["busy"] / r["base"][1] for r in runs]
    cpus = [r["cpu"] / r["base"][2] for r in runs]
    firsts = Counter(r["first"] for r in runs)
    row: dict[str, Any] = {"wall_ratio": statistics.median(walls), "wall_min": min(walls),
                           "wall_max": max(walls), "busy_ratio": statistics.median(busy), "cpu_ratio": statistics.median(cpus),
                           "runs": len(runs), "first": firsts.most_common(),
                           "first_share": statistics.median(r["first_share"] or 0.0 for r in runs)}
    if "hot_spot_first" in runs[0]:
        row["hot_spot_first"] = sum(r["hot_spot_first"] for r in runs)
        row["share"] = statistics.median(r["share"] for r in runs)
        row["ranks"] = Counter(r["rank"] for r in runs).most_common()
        row["verdicts"] = Counter(r["verdict"] for r in runs).most_common()
    return row


def run(rounds: int, duration: float) -> dict[str, Any]:
    chosen = ["pyinstrument", "cprofile"]
    if profilers.check_py_spy().ok:
        chosen.append("py-spy")
    order = ["none", *chosen, *chosen[::-1], "none"]
    specs = [s for s in load_config(EXAMPLE).select([]) if s.kind == "callable"]
    base: dict[str, list[float]] = {s.name: [] for s in specs}      # unprofiled wall per call, per round
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s.name: {p: [] for p in chosen} for s in specs}
    loads = [os.getloadavg()[0]]
    for _ in range(rounds):
        for spec in specs:
            unprofiled: list[tuple[float, float, float]] = []
            profiled: list[tuple[str, dict[str, Any]]] = []
            for profiler in order:
                if profiler == "none":
                    unprofiled.append(_unprofiled(spec, duration))
                else:
                    profiled.append((profiler, _profiled(spec, profiler, duration)))
                loads.append(os.getloadavg()[0])
            mean = tuple(statistics.fmean(column) for column in zip(*unprofiled))
            base[spec.name].append(mean[0])
            for profiler, done in profiled:
                runs[spec.name][profiler].append({**done, "base": mean})
    out: dict[str, Any] = {"rounds": rounds, "duration": duration, "profilers": chosen,
                           "python": sys.version.split()[0], "cpus": os.cpu_count(),
                           "load_1min": {"min": min(loads), "median": statistics.median(loads),
                                         "max": max(loads)},
                           "benchmarks": {}}
    for spec in specs:
        out["benchmarks"][spec.name] = {
            "hot_spot": HOT_SPOT.get(spec.base_name),
            "unprofiled_wall_per_call": statistics.median(base[spec.name]),
            "profilers": {p: _summary(runs[spec.name][p]) for p in chosen}}
    return out


def _first_cell(row: dict[str, Any]) -> str:
    if "hot_spot_first" in row:
        return f"{row['hot_spot_first']}/{row['runs']} ({row['share']:.0%} of the time)"
    name, count = row["first"][0]
    return f"{name} {count}/{row['runs']} ({row['first_share']:.0%})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="balanced rounds (default 3)")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per profile (default 1)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be at least 1 and --duration positive")
    result = run(args.rounds, args.duration)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    load = result["load_1min"]
    print(f"profiler slowdown on examples/shop: {args.rounds} balanced rounds of {args.duration:g} s runs; "
          f"ratio to the same round's unprofiled runs, median (range) of {2 * args.rounds}")
    print(f"Python {result['python']}, {result['cpus']} CPUs, 1-min load average "
          f"{load['min']:.1f}-{load['max']:.1f} (median {load['median']:.1f})")
    for name, data in result["benchmarks"].items():
        what = (f"{data['hot_spot']} ranked first" if data["hot_spot"]
                else "first in the hot-spot table below the benchmarked function")
        print(f"\n{name}: {data['unprofiled_wall_per_call'] * 1e3:.2f} ms per call unprofiled")
        print(f"  {'profiler':<14}{'wall x':>8}{'range':>12}{'wall-queue x':>14}{'cpu x':>7}  {what}")
        for profiler, row in data["profilers"].items():
            spread = f"{row['wall_min']:.2f}-{row['wall_max']:.2f}"
            print(f"  {profiler:<14}{row['wall_ratio']:>8.2f}{spread:>12}{row['busy_ratio']:>14.2f}"
                  f"{row['cpu_ratio']:>7.2f}  {_first_cell(row)}")
            others = [f"{name} {n}x" for name, n in row["first"] if name != data["hot_spot"]]
            if "hot_spot_first" in row and others:
                ranks = ", ".join(f"rank {rank} {n}x" for rank, n in row["ranks"])
                print(f"  {'':<55}{ranks}; first instead: {', '.join(others)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
