"""Verdict quality and cost of perfloop against pyperf and pytest-benchmark, quiet or loaded.

A pure-Python, CPU-bound function (about 3 ms a call, :mod:`_workload`) is measured as base
(no slowdown) and head (an injected slowdown of 0%, 2%, 5% or 10% more work) by each tool,
the way its users do it:

- ``perfloop``: ``perfloop run --label`` twice, ``perfloop compare --json``;
- ``perfloop-gate``: ``perfloop gate``: base and head measured interleaved (A B B A) in one
  command, sampled adaptively up to its cost limit; the slowdown is carried by a committed
  file (base) and an uncommitted edit of it (head);
- ``pyperf``: ``python bench.py -o X.json`` twice on ``pyperf.Runner`` defaults, then
  ``python -m pyperf compare_to``;
- ``pytest-benchmark``: ``pytest --benchmark-save``, then ``pytest --benchmark-compare
  --benchmark-compare-fail=mean:5%``.

perfloop's verdicts are judged twice: on the time metric that decides (the one its verdict
JSON names, else ``cpu_time``) and on ``wall_time``. Pairs of every size are interleaved
through the run, and the order of the tools rotates from pair to pair, so that drift of the
machine hits all sizes and all tools alike. A pair with 0% slowdown (A/A) is a false alarm
when the tool calls a significant difference either way; a real slowdown is detected when the
tool calls it slower. Wall seconds per verdict cover the whole verdict (runs and comparison).

``--load N`` starts N busy processes for the whole run (3 on 2 cores: a load average of 4 or
more) and always stops them; the load average is recorded before and after every pair. The
report gives, per condition, tool and metric, the calls and the targets, met or missed.

``--overhead`` measures instead what perfloop's harness adds per sample, against a bare
``timeit`` loop in this process, and the whole-process cost of a ``perfloop run`` per stored
value.

Usage::

    python benchmarks/detection.py --quick               # smoke test of the harness
    python benchmarks/detection.py --pairs-aa 20 --pairs 10 --json benchmarks/results/q.json
    python benchmarks/detection.py --load 3 --pairs-aa 20 --pairs 10 \\
        --json benchmarks/results/loaded.json            # under a controlled load
    python benchmarks/detection.py --tools perfloop-gate --perfloop-args="--max-blocks 64" \\
        --pairs-aa 2 --pairs 2 --sizes 0.10 --json benchmarks/results/gate.json
    python benchmarks/detection.py --report benchmarks/results/q.json benchmarks/results/loaded.json
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

from _detection_report import markdown, merged  # noqa: E402
from _load import BackgroundLoad  # noqa: E402
from _tools import BIN, Tool, make_tool  # noqa: E402
from _workload import MODULE, write_project  # noqa: E402

DEFAULT_TOOLS = ("perfloop", "perfloop-gate", "pyperf", "pytest-benchmark")


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
    """Run the schedule with ``args.load`` busy processes beside it (always stopped after)."""
    with BackgroundLoad(args.load) as load:
        if args.load:
            print(f"background load: {args.load} busy processes, pids {load.pids}", flush=True)
            time.sleep(args.load_settle)
        return _run_pairs(args)


def _run_pairs(args: argparse.Namespace) -> dict[str, Any]:
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
        "load_processes": args.load,
        "perfloop_commit": _head_commit(), "perfloop_exe": str(BIN / "perfloop"), "note": args.note,
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
            if args.max_minutes and time.perf_counter() - begin > args.max_minutes * 60:
                print(f"stopped at the time budget ({args.max_minutes:g} min) after {i} pairs",
                      flush=True)
                doc["stopped_early"] = i
                break
            shift = i % len(tools)
            order: list[Tool] = tools[shift:] + tools[:shift]
            entry: dict[str, Any] = {"pair": i, "slowdown": slowdown, "order": [t.name for t in order],
                                     "load": _loadavg(), "verdicts": {}}
            for tool in order:
                v = tool.verdict(i, slowdown)
                entry["verdicts"][tool.name] = v.to_dict()
            entry["load_after"] = _loadavg()
            doc["pairs"].append(entry)
            doc["elapsed"] = time.perf_counter() - begin
            if args.json:
                _write_json(args.json, doc)
            print(f"[{i + 1}/{len(plan)} {doc['elapsed'] / 60:5.1f} min, load {entry['load']}] "
                  f"+{slowdown:.0%}: " + "  ".join(_line(name, entry["verdicts"][name])
                                                  for name in tools_names), flush=True)
    doc["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    if args.json:
        _write_json(args.json, doc)
    return doc


def _line(name: str, v: dict[str, Any]) -> str:
    cells = v.get("detail", {}).get("metrics")
    if cells:
        said = "/".join(f"{m}:{c['raw'][:12]}" for m, c in cells.items())
    else:
        said = v["raw"][:40]
    return f"{name}={said} ({v['seconds']:.1f}s, x{_fmt_ratio(v['ratio'])})"


def _head_commit() -> str | None:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent)
    return proc.stdout.strip() or None


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
    p.add_argument("--tools", default=",".join(DEFAULT_TOOLS), help="comma-separated, of perfloop, perfloop-gate, pyperf, "
                   "pytest-benchmark; default all four")
    p.add_argument("--perfloop-args", default="",
                   help='extra options for `perfloop run` (or `perfloop gate`), e.g. "--processes 40"')
    p.add_argument("--seed", type=int, default=1, help="seed of the pair order")
    p.add_argument("--load", type=int, default=0, metavar="N",
                   help="start N busy background processes for the whole run (killed at the end, "
                        "also on Ctrl-C); e.g. 3 on 2 cores for a load average of 4 or more")
    p.add_argument("--load-settle", type=float, default=20.0, metavar="S",
                   help="seconds to wait after starting --load before measuring; default 20")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="stop starting new pairs after this many minutes (0: no limit)")
    p.add_argument("--note", default="", help="what is measured (code, condition), for the report")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 A/A pair and 1 pair at 10%%")
    p.add_argument("--json", metavar="FILE", help="save raw per-pair results (rewritten after each pair)")
    p.add_argument("--report", metavar="FILE", nargs="+",
                   help="print the tables of saved --json files (say a quiet and a loaded run) and exit")
    p.add_argument("--merge", action="store_true",
                   help="with --report: the files are runs of one condition (other seeds); one table")
    p.add_argument("--overhead", action="store_true", help="measure perfloop's per-sample overhead")
    p.add_argument("--overhead-rounds", type=int, default=3, help="rounds of --overhead; default 3")
    args = p.parse_args(argv)
    if args.report:
        docs = [json.loads(Path(f).read_text()) for f in args.report]
        print(markdown([merged(docs)] if args.merge else docs))
        return 0
    if args.overhead:
        overhead(args)
        return 0
    if args.quick:
        args.pairs_aa, args.pairs, args.sizes = 1, 1, "0.10"
    doc = run_pairs(args)
    print()
    print(markdown([doc]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
