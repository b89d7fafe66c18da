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
table (``workflows.profiling.hot_spot_table``: user functions by self share, where the time is
spent) and ``check_hypothesis`` against the function that holds the example's cost,
``shop.pricing:parse_condition``. ``serialize-order`` encodes an order priced in its setup, so
it has no named hot spot: what each profiler ranks first is shown instead.

Then four small programs with a known answer (``--part programs``), as callables in the same
worker, in the same balanced order: ``cpu`` (a helper under a loop holds about 90% of the
time: row 1 should be ``helper``), ``threads`` (the callable starts two threads that compute:
row 1 should be ``crunch``, which runs only in those threads), ``lock`` (four threads post
to a ledger under one lock: most of the time is threads waiting in ``post`` at ``with LOCK:``,
so row 1 should be ``post``, with its waiting named as a lock) and ``poll`` (a loop that sleeps
and waits in ``select``: row 1 should be ``poll``, its waiting named as sleep and I/O, not as a
lock). For each profiler: the slowdown, whether row 1 is the true hot spot, and the waiting
it names.

    python benchmarks/profile_overhead.py [--rounds 3] [--duration 1.0] [--part shop|programs|all] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from _known_programs import PROGRAMS                                    # noqa: E402
from perfloop.analysis.hypothesis import check_hypothesis               # noqa: E402
from perfloop.analysis.waiting import waiting                           # noqa: E402
from perfloop.config import BenchmarkSpec, load_config                  # noqa: E402
from perfloop.analysis import profilers                                  # noqa: E402
from perfloop.analysis.profilers import callables, worker                # noqa: E402
from perfloop.workflows.profiling import hot_spot_table                 # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shop"
HOT_SPOT = {"checkout": "shop.pricing:parse_condition"}   # by base name; from the example's README

