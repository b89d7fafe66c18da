"""Terminal rendering with Rich: runs, one run, a comparison."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..records import BenchmarkResult, ResultStatus
from .escape import printable, terminal
from .tables import print_table
from .units import format_change, format_value

if TYPE_CHECKING:   # the statistics (scipy) load only where a table needs them: `runs` is quick
    from rich.console import JustifyMethod
    from ..analysis.comparison import Comparison

VERDICT_STYLE = {
    "regressed": "bold red",
    "improved": "bold green",
    "unchanged": "dim",
    "inconclusive": "yellow",
}


def short_sha(commit: str | None) -> str:
    return commit[:10] if commit else "-"


def run_title(run) -> str:
    label = f" ({printable(run.label)})" if run.label else ""
    dirty = "+dirty" if run.dirty else ""
    status = str(getattr(run.status, "value", run.status))
    # A run another process is still writing is shown as it stood, and said to be in flight.
    state = {"running": ", in flight (still being written)", "interrupted": ", interrupted"}.get(status, "")
    return f"run #{run.id}{label} at {short_sha(run.commit)}{dirty} on {printable(run.branch or '-')}{state}"


def render_runs(console: Console, runs: Sequence) -> None:
    if not runs:
        console.print("No runs stored yet. Run [bold]perfloop run[/] to make one.")
        return
    table = Table(title="Stored runs", header_style="bold")
    for col in ("id", "label", "commit", "branch", "dirty", "env", "status", "benchmarks", "when"):
        table.add_column(col, justify="right" if col in ("id", "benchmarks") else "left")
    for r in runs:
        status = getattr(r.status, "value", r.status)
        style = {"complete": "green", "interrupted": "yellow", "running": "cyan"}.get(status, "")
        n = f"{r.n_results}" + (f" ({r.n_failed} failed)" if r.n_failed else "")
        table.add_row(str(r.id), Text(r.label or ""), short_sha(r.commit), Text(r.branch or ""),
                      "yes" if r.dirty else "", (r.environment_hash or "")[:8],
                      Text(status, style=style), n,
                      r.started_at.strftime("%Y-%m-%d %H:%M:%S") if r.started_at else "")
    print_table(console, table, essential=("id", "label", "commit", "status"))


def _problem_and_advice(warning: str) -> tuple[str, str]:
    """A quality warning's two halves: what was seen, and what to do (after the first '; '
    outside parentheses)."""
    depth = 0
    for i, char in enumerate(warning):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and warning.startswith("; ", i):
            return warning[:i], warning[i + 2:]
    return warning, ""


def _print_grouped(console: Console, results: Sequence[BenchmarkResult], more: str) -> None:
    """One line per benchmark with its first (worst) problem, then each piece of advice once."""
    flagged = [(r.name, list(r.warnings)) for r in results if r.warnings]
    if not flagged:
        return
    console.print(f"[yellow]{len(flagged)} benchmark(s) with warnings[/] [dim]({escape(more)})[/]")
    advice: dict[str, None] = {}
    for name, warnings in flagged:
        # the gist: what was seen, before its explanation and without the parentheses
        seen = re.sub(r" \([^)]*\)", "", _problem_and_advice(warnings[0])[0].split(": ", 1)[0])
        extra = f" [dim](+{len(warnings) - 1} more)[/]" if len(warnings) > 1 else ""
        console.print(f"  [bold]{terminal(name)}[/]: {escape(seen)}{extra}", highlight=False)
        for w in warnings:
            tip = _problem_and_advice(w)[1]
            if tip:
                advice.setdefault(tip)
    for tip in advice:
        console.print(f"  [dim]to do:[/] {escape(tip)}", highlight=False)


def render_results(console: Console, results: Iterable[BenchmarkResult], *, title: str,
                   detail: bool = True, more: str = "details: --verbose") -> None:
    """The results as a table, then errors and warnings: every warning in full with
    ``detail``, else grouped (one line per benchmark, each piece of advice once, ``more`` says
    where the detail is)."""
    results = list(results)
    table = Table(title=escape(title), header_style="bold")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("benchmark", "left"), ("metric", "left"), ("n", "right"), ("median", "right"),
        ("IQR", "right"), ("p99", "right"), ("cv", "right"), ("status", "left"))
    for col, just in columns:
        # names must stay readable in a narrow (or non-terminal, 80-column) console
        table.add_column(col, justify=just, overflow="fold", no_wrap=col == "metric",
                         min_width=18 if col == "benchmark" else None)
    warnings: list[tuple[str, str]] = []
    for result in results:
        status = Text(result.status.value, style="green" if result.status is ResultStatus.OK else "bold red")
        from ..analysis.summary import summarize
        rows = summarize(result)
        if not rows:
            table.add_row(Text(printable(result.name)), "-", "0", "-", "-", "-", "-", status)
        for i, s in enumerate(rows):
            table.add_row(Text(printable(result.name) if i == 0 else ""), Text(s.metric), f"{s.n}",
                          format_value(s.median, s.unit), format_value(s.iqr, s.unit),
                          format_value(s.p99, s.unit), f"{s.cv * 100:.1f}%", status if i == 0 else "")
        if result.error:
            warnings.append((result.name, f"[red]{result.status.value}:[/] {terminal(result.error)}"))
            if result.stderr_tail:
                tail = "\n".join(printable(line) for line in result.stderr_tail.strip().splitlines()[-8:])
                warnings.append((result.name, f"[dim]{escape(tail)}[/]"))
        if detail:
            for w in result.warnings:
                warnings.append((result.name, f"[yellow]warning:[/] {terminal(w)}"))
    print_table(console, table, essential=("metric", "status"))
    for name, text in warnings:
        console.print(f"[bold]{terminal(name)}[/]: {text}", highlight=False)
    if not detail:
        _print_grouped(console, results, more)


def render_comparison(console: Console, cmp: Comparison) -> None:
    from ..analysis.compare import VerdictKind
    console.print(f"base: {run_title(cmp.base)}\nhead: {run_title(cmp.head)}", highlight=False)
    identity = [d for d in cmp.env_differences if d.identity]
    if identity:
        lines = escape("\n".join(f"  {d.describe()}" for d in identity[:20]))
        more = f"\n  ... and {len(identity) - 20} more" if len(identity) > 20 else ""
        console.print(Panel(
            f"The two runs were measured in different environments:\n{lines}{more}\n"
            "A difference below may come from the environment, not the code. Re-measure both "
            "on one machine (e.g. perfloop run on each commit here) before acting on it.",
            title="[bold red]environments differ[/]", border_style="red"))
    conditions = [d for d in cmp.env_differences if not d.identity]
    if conditions:
        console.print("[dim]conditions: " + escape("; ".join(d.describe() for d in conditions)) + "[/]",
                      highlight=False)
    table = Table(header_style="bold")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("benchmark", "left"), ("metric", "left"), ("base", "right"), ("head", "right"),
        ("change", "right"), ("CI", "right"), ("verdict", "left"))
    for col, just in columns:
        table.add_column(col, justify=just, overflow="fold", no_wrap=col == "metric",
                         min_width=18 if col == "benchmark" else None)
    last = None
    for v in cmp.verdicts:
        ci = f"[{format_change(v.ci_low)}, {format_change(v.ci_high)}]"
        verdict = Text(v.verdict.value, style=VERDICT_STYLE[v.verdict.value])
        if v.role == "context":
            verdict = Text(f"{v.verdict.value} (context)", style="dim")
        elif v.verdict is VerdictKind.INCONCLUSIVE and v.more_workers:
            verdict.append(f" (~{v.more_workers} more workers)", style="dim")
        table.add_row(Text(v.benchmark if v.benchmark != last else ""), Text(v.metric),
                      format_value(v.base_location, v.unit), format_value(v.head_location, v.unit),
                      format_change(v.change), ci, verdict)
        last = v.benchmark
    print_table(console, table, essential=("metric", "verdict"))
    counts = ", ".join(f"{cmp.count(k)} {k.value}" for k in VerdictKind)
    tol = {v.tolerance for v in cmp.verdicts}
    tol_text = ", ".join(f"{t * 100:g}%" for t in sorted(tol)) or "-"
    conf = {v.confidence for v in cmp.verdicts}
    conf_text = ", ".join(f"{c * 100:g}%" for c in sorted(conf)) or "-"
    console.print(f"{counts} (tolerance {tol_text}, {conf_text} confidence intervals)", highlight=False)
    if cmp.design == "separate":
        console.print("[dim]Time intervals include drift of the machine between the two runs "
                      "(run_noise, below); to see smaller changes, measure both interleaved: "
                      "perfloop gate --base REF[/]", highlight=False)
    deciding: dict[str, str] = {}
    for v in cmp.verdicts:
        if v.deciding_metric and v.deciding_reason:
            deciding.setdefault(v.benchmark, f"{v.deciding_metric} decides, {v.deciding_reason}")
    for name, why in deciding.items():
        console.print(f"[dim]{escape(f'{name}: {why}')}[/]", highlight=False)
    for name in cmp.only_in_base:
        console.print(f"[yellow]only in base:[/] {terminal(name)}")
    for name in cmp.only_in_head:
        console.print(f"[yellow]only in head:[/] {terminal(name)}")
    for item in cmp.failed:
        console.print(f"[red]failed:[/] {terminal(item)}")
    for note in cmp.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    # The same note on many verdicts (the drift term) is printed once, with whom it concerns.
    grouped: dict[str, list[str]] = {}
    for v in cmp.verdicts:
        if v.note and v.role != "context":
            grouped.setdefault(v.note, []).append(f"{v.benchmark} {v.metric}")
    for note, who in grouped.items():
        head = ", ".join(who) if len(who) <= 2 else f"{len(who)} verdicts"
        console.print(f"[dim]{terminal(f'{head}: {note}')}[/]", highlight=False)
