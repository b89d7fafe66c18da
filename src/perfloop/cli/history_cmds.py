"""The regression-aware loop's reading commands: ``history``, ``detect``, ``doctor``, ``report``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import UsageError

from .common import (JsonFlag, ProjectDir, StoreUrl, console, err_console, open_store, print_json,
                     project_root)

if TYPE_CHECKING:   # imported where used: start-up stays fast
    from rich.console import JustifyMethod
    from ..workflows.history import Detection, DetectorSettings, SeriesHistory

CHART_WIDTH = 72


def short_sha(commit: str | None) -> str:
    return commit[:10] if commit else "-"

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
    from ..workflows.history import DetectorSettings
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
    suspects). Each series also says the smallest step it would show, given its noise and
    length. A shift where the environment class changed (a new machine, a library upgrade)
    is marked `environment`: benchmark decay, not a code regression.

    Example: `perfloop history quote --metric wall_time --all-environments`
    """
    from ..workflows.history import benchmark_history
    with open_store(directory, store) as db:
        histories = benchmark_history(db, benchmark, metrics=metric, branch=branch,
                                      environment=environment, all_environments=all_environments,
                                      settings=_settings(min_size, min_change))
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
        marks[c.index] = "E" if c.kind == "environment" else "^"
    return marks


def render_history(h: SeriesHistory, *, limit: int = 20) -> None:
    from ..report.tables import print_table
    from ..report.charts import column_of, marker_line, robust_range, sparkline
    from ..report.units import format_change, format_value
    from rich.table import Table
    from rich.text import Text
    s = h.series
    key = s.key
    env = key.environment[:8] if key.environment else "all environments"
    console.print(Text.assemble((f"{key.benchmark}", "bold"), f"  {key.metric}  on {key.branch}  ",
                                (f"[{env}]", "dim"), f"  {len(s)} runs, {s.direction} is better"))
    if not len(s):
        return
    values = s.values
    width = min(CHART_WIDTH, len(s))
    # Scaled to the levels, not to the extremes: one outlier run would flatten everything else.
    low_level, high_level = robust_range(values)
    line = Text(sparkline(values, width, low=low_level, high=high_level))
    styles = {column_of(c.index, len(s), width): KIND_STYLE[c.kind] for c in h.change_points}
    for column, style in styles.items():
        line.stylize(style, column, column + 1)
    low, high = format_value(low_level, s.unit), format_value(high_level, s.unit)
    console.print(Text.assemble("  ", line, (f"  levels {low} .. {high}", "dim")))
    marks = marker_line(len(s), _marks(h), width)
    if marks.strip():
        console.print(Text.assemble("  ", (marks, "bold"),
                                    ("   (^ change point, E environment changed, A approval)", "dim")))
    if h.change_points:
        table = Table(title="change points", header_style="bold", title_justify="left")
        columns: tuple[tuple[str, JustifyMethod], ...] = (
            ("#", "right"), ("kind", "left"), ("commits", "left"), ("runs", "left"),
            ("level", "right"), ("change", "right"), ("p-value", "right"), ("behind it", "left"))
        for col, just in columns:
            table.add_column(col, justify=just, no_wrap=col in ("commits", "kind"))
        for c in h.change_points:
            behind = c.environment_change.describe() if c.environment_change else f"git log {c.commit_range}"
            table.add_row(str(c.index), Text(c.kind, style=KIND_STYLE[c.kind]), c.commit_range,
                          f"#{c.before.run_id} -> #{c.after.run_id}",
                          f"{format_value(c.mean_before, s.unit)} -> {format_value(c.mean_after, s.unit)}",
                          format_change(c.magnitude), f"{c.pvalue:.2g}", behind)
        print_table(console, table)
    else:
        console.print("  no change points")
    if h.sensitivity is not None:
        console.print(f"  {sensitivity_text(h)}", highlight=False)
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


def _percent_or_value(relative: float, absolute: float, unit: str) -> str:
    from ..report.units import format_value
    return f"{relative * 100:.1f}%" if relative != float("inf") else format_value(absolute, unit)


def sensitivity_text(h: SeriesHistory) -> str:
    """One line: the smallest step this series would show, and its noise."""
    sens = h.sensitivity
    assert sens is not None
    unit = h.series.unit
    step = _percent_or_value(sens.min_step, sens.absolute_step, unit)
    noise = _percent_or_value(sens.noise, sens.absolute_noise, unit)
    return (f"smallest step it would show: {step} mid-series ({sens.power * 100:g}% power); "
            f"noise {noise}")


