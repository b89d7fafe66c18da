"""How the profile-and-patch commands show their results as text: an incident, one profiled
target, a verification. The commands themselves are in :mod:`.incident_cmds`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any


from .common import console

if TYPE_CHECKING:   # imported where used: start-up stays fast
    from rich.console import JustifyMethod
    from ..workflows import incident as incidents

OUTCOME_STYLE = {"confirmed": "bold green", "refuted": "bold red", "unclear": "yellow",
                 "too-broad": "yellow", None: "dim"}
VERDICT_STYLE = {"verified": "bold green", "trade-off": "bold yellow", "partial": "yellow",
                 "not-verified": "bold red", "regressed": "bold red", "inconclusive": "yellow"}


def pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x * 100:+.1f}%" if signed else f"{x * 100:.1f}%"


def short(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def render_incident(i: incidents.Incident) -> None:
    from rich.markup import escape
    from ..workflows import incident as incidents
    from rich.text import Text
    console.print(f"[bold]Incident #{i.id}[/] {escape(repr(i.title))}  ({i.status}, "
                  f"{incidents._duration_text(i.age())}{'' if i.is_open else ' in all'})", highlight=False)
    console.print(Text(f"benchmarks: {', '.join(i.benchmarks) or '-'}   metric: {i.metric or '-'}   "
                       f"opened at commit {(i.commit_at_open or '-')[:10]}"))
    for h in i.hypotheses:
        line = Text(f"hypothesis #{h.id}: {h.text!r} expects {', '.join(h.expect) or '-'}")
        if h.expected_share is not None:
            line.append(f" (share >= {pct(h.expected_share)})")
        if h.expected_effect is not None:
            line.append(f" (effect {pct(h.expected_effect, True)})")
        line.append("  ")
        line.append(h.outcome or "unchecked", style=OUTCOME_STYLE[h.outcome])
        console.print(line)
        reading = (h.evidence or {}).get("reading")
        if reading:
            console.print(Text(f"  {reading}", style="dim"))
    if i.baseline:
        b = i.baseline
        snap = b.get("snapshot") or {}
        console.print(f"baseline: run #{b.get('run_id')} at {(snap.get('commit') or '-')[:10]}"
                      f"{'+dirty' if snap.get('dirty') else ''}", highlight=False)
    for v in i.data.get("verifications", []):
        verdict = v.get("verdict")
        console.print(Text.assemble("verify: run #", str(v.get("run_id")), " ",
                                    (verdict or "", VERDICT_STYLE.get(verdict or "", "")), ": ",
                                    v.get("reading") or ""))
    journal = i.data.get("journal")
    if journal:
        console.print("[bold]Journal entry[/]")
        exp, act = journal.get("expected") or {}, journal.get("actual") or {}
        console.print(Text(f"  expected: {exp.get('metric') or 'the target'} better"
                           + (f" by {pct(abs(exp['effect']))}" if exp.get("effect") is not None else "")
                           + (f"; time in {', '.join(exp.get('where') or [])}" if exp.get("where") else "")))
        console.print(Text(f"  actual: {act.get('verdict')}: {act.get('reading') or ''}"))
        for t in act.get("tradeoffs") or []:
            console.print(Text(f"  trade-off: {t}", style="yellow"))
        for p in journal.get("profiles") or []:
            top = p.get("top_hot_spot") or {}
            console.print(Text(f"  profile #{p['id']} {p['target']} ({p['purpose']}): top "
                               f"{top.get('function')}; {(p.get('files') or {}).get('html', '')}"))
        for c in journal.get("commits") or []:
            console.print(Text(f"  commit {c['sha'][:10]} {c['subject']}"))
        if journal.get("note"):
            console.print(Text(f"  note: {journal['note']}"))
        console.print(f"  duration: {incidents._duration_text(journal.get('duration_seconds') or 0)}")


def render_target(t: Any, root: Path, limit: int) -> None:
    from ..report.tables import print_table
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text
    r = t.result
    # benchmark names hold brackets (checkout[items=20]) that Rich would read as markup
    console.print(f"[bold]{escape(t.target)}[/] ({t.purpose}; {r.profiler}, {r.duration:.1f} s"
                  + (f", {r.calls} calls" if r.calls else "") + ")", highlight=False)
    table = Table(header_style="bold", title="Hot spots in user code, by self share")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"), ("function", "left"), ("file:line", "left"), ("self", "right"),
        ("total", "right"), ("waiting", "left"))
    for col, just in columns:
        table.add_column(col, justify=just)
    matched = set(t.check.matched) if t.check else set()
    waits: dict[str, dict[str, float]] = {}
    for site in t.waiting.sites:
        kinds = waits.setdefault(site.function, {})
        kinds[site.kind] = kinds.get(site.kind, 0.0) + site.share
    for h in t.hot_spots(limit):
        style = "bold green" if h.function in matched else ""
        kinds = waits.get(h.function, {})
        waited = ", ".join(f"{k} {pct(v)}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])
                           if v >= 0.01)
        table.add_row(str(h.rank), Text(h.function, style=style), short(h.location, root),
                      pct(h.self_share), pct(h.total_share), waited or "-")
    print_table(console, table)
    for s in r.signals:
        colour = "yellow" if s.severity == "warn" else "dim"
        console.print(f"[{colour}]{s.name}:[/] {escape(s.reading)}", highlight=False)
    wait = t.waiting
    if wait.sites and wait.share >= 0.1:
        colour = "yellow" if wait.mostly else "dim"
        console.print(f"[{colour}]waiting:[/] {escape(wait.reading())}", highlight=False)
    if t.diff:
        diff = Table(header_style="bold", title=f"Differential profile against #{t.diff_against} (before)")
        for col in ("function", "before total", "after total", "change"):
            diff.add_column(col, justify="left" if col == "function" else "right")
        for d in t.diff[:8]:
            change = (f"{d.seconds_change * 1000:+.3f} ms/call" if d.per_call and d.seconds_change is not None
                      else pct(d.share_change, True))
            diff.add_row(escape(d.function), pct(d.before_total_share), pct(d.after_total_share), change)
        console.print(diff)
    for fmt, path in t.files.items():
        console.print(Text(f"flame graph ({fmt}): {short(path, root)}"))
    for n in r.notes:
        console.print(Text(f"note: {n}", style="dim"))


def render_verify(report: Any) -> None:
    from rich.markup import escape
    from rich.text import Text
    console.print("[bold]Target[/] " + (report.target_metric or "(primary time metric)"))
    for row in report.target:
        exp = "" if row["as_expected"] is None else (" as expected" if row["as_expected"] else " less than expected")
        console.print(Text(f"  {row['benchmark']} {row['metric']}: {row['verdict']} "
                           f"{pct(row['change'], True)}{exp}"))
    for s in report.side_effects:
        console.print(f"[red]side effect:[/] {escape(s)}", highlight=False)
    for t in report.tradeoffs:
        console.print(f"[yellow]trade-off:[/] {escape(t)}", highlight=False)
    a = report.attribution
    style = "green" if a.attributable else "bold red"
    console.print(f"[{style}]attribution:[/] {escape(a.summary)}", highlight=False)
    if a.suggestion:
        console.print(Text(f"  {a.suggestion}"))
    for n in a.notes:
        console.print(Text(f"  {n}", style="dim"))
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
    for n in report.notes:
        console.print(Text(f"note: {n}", style="dim"))
    line = Text("verdict: ")
    line.append(report.verdict, style=VERDICT_STYLE.get(report.verdict, ""))
    line.append(f" ({report.reading})")
    console.print(line)
