"""The regression-aware loop's reading commands: ``history``, ``detect``, ``doctor``, ``report``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..errors import UsageError
from ..report.charts import column_of, marker_line, sparkline
from ..report.text import short_sha
from ..report.units import format_change, format_value
from ..workflows.history import (Detection, DetectorSettings, SeriesHistory, benchmark_history,
                                 detect_all)
from .common import JsonFlag, ProjectDir, StoreUrl, console, open_store, print_json

CHART_WIDTH = 72
KIND_STYLE = {"regression": "bold red", "improvement": "bold green", "environment": "bold magenta"}

Branch = Annotated[Optional[str], typer.Option(
    "--branch", "-b", help="Branch whose runs form the series (default: the latest run's; "
                           "'-' for runs on a detached HEAD).", show_default=False)]
AllEnvironments = Annotated[bool, typer.Option(
    "--all-environments", help="Join every environment class into one series and show where "
                               "the class changes (default: one series per class).")]
MinSize = Annotated[int, typer.Option(
    "--min-size", min=2, help="Runs that must stand at a new level before it is reported.")]
MinChange = Annotated[float, typer.Option(
    "--min-change", min=0.0, help="Smallest relative change reported, e.g. 0.02 for 2%.")]


def _settings(min_size: int, min_change: float) -> DetectorSettings:
    return DetectorSettings(min_size=min_size, min_magnitude=min_change)


def parse_since(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """``2024-05-01``, ``2024-05-01T12:00``, or a span back from now: ``7d``, ``12h``, ``2w``."""
    if not value:
        return None
    text = value.strip()
    match = re.fullmatch(r"(\d+)\s*([hdw])", text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        span = {"h": timedelta(hours=amount), "d": timedelta(days=amount), "w": timedelta(weeks=amount)}[unit]
        return (now or datetime.now(timezone.utc)) - span
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since {value!r}: not a date or a span",
                         hint="e.g. --since 2024-05-01, --since 2024-05-01T12:00 or --since 7d") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


# -- history ------------------------------------------------------------------------------------

def history(
    benchmark: Annotated[str, typer.Argument(help="Benchmark name, or base name for all its parameter combinations.")],
    metric: Annotated[Optional[list[str]], typer.Option(
        "--metric", "-m", help="Only these metrics (default: every metric measured).")] = None,
    branch: Branch = None,
    environment: Annotated[Optional[str], typer.Option(
        "--environment", "-e", help="Environment fingerprint (or a prefix) of the series "
                                    "(default: the latest run's).", show_default=False)] = None,
    all_environments: AllEnvironments = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0,
                                       help="Table rows: the latest runs (0: every run).")] = 20,
    min_size: MinSize = 5,
    min_change: MinChange = 0.0,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Show a benchmark's history: its runs, change points, and the commits and environment
    changes behind them.

    Each point is one run's median. A change point is where the level shifts; it names the last
    commit measured before it and the first at the new level (`git log A..B` lists the
    suspects). A shift where the environment class changed (a new machine, a library upgrade)
    is marked `environment`: benchmark decay, not a code regression.

    Example: `perfloop history quote --metric wall_time --all-environments`
    """
    db = open_store(directory, store)
    try:
        histories = benchmark_history(db, benchmark, metrics=metric, branch=branch,
                                      environment=environment, all_environments=all_environments,
                                      settings=_settings(min_size, min_change))
    finally:
        db.close()
    if json:
        print_json({"benchmark": benchmark, "series": [h.to_dict() for h in histories]})
        return
    for i, h in enumerate(histories):
        if i:
            console.print()
        render_history(h, limit=limit)


def _marks(h: SeriesHistory) -> dict[int, str]:
    marks: dict[int, str] = {}
    for a in h.approvals:
        index = h.approval_index(a)
        if index is not None:
            marks[index] = "A"
    for e in h.environment_changes:
        marks[e.index] = "E"
    for c in h.change_points:
        marks[c.index] = "^"
    return marks


def render_history(h: SeriesHistory, *, limit: int = 20) -> None:
    s = h.series
    key = s.key
    env = key.environment[:8] if key.environment else "all environments"
    console.print(Text.assemble((f"{key.benchmark}", "bold"), f"  {key.metric}  on {key.branch}  ",
                                (f"[{env}]", "dim"), f"  {len(s)} runs, {s.direction} is better"))
    if not len(s):
        return
    values = s.values
    width = min(CHART_WIDTH, len(s))
    line = Text(sparkline(values, width))
    styles = {column_of(c.index, len(s), width): KIND_STYLE[c.kind] for c in h.change_points}
    for column, style in styles.items():
        line.stylize(style, column, column + 1)
    low, high = format_value(float(values.min()), s.unit), format_value(float(values.max()), s.unit)
    console.print(Text.assemble("  ", line, (f"  {low} .. {high}", "dim")))
    marks = marker_line(len(s), _marks(h), width)
    if marks.strip():
        console.print(Text.assemble("  ", (marks, "bold"),
                                    ("   ^ change point  E environment changed  A approval", "dim")))
    if h.change_points:
        table = Table(title="change points", header_style="bold", title_justify="left")
        for col, just in (("#", "right"), ("kind", "left"), ("commits", "left"), ("runs", "left"),
                          ("level", "right"), ("change", "right"), ("p-value", "right"),
                          ("behind it", "left")):
            table.add_column(col, justify=just)
        for c in h.change_points:
            behind = c.environment_change.describe() if c.environment_change else f"git log {c.commit_range}"
            table.add_row(str(c.index), Text(c.kind, style=KIND_STYLE[c.kind]), c.commit_range,
                          f"#{c.before.run_id} -> #{c.after.run_id}",
                          f"{format_value(c.mean_before, s.unit)} -> {format_value(c.mean_after, s.unit)}",
                          format_change(c.magnitude), f"{c.pvalue:.2g}", behind)
        console.print(table)
    else:
        console.print("  no change points")
    for e in h.environment_changes:
        if not any(c.environment_change is e for c in h.change_points):
            console.print(f"  [magenta]environment changed[/] at run #{e.after.run_id} "
                          f"({short_sha(e.before.commit)}..{short_sha(e.after.commit)}) with no "
                          f"level shift: {e.describe()}", highlight=False)
    for a in h.approvals:
        index = h.approval_index(a)
        where = f"at point {index}" if index is not None else "(commit not in this series)"
        console.print(f"  [cyan]approved[/] {short_sha(a.commit)} {where} by {a.author or '?'}: "
                      f"{a.reason}", highlight=False)
    _render_points(h, limit)
    for note in h.notes:
        console.print(f"  [yellow]note:[/] {note}", highlight=False)


