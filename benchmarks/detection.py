"""Verdict quality and cost of ``perfloop compare`` against pyperf and pytest-benchmark.

A pure-Python, CPU-bound function (about 3 ms a call, :mod:`_workload`) is measured as base
(no slowdown) and head (an injected slowdown of 0%, 2%, 5% or 10% more work) by each tool,
in two separate runs followed by the tool's own comparison, the way its users do it:

- perfloop: ``perfloop run --label`` twice, ``perfloop compare --json`` (metric wall_time),
  the project's settings left at perfloop's defaults;
- pyperf: ``python bench.py -o X.json`` twice on ``pyperf.Runner`` defaults, then
  ``python -m pyperf compare_to``;
- pytest-benchmark: ``pytest --benchmark-save``, then ``pytest --benchmark-compare
  --benchmark-compare-fail=mean:5%``.

Pairs of every size are interleaved through the run, and the order of the tools rotates
from pair to pair, so that drift of the machine hits all sizes and all tools alike. A pair
with 0% slowdown (A/A) is a false alarm when the tool calls a significant difference either
way; a real slowdown is detected when the tool calls it slower. Wall seconds per verdict
cover both runs and the comparison.

``--tools perfloop-gate`` adds ``perfloop gate``: base and head measured interleaved
(A B B A) in one command, sampled adaptively up to its cost limit; the slowdown is then carried
by a committed file (base) and an uncommitted edit of it (head).

``--overhead`` measures instead what perfloop's harness adds per sample, against a bare
``timeit`` loop in this process, and the whole-process cost of a ``perfloop run`` per stored
value.

Usage::

    python benchmarks/detection.py                       # full run (40-70 minutes, by load)
    python benchmarks/detection.py --quick               # smoke test of the harness
    python benchmarks/detection.py --tools perfloop-gate --perfloop-args="--max-blocks 64" \\
        --pairs-aa 2 --pairs 2 --sizes 0.10 --json benchmarks/results/gate.json
    python benchmarks/detection.py --report benchmarks/results/detection.json
    python benchmarks/detection.py --overhead
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tools import BIN, Tool, make_tool  # noqa: E402
from _workload import MODULE, write_project  # noqa: E402

DEFAULT_TOOLS = ("perfloop", "pyperf", "pytest-benchmark")
CALLS = ("slower", "faster", "same", "inconclusive", "error")


# --------------------------------------------------------------------------- schedule

def schedule(pairs_aa: int, pairs: int, sizes: Sequence[float], seed: int) -> list[float]:
    """Slowdowns in run order, each kind spread evenly over the run (ties broken at random).

    A run cut short therefore still holds a balanced share of every size.
    """
    rng = random.Random(seed)
    kinds = [(0.0, pairs_aa)] + [(s, pairs) for s in sizes]
    items = []
    for size, n in kinds:
        for j in range(n):
            items.append(((j + 0.5) / n, rng.random(), size))
    return [size for _, _, size in sorted(items)]


# --------------------------------------------------------------------------- running

def run_pairs(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    tools_names = [t.strip() for t in args.tools.split(",") if t.strip()]
    plan = schedule(args.pairs_aa, args.pairs, sizes, args.seed)
    perfloop_args = shlex.split(args.perfloop_args or "")
    doc: dict[str, Any] = {
        "benchmark": "detection",
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_at_start": _loadavg()},
        "tools": tools_names, "perfloop_args": perfloop_args, "sizes": sizes,
        "pairs_aa": args.pairs_aa, "pairs_per_size": args.pairs, "seed": args.seed,
        "tool_versions": _versions(), "pairs": [],
    }
    with tempfile.TemporaryDirectory(prefix="perfloop-detection-") as tmp:
        project = write_project(Path(tmp) / "project")
        scratch = Path(tmp) / "scratch"
        tools = [make_tool(name, project, scratch, perfloop_args) for name in tools_names]
        print(f"project in {project}; {len(plan)} pairs x {len(tools)} tools", flush=True)
        begin = time.perf_counter()
        for i, slowdown in enumerate(plan):
            shift = i % len(tools)
            order: list[Tool] = tools[shift:] + tools[:shift]
            entry: dict[str, Any] = {"pair": i, "slowdown": slowdown, "order": [t.name for t in order],
                                     "load": _loadavg(), "verdicts": {}}
            for tool in order:
                v = tool.verdict(i, slowdown)
                entry["verdicts"][tool.name] = v.to_dict()
            doc["pairs"].append(entry)
            doc["elapsed"] = time.perf_counter() - begin
            if args.json:
                _write_json(args.json, doc)
            calls = "  ".join(f"{name}={entry['verdicts'][name]['raw'][:40]} "
                              f"({entry['verdicts'][name]['seconds']:.1f}s, "
                              f"x{_fmt_ratio(entry['verdicts'][name]['ratio'])})"
                              for name in tools_names)
            print(f"[{i + 1}/{len(plan)} {doc['elapsed'] / 60:5.1f} min] +{slowdown:.0%}: {calls}",
                  flush=True)
    doc["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    if args.json:
        _write_json(args.json, doc)
    return doc


def _fmt_ratio(r: float | None) -> str:
    return f"{r:.3f}" if r else "?"


def _write_json(path: str, doc: dict[str, Any]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(target)


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for name in ("perfloop", "pyperf", "pytest-benchmark", "pytest"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


# --------------------------------------------------------------------------- report

def _rate(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.0%})" if n else "-"


def _upper95(k: int, n: int) -> float | None:
    """One-sided 95% upper bound of a rate (Clopper-Pearson), to say what n pairs can show."""
    if not n:
        return None
    if k >= n:
        return 1.0
    from scipy.stats import beta
    return float(beta.ppf(0.95, k + 1, n - k))


def _lower95(k: int, n: int) -> float | None:
    if not n:
        return None
    if k == 0:
        return 0.0
    from scipy.stats import beta
    return float(beta.ppf(0.05, k, n - k + 1))


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    """Per tool and slowdown: counts of each call, seconds per verdict, ratios and spreads."""
    out: dict[str, Any] = {}
    for tool in doc["tools"]:
        per: dict[str, Any] = {}
        seconds: list[float] = []
        spreads: list[float] = []
        for entry in doc["pairs"]:
            v = entry["verdicts"].get(tool)
            if v is None:
                continue
            key = f"{entry['slowdown']:g}"
            cell = per.setdefault(key, {c: 0 for c in CALLS} | {"ratios": [], "raw": {}})
            cell[v["call"]] += 1
            cell["raw"][v["raw"][:30]] = cell["raw"].get(v["raw"][:30], 0) + 1
            if v["call"] != "error":
                seconds.append(v["seconds"])
                if v.get("ratio"):
                    cell["ratios"].append(v["ratio"])
                spreads.extend(s for s in (v.get("base_spread"), v.get("head_spread")) if s)
        out[tool] = {"by_slowdown": per,
                     "median_seconds": statistics.median(seconds) if seconds else None,
                     "median_spread": statistics.median(spreads) if spreads else None,
                     "max_spread": max(spreads) if spreads else None}
    return out


def markdown(doc: dict[str, Any]) -> str:
    s = summarize(doc)
    sizes = [f"{x:g}" for x in doc["sizes"]]
    lines = []
    head = ["tool", "false alarms (A/A)"] + [f"detected at {float(x):.0%}" for x in sizes] + \
           ["wrong direction", "inconclusive (A/A; real)", "errors", "median s / verdict"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for tool, t in s.items():
        per = t["by_slowdown"]
        aa = per.get("0", {c: 0 for c in CALLS})
        n_aa = sum(aa[c] for c in CALLS if c != "error")
        fa = aa["slower"] + aa["faster"]
        row = [_tool_label(tool, doc), _rate(fa, n_aa)
               + (f", 95% bound {_upper95(fa, n_aa):.0%}" if n_aa else "")]
        wrong = 0
        inc_real = 0
        n_real = 0
        for x in sizes:
            c = per.get(x, {k: 0 for k in CALLS})
            n = sum(c[k] for k in CALLS if k != "error")
            row.append(_rate(c["slower"], n))
            wrong += c["faster"]
            inc_real += c["inconclusive"]
            n_real += n
        row.append(f"{wrong}/{n_real}")
        row.append(f"{aa['inconclusive']}; {inc_real}" if tool.startswith("perfloop") else "n/a")
        row.append(str(sum(per.get(k, {}).get("error", 0) for k in per)))
        row.append(f"{t['median_seconds']:.1f}" if t["median_seconds"] else "-")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Measured noise (head/base ratio of each tool's own centre: perfloop median of "
                 "values, pyperf and pytest-benchmark mean; spread = stdev/mean of one run's values):")
    lines.append("")
    lines.append("| tool | A/A ratio min / median / max | ratio at " + " | ratio at ".join(
        f"{float(x):.0%}" for x in sizes) + " | spread of values, median (max) |")
    lines.append("|" + "---|" * (3 + len(sizes)))
    for tool, t in s.items():
        per = t["by_slowdown"]
        cells = [_tool_label(tool, doc), _ratio_range(per.get("0", {}).get("ratios", []))]
        for x in sizes:
            cells.append(_ratio_range(per.get(x, {}).get("ratios", [])))
        sp = (f"{t['median_spread']:.1%} ({t['max_spread']:.0%})" if t["median_spread"] else "-")
        cells.append(sp)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    calls = []
    for tool, t in s.items():
        parts = []
        for x in ["0", *sizes]:
            c = t["by_slowdown"].get(x)
            if c:
                parts.append(f"+{float(x):.0%}: " + ", ".join(f"{k} {v}" for k, v in sorted(c["raw"].items())))
        calls.append(f"- {_tool_label(tool, doc)}: " + "; ".join(parts))
    gate = _gate_cost(doc)
    if gate:
        lines.append("perfloop gate, worker processes per side it measured (A B B A blocks x 2) "
                     "and why it stopped: " + gate)
        lines.append("")
    more = _more_workers(doc)
    if more:
        lines.append("perfloop's own estimate, on its inconclusive verdicts, of the extra worker "
                     "processes per side that would likely decide: " + more)
        lines.append("")
    lines.append("Raw calls per slowdown:")
    lines.append("")
    lines.extend(calls)
    return "\n".join(lines)


def _gate_cost(doc: dict[str, Any]) -> str:
    parts = []
    for x in [0.0, *doc["sizes"]]:
        details = [e["verdicts"]["perfloop-gate"]["detail"] for e in doc["pairs"]
                   if e["slowdown"] == x and "perfloop-gate" in e["verdicts"]
                   and e["verdicts"]["perfloop-gate"]["call"] != "error"]
        workers = [d.get("workers_per_side") for d in details if d.get("workers_per_side")]
        if workers:
            stops: dict[str, int] = {}
            for d in details:
                stops[str(d.get("stopped"))] = stops.get(str(d.get("stopped")), 0) + 1
            parts.append(f"+{x:.0%}: median {statistics.median(workers):g} (range {min(workers)}-"
                         f"{max(workers)}; " + ", ".join(f"{k} {v}" for k, v in sorted(stops.items()))
                         + ")")
    return "; ".join(parts)


def _more_workers(doc: dict[str, Any]) -> str:
    if "perfloop" not in doc["tools"]:
        return ""
    parts = []
    for x in [0.0, *doc["sizes"]]:
        extra = [e["verdicts"]["perfloop"]["detail"]["verdict"].get("more_workers")
                 for e in doc["pairs"] if e["slowdown"] == x and "perfloop" in e["verdicts"]
                 and e["verdicts"]["perfloop"]["call"] == "inconclusive"]
        extra = [m for m in extra if isinstance(m, (int, float))]
        if extra:
            parts.append(f"+{x:.0%}: median {statistics.median(extra):g} "
                         f"(range {min(extra):g}-{max(extra):g}, {len(extra)} verdicts)")
    return "; ".join(parts)


def _tool_label(tool: str, doc: dict[str, Any]) -> str:
    if tool.startswith("perfloop") and doc.get("perfloop_args"):
        return f"perfloop `{' '.join(doc['perfloop_args'])}`"
    return tool


def _ratio_range(ratios: list[float]) -> str:
    if not ratios:
        return "-"
    return f"{min(ratios):.3f} / {statistics.median(ratios):.3f} / {max(ratios):.3f}"


# --------------------------------------------------------------------------- overhead

OVERHEAD_TOML = f'''\
[[benchmark]]
name = "empty"
callable = "{MODULE}:empty"
metrics = ["wall_time"]

[[benchmark]]
name = "tiny"
callable = "{MODULE}:tiny"
metrics = ["wall_time"]

[[benchmark]]
name = "work"
callable = "{MODULE}:work"
metrics = ["wall_time"]
'''

_UNIT = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def overhead(args: argparse.Namespace) -> dict[str, Any]:
    """Per-call time as perfloop reports it vs a bare timeit loop; process cost per value."""
    import timeit

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _workload

    funcs = {"empty": _workload.empty, "tiny": _workload.tiny, "work": _workload.work}
    doc: dict[str, Any] = {"benchmark": "overhead",
                           "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                           "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
                           "load_at_start": _loadavg(), "rounds": []}
    exe = str(BIN / "perfloop") if (BIN / "perfloop").exists() else "perfloop"
    with tempfile.TemporaryDirectory(prefix="perfloop-overhead-") as tmp:
        project = write_project(Path(tmp) / "project")
        (project / "perfloop.toml").write_text(OVERHEAD_TOML)
        env = dict(os.environ, PYTHONPATH=str(project))
        for r in range(args.overhead_rounds):
            # timeit first, then perfloop, then timeit again: the pair brackets the run.
            tim = {name: _timeit_per_call(timeit, f) for name, f in funcs.items()}
            start = time.perf_counter()
            proc = subprocess.run([exe, "run", "-C", str(project), "--json"], cwd=project, env=env,
                                  capture_output=True, text=True, timeout=900)
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                raise SystemExit(f"perfloop run failed ({proc.returncode}): {proc.stderr[-2000:]}")
            tim2 = {name: _timeit_per_call(timeit, f) for name, f in funcs.items()}
            run = json.loads(proc.stdout)
            row: dict[str, Any] = {"wall_seconds": wall, "benchmarks": {}}
            stored = 0
            for result in run["results"]:
                m = next(m for m in result["metrics"] if m["metric"] == "wall_time")
                per_call = m["median"] * _UNIT.get(m["unit"], 1.0)
                stored += m["n"] + m.get("warmup", 0)
                name = result["name"]
                bare = statistics.median([tim[name], tim2[name]])
                row["benchmarks"][name] = {"perfloop_per_call": per_call, "timeit_per_call": bare,
                                           "timeit_before": tim[name], "timeit_after": tim2[name],
                                           "added_per_call": per_call - bare,
                                           "values": m["n"], "warmup": m.get("warmup", 0),
                                           "duration": result.get("duration")}
            row["values_stored"] = stored
            row["wall_per_value"] = wall / stored if stored else None
            doc["rounds"].append(row)
            print(f"round {r + 1}: perfloop run {wall:.1f} s for {stored} values "
                  f"({row['wall_per_value'] * 1e3:.0f} ms per value); " + "; ".join(
                      f"{n}: perfloop {b['perfloop_per_call'] * 1e9:.0f} ns vs timeit "
                      f"{b['timeit_per_call'] * 1e9:.0f} ns" for n, b in row["benchmarks"].items()),
                  flush=True)
    if args.json:
        _write_json(args.json, doc)
    print()
    print(overhead_markdown(doc))
    return doc


def _timeit_per_call(timeit_mod, func) -> float:
    """Median per-call time of ``repeat(7, number)``, ``number`` sized to about 0.2 s a repeat."""
    timer = timeit_mod.Timer(func)
    number, took = timer.autorange()
    number = max(1, int(number * 0.2 / max(took, 1e-9)))
    return statistics.median(t / number for t in timer.repeat(repeat=7, number=number))


def overhead_markdown(doc: dict[str, Any]) -> str:
    names = list(doc["rounds"][0]["benchmarks"])
    lines = ["| function | timeit per call | perfloop per call | perfloop - timeit |",
             "|---|---|---|---|"]
    for name in names:
        p = statistics.median(r["benchmarks"][name]["perfloop_per_call"] for r in doc["rounds"])
        t = statistics.median(r["benchmarks"][name]["timeit_per_call"] for r in doc["rounds"])
        lines.append(f"| `{name}` | {_t(t)} | {_t(p)} | {_t(p - t, sign=True)} ({(p - t) / t:+.1%}) |")
    walls = [r["wall_seconds"] for r in doc["rounds"]]
    per_value = [r["wall_per_value"] for r in doc["rounds"]]
    lines.append("")
    lines.append(f"Whole `perfloop run` of the three benchmarks: median {statistics.median(walls):.1f} s "
                 f"for {doc['rounds'][0]['values_stored']} values (warmup included), "
                 f"{statistics.median(per_value) * 1e3:.0f} ms of wall time per stored value "
                 f"({len(walls)} rounds).")
    return "\n".join(lines)


def _t(seconds: float, sign: bool = False) -> str:
    a = abs(seconds)
    unit, scale = (("ns", 1e9) if a < 1e-6 else ("µs", 1e6) if a < 1e-3 else ("ms", 1e3))
    return f"{seconds * scale:{'+' if sign else ''}.1f} {unit}"


# --------------------------------------------------------------------------- main

def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs-aa", type=int, default=16, help="A/A pairs (no slowdown); default 16")
    p.add_argument("--pairs", type=int, default=8, help="pairs per slowdown size; default 8")
    p.add_argument("--sizes", default="0.02,0.05,0.10", help="slowdowns, default 0.02,0.05,0.10")
    p.add_argument("--tools", default=",".join(DEFAULT_TOOLS), help="comma-separated, of perfloop, pyperf, pytest-benchmark, "
                   "perfloop-gate; default the first three")
    p.add_argument("--perfloop-args", default="",
                   help='extra options for `perfloop run` (or `perfloop gate`), e.g. "--processes 40"')
    p.add_argument("--seed", type=int, default=1, help="seed of the pair order")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 A/A pair and 1 pair at 10%%")
    p.add_argument("--json", metavar="FILE", help="save raw per-pair results (rewritten after each pair)")
    p.add_argument("--report", metavar="FILE", help="print the tables of a saved --json file and exit")
    p.add_argument("--overhead", action="store_true", help="measure perfloop's per-sample overhead")
    p.add_argument("--overhead-rounds", type=int, default=3, help="rounds of --overhead; default 3")
    args = p.parse_args(argv)
    if args.report:
        print(markdown(json.loads(Path(args.report).read_text())))
        return 0
    if args.overhead:
        overhead(args)
        return 0
    if args.quick:
        args.pairs_aa, args.pairs, args.sizes = 1, 1, "0.10"
    doc = run_pairs(args)
    print()
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