def _render_points(h: SeriesHistory, limit: int) -> None:
    from ..report.tables import print_table
    from ..report.units import format_change, format_value
    from rich.table import Table
    from rich.text import Text
    s = h.series
    first = 0 if limit == 0 else max(0, len(s) - limit)
    starts = {c.index: c for c in h.change_points}
    env_starts = {e.index for e in h.environment_changes}
    table = Table(header_style="bold")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"), ("run", "right"), ("when", "left"), ("commit", "left"), ("env", "left"),
        (s.key.metric, "right"), ("", "left"))
    for col, just in columns:
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
    print_table(console, table)
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
    point comes with its commit range, magnitude and p-value; each series searched with its
    noise and the smallest step it would show, so that finding none has a meaning. Exits 0
    whatever it finds: it reports, the gate decides.

    Example: `perfloop detect --since 14d --json`
    """
    from ..workflows.history import detect_all
    when = parse_since(since)
    with open_store(directory, store) as db:
        found = detect_all(db, since=when, branch=branch, benchmark=benchmark, metrics=metric,
                           all_environments=all_environments,
                           settings=_settings(min_size, min_change))
    if json:
        print_json({"since": when.isoformat() if when else None, **found.to_dict()})
        return
    render_detection(found)


def render_detection(found: Detection) -> None:
    from ..report.tables import print_table
    from ..report.units import format_change, format_value
    from rich.table import Table
    from rich.text import Text
    if found.changes:
        table = Table(title="change points, newest first", header_style="bold", title_justify="left")
        columns: tuple[tuple[str, JustifyMethod], ...] = (
            ("when", "left"), ("benchmark", "left"), ("metric", "left"), ("branch", "left"),
            ("env", "left"), ("kind", "left"), ("commits", "left"), ("level", "right"),
            ("change", "right"), ("p-value", "right"))
        for col, just in columns:
            table.add_column(col, justify=just, no_wrap=col in ("commits", "kind"))
        for d in found.changes:
            c, s = d.change, d.history.series
            table.add_row(c.after.started_at.strftime("%Y-%m-%d %H:%M"), Text(s.key.benchmark), Text(s.key.metric),
                          Text(s.key.branch or ""), (s.key.environment or "all")[:8],
                          Text(c.kind, style=KIND_STYLE[c.kind]), c.commit_range,
                          f"{format_value(c.mean_before, s.unit)} -> {format_value(c.mean_after, s.unit)}",
                          format_change(c.magnitude), f"{c.pvalue:.2g}")
        print_table(console, table)
    searchable = [(h, h.sensitivity) for h in found.histories if h.sensitivity is not None]
    if searchable:
        table = Table(title="series searched: the smallest step each would show",
                      header_style="bold", title_justify="left")
        columns = (
            ("benchmark", "left"), ("metric", "left"), ("branch", "left"), ("env", "left"),
            ("runs", "right"), ("noise", "right"), ("min step", "right"), ("found", "right"))
        for col, just in columns:
            table.add_column(col, justify=just, overflow="fold")
        for h, sens in searchable:
            key = h.series.key
            table.add_row(Text(key.benchmark), Text(key.metric), Text(key.branch or ""),
                          (key.environment or "all")[:8], str(len(h.series)),
                          _percent_or_value(sens.noise, sens.absolute_noise, h.series.unit),
                          _percent_or_value(sens.min_step, sens.absolute_step, h.series.unit),
                          str(len(h.change_points)))
        print_table(console, table)
        console.print("[dim]min step: found 80% of the time mid-series, larger nearer the "
                      "ends; found: change points (docs/changepoints.md)[/]")
    searched = found.series - found.too_short
    summary = (f"{len(found.changes)} change point(s) in {searched} series searched"
               + (f"; {found.too_short} series too short to search (fewer than 10 runs)"
                  if found.too_short else ""))
    if not found.series:
        summary = "No stored series. Run `perfloop run` a few times (on each commit, e.g. in CI) first."
    console.print(summary, highlight=False)
    if found.changes:
        console.print("[dim]perfloop history BENCHMARK shows one series with its runs.[/]")


# -- doctor -------------------------------------------------------------------------------------

STATUS_STYLE = {"ok": "green", "warn": "bold yellow", "unknown": "dim"}


def doctor(
    processes: Annotated[Optional[int], typer.Option(
        "--processes", "-p", min=3, help="Worker processes to plan for (default: each benchmark's "
                                         "configured number).", show_default=False)] = None,
    runs: Annotated[int, typer.Option("--runs", min=1, help="Recent runs of each benchmark the "
                                                            "noise is taken from.")] = 10,
    confidence: Annotated[float, typer.Option(help="Confidence level of the verdicts.")] = 0.99,
    power: Annotated[float, typer.Option(help="Chance of seeing a change of the MDC's size.")] = 0.8,
    machine_only: Annotated[bool, typer.Option(
        "--machine-only", help="Only the machine checks; do not read the store.")] = False,
    calibrate: Annotated[int, typer.Option(
        "--calibrate", min=0, help="First run the suite this many times at the current commit "
                                   "(label 'calibrate'), so that run-to-run drift is measured "
                                   "(4 runs give the 3 A/A pairs it needs).")] = 0,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Check what makes benchmarks lie on this machine, and the smallest change each
    benchmark's stored noise lets a comparison see; the drift between separate runs
    (run_noise, measured from repeat runs of one commit) and the time metric that decides
    each benchmark here (CPU time for CPU-bound code, wall time for code that waits).

    Machine checks: CPU governor and frequency scaling, turbo, load and busy processes,
    container CPU limits, swap, cores, ASLR and hash seed; each ok or warn with a next step.
    Then, per benchmark and metric, the minimum detectable change (MDC) at the configured
    processes, from the spread between worker medians in its recent runs in this environment,
    and a warning when it exceeds the tolerance. Exits 0: it advises, it does not gate.

    Example: `perfloop doctor --processes 20 --json`, `perfloop doctor --calibrate 4`
    """
    from contextlib import nullcontext

    from ..config import check_setting, find_config, load_config
    from ..errors import ConfigError
    from ..measure.environment import fingerprint
    from ..workflows.doctor import run_doctor

    check_setting("confidence", confidence, option="--confidence")
    if not 0.05 < power < 1:
        raise UsageError(f"--power {power}: must be between 0.05 and 1", hint="e.g. 0.8")
    root = project_root(directory)
    config = None
    if find_config(root) is not None:
        try:
            config = load_config(root)
        except ConfigError:
            config = None   # the doctor should still examine the machine with a broken config
    if calibrate and (config is None or machine_only):
        raise UsageError("--calibrate runs the project's benchmarks: it needs a valid "
                         "perfloop.toml and the store",
                         hint="run it in the project directory, without --machine-only")
    with nullcontext() if machine_only else open_store(directory, store, config=config) as db:
        if calibrate and db is not None and config is not None:
            from ..workflows.run import run_project
            for i in range(calibrate):
                err_console.print(f"calibrating: run {i + 1} of {calibrate}")
                run_project(config, db, label="calibrate")
        report = run_doctor(db, environment=fingerprint().get("fingerprint"), config=config,
                            processes=processes, recent=runs, confidence=confidence, power=power)
    if json:
        print_json(report.to_dict())
        return
    render_doctor(report)


