"""A/A honesty on real code: does perfloop call anything changed when nothing changed?

A copy of ``examples/shop`` is made a git repository of two commits: the base, and a head
that changes only its README (so the code measured is identical). Then, in one run:

- ``--runs N`` consecutive, separate ``perfloop run``s of that commit, each compared with
  the next by ``perfloop compare --json`` (N - 1 A/A pairs);
- ``--gates M`` A/A ``perfloop gate --base HEAD~1`` runs (base and head interleaved).

Every verdict that calls something changed (``regressed`` or ``improved``) is a false alarm
and is listed, per pair, with its change and interval. For every run, the run-level shift is
the median, over the CPU-bound benchmarks, of ``log(run's median / that benchmark's median
over all runs)``: a shift of the whole run (all benchmarks together) shows there, while a
shift of one benchmark does not. Where the verdict JSON names the metric that decided
(``deciding_metric``/``decided_by``), its verdicts are reported as the decisive ones.

Usage::

    python benchmarks/aa_shop.py --runs 10 --gates 3 --json benchmarks/results/aa-shop.json
    python benchmarks/aa_shop.py --quick                       # 2 runs, 0 gates
    python benchmarks/aa_shop.py --report benchmarks/results/aa-shop.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
SHOP = ROOT / "examples" / "shop"
BIN = Path(sys.executable).parent
EXE = str(BIN / "perfloop") if (BIN / "perfloop").exists() else "perfloop"
CHANGED = ("regressed", "improved")
# Benchmarks whose time is spent on the CPU of the measured process (not the HTTP service).
CPU_METRICS = ("cpu_time", "wall_time", "cpu_norm", "host_reference")
DECIDING_KEYS = ("deciding_metric", "decided_by", "decision_metric", "decides")


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _git(repo: Path, *argv: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid",
                    *argv], cwd=repo, check=True, capture_output=True)


def make_copy(target: Path) -> Path:
    """Copy the shop (no database, no store) into a git repo: base, then a README-only head."""
    shutil.copytree(SHOP, target, ignore=shutil.ignore_patterns(
        "var", ".perfloop", "__pycache__", "*.pyc", ".pytest_cache"))
    (target / ".gitignore").write_text("var/\n.perfloop/\n__pycache__/\n")
    _git(target, "init", "-q")
    _git(target, "add", "-A")
    _git(target, "commit", "-q", "-m", "base")
    with (target / "README.md").open("a") as fh:
        fh.write("\nA documentation-only change.\n")
    _git(target, "commit", "-q", "-am", "docs: a README line")
    return target


def _perfloop(argv: Sequence[str], repo: Path, ok: Sequence[int] = (0,),
              exe: Sequence[str] | None = None) -> tuple[dict[str, Any], int, float]:
    start = time.perf_counter()
    proc = subprocess.run([*(exe or [EXE]), *argv, "-C", str(repo), "--json"], cwd=repo,
                          capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"perfloop {' '.join(argv)} exited {proc.returncode}: "
                         f"{(proc.stderr or proc.stdout)[-2000:]}")
    return json.loads(proc.stdout), proc.returncode, seconds


def _key(result: dict[str, Any]) -> str:
    params = result.get("params") or {}
    if not params or "[" in result["name"]:      # the name already carries its parameters
        return result["name"]
    return result["name"] + "[" + ",".join(f"{k}={v}" for k, v in params.items()) + "]"


def run_medians(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{benchmark: {metric: median}} for the time metrics of a run's results."""
    out: dict[str, dict[str, float]] = {}
    for result in run.get("results", []):
        for m in result.get("metrics", []):
            if m.get("metric") in CPU_METRICS and m.get("median"):
                out.setdefault(_key(result), {})[m["metric"]] = float(m["median"])
    return out


def decides(verdict: dict[str, Any], group: dict[str, Any] | None = None) -> bool | None:
    """Whether this metric's verdict counts (``role`` ``decides``) or is context; None when
    the verdict JSON does not say (perfloop before the deciding metric existed)."""
    role = verdict.get("role")
    if role in ("decides", "context"):
        return role == "decides"
    d = deciding_metric(verdict) or (deciding_metric(group) if group else None)
    return None if d is None else d == verdict.get("metric")


def deciding_metric(verdict_group: dict[str, Any]) -> str | None:
    for key in DECIDING_KEYS:
        value = verdict_group.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("metric"), str):
            return value["metric"]
    return None


def _alarm(v: dict[str, Any]) -> dict[str, Any]:
    return {k: v.get(k) for k in ("benchmark", "metric", "verdict", "change", "ci_low", "ci_high",
                                  "note")} | {"decides": v.get("_decides")}


def compare_pair(repo: Path, a: int, b: int, exe: Sequence[str] | None = None) -> dict[str, Any]:
    cmp, _, seconds = _perfloop(["compare", str(a), str(b)], repo, exe=exe)
    verdicts = cmp.get("verdicts", [])
    for v in verdicts:
        v["_decides"] = decides(v)
    return {"base": a, "head": b, "seconds": seconds, "n_verdicts": len(verdicts),
            "counts": cmp.get("counts"),
            "alarms": [_alarm(v) for v in verdicts if v.get("verdict") in CHANGED],
            "verdicts": verdicts}


