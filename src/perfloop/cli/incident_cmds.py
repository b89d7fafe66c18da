"""The profile-and-patch commands: ``incident``, ``hypothesis``, ``hypotheses``, ``baseline``,
``profile``, ``verify`` and ``mode``.

Thin: each parses its options, calls :mod:`perfloop.workflows.incident` (and ``verify``,
``profiling``), and renders the result as text or ``--json``. In incident mode each prints the
mode banner on stderr first, so that ``--json`` output on stdout stays clean.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, Sequence

import typer

from ..errors import GateFailed, UsageError

from .common import JsonFlag, ProjectDir, StoreUrl, console, err_console, open_store, print_json, project_root
from .incident_views import (OUTCOME_STYLE, VERDICT_STYLE, pct, render_incident, render_target,
                             render_verify)

if TYPE_CHECKING:   # imported where used: start-up stays fast
    from ..config import ProjectConfig
    from ..store import Store
    from ..workflows import incident as incidents


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h)?\s*$", re.IGNORECASE)
_SCALE = {None: 1.0, "s": 1.0, "sec": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str | None, option: str = "--duration") -> float | None:
    """``30s``, ``10m``, ``1h``, ``500ms`` or a plain number of seconds."""
    if text is None:
        return None
    m = _DURATION_RE.match(text)
    if m is None or float(m.group(1)) <= 0:
        raise UsageError(f"{option} {text!r}: not a duration", hint="e.g. 30s, 10m, 1h or 45")
    return float(m.group(1)) * _SCALE[(m.group(2) or "").lower() or None]


def parse_effect(text: str | None) -> float | None:
    """``-30%`` or ``-0.3``: the expected relative change of the target metric."""
    if text is None:
        return None
    raw = text.strip()
    try:
        return float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(f"--effect {text!r}: not a relative change",
                         hint="e.g. --effect -30% (30% lower) or --effect -0.3") from None


def _context(directory: Path, store: str | None, *, need_config: bool = True
             ) -> tuple[Path, ProjectConfig | None, Store]:
    from ..config import load_config
    root = project_root(directory)
    config = load_config(root) if need_config else None
    return root, config, open_store(directory, store, config=config)


# --------------------------------------------------------------------------------------------
# incident open / close / show / list

incident_app = typer.Typer(help="Incident mode: open one for a spike, close it with a journal entry.",
                           no_args_is_help=True, rich_markup_mode=None)


@incident_app.command("open")
def incident_open(
    title: Annotated[str, typer.Argument(help="What is wrong, in a few words.")],
    benchmark: Annotated[Optional[list[str]], typer.Option(
        "--benchmark", "-b", help="Benchmark(s) under investigation (repeat the option).")] = None,
    metric: Annotated[Optional[str], typer.Option(
        "--metric", "-m", help="The metric that is bad: p99, p50, wall_time, peak_rss, ...")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Open an incident: the project enters incident mode until it is closed.

    Example: `perfloop incident open "checkout p99 spike" --benchmark api-checkout --metric p99`
    """
    from ..workflows import incident as incidents
    from rich.text import Text
    root, config, db = _context(directory, store)
    with db:
        found = incidents.open_incident(db, root, title, benchmarks=benchmark or (), metric=metric,
                                        config=config)
    if json:
        print_json(found.to_dict())
        return
    console.print(Text(f"Opened incident #{found.id} {found.title!r}: the project is in incident mode."))
    console.print(Text(f"Next: {incidents.next_step(found)}"))


