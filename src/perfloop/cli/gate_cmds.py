"""The data-driven workflow's commands: ``gate``, ``approve``, ``approvals``, ``init``."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import ConfigError, GateFailed, UsageError
from ..report.escape import printable, terminal
# The options alone (light): their defaults are the command's defaults.
from ..workflows.gate.options import (DEFAULT_CONFIDENCE, DEFAULT_CONFIRM_BLOCKS,
                                      DEFAULT_MAX_BASE_AGE_HOURS, DEFAULT_ON_INCONCLUSIVE,
                                      DEFAULT_Q, DEFAULT_SAMPLING, FAIL, PASS, WARN, GateOptions)
from .common import JsonFlag, ProjectDir, StoreUrl, console, err_console, open_store, print_json, project_root

if TYPE_CHECKING:   # imported where used: start-up stays fast
    from ..workflows.gate import GateReport

STATUS_STYLE = {"fail": "bold red", "warn": "yellow", "approved": "cyan", "new": "blue", "pass": "green"}


class OnInconclusive(str, Enum):
    """The gate's policies for an undecided verdict, as choices of --on-inconclusive."""

    warn = WARN
    passes = PASS
    fail = FAIL


def _write_file(path: Path, text: str, what: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the {what} to {path}: {exc.strerror or exc}",
                         hint=f"pass another path to --{what}") from exc


def render_gate(report: GateReport) -> None:
    """The gate's report as a terminal table, then what needs attention."""
    from ..report.tables import print_table
    from rich.markup import escape
    from ..report.units import format_change, format_value
    from rich.table import Table
    from rich.text import Text
    dirty = ", with uncommitted changes" if report.head_dirty else ""
    console.print(f"base: {report.base_ref} ({report.base_commit[:10]})\n"
                  f"head: {report.head_ref} ({(report.head_commit or '-')[:10]}{dirty})")
    table = Table(header_style="bold")
    for col, just in (("benchmark", "left"), ("metric", "left"), ("base", "right"), ("head", "right"),
                      ("change", "right"), ("CI", "right"), ("verdict", "left"), ("gate", "left")):
        table.add_column(col, justify="right" if just == "right" else "left")
    for b in report.benchmarks:
        if not b.metrics:
            table.add_row(terminal(b.name), "-", "-", "-", "-", "-",
                          escape(b.error or "; ".join(b.notes) or "-"),
                          Text(b.status, style=STATUS_STYLE.get(b.status, "")))
        for i, m in enumerate(b.metrics):
            ci = (f"[{format_change(m.ci_low)}, {format_change(m.ci_high)}]"
                  if m.ci_low is not None and m.ci_high is not None else "-")
            verdict = m.verdict + (", confirmed" if m.confirmed else
                                   " (not confirmed)" if m.confirmed is False else "")
            if m.role == "context":
                verdict += " (context)"
            table.add_row(terminal(b.name) if i == 0 else "", escape(m.metric), format_value(m.base, m.unit),
                          format_value(m.head, m.unit),
                          format_change(m.change) if m.change is not None else "-", ci, verdict,
                          Text(m.status, style=STATUS_STYLE.get(m.status, "")))
    print_table(console, table, essential=("verdict", "gate"))
    for b in report.benchmarks:
        why = next((m for m in b.metrics if m.deciding_metric and m.deciding_reason), None)
        if why is not None:
            console.print(f"[dim]{escape(b.name)}: {escape(why.deciding_metric or '')} decides, "
                          f"{escape(why.deciding_reason or '')}[/]")
        for m in b.metrics:
            for a in m.approvals:
                console.print(f"[cyan]approved:[/] {terminal(b.name)} {escape(m.metric)}: "
                              f"{escape(a.describe())}")
            for note in m.notes:
                console.print(f"[dim]{terminal(b.name)} {escape(m.metric)}: {escape(note)}[/]")
        for a in b.approvals:
            console.print(f"[cyan]approved:[/] {terminal(b.name)}: {escape(a.describe())}")
        if b.error:
            console.print(f"[red]{terminal(b.name)}:[/] {escape(b.error)}")
        for note in b.notes:
            console.print(f"[yellow]{terminal(b.name)}:[/] {escape(note)}")
        for effect in b.side_effects:
            console.print(f"[yellow]side effect:[/] {terminal(b.name)}: {escape(effect)}")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    style = "bold green" if report.passed else "bold red"
    console.print(Text(report.summary(), style=style))
    if not report.passed:
        console.print("Fix the regression, or approve it with a reason: perfloop approve BENCHMARK "
                      "--reason \"...\" (or a commit trailer Perf-Approved: BENCHMARK: reason).")