def gate_once(repo: Path, extra: Sequence[str]) -> dict[str, Any]:
    report, code, seconds = _perfloop(["gate", "--base", "HEAD~1", *extra], repo, ok=(0, 1))
    alarms, verdicts = [], []
    for bench in report.get("benchmarks", []):
        for m in bench.get("metrics", []):
            row = {"benchmark": bench.get("name"), "metric": m.get("metric"),
                   "verdict": m.get("verdict"), "change": m.get("change"),
                   "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high"),
                   "_decides": decides(m, bench),
                   "note": m.get("note")}
            verdicts.append(row)
            if row["verdict"] in CHANGED:
                alarms.append(_alarm(row))
    return {"exit_code": code, "seconds": seconds, "passed": report.get("passed"),
            "alarms": alarms, "verdicts": verdicts,
            "inconclusive": sum(1 for v in verdicts if v["verdict"] == "inconclusive"),
            "report": report}


def shifts(medians: list[dict[str, dict[str, float]]], metric: str) -> list[float | None]:
    """Per run: median over benchmarks of log(run median / the benchmark's median of runs)."""
    names = sorted({n for m in medians for n in m if metric in m[n]})
    centre = {n: statistics.median(m[n][metric] for m in medians if metric in m.get(n, {}))
              for n in names}
    out: list[float | None] = []
    for m in medians:
        logs = [math.log(m[n][metric] / centre[n]) for n in names if metric in m.get(n, {})]
        out.append(statistics.median(logs) if logs else None)
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "benchmark": "aa-shop",
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "load_at_start": loadavg()},
        "perfloop_commit": _head_commit(), "perfloop_exe": EXE, "note": args.note,
        "runs": [], "pairs": [], "gates": []}
    benches = [b for b in (args.benchmarks or "").split(",") if b]
    also = shlex.split(args.also_compare) if args.also_compare else None
    doc["also_compare"] = args.also_compare or None
    gate_extra = shlex.split(args.gate_args or "") + benches
    with tempfile.TemporaryDirectory(prefix="perfloop-aa-shop-") as tmp:
        repo = make_copy(Path(tmp) / "shop")
        medians = []
        for i in range(args.runs):
            load = loadavg()
            run, _, seconds = _perfloop(["run", "--label", f"aa-{i}", *benches], repo)
            medians.append(run_medians(run))
            doc["runs"].append({"run_id": run["run_id"], "seconds": seconds, "load": load,
                                "medians": medians[-1]})
            if i:
                pair = compare_pair(repo, doc["runs"][i - 1]["run_id"], run["run_id"])
                pair["load"] = load
                if also:
                    pair["also"] = compare_pair(repo, doc["runs"][i - 1]["run_id"], run["run_id"],
                                                exe=also)
                doc["pairs"].append(pair)
                print(f"run {i + 1}/{args.runs} ({seconds:.0f} s, load {load}): "
                      f"{len(pair['alarms'])} of {pair['n_verdicts']} verdicts changed "
                      f"{pair['counts']}", flush=True)
            else:
                print(f"run 1/{args.runs} ({seconds:.0f} s, load {load})", flush=True)
            _save(args, doc, medians)
        for g in range(args.gates):
            load = loadavg()
            gate = gate_once(repo, gate_extra)
            gate["load"] = load
            doc["gates"].append(gate)
            print(f"gate {g + 1}/{args.gates} ({gate['seconds']:.0f} s, load {load}): exit "
                  f"{gate['exit_code']}, {len(gate['alarms'])} changed, {gate['inconclusive']} "
                  "inconclusive", flush=True)
            _save(args, doc, medians)
    doc["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    _save(args, doc, medians)
    return doc


def _save(args: argparse.Namespace, doc: dict[str, Any], medians: list) -> None:
    doc["shifts"] = {m: shifts(medians, m) for m in CPU_METRICS} if medians else {}
    doc["load_at_end"] = loadavg()
    if args.json:
        target = Path(args.json)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, default=str))
        tmp.replace(target)


def _head_commit() -> str | None:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True)
    return proc.stdout.strip() or None


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1%}"