@incident_app.command("close")
def incident_close(
    note: Annotated[Optional[str], typer.Option("--note", "-n", help="What you found and did.")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Close the open incident and write its journal entry; back to normal development.

    Example: `perfloop incident close --note "rules prepared once per cart; p99 back to 40 ms"`
    """
    from ..workflows import incident as incidents
    root, _, db = _context(directory, store, need_config=False)
    with db:
        closed = incidents.close_incident(db, root, note)
    if json:
        print_json(closed.to_dict())
        return
    render_incident(closed)
    console.print(f"Closed incident #{closed.id}; its journal entry is stored "
                  f"(perfloop incident show {closed.id}).")


@incident_app.command("show")
def incident_show(
    incident_id: Annotated[Optional[int], typer.Argument(
        help="Incident id (default: the open one, else the latest).", show_default=False)] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Show an incident: hypotheses, baseline, profiles, verifications, journal entry.

    Example: `perfloop incident show 3 --json`
    """
    from ..workflows import incident as incidents
    root, _, db = _context(directory, store, need_config=False)
    with db:
        if incident_id is None:
            found = incidents.current_incident(db, root) or next(iter(incidents.list_incidents(db, root, limit=1)), None)
            if found is None:
                raise UsageError("no incident in this project yet", hint=incidents.OPEN_HINT)
        else:
            found = incidents.get_incident(db, incident_id)
    if json:
        print_json(found.to_dict())
        return
    render_incident(found)


@incident_app.command("list")
def incident_list(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 20,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """List the project's incidents, newest first.

    Example: `perfloop incident list -n 5`
    """
    from ..report.tables import print_table
    from rich.markup import escape
    from ..workflows import incident as incidents
    from rich.table import Table
    from rich.text import Text
    root, _, db = _context(directory, store, need_config=False)
    with db:
        items = incidents.list_incidents(db, root, limit=limit)
    if json:
        print_json([i.to_dict() for i in items])
        return
    if not items:
        console.print(f"No incidents yet. {incidents.OPEN_HINT[0].upper()}{incidents.OPEN_HINT[1:]}.")
        return
    table = Table(title="Incidents", header_style="bold")
    for col in ("id", "title", "status", "opened", "duration", "hypothesis", "verdict"):
        table.add_column(col)
    for i in items:
        hyp = i.hypothesis
        verdict = (i.verification or {}).get("verdict") or ""
        table.add_row(str(i.id), escape(i.title), i.status, f"{i.opened_at:%Y-%m-%d %H:%M}",
                      incidents._duration_text(i.age()),
                      Text(hyp.outcome or "unchecked", style=OUTCOME_STYLE[hyp.outcome]) if hyp else Text("none", style="dim"),
                      Text(verdict, style=VERDICT_STYLE.get(verdict, "")))
    print_table(console, table)


# --------------------------------------------------------------------------------------------
# hypothesis / hypotheses


def hypothesis(
    text: Annotated[str, typer.Argument(help="What you think is slow, in a sentence.")],
    expect: Annotated[Optional[list[str]], typer.Option(
        "--expect", "-e", help="module:function or module you expect to dominate (repeatable).")] = None,
    share: Annotated[Optional[float], typer.Option(
        help="Share of the time you expect it to hold, e.g. 0.5 (default threshold 0.3).")] = None,
    effect: Annotated[Optional[str], typer.Option(
        help="Expected effect of the fix on the incident's metric, e.g. -30%.")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Write down what you expect before profiling (hypothesis first).

    Example: `perfloop hypothesis "discount rules are recomputed for every line item" --expect shop.pricing:apply_discounts --effect -50%`
    """
    from ..workflows import incident as incidents
    root, _, db = _context(directory, store, need_config=False)
    with db:
        made = incidents.add_hypothesis(db, root, text, expect=expect or (), expected_share=share,
                                        expected_effect=parse_effect(effect))
    if json:
        print_json(made.to_dict())
        return
    console.print(f"Recorded hypothesis #{made.id}. Next: perfloop baseline (before the patch), "
                  f"then perfloop profile.")


def hypotheses(
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Every hypothesis with its outcome, and the hit rate over time (intuition, measured).

    Example: `perfloop hypotheses --json`
    """
    from ..report.tables import print_table
    from rich.markup import escape
    from ..workflows import incident as incidents
    from rich.table import Table
    from rich.text import Text
    root, _, db = _context(directory, store, need_config=False)
    with db:
        history = incidents.hypothesis_history(db, root)
    if json:
        print_json(history.to_dict())
        return
    if not history.items:
        console.print("No hypotheses yet: they are written in incidents (perfloop hypothesis ...).")
        return
    table = Table(title="Hypotheses", header_style="bold")
    for col in ("id", "when", "incident", "hypothesis", "expected", "outcome"):
        table.add_column(col)
    for h, iid, title in history.items:
        table.add_row(str(h.id), f"{h.created_at:%Y-%m-%d}", escape(f"#{iid} {title}"), escape(h.text),
                      escape(", ".join(h.expect) or "-"), Text(h.outcome or "unchecked", style=OUTCOME_STYLE[h.outcome]))
    print_table(console, table)
    periods = Table(title="Hit rate over time (confirmed / (confirmed + refuted))", header_style="bold")
    for col in ("month", "hypotheses", "confirmed", "refuted", "unclear", "too broad", "hit rate",
                "cumulative"):
        periods.add_column(col, justify="left" if col == "month" else "right")
    for p in history.periods:
        periods.add_row(p["period"], str(p["hypotheses"]), str(p["confirmed"]), str(p["refuted"]),
                        str(p["unclear"]), str(p.get("too-broad", 0)), pct(p.get("hit_rate")),
                        pct(p.get("cumulative_hit_rate")))
    console.print(periods)
    console.print(f"Overall hit rate: {pct(history.hit_rate)} "
                  f"({history.confirmed} confirmed, {history.refuted} refuted)")


# --------------------------------------------------------------------------------------------
# baseline / profile / verify / mode


def baseline(
    processes: Annotated[Optional[int], typer.Option(min=1, help="Worker processes (runs) per benchmark.")] = None,
    values: Annotated[Optional[int], typer.Option(min=1, help="Values per worker.")] = None,
    warmup: Annotated[Optional[int], typer.Option(min=0, help="Warmup values per worker.")] = None,
    duration: Annotated[Optional[str], typer.Option(
        help="HTTP benchmarks: total load time (e.g. 2m), split over the load periods; with "
             "--scrape: how long to scrape.")] = None,
    from_run: Annotated[Optional[str], typer.Option(
        "--from", help="Adopt a stored run (id, label or git ref) as the baseline instead of measuring.")] = None,
    scrape: Annotated[Optional[str], typer.Option(
        help="Scrape a live service's metrics endpoint (Prometheus text format) instead.")] = None,
    scrape_metric: Annotated[Optional[list[str]], typer.Option(
        "--scrape-metric", help='Metric to read from --scrape: NAME or NAME{label="value"} (repeatable).')] = None,
    interval: Annotated[Optional[str], typer.Option(help="Seconds between scrapes (default 15s).")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Measure the before-state of the incident, with the settings verify will reuse.

    Example: `perfloop baseline --processes 6` or, for a live service,
    `perfloop baseline --scrape http://svc:9100/metrics --scrape-metric http_request_duration_seconds --duration 10m`
    """
    from rich.markup import escape
    from ..measure.git import resolve_commit
    from ..workflows.verify import capture_baseline
    from .progress import RichProgress
    root, config, db = _context(directory, store)
    assert config is not None
    progress = None if json else RichProgress(err_console)
    with db:
        try:
            adopt = db.resolve(from_run, commit_of=lambda r: resolve_commit(root, r)) if from_run else None
            outcome = capture_baseline(config, db, processes=processes, values=values, warmup=warmup,
                                       duration=parse_duration(duration), scrape_url=scrape,
                                       scrape_metrics=scrape_metric or (),
                                       interval=parse_duration(interval, "--interval"), adopt_run=adopt,
                                       progress=progress)
            stored = db.get_run(outcome.run_id)
        finally:
            if progress:
                progress.close()
    if json:
        print_json(outcome.to_dict())
        return
    from ..report.text import render_results
    render_results(console, stored.results, title=f"baseline: run #{outcome.run_id}")
    snap = outcome.snapshot
    where = f" at {snap.commit[:10]}{'+dirty' if snap.dirty else ''}" if snap and snap.commit else ""
    console.print(f"Baseline of incident #{outcome.incident_id}: run #{outcome.run_id}{where}. "
                  f"Next: perfloop profile, patch, then perfloop verify.")
    for w in outcome.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)


def profile(
    command: Annotated[Optional[list[str]], typer.Argument(
        help="A command to profile, after --, e.g. -- python app.py.", show_default=False)] = None,
    benchmark: Annotated[Optional[list[str]], typer.Option(
        "--benchmark", "-b", help="Benchmark(s) to profile (default: the incident's).")] = None,
    pid: Annotated[Optional[int], typer.Option(help="Profile a running Python process (py-spy).")] = None,
    duration: Annotated[Optional[str], typer.Option(
        help="How long: e.g. 30s (default: 3s per callable, 10s for a pid, until exit for a command).")] = None,
    explore: Annotated[bool, typer.Option(
        "--explore", help="Look around without a hypothesis (recorded as exploration).")] = False,
    expect: Annotated[Optional[list[str]], typer.Option(
        "--expect", "-e", help="Check this module:function once, without recording a hypothesis.")] = None,
    profiler: Annotated[str, typer.Option(
        help="auto (pyinstrument for callables, py-spy when they start threads and for "
             "commands), pyinstrument, cprofile or py-spy. pyinstrument and cprofile record one "
             "thread and refuse commands that are not Python programs.")] = "auto",
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Rows of the hot-spot table.")] = 10,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Profile: hot spots, flame graph files, systemic signals, and the hypothesis's verdict.

    Example: `perfloop profile`, `perfloop profile --benchmark checkout`,
    `perfloop profile -- python app.py`, `perfloop profile --pid 4242 --duration 30s`,
    `perfloop profile --explore`
    """
    from ..config import load_config
    from rich.text import Text
    from ..report.flamegraph import write_flamegraph
    from ..workflows.profiling import profile as run_profile
    root = project_root(directory)
    needs_config = not command and pid is None
    config = load_config(root) if needs_config else None
    with open_store(directory, store, config=config) as db:
        report = run_profile(db, root, config=config, benchmarks=benchmark or (), command=command or (),
                             pid=pid, duration=parse_duration(duration), explore=explore,
                             expect=expect or (), profiler=profiler, write_files=write_flamegraph)
    if json:
        print_json(report.to_dict())
        return
    for t in report.targets:
        render_target(t, root, limit)
    if report.outcome:
        line = Text("hypothesis: ")
        line.append(report.outcome, style=OUTCOME_STYLE[report.outcome])
        console.print(line)
    if report.reading:
        console.print(Text(report.reading))
    for n in report.notes:
        console.print(Text(f"note: {n}", style="dim"))


def verify(
    check: Annotated[bool, typer.Option(
        "--check", help="Exit 1 unless the verdict is verified and the effect attributable.")] = False,
    tolerance: Annotated[Optional[float], typer.Option(
        help="Relative change that matters (default: each benchmark's own).")] = None,
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.99,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Measure the patched code like the baseline and compare on every metric; attribution check.

    Example: `perfloop verify` (after `perfloop baseline` and your patch), or `perfloop verify --check` in a script
    """
    from ..config import check_setting
    from ..report.text import render_comparison
    from ..workflows.verify import verify as run_verify
    from .progress import RichProgress
    if tolerance is not None:
        check_setting("tolerance", tolerance, option="--tolerance")
    root, config, db = _context(directory, store)
    assert config is not None
    progress = None if json else RichProgress(err_console)
    with db:
        try:
            report = run_verify(config, db, progress=progress, confidence=confidence, tolerance=tolerance)
        finally:
            if progress:
                progress.close()
    if json:
        print_json(report.to_dict())
    else:
        render_comparison(console, report.comparison)
        render_verify(report)
    if check and (report.verdict != "verified" or not report.attribution.attributable):
        raise GateFailed(f"verify: {report.verdict}"
                         + ("" if report.attribution.attributable else " and not attributable"))


def mode(
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Say whether the project is in incident mode or development, and list the open loops.

    An open loop is something started and not finished: an open incident, a hotfix closed
    without verification, a journal entry with no measured effect, a running drill; each is
    shown with the command that closes it.

    Example: `perfloop mode --json`
    """
    from ..workflows.modes import project_mode
    from rich.text import Text
    root, _, db = _context(directory, store, need_config=False)
    with db:
        state = project_mode(db, root)
    if json:
        print_json(state)
        return
    if state["incident"] is None:
        console.print(Text("development mode (no open incident): changes go through perfloop gate"))
    else:
        inc = state["incident"]
        console.print(Text(f"incident mode: #{inc['id']} {inc['title']!r}", style="bold magenta"))
        console.print(Text(f"next: {state['next']}"))
    risk = state.get("risk")
    if risk:
        flags = [w for w in ("stagnation", "chaos") if risk.get(w)]
        console.print(Text(f"risk overlay: cycle {risk['cycle']!r}, {risk['spent']:.0f} of "
                           f"{risk['budget']:.0f} points spent"
                           + (f"; {' and '.join(flags)}" if flags else ""),
                           style="bold yellow" if flags else ""))
    else:
        console.print(Text("risk overlay: no release cycle open", style="dim"))
    loops = state["open_loops"]
    if not loops:
        console.print("no open loops")
        return
    console.print(Text(f"{len(loops)} open loop(s):", style="bold"))
    for loop in loops:
        console.print(Text(f"- {loop['ref']} ({loop['kind']}): {loop['title']}"))
        console.print(Text(f"    closes with: {loop['closes_with']}", style="dim"))


def register(app: typer.Typer) -> None:
    app.add_typer(incident_app, name="incident")
    for fn in (hypothesis, hypotheses, baseline, profile, verify, mode):
        app.command()(fn)


__all__: Sequence[str] = ["parse_duration", "parse_effect", "register"]