def render_doctor(report) -> None:
    from ..report.tables import print_table
    from rich.table import Table
    from rich.text import Text
    table = Table(title="this machine", header_style="bold", title_justify="left")
    for col in ("check", "status", "found", "next step"):
        table.add_column(col)
    for c in report.checks:
        table.add_row(c.name, Text(c.status, style=STATUS_STYLE.get(c.status, "")), c.summary,
                      c.next_step or "")
    print_table(console, table)
    if report.noise:
        env = (report.environment or "")[:8]
        table = Table(title=f"minimum detectable change (environment {env}, {report.confidence * 100:g}% "
                            f"confidence, {report.power * 100:g}% power)",
                      header_style="bold", title_justify="left")
        columns: tuple[tuple[str, JustifyMethod], ...] = (
            ("benchmark", "left"), ("metric", "left"), ("runs", "right"), ("noise", "right"),
            ("processes", "right"), ("MDC", "right"), ("tolerance", "right"),
            ("processes needed", "right"), ("status", "left"))
        for col, just in columns:
            table.add_column(col, justify=just)
        for n in report.noise:
            mdc = f"{n.mdc * 100:.1f}%" if n.mdc != float("inf") else "-"
            spread = f"{n.spread * 100:.1f}%" if n.spread == n.spread else "-"
            table.add_row(Text(n.benchmark), Text(n.metric), str(n.runs), spread, str(n.processes), mdc,
                          f"{n.tolerance * 100:g}%",
                          str(n.processes_needed) if n.status == "warn" and n.processes_needed else "-",
                          Text(n.status, style=STATUS_STYLE.get(n.status, "")))
        print_table(console, table)
        for n in report.noise:
            if n.status == "warn":
                console.print(f"[bold yellow]warn:[/] {n.benchmark} {n.metric}: {n.message}",
                              highlight=False)
        console.print("[dim]noise: spread of worker medians within a run. MDC: the change a "
                      "comparison of two runs sees with that power, ~ (t(1-a/2) + t(power)) x "
                      "sqrt(2) x Yuen's standard error of the trimmed mean of n workers, "
                      "df = h - 1 (docs/history.md)[/]")
    for name, metric, reason in report.deciding:
        console.print(f"deciding: {name}: {metric}, {reason}", highlight=False)
    for metric, noise in report.run_noise.items():
        console.print(f"drift between separate runs, {metric}: {noise.describe()}", highlight=False)
    if report.deciding:
        console.print("[dim]The gate decides each benchmark on the metric above (decide_on in "
                      "perfloop.toml forces one); for CPU-bound suites CPU time lets it see 5% "
                      "on a busy machine where wall time cannot.[/]", highlight=False)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"{report.warnings} warning(s)." if report.warnings else "No warnings.")


