"""Tables of ``benchmarks/detection.py`` results: per tool, metric and condition, and the targets.

A saved run (``--json``) holds, per pair, each tool's verdict. perfloop's verdicts carry one
call per time metric: they are shown twice, as the deciding metric (the one perfloop names,
else ``cpu_time``) and as ``wall_time``. Several saved runs (say a quiet one and a loaded one)
are reported side by side, grouped by their condition.

Targets (for a busy machine): no false alarm in at least 20 A/A verdicts, a 5% slowdown
detected in at least 90% of pairs and 10% in at least 99%, a 2% change never called a
regression, and no more wall time per verdict than pyperf's defaults in the same condition.
"""

from __future__ import annotations

import statistics
from typing import Any, Callable, Iterable

CALLS = ("slower", "faster", "same", "inconclusive", "error")
TARGET_AA_N = 20
TARGET_5 = 0.90
TARGET_10 = 0.99

View = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def condition(doc: dict[str, Any]) -> str:
    """``quiet`` or ``loaded (N busy)``, with the 1-minute load average over the pairs."""
    loads = [e["load"][0] for e in doc.get("pairs", []) if e.get("load")]
    span = (f", load {min(loads):.1f}-{max(loads):.1f}, median {statistics.median(loads):.1f}"
            if loads else "")
    n = doc.get("load_processes") or 0
    return (f"loaded ({n} busy processes{span})" if n else f"no added load{span}")


def views(doc: dict[str, Any], tool: str) -> list[tuple[str, View]]:
    """(label, verdict -> {call, ratio}) for each way a tool's verdicts are read."""
    if not tool.startswith("perfloop"):
        return [(tool, lambda v: v)]
    base = "perfloop `run` x2 + `compare`" if tool == "perfloop" else "perfloop `gate`"
    if doc.get("perfloop_args"):
        base += f" `{' '.join(doc['perfloop_args'])}`"

    def deciding(v: dict[str, Any]) -> dict[str, Any] | None:
        return v if "metrics" in v.get("detail", {}) else None

    def wall(v: dict[str, Any]) -> dict[str, Any] | None:
        cells = v.get("detail", {}).get("metrics")
        if cells is None:          # saved before perfloop's verdicts were read per metric
            return v
        cell = cells.get("wall_time")
        return None if cell is None else {"call": cell["call"], "raw": cell["raw"],
                                          "ratio": cell.get("ratio")}

    details = [v["detail"] for e in doc["pairs"] for t, v in e["verdicts"].items()
               if t == tool and "decides" in v.get("detail", {})]
    names = {d["decides"] for d in details}
    label = "/".join(sorted(n for n in names if n)) or "cpu_time"
    # Before perfloop named the deciding metric, cpu_time is the one judged here, not its choice.
    how = "decides" if any(d.get("decides_named") for d in details) else "judged here"
    out: list[tuple[str, View]] = []
    if details:
        out.append((f"{base}, {label} ({how})", deciding))
    out.append((f"{base}, wall_time", wall))
    return out