def markdown(doc: dict[str, Any]) -> str:
    pairs, gates = doc["pairs"], doc["gates"]
    loads = [r["load"][0] for r in doc["runs"] if r.get("load")] + \
            [g["load"][0] for g in gates if g.get("load")]
    lines = [f"perfloop {doc.get('note') or doc.get('perfloop_commit')}; 1-minute load average "
             + (f"{min(loads):.1f}-{max(loads):.1f} (median {statistics.median(loads):.1f})"
                if loads else "?"), ""]
    n_v = sum(p["n_verdicts"] for p in pairs)
    n_a = sum(len(p["alarms"]) for p in pairs)
    bad = sum(1 for p in pairs if p["alarms"])
    inc = sum((p.get("counts") or {}).get("inconclusive", 0) for p in pairs)
    inc_dec = sum(1 for p in pairs for v in p.get("verdicts", [])
                  if v.get("verdict") == "inconclusive" and v.get("_decides"))
    lines.append(f"- `run` + `compare`, {len(pairs)} A/A pairs: {bad} pairs called something "
                 f"changed, {n_a} of {n_v} verdicts; {inc} inconclusive"
                 + (f" ({inc_dec} of them on a metric that decides)." if inc_dec else "."))
    also = [p["also"] for p in pairs if p.get("also")]
    if also:
        lines.append(f"- the same pairs compared by `{doc.get('also_compare')}`: "
                     f"{sum(1 for p in also if p['alarms'])} pairs called something changed, "
                     f"{sum(len(p['alarms']) for p in also)} of {sum(p['n_verdicts'] for p in also)}"
                     f" verdicts; {sum((p.get('counts') or {}).get('inconclusive', 0) for p in also)}"
                     " inconclusive: " + "; ".join(
                         f"pair {k + 1}: {a['benchmark']} {a['metric']} {_pct(a['change'])} "
                         f"[{_pct(a['ci_low'])}, {_pct(a['ci_high'])}] {a['verdict']}"
                         for k, p in enumerate(pairs) for a in (p.get("also") or {}).get("alarms", [])))
    dec = [a for p in pairs for a in p["alarms"] if a.get("decides")]
    if any(a.get("decides") is not None for p in pairs for a in p["alarms"]):
        lines.append(f"  Of the changed verdicts, {len(dec)} on the deciding metric.")
    if gates:
        g_alarm = sum(len(g["alarms"]) for g in gates)
        g_v = sum(len(g["verdicts"]) for g in gates)
        g_inc = sum(g["inconclusive"] for g in gates)
        g_dec = sum(1 for g in gates for v in g["verdicts"]
                    if v["verdict"] == "inconclusive" and v.get("_decides"))
        lines.append(f"- `gate`, {len(gates)} A/A gates: exit codes "
                     f"{[g['exit_code'] for g in gates]}, {g_alarm} of {g_v} verdicts changed, "
                     f"{g_inc} inconclusive" + (f" ({g_dec} on a metric that decides)" if g_dec else "")
                     + f"; seconds {[round(g['seconds']) for g in gates]}.")
    lines.append("")
    lines.append("| run | load | seconds | shift cpu_time | shift wall_time | shift cpu_norm | "
                 "shift host_reference | changed verdicts vs previous run |")
    lines.append("|---|---|---|---|---|---|---|---|")
    sh = doc.get("shifts", {})
    for i, r in enumerate(doc["runs"]):
        alarms = pairs[i - 1]["alarms"] if i else []
        text = "; ".join(f"{a['benchmark']} {a['metric']} {_pct(a['change'])} "
                         f"[{_pct(a['ci_low'])}, {_pct(a['ci_high'])}] {a['verdict']}"
                         for a in alarms) or ("-" if i else "(first)")
        cells = []
        for metric in CPU_METRICS:
            x = sh.get(metric, [None] * len(doc["runs"]))[i]
            cells.append(_pct(math.expm1(x) if x is not None else None))
        lines.append(f"| {i + 1} | {r['load'][0] if r.get('load') else '?'} | {r['seconds']:.0f} | "
                     f"{' | '.join(cells)} | {text} |")
    for j, g in enumerate(gates):
        text = "; ".join(f"{a['benchmark']} {a['metric']} {_pct(a['change'])} {a['verdict']}"
                         for a in g["alarms"]) or "-"
        lines.append(f"- gate {j + 1}: exit {g['exit_code']}, {g['seconds']:.0f} s, load "
                     f"{g['load'][0] if g.get('load') else '?'}: changed: {text}; inconclusive: "
                     + (", ".join(f"{v['benchmark']} {v['metric']}" for v in g["verdicts"]
                                  if v["verdict"] == "inconclusive") or "none"))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10, help="consecutive runs (default 10)")
    p.add_argument("--gates", type=int, default=3, help="A/A gates after the runs (default 3)")
    p.add_argument("--benchmarks", default="",
                   help="comma-separated benchmark names to run (default: all of the shop's)")
    p.add_argument("--gate-args", default="", help='extra options for `perfloop gate`')
    p.add_argument("--also-compare", default="", metavar="CMD",
                   help="a second perfloop (command prefix) that compares the same pairs of runs, "
                        "e.g. \"env PYTHONPATH=/old/src python -m perfloop\": two analyses, one data")
    p.add_argument("--note", default="", help="what code is measured, for the report")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 runs, no gate")
    p.add_argument("--json", metavar="FILE", help="save raw results (rewritten as they come)")
    p.add_argument("--report", metavar="FILE", help="print the summary of a saved --json file")
    args = p.parse_args(argv)
    if args.report:
        print(markdown(json.loads(Path(args.report).read_text())))
        return 0
    if args.quick:
        args.runs, args.gates = 2, 0
    if args.runs < 2 and not args.gates:
        p.error("--runs must be at least 2 (or ask for --gates)")
    doc = measure(args)
    print()
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