def gate(
    base: Annotated[str, typer.Option("--base", "-b", help="Base git ref, e.g. origin/main.",
                                      show_default=False)],
    benchmark: Annotated[Optional[list[str]], typer.Argument(
        help="Benchmarks to gate (name or base name); all when omitted.", show_default=False)] = None,
    head: Annotated[Optional[str], typer.Option(
        help="Head git ref (default: the working tree, uncommitted changes included).")] = None,
    blocks: Annotated[int, typer.Option(help="A B B A blocks measured before the first verdict.",
                                        min=1)] = DEFAULT_SAMPLING.blocks,
    max_blocks: Annotated[int, typer.Option(help="Cost limit: most blocks per benchmark.",
                                            min=1)] = DEFAULT_SAMPLING.max_blocks,
    max_seconds: Annotated[float, typer.Option(help="Cost limit: most seconds of sampling per benchmark.",
                                               min=1.0)] = DEFAULT_SAMPLING.max_seconds,
    confirm_blocks: Annotated[int, typer.Option(help="Blocks measured afresh to confirm a regression.",
                                                min=1)] = DEFAULT_CONFIRM_BLOCKS,
    fdr: Annotated[float, typer.Option("--fdr", help="False discovery rate across the suite "
                                                     "(Benjamini-Hochberg q).")] = DEFAULT_Q,
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = DEFAULT_CONFIDENCE,
    tolerance: Annotated[Optional[float], typer.Option(
        help="Relative change that matters (default: each benchmark's own, 5%).")] = None,
    on_inconclusive: Annotated[OnInconclusive, typer.Option(
        "--on-inconclusive", help="What an undecided verdict does: warn (pass, and say so), pass, "
                                  "or fail.")] = OnInconclusive(DEFAULT_ON_INCONCLUSIVE),
    reuse_base: Annotated[bool, typer.Option(
        "--reuse-base", help="Let a stored run of the base commit, from this environment, clear "
                             "benchmarks without measuring the base again.")] = False,
    max_base_age: Annotated[float, typer.Option(help="Hours a reused base run may be old.",
                                                min=0.01)] = DEFAULT_MAX_BASE_AGE_HOURS,
    values: Annotated[Optional[int], typer.Option(help="Override values per worker.", min=1)] = None,
    warmup: Annotated[Optional[int], typer.Option(help="Override warmup values per worker.", min=0)] = None,
    min_time: Annotated[Optional[float], typer.Option(help="Override seconds per value.", min=0.0)] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Override the timeout of one call (s).",
                                                     min=0.1)] = None,
    markdown: Annotated[Optional[Path], typer.Option(
        help="Write the report as Markdown (a pull-request comment or job summary).",
        metavar="FILE")] = None,
    junit: Annotated[Optional[Path], typer.Option(help="Write the report as JUnit XML.", metavar="FILE")] = None,
    github: Annotated[Optional[bool], typer.Option(
        "--github/--no-github", help="GitHub Actions annotations and job summary (default: when "
                                     "GITHUB_ACTIONS=true).", show_default=False)] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Gate a change: measure base and head, exit 1 on an unapproved, confirmed regression.

    The base is checked out in a git worktree and measured interleaved with the head (A B B A)
    on this machine; blocks are added while a verdict is inconclusive, up to the cost limit.
    Across the suite the false discovery rate is controlled (Benjamini-Hochberg), and every
    regression is re-measured before it fails the gate. Approvals (perfloop approve, or a
    commit trailer Perf-Approved: BENCHMARK: reason) let a regression through. Inconclusive
    verdicts warn by default: on a noisy machine "cannot tell" is common and must not block.

    Exit codes: 0 pass, 1 unapproved regression (or a benchmark that fails at head), 2 bad input.

    Example: `perfloop gate --base origin/main --markdown gate.md --junit gate.xml`
    """
    from rich.markup import escape
    from ..config import load_config
    from ..workflows.gate import run_gate
    root = project_root(directory)
    config = load_config(root)
    options = GateOptions.build(
        base, head=head, benchmarks=tuple(benchmark or ()), blocks=blocks, max_blocks=max_blocks,
        max_seconds=max_seconds, confirm_blocks=confirm_blocks, q=fdr, confidence=confidence,
        tolerance=tolerance, on_inconclusive=on_inconclusive.value, reuse_base=reuse_base,
        max_base_age_hours=max_base_age,
        overrides={"values": values, "warmup": warmup, "min_time": min_time, "timeout": timeout})
    db = open_store(root, store, config=config)
    on_event = None if json else (lambda message: err_console.print(f"[dim]{escape(message)}[/]"))
    try:
        report = run_gate(config, db, options, on_event=on_event)
    finally:
        db.close()
    _publish(report, config.path, markdown=markdown, junit=junit, github=github, json=json)
    if not report.passed:
        # main() escapes Rich markup itself (escaping here too showed quote\[items=10]); a name
        # must not break the line, though.
        raise GateFailed(printable(report.failure_message()),
                         hint="fix it, or approve it: perfloop approve BENCHMARK --reason \"...\"")


def _publish(report: GateReport, config_path: Path | None, *, markdown: Path | None,
             junit: Path | None, github: bool | None, json: bool) -> None:
    """The report where it was asked for: files, GitHub Actions, and the terminal or JSON."""
    from ..report.github import append_step_summary, render_annotations
    from ..report.junit import render_junit
    from ..report.markdown import render_markdown
    from ..workflows.gate import in_github_actions
    text = render_markdown(report)
    if markdown is not None:
        _write_file(markdown, text, "markdown")
    if junit is not None:
        _write_file(junit, render_junit(report), "junit")
    if github if github is not None else in_github_actions():
        config_file = None
        if config_path is not None and os.environ.get("GITHUB_WORKSPACE"):
            try:
                config_file = str(config_path.relative_to(Path(os.environ["GITHUB_WORKSPACE"]).resolve()))
            except ValueError:
                config_file = None
        annotations = render_annotations(report, config_file=config_file)
        if annotations:
            # Workflow commands are read from stdout; with --json they go to stderr instead so
            # that stdout stays one JSON document (GitHub reads both streams).
            (err_console if json else console).file.write(annotations)
        append_step_summary(text)
    if json:
        print_json(report.to_dict())
    else:
        render_gate(report)


def approve(
    benchmark: Annotated[str, typer.Argument(help="The benchmark (name or base name) to approve.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why the regression is acceptable.",
                                        show_default=False)],
    metric: Annotated[Optional[str], typer.Option(help="Only this metric (default: every metric).")] = None,
    commit: Annotated[str, typer.Option(help="The commit it approves (a git ref).")] = "HEAD",
    author: Annotated[Optional[str], typer.Option(
        help="Who approves (default: git config user.name and user.email).")] = None,
    up_to: Annotated[Optional[float], typer.Option(
        "--up-to", metavar="PERCENT", min=0.0,
        help="The largest slowdown approved, in percent (default: what the next gate measures; "
             "a clearly larger regression fails again).")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Approve a regression of BENCHMARK: a reviewed, documented exception to the gate.

    Recorded with who, why and the commit; the gate accepts it for a change whose commits
    (base..head) include that commit. It approves a size: --up-to, or else the change the
    first gate using it measures; a clearly larger regression later fails again. A fresh CI runner does not have this store: there, a
    commit trailer `Perf-Approved: BENCHMARK: reason` in the change does the same.

    Example: `perfloop approve checkout --reason "correctness fix for #812 needs the extra copy"`
    """
    from rich.markup import escape
    from ..config import load_config
    from ..measure.git import resolve_commit
    from ..workflows.approvals import Approval, git_author, record_approval
    root = project_root(directory)
    config = None
    try:
        config = load_config(root)
    except ConfigError:
        config = None
    if config is not None:
        from ..measure.suites import with_suites
        # an unknown name is a usage error, with the known ones
        with_suites(config, [benchmark]).select([benchmark])
    sha = resolve_commit(root, commit)
    if sha is None and commit != "HEAD":
        raise UsageError(f"--commit {commit}: no such commit in this repository")
    who = author or git_author(root)
    if not who:
        raise UsageError("who approves? git config user.name is not set",
                         hint="pass --author \"Name <email>\"")
    db = open_store(root, store, config=config)
    try:
        approval = record_approval(db, Approval(benchmark=benchmark, reason=reason, author=who,
                                                commit=sha, metric=metric,
                                                data={} if up_to is None else {"up_to": up_to / 100}))
    finally:
        db.close()
    if json:
        print_json(approval.to_dict())
        return
    what = f"{benchmark}" + (f" ({metric})" if metric else "")
    at = f" at {sha[:10]}" if sha else " (outside git: for any commit)"
    size = f", up to {up_to:+g}%" if up_to is not None else ", at the size the next gate measures"
    console.print(escape(f"Approved {what}{at} by {who}{size}: {reason}"))
    console.print("[dim]" + escape(f"In CI without this store, add a commit trailer instead: "
                                   f"Perf-Approved: {benchmark}: {reason}") + "[/]")


