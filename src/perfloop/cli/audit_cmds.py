"""The ``audit`` command: anti-patterns from the team's own history, with evidence.

Thin: calls :func:`perfloop.workflows.audit.run_audit` and renders findings as lines that wrap
at 80 columns, or ``--json``. Exits 1 when there is a finding that is not silenced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional, Sequence

import typer

from typing import TYPE_CHECKING

if TYPE_CHECKING:   # imported where used: start-up stays fast
    from ..workflows.audit import AuditReport
from .common import JsonFlag, ProjectDir, StoreUrl, console, open_store, print_json, project_root

SEVERITY = {1: "minor", 2: "costly", 3: "misleading"}


def _render(report: AuditReport) -> None:
    from rich.text import Text
    stats = report.stats
    console.print(Text(f"audit since {report.since:%Y-%m-%d}: {stats['commits']} commits "
                       f"({stats['performance_commits']} performance), {stats['runs']} runs, "
                       f"{stats['journal_entries']} journal entries, {stats['incidents']} "
                       f"incidents; {stats['seconds']:.1f} s", style="dim"))
    if not report.findings:
        console.print(Text("no anti-patterns found", style="bold green"))
    for f in report.findings:
        console.print(Text(f"\n{f.pattern.upper()} ({SEVERITY.get(f.severity, '')}): {f.title}",
                           style="bold red" if f.severity == 3 else "bold yellow"))
        for line in f.evidence:
            console.print(Text(f"  - {line}"))
        console.print(Text(f"  next: {f.next_step}", style="cyan"))
    for f in report.silenced:
        console.print(Text(f"\nsilenced {f.pattern} ({len(f.subjects)} items): {f.silenced}", style="dim"))
    console.print(Text("\nhow the team works (share of each workflow's practice):", style="bold"))
    for r in report.resemblance:
        console.print(Text(f"  {r.workflow}: {r.score:.0%}"))
        for reason in r.reasons:
            console.print(Text(f"      {reason}", style="dim"))
    if report.experiment:
        console.print(Text(f"\nexperiment for the worst finding: {report.experiment}", style="bold"))
    for error in report.errors:
        console.print(Text(f"could not check {error}", style="yellow"))


def audit(
    since: Annotated[Optional[str], typer.Option(
        "--since", help="The period to audit: 90d, 6w, 1y or a date.")] = "90d",
    only: Annotated[Optional[list[str]], typer.Option(
        "--only", help="Run only this detector (repeat), e.g. --only benchmark-decay.")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Name the anti-patterns in the journal, the git history and the store, with evidence.

    Exit 1 when a finding is not silenced (silence one with [[audit.silence]] in perfloop.toml
    and a reason), 0 when clean.

    Example: `perfloop audit --since 90d`
    """
    root = project_root(directory)
    from ..workflows.audit import run_audit
    from ..workflows.journal import parse_since
    cutoff = parse_since(since)
    with open_store(directory, store) as db:
        report = run_audit(root, db, since=cutoff, only=only or None)
    if json:
        print_json(report.to_dict())
    else:
        _render(report)
    if report.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(audit)


__all__: Sequence[str] = ["register"]