def _render_points(h: SeriesHistory, limit: int) -> None:
    s = h.series
    first = 0 if limit == 0 else max(0, len(s) - limit)
    starts = {c.index: c for c in h.change_points}
    env_starts = {e.index for e in h.environment_changes}
    table = Table(header_style="bold")
    for col, just in (("#", "right"), ("run", "right"), ("when", "left"), ("commit", "left"),
                      ("env", "left"), (s.metric, "right"), ("", "left")):
        table.add_column(col, justify=just)
    for i in range(first, len(s)):
        p = s.points[i]
        mark, style = "", ""
        if i in starts:
            c = starts[i]
            mark, style = f"<- {c.kind} {format_change(c.magnitude)}", KIND_STYLE[c.kind]
        elif i in env_starts:
            mark, style = "<- environment changed", "magenta"
        table.add_row(str(i), f"#{p.run_id}", p.started_at.strftime("%Y-%m-%d %H:%M"),
                      short_sha(p.commit) + ("+dirty" if p.dirty else ""), p.environment[:8],
                      format_value(p.value, s.unit), Text(mark, style=style), style=style or None)
    console.print(table)
    if first:
        console.print(f"  [dim]{first} earlier run(s) not shown (--limit 0 shows all)[/]")


# -- detect -------------------------------------------------------------------------------------

def detect(
    since: Annotated[Optional[str], typer.Option(
        "--since", help="Only change points whose new level starts at or after this date "
                        "(2024-05-01) or span back from now (7d, 12h, 2w).", show_default=False)] = None,
    branch: Annotated[Optional[str], typer.Option(
        "--branch", "-b", help="Only series of this branch (default: every branch).",
        show_default=False)] = None,
    benchmark: Annotated[Optional[str], typer.Option(
        "--benchmark", help="Only this benchmark (name or base name).", show_default=False)] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="Only these metrics.")] = None,
    all_environments: AllEnvironments = False,
    min_size: MinSize = 5,
    min_change: MinChange = 0.0,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Find change points across every stored series, newest first.

    A series is one benchmark and metric on one branch in one environment class. Each change
    point comes with its commit range, magnitude and p-value. Exits 0 whatever it finds: it
    reports, the gate decides.

    Example: `perfloop detect --since 14d --json`
    """
    when = parse_since(since)
    db = open_store(directory, store)
    try:
        found = detect_all(db, since=when, branch=branch, benchmark=benchmark, metrics=metric,
                           all_environments=all_environments,
                           settings=_settings(min_size, min_change))
    finally:
        db.close()
    if json:
        print_json({"since": when.isoformat() if when else None, **found.to_dict()})
        return
    render_detection(found)


def render_detection(found: Detection) -> None:
    if found.changes:
        table = Table(title="change points, newest first", header_style="bold", title_justify="left")
        for col, just in (("when", "left"), ("benchmark", "left"), ("metric", "left"),
                          ("branch", "left"), ("env", "left"), ("kind", "left"),
                          ("commits", "left"), ("level", "right"), ("change", "right"),
                          ("p-value", "right")):
            table.add_column(col, justify=just)
        for d in found.changes:
            c, s = d.change, d.history.series
            table.add_row(c.after.started_at.strftime("%Y-%m-%d %H:%M"), s.key.benchmark, s.key.metric,
                          s.key.branch, (s.key.environment or "all")[:8],
                          Text(c.kind, style=KIND_STYLE[c.kind]), c.commit_range,
                          f"{format_value(c.mean_before, s.unit)} -> {format_value(c.mean_after, s.unit)}",
                          format_change(c.magnitude), f"{c.pvalue:.2g}")
        console.print(table)
    searched = found.series - found.too_short
    summary = (f"{len(found.changes)} change point(s) in {searched} series searched"
               + (f"; {found.too_short} series too short to search (fewer than 10 runs)"
                  if found.too_short else ""))
    if not found.series:
        summary = "No stored series. Run `perfloop run` a few times (on each commit, e.g. in CI) first."
    console.print(summary, highlight=False)
    if found.changes:
        console.print("[dim]perfloop history BENCHMARK shows one series with its runs.[/]")


def register(app: typer.Typer) -> None:
    for fn in (history, detect):
        app.command()(fn)