def approvals(
    benchmark: Annotated[Optional[str], typer.Argument(help="Only this benchmark's approvals.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many, newest first.", min=1)] = 50,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """List recorded approvals (from perfloop approve and from commit trailers), newest first.

    Example: `perfloop approvals checkout --json`
    """
    from ..report.tables import print_table
    from rich.markup import escape
    from ..workflows.approvals import list_approvals
    from rich.table import Table
    db = open_store(directory, store)
    try:
        items = list_approvals(db, benchmark=benchmark, limit=limit)
    finally:
        db.close()
    if json:
        print_json([a.to_dict() for a in items])
        return
    if not items:
        console.print("No approvals recorded. `perfloop approve BENCHMARK --reason ...` records one.")
        return
    table = Table(title="Approvals", header_style="bold")
    for col in ("id", "benchmark", "metric", "commit", "author", "source", "when", "reason"):
        table.add_column(col)
    for a in items:
        table.add_row(str(a.id), terminal(a.benchmark), escape(a.metric or "all"), (a.commit or "-")[:10],
                      escape(a.author), a.source,
                      a.created_at.strftime("%Y-%m-%d %H:%M") if a.created_at else "", escape(a.reason))
    print_table(console, table)


def init(
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
    directory: ProjectDir = Path("."),
    json: JsonFlag = False,
) -> None:
    """Set a project up: perfloop.toml with one benchmark, its module, and a CI workflow.

    A project that already has a pytest-benchmark suite (tests using the `benchmark` fixture)
    or an asv suite (asv.conf.json) gets a perfloop.toml that measures it ([[suite]] tables)
    instead of the placeholder benchmark and its module.

    Writes perfloop.toml, benchmarks/perfloop_benchmarks.py (a placeholder target that runs as
    it is: replace its body with a call into your code) and .github/workflows/perfloop.yml
    (the gate on pull requests, nightly history runs). Existing files are skipped unless
    --force.

    Example: `perfloop init` then `perfloop run` and, on a branch, `perfloop gate --base main`
    """
    from rich.markup import escape
    from ..workflows.scaffold import scaffold
    root = project_root(directory)
    result = scaffold(root, force=force)
    if json:
        print_json(result.to_dict())
        return
    target = result.target
    if result.suites:
        console.print(f"Found {escape(result.suites[0])}: perfloop.toml measures it as it is")
    elif target.kind:
        console.print(f"Found the {target.kind} [bold]{target.name}[/]"
                      + (" (src layout)" if target.src_layout else ""))
    else:
        console.print("Found no package or module: the benchmark is a placeholder")
    for p in result.created:
        console.print(f"[green]created[/] {escape(str(p))}")
    for p in result.overwritten:
        console.print(f"[yellow]overwrote[/] {escape(str(p))}")
    for p, why in result.skipped:
        console.print(f"[yellow]skipped[/] {escape(str(p))} ({escape(why)}; --force overwrites it)")
    if result.ignored:
        console.print(f"[green]added[/] .perfloop/ to {escape(str(result.ignored))}")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    if result.suites:
        console.print("Next: run `perfloop run`, and commit the files.")
        return
    console.print("Next: replace the PLACEHOLDER in benchmarks/perfloop_benchmarks.py, run "
                  "`perfloop run`, and commit the files.")


def register(app: typer.Typer) -> None:
    for fn in (gate, approve, approvals, init):
        app.command()(fn)