def summarize(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per view: counts of each call per slowdown, seconds per verdict, ratios."""
    out: dict[str, dict[str, Any]] = {}
    for tool in doc["tools"]:
        for label, view in views(doc, tool):
            per: dict[str, Any] = {}
            seconds: list[float] = []
            for entry in doc["pairs"]:
                raw_v = entry["verdicts"].get(tool)
                v = None if raw_v is None else (view(raw_v) if raw_v["call"] != "error" else raw_v)
                if v is None:
                    continue
                cell = per.setdefault(f"{entry['slowdown']:g}",
                                      {c: 0 for c in CALLS} | {"ratios": [], "raw": {}})
                cell[v["call"]] += 1
                cell["raw"][v["raw"][:30]] = cell["raw"].get(v["raw"][:30], 0) + 1
                if v["call"] != "error":
                    seconds.append(raw_v["seconds"])
                    if v.get("ratio"):
                        cell["ratios"].append(v["ratio"])
            out[label] = {"tool": tool, "by_slowdown": per,
                          "median_seconds": statistics.median(seconds) if seconds else None}
    return out


def _n(cell: dict[str, Any] | None) -> int:
    return sum(cell[c] for c in CALLS if c != "error") if cell else 0


def _rate(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.0%})" if n else "-"


def upper95(k: int, n: int) -> float | None:
    """One-sided 95% upper bound of a rate (Clopper-Pearson), to say what n pairs can show."""
    if not n:
        return None
    if k >= n:
        return 1.0
    from scipy.stats import beta
    return float(beta.ppf(0.95, k + 1, n - k))


def verdict_table(doc: dict[str, Any], s: dict[str, dict[str, Any]]) -> list[str]:
    sizes = [f"{x:g}" for x in doc["sizes"]]
    head = ["tool, metric", "false alarms (A/A)"] + [f"detected at {float(x):.0%}" for x in sizes] \
        + ["wrong direction", "inconclusive (A/A; real)", "errors", "median s / verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, t in s.items():
        per = t["by_slowdown"]
        aa = per.get("0")
        n_aa = _n(aa)
        fa = (aa["slower"] + aa["faster"]) if aa else 0
        row = [label, _rate(fa, n_aa)]
        wrong = inc_real = n_real = 0
        for x in sizes:
            c = per.get(x)
            row.append(_rate(c["slower"], _n(c)) if c else "-")
            if c:
                wrong += c["faster"]
                inc_real += c["inconclusive"]
                n_real += _n(c)
        row.append(f"{wrong}/{n_real}")
        row.append(f"{aa['inconclusive'] if aa else 0}; {inc_real}"
                   if t["tool"].startswith("perfloop") else "n/a")
        row.append(str(sum(c.get("error", 0) for c in per.values())))
        row.append(f"{t['median_seconds']:.1f}" if t["median_seconds"] else "-")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def targets(s: dict[str, dict[str, Any]]) -> list[str]:
    """Each target per view: met, missed (by how much) or not shown (too few pairs)."""
    pyperf = next((t["median_seconds"] for t in s.values() if t["tool"] == "pyperf"), None)
    head = ["tool, metric", f"0 false alarms in >= {TARGET_AA_N} A/A", "5% detected >= 90%",
            "10% detected >= 99%", "2% never regressed", "s / verdict <= pyperf's"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, t in s.items():
        if t["tool"] == "pyperf":
            continue
        per = t["by_slowdown"]
        aa = per.get("0")
        n_aa, fa = _n(aa), (aa["slower"] + aa["faster"]) if aa else 0
        if not n_aa:
            c_aa = "-"
        elif fa:
            c_aa = f"missed: {fa}/{n_aa}"
        elif n_aa >= TARGET_AA_N:
            c_aa = f"met: 0/{n_aa}"
        else:
            c_aa = f"0/{n_aa}: too few to show"
        row = [label, c_aa, _detect(per.get("0.05"), TARGET_5), _detect(per.get("0.1"), TARGET_10)]
        c2 = per.get("0.02")
        row.append("-" if not c2 else (f"met: 0/{_n(c2)}" if not c2["slower"]
                                       else f"missed: {c2['slower']}/{_n(c2)} regressed"))
        sec = t["median_seconds"]
        if sec is None or pyperf is None:
            row.append("-")
        else:
            row.append(f"{'met' if sec <= pyperf else 'missed'}: {sec:.0f} s vs {pyperf:.0f} s "
                       f"({sec / pyperf:.2f}x)")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _detect(cell: dict[str, Any] | None, target: float) -> str:
    n = _n(cell)
    if not n:
        return "-"
    k = cell["slower"]
    rate = k / n
    word = "met" if rate >= target else "missed"
    by = "" if rate >= target else f", {target - rate:.0%} short"
    return f"{word}: {k}/{n} ({rate:.0%}{by})"


def noise_table(doc: dict[str, Any], s: dict[str, dict[str, Any]]) -> list[str]:
    sizes = [f"{x:g}" for x in doc["sizes"]]
    lines = ["| tool, metric | A/A ratio min / median / max | " + " | ".join(
        f"ratio at {float(x):.0%}" for x in sizes) + " |", "|" + "---|" * (2 + len(sizes))]
    for label, t in s.items():
        per = t["by_slowdown"]
        cells = [label] + [_ratio_range(per.get(x, {}).get("ratios", [])) for x in ["0", *sizes]]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _ratio_range(ratios: list[float]) -> str:
    if not ratios:
        return "-"
    return f"{min(ratios):.3f} / {statistics.median(ratios):.3f} / {max(ratios):.3f}"


def gate_cost(doc: dict[str, Any]) -> str:
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


def more_needed(doc: dict[str, Any], tool: str) -> str:
    """perfloop's own estimate, on its inconclusive verdicts, of the extra workers per side
    (for the gate: blocks x 2) that would likely decide, on the deciding metric."""
    parts = []
    for x in [0.0, *doc["sizes"]]:
        extra = []
        for e in doc["pairs"]:
            v = e["verdicts"].get(tool)
            if e["slowdown"] != x or v is None or v["call"] != "inconclusive":
                continue
            det = v.get("detail", {})
            cell = det.get("metrics", {}).get(det.get("decides"), {}).get("verdict") \
                or det.get("verdict") or {}
            if isinstance(cell.get("more_workers"), (int, float)):
                extra.append(cell["more_workers"])
        if extra:
            parts.append(f"+{x:.0%}: median {statistics.median(extra):g} (range {min(extra):g}-"
                         f"{max(extra):g}, {len(extra)} verdicts)")
    return "; ".join(parts)


def raw_calls(s: dict[str, dict[str, Any]], sizes: Iterable[float]) -> list[str]:
    out = []
    for label, t in s.items():
        parts = []
        for x in ["0", *(f"{x:g}" for x in sizes)]:
            c = t["by_slowdown"].get(x)
            if c:
                parts.append(f"+{float(x):.0%}: " + ", ".join(
                    f"{k} {v}" for k, v in sorted(c["raw"].items())))
        out.append(f"- {label}: " + "; ".join(parts))
    return out


def merged(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Saved runs of one condition (same tools, sizes and options, other seeds) as one run."""
    first = docs[0]
    for doc in docs[1:]:
        for key in ("tools", "sizes", "load_processes", "perfloop_args"):
            if doc.get(key) != first.get(key):
                raise SystemExit(f"cannot merge runs with different {key}: "
                                 f"{first.get(key)!r} and {doc.get(key)!r}")
    return {**first, "pairs": [pair for doc in docs for pair in doc["pairs"]],
            "elapsed": sum(doc.get("elapsed") or 0 for doc in docs),
            "command": "; ".join(doc.get("command", "") for doc in docs)}


def markdown(docs: list[dict[str, Any]]) -> str:
    """The verdict, target and noise tables of each saved run, one block per condition."""
    lines: list[str] = []
    for doc in docs:
        s = summarize(doc)
        n_pairs = len(doc["pairs"])
        note = f"{doc['note']}; " if doc.get("note") else ""
        lines += [f"#### {note}{condition(doc)}: {n_pairs} pairs, "
                  f"{(doc.get('elapsed') or 0) / 60:.0f} min", "",
                  f"`{doc.get('command', '')}`", ""]
        lines += verdict_table(doc, s) + ["", "Targets:", ""] + targets(s) + [""]
        lines += ["Head/base ratio of each tool's own centre (perfloop: median of values; "
                  "pyperf and pytest-benchmark: mean):", ""] + noise_table(doc, s) + [""]
        if "perfloop-gate" in doc["tools"]:
            lines += ["perfloop gate, worker processes per side and why it stopped: "
                      + gate_cost(doc), ""]
        for tool in (t for t in doc["tools"] if t.startswith("perfloop")):
            more = more_needed(doc, tool)
            if more:
                lines += [f"{tool}: its estimate, on its inconclusive verdicts, of the extra worker "
                          f"processes per side that would likely decide: {more}", ""]
        lines += ["Raw calls per slowdown:", ""] + raw_calls(s, doc["sizes"]) + [""]
    return "\n".join(lines)