# programs with a known answer, shared with tests/test_profile_causes.py
BENCHMARKED = ("cpu", "threads", "lock", "poll")


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
               "paths": callables.resolve_paths(spec), "duration": duration, "profiler": "none",
               "memory_check": False}
    res, _trace, _doc, _err = worker.run_worker(request, cwd=str(Path(spec.root).resolve()),
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


def _program_specs(directory: Path) -> list[tuple[str, BenchmarkSpec, str]]:
    from perfloop.config import Settings
    out = []
    for name in BENCHMARKED:
        program, module = PROGRAMS[name], f"known_{name}"
        program.write(directory, module)
        spec = BenchmarkSpec(name=name, base_name=name, kind="callable", settings=Settings(),
                             metrics=("wall_time",), callable=f"{module}:{program.entry}",
                             root=str(directory))
        out.append((name, spec, f"{module}:{program.hot_spot}"))
    return out


def _program_run(spec: BenchmarkSpec, profiler: str, duration: float, truth: str) -> dict[str, Any]:
    result = profilers.profile_callable(spec, duration=duration, profiler=profiler, memory_check=False)
    if result.profiler != profiler:
        raise RuntimeError(f"{profiler} was not used: {'; '.join(result.notes)}")
    assert result.runtime is not None and result.calls
    runtime = result.runtime
    table = hot_spot_table(result.profile)
    wait = waiting(result.profile)
    wall, busy, cpu = _per_call({"calls": runtime.calls, "wall": runtime.wall, "cpu": runtime.cpu,
                                 "runqueue": runtime.runqueue})
    return {"wall": wall, "busy": busy, "cpu": cpu, "first": table[0].function if table else None,
            "first_share": table[0].self_share if table else 0.0,
            "right": bool(table) and table[0].function == truth,
            "waiting": wait.share, "wait_kind": wait.main_kind if wait.share >= 0.1 else None,
            "verdict": check_hypothesis(result.profile, [truth]).verdict}


def run_programs(rounds: int, duration: float) -> dict[str, Any]:
    """The known-answer programs under each profiler, in balanced order (module docstring)."""
    chosen = ["pyinstrument", "cprofile"] + (["py-spy"] if profilers.check_py_spy().ok else [])
    order = ["none", *chosen, *chosen[::-1], "none"]
    loads = [os.getloadavg()[0]]
    out: dict[str, Any] = {"rounds": rounds, "duration": duration, "profilers": chosen, "programs": {}}
    with tempfile.TemporaryDirectory(prefix="perfloop-known-") as tmp:
        for name, spec, truth in _program_specs(Path(tmp)):
            runs: dict[str, list[dict[str, Any]]] = {p: [] for p in chosen}
            base: list[float] = []
            for _ in range(rounds):
                unprofiled, profiled = [], []
                for profiler in order:
                    if profiler == "none":
                        unprofiled.append(_unprofiled(spec, duration))
                    else:
                        profiled.append((profiler, _program_run(spec, profiler, duration, truth)))
                    loads.append(os.getloadavg()[0])
                mean = tuple(statistics.fmean(column) for column in zip(*unprofiled))
                base.append(mean[0])
                for profiler, done in profiled:
                    runs[profiler].append({**done, "base": mean})
            rows = {}
            for profiler, items in runs.items():
                walls = [r["wall"] / r["base"][0] for r in items]
                rows[profiler] = {
                    "wall_ratio": statistics.median(walls), "wall_min": min(walls), "wall_max": max(walls),
                    "cpu_ratio": statistics.median(r["cpu"] / r["base"][2] for r in items),
                    "runs": len(items), "right": sum(r["right"] for r in items),
                    "first": Counter(r["first"] for r in items).most_common(),
                    "waiting": statistics.median(r["waiting"] for r in items),
                    "wait_kind": Counter(r["wait_kind"] for r in items).most_common(1)[0][0],
                    "verdicts": Counter(r["verdict"] for r in items).most_common()}
            out["programs"][name] = {"truth": truth, "unprofiled_wall_per_call": statistics.median(base),
                                     "profilers": rows}
    out["load_1min"] = {"min": min(loads), "median": statistics.median(loads), "max": max(loads)}
    return out


def _print_programs(result: dict[str, Any]) -> None:
    load = result["load_1min"]
    print(f"\nknown-answer programs: {result['rounds']} balanced rounds of {result['duration']:g} s; "
          f"1-min load average {load['min']:.1f}-{load['max']:.1f} (median {load['median']:.1f})")
    for name, data in result["programs"].items():
        print(f"\n{name}: true row 1 {data['truth']}; "
              f"{data['unprofiled_wall_per_call'] * 1e3:.2f} ms per call unprofiled")
        print(f"  {'profiler':<14}{'wall x':>8}{'range':>12}{'cpu x':>7}  {'row 1 right':<12}"
              f"{'waiting':>8}  row 1 / verdict")
        for profiler, row in data["profilers"].items():
            spread = f"{row['wall_min']:.2f}-{row['wall_max']:.2f}"
            kind = f" {row['wait_kind']}" if row["wait_kind"] else ""
            firsts = ", ".join(f"{f} {n}x" for f, n in row["first"])
            verdicts = ", ".join(f"{v} {n}x" for v, n in row["verdicts"])
            print(f"  {profiler:<14}{row['wall_ratio']:>8.2f}{spread:>12}{row['cpu_ratio']:>7.2f}  "
                  f"{row['right']}/{row['runs']:<10}{row['waiting']:>7.0%}{kind}  {firsts}; {verdicts}")


def _first_cell(row: dict[str, Any]) -> str:
    if "hot_spot_first" in row:
        return f"{row['hot_spot_first']}/{row['runs']} ({row['share']:.0%} of the time)"
    name, count = row["first"][0]
    return f"{name} {count}/{row['runs']} ({row['first_share']:.0%})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="balanced rounds (default 3)")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per profile (default 1)")
    parser.add_argument("--part", choices=("shop", "programs", "all"), default="all",
                        help="the example shop, the known-answer programs, or both (default)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be at least 1 and --duration positive")
    programs = run_programs(args.rounds, args.duration) if args.part != "shop" else None
    if args.part == "programs":
        if args.json:
            print(json.dumps(programs, indent=2))
        else:
            _print_programs(programs)
        return 0
    result = run(args.rounds, args.duration)
    if args.json:
        print(json.dumps({**result, "known_programs": programs}, indent=2))
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
    if programs is not None:
        _print_programs(programs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