# -- report -------------------------------------------------------------------------------------

def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.",
                                         metavar="FILE")] = Path("perfloop-report.html"),
    benchmark: Annotated[Optional[str], typer.Option(
        "--benchmark", help="Only this benchmark's series (name or base name).", show_default=False)] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="Only these metrics.")] = None,
    branch: Annotated[Optional[str], typer.Option(
        "--branch", "-b", help="Only series of this branch (default: every branch).",
        show_default=False)] = None,
    all_environments: AllEnvironments = False,
    since: Annotated[Optional[str], typer.Option(
        "--since", help="Only runs from this date (2024-05-01) or span back (30d).",
        show_default=False)] = None,
    compare: Annotated[Optional[tuple[str, str]], typer.Option(
        "--compare", metavar="BASE HEAD", help="Add a comparison of two runs (id, label or git "
                                               "ref) with the distributions of their samples.",
        show_default=False)] = None,
    gate: Annotated[Optional[Path], typer.Option(
        "--gate", metavar="FILE", help="Add the verdicts of a `perfloop gate --json` output.",
        show_default=False)] = None,
    no_history: Annotated[bool, typer.Option("--no-history", help="Leave the history charts out.")] = False,
    title: Annotated[str, typer.Option(help="The page's title.")] = "perfloop report",
    min_size: MinSize = 5,
    min_change: MinChange = 0.0,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Write a self-contained HTML report: history charts with change points and environment
    changes, a comparison's distributions, the gate's verdicts.

    The file works offline (Plotly's JavaScript is embedded, a few MB); open it in any browser
    or keep it as a CI artifact.

    Example: `perfloop report -o report.html --compare main HEAD --gate gate.json`
    """
    from ..measure.git import resolve_commit
    from ..report.html import render_report
    from ..workflows.history import all_histories

    when = parse_since(since)
    gate_data = None if gate is None else _gate_verdicts(gate)
    root = project_root(directory)
    with open_store(directory, store) as db:
        histories = [] if no_history else all_histories(
            db, benchmark=benchmark, metrics=metric, branch=branch,
            all_environments=all_environments, since=when, settings=_settings(min_size, min_change))
        comparison = None
        if compare is not None:
            from ..analysis.comparison import compare_runs
            base_run = db.get_run(db.resolve(compare[0], commit_of=lambda r: resolve_commit(root, r)))
            head_run = db.get_run(db.resolve(compare[1], commit_of=lambda r: resolve_commit(root, r)))
            comparison = compare_runs(base_run, head_run, benchmarks=[benchmark] if benchmark else None,
                                      metrics=metric)
        store_url = db.url
    shown = [h for h in histories if len(h.series) >= 2]
    notes = []
    if len(shown) < len(histories):
        notes.append(f"{len(histories) - len(shown)} series with a single run left out")
    page = render_report(histories=shown, comparison=comparison, gate=gate_data, title=title,
                         store_url=store_url, notes=notes)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"-o {output}: cannot write it: {exc.strerror or exc}",
                         hint="choose a writable path") from exc
    changes = sum(len(h.change_points) for h in shown)
    if json:
        print_json({"output": str(output.resolve()), "bytes": len(page.encode()), "series": len(shown),
                    "change_points": changes, "comparison": comparison is not None,
                    "gate": gate_data is not None})
        return
    console.print(f"Wrote {output} ({len(page.encode()) / 2**20:.1f} MiB): {len(shown)} series, "
                  f"{changes} change point(s)" + (", a comparison" if comparison is not None else "")
                  + (", the gate's verdicts" if gate_data is not None else "") + ".", highlight=False)


def _gate_verdicts(gate: Path) -> dict[str, Any]:
    """The verdicts of the ``perfloop gate --json`` output in ``gate``, or UsageError with the fix."""
    from ..report.html import load_gate_json
    try:
        return load_gate_json(gate.read_text())
    except OSError as exc:
        raise UsageError(f"--gate {gate}: cannot read it: {exc.strerror or exc}",
                         hint="pass the file written by `perfloop gate --json > gate.json`") from exc
    except ValueError as exc:
        raise UsageError(f"--gate {gate}: {exc}",
                         hint="pass the file written by `perfloop gate --json > gate.json`") from exc


def register(app: typer.Typer) -> None:
    for fn in (history, detect, doctor, report):
        app.command()(fn)
