"""Instructions against wall time: run-to-run variation, and the smallest slowdown each detects.

The workload is ``benchmarks/_workload.py``'s ``work()`` (about 3 ms of pure-Python integer
arithmetic and dict updates), its amount of work scaled by the injected slowdown (0.5%, 1%, 2%,
5% more loop iterations; wall time also 10% and 20%). perfloop measures it as a callable benchmark, with the library's own
measure function, in two ways:

- ``wall_time``: perfloop's default settings (10 worker processes x 5 values, 1 warmup);
- ``instructions``: valgrind's counts, ``--instr-processes`` counting workers (default 3, the
  fewest values a verdict accepts) plus the baseline worker, ``PYTHONHASHSEED=0`` (perfloop's
  default), and for comparison a few measurements with ``PYTHONHASHSEED=random``.

Measurements are interleaved round by round (base, then each slowdown) so that drift of the
shared machine hits all alike: ``--repeats`` rounds (default 10) of the base runs and of wall
time at each slowdown; instructions at each slowdown, and with a random hash seed, in the first
``--head-repeats`` and ``--random-seed-repeats`` rounds (default 2: each costs about a minute,
and the counts do not vary). Figures:

- run-to-run variation: the coefficient of variation (stdev / mean) of the runs' locations (the
  mean of each run's worker medians) over the base repeats, and the median within-run CV;
- detection: every base run against every other base run (A/A pairs) and against every head
  run of each slowdown, with perfloop's verdict engine (``analysis.compare.compare_groups``,
  confidence 0.99). For each metric the tolerance is the smallest of a grid at which no A/A pair
  is called ``regressed`` (a false-alarm rate of at most 1% needs that with up to 100 pairs);
  a slowdown is *detected reliably* when at least 90% of its pairs are called ``regressed``.

Raw measurements go to ``--out`` (JSON); ``--analyse FILE`` recomputes the figures from it.

    python benchmarks/instructions.py [--repeats 10] [--head-repeats 2] [--out FILE] [--json]
    python benchmarks/instructions.py --analyse FILE
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _workload import ENV_VAR, MODULE                     # noqa: E402
from perfloop.config import DEFAULT_TOLERANCE, parse_config   # noqa: E402
from perfloop.measure.callable import measure_callable     # noqa: E402

SLOWDOWNS = {"instructions": (0.005, 0.01, 0.02, 0.05),
             # wall time also gets larger ones, to find where it starts to see them at all
             "wall_time": (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)}
ALL_SLOWDOWNS = sorted({s for levels in SLOWDOWNS.values() for s in levels})
TOLERANCES = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
RELIABLE = 0.9


def _spec(project: Path, metric: str, slowdown: float, *, processes: int, values: int,
          seed: str | None = None):
    env = {ENV_VAR: repr(slowdown)}
    if seed is not None:
        env["PYTHONHASHSEED"] = seed
    data = {"defaults": {"processes": processes, "values": values, "warmup": 1, "timeout": 3600},
            "benchmark": [{"name": "work", "callable": f"{MODULE}:work", "metrics": [metric],
                           "env": env}]}
    [spec] = parse_config(data, root=project).benchmarks
    return spec


def measure(project: Path, metric: str, slowdown: float, **settings: Any) -> dict[str, Any]:
    started = time.perf_counter()
    result = measure_callable(_spec(project, metric, slowdown, **settings))
    if result.status.value != "ok":
        raise RuntimeError(f"{metric} at {slowdown}: {result.error}\n{result.stderr_tail}")
    return {"metric": metric, "slowdown": slowdown, "seed": settings.get("seed"),
            "by_worker": {str(w): v for w, v in result.by_worker(metric).items()},
            "seconds": time.perf_counter() - started}


def collect(args: argparse.Namespace) -> dict[str, Any]:
    project = Path(tempfile.mkdtemp(prefix="perfloop-instr-"))
    shutil.copy(Path(__file__).resolve().parent / "_workload.py", project / f"{MODULE}.py")
    wall = {"processes": 10, "values": 5}
    instr = {"processes": args.instr_processes, "values": 1}
    runs: list[dict[str, Any]] = []
    try:
        for round_ in range(args.repeats):
            plan = [("wall_time", 0.0, wall), ("instructions", 0.0, instr)]
            if round_ < args.head_repeats:
                plan += [("instructions", s, instr) for s in SLOWDOWNS["instructions"]]
            plan += [("wall_time", s, wall) for s in SLOWDOWNS["wall_time"]]
            if round_ < args.random_seed_repeats:
                plan.append(("instructions", 0.0, {**instr, "seed": "random"}))
            for metric, slowdown, settings in plan:
                run = measure(project, metric, slowdown, **settings)
                run["round"] = round_
                runs.append(run)
                if args.out:    # as it goes: a long measurement interrupted keeps what it has
                    args.out.write_text(json.dumps(_data(runs)))
                print(f"round {round_ + 1}/{args.repeats}: {metric} +{slowdown:.1%}"
                      f"{' (random seed)' if settings.get('seed') else ''}: {run['seconds']:.0f} s",
                      file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(project, ignore_errors=True)
    return _data(runs)


def _data(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "argv": sys.argv[1:],
            "python": sys.version.split()[0], "runs": runs}


# -- analysis --------------------------------------------------------------------------------

def _location(run: dict[str, Any]) -> float:
    return statistics.fmean(statistics.median(v) for v in run["by_worker"].values())


def _cv(values: list[float]) -> float | None:
    return statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 else None


def _groups(run: dict[str, Any]) -> dict[int, list[float]]:
    return {int(w): list(v) for w, v in run["by_worker"].items()}


def _regressed(base: dict[str, Any], head: dict[str, Any], metric: str, tolerance: float) -> bool:
    from perfloop.analysis.compare import compare_groups
    from perfloop.metrics import get_metric
    verdict = compare_groups(_groups(base), _groups(head), metric=get_metric(metric),
                             tolerance=tolerance, confidence=0.99)
    return getattr(verdict.verdict, "value", verdict.verdict) == "regressed"


def analyse(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"date": data["date"], "metrics": {}}
    for metric in ("wall_time", "instructions"):
        base = [r for r in data["runs"] if r["metric"] == metric and r["slowdown"] == 0 and not r.get("seed")]
        heads = {s: [r for r in data["runs"] if r["metric"] == metric and r["slowdown"] == s]
                 for s in SLOWDOWNS[metric]}
        locations = [_location(r) for r in base]
        within = [c for c in (_cv([v for vals in r["by_worker"].values() for v in vals]) for r in base)
                  if c is not None]
        figures: dict[str, Any] = {
            "base_runs": len(base), "mean": statistics.fmean(locations),
            "run_to_run_cv": _cv(locations), "within_run_cv": statistics.median(within) if within else None,
            "range": (min(locations) / statistics.fmean(locations) - 1,
                      max(locations) / statistics.fmean(locations) - 1),
            "seconds_per_run": statistics.median(r["seconds"] for r in base),
            "head_runs": {f"{s:.3f}": len(h) for s, h in heads.items()},
            "observed_change": {f"{s:.3f}": statistics.fmean(_location(r) for r in h) /
                                statistics.fmean(locations) - 1 for s, h in heads.items() if h},
        }
        try:
            aa = list(itertools.combinations(base, 2))
            chosen = None
            for tol in TOLERANCES:
                false = sum(_regressed(a, b, metric, tol) or _regressed(b, a, metric, tol) for a, b in aa)
                if false == 0:
                    chosen = tol
                    break
            figures["aa_pairs"] = len(aa) * 2
            figures["tolerance"] = chosen
            rates = {}
            if chosen is not None:
                for s, h in heads.items():
                    pairs = [(b, x) for b in base for x in h]
                    if pairs:
                        rates[f"{s:.3f}"] = sum(_regressed(b, x, metric, chosen) for b, x in pairs) / len(pairs)
            figures["detection_rate"] = rates
            reliable = [float(s) for s, rate in rates.items() if rate >= RELIABLE]
            figures["smallest_detected"] = min(reliable) if reliable else None
            # and at the gate's default tolerance, whatever its false alarms
            figures["at_default_tolerance"] = {
                "tolerance": DEFAULT_TOLERANCE,
                "aa_false_alarm_rate": sum(_regressed(a, b, metric, DEFAULT_TOLERANCE) +
                                           _regressed(b, a, metric, DEFAULT_TOLERANCE)
                                           for a, b in aa) / (2 * len(aa)),
                "detection_rate": {f"{s:.3f}": sum(_regressed(b, x, metric, DEFAULT_TOLERANCE)
                                                   for b in base for x in h) / (len(base) * len(h))
                                   for s, h in heads.items() if h}}
        except ImportError as exc:
            figures["detection_error"] = f"verdict engine unavailable: {exc}"
        out["metrics"][metric] = figures
    seeded = [r for r in data["runs"] if r.get("seed") == "random"]
    if seeded:
        locations = [_location(r) for r in seeded]
        within = [c for c in (_cv([v for vals in r["by_worker"].values() for v in vals]) for r in seeded)
                  if c is not None]
        out["instructions_random_seed"] = {"runs": len(seeded), "run_to_run_cv": _cv(locations),
                                           "within_run_cv": statistics.median(within) if within else None}
    return out


def render(figures: dict[str, Any]) -> str:
    lines = [f"date {figures['date']}", "",
             "| metric | base runs | run-to-run CV | within-run CV | range around mean | s per run | "
             "tolerance with no A/A alarm | smallest slowdown detected (>= 90% of pairs) |",
             "|---|---:|---:|---:|---|---:|---:|---:|"]
    for metric, f in figures["metrics"].items():
        lo, hi = f["range"]
        tol = f.get("tolerance")
        small = f.get("smallest_detected")
        lines.append(f"| {metric} | {f['base_runs']} | {f['run_to_run_cv']:.5%} | "
                     f"{(f['within_run_cv'] or 0):.5%} | {lo:+.3%} .. {hi:+.3%} | {f['seconds_per_run']:.0f} | "
                     f"{f'none up to {TOLERANCES[-1]:.0%}' if tol is None else f'{tol:.2%}'} | "
                     f"{'none' if small is None else f'{small:.1%}'} |")
    lines += ["", "| metric | " + " | ".join(f"+{s:.1%}" for s in ALL_SLOWDOWNS) + " |",
              "|---|" + "---:|" * len(ALL_SLOWDOWNS)]
    for metric, f in figures["metrics"].items():
        rates = f.get("detection_rate", {})
        cells = []
        for s in ALL_SLOWDOWNS:
            key = f"{s:.3f}"
            seen = f["observed_change"].get(key)
            rate = rates.get(key)
            cells.append(("-" if rate is None else f"{rate:.0%}") +
                         ("" if seen is None else f" (seen {seen:+.2%}, {f['head_runs'][key]} runs)"))
        lines.append(f"| {metric} detected | " + " | ".join(cells) + " |")
    for metric, f in figures["metrics"].items():
        d = f.get("at_default_tolerance")
        if d:
            rates = ", ".join(f"+{float(s):.1%}: {r:.0%}" for s, r in d["detection_rate"].items())
            lines.append(f"\nat the default tolerance {d['tolerance']:.0%}, {metric}: A/A pairs called "
                         f"regressed {d['aa_false_alarm_rate']:.0%}; slowdowns called regressed {rates}")
    if "instructions_random_seed" in figures:
        r = figures["instructions_random_seed"]
        lines += ["", f"instructions with PYTHONHASHSEED=random: {r['runs']} runs, run-to-run CV "
                      f"{(r['run_to_run_cv'] or 0):.4%}, within-run CV {(r['within_run_cv'] or 0):.4%}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="base runs of each metric")
    parser.add_argument("--head-repeats", type=int, default=2,
                        help="instruction runs per slowdown (wall time gets --repeats)")
    parser.add_argument("--instr-processes", type=int, default=3,
                        help="counting workers per run (3 is the fewest a verdict accepts)")
    parser.add_argument("--random-seed-repeats", type=int, default=2,
                        help="instruction runs with PYTHONHASHSEED=random")
    parser.add_argument("--out", type=Path, help="write the raw measurements here (JSON)")
    parser.add_argument("--analyse", type=Path, help="only recompute the figures from this file")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.analyse:
        data = json.loads(args.analyse.read_text())
    else:
        data = collect(args)
    figures = analyse(data)
    print(json.dumps(figures, indent=2) if args.json else render(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
