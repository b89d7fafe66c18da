"""The journal commands: ``journal`` (list, search), ``journal add``, ``journal show``,
``journal actual`` and ``journal export``.

Thin: each parses its options, calls :mod:`perfloop.workflows.journal`, and renders the entries
as lines (they wrap cleanly at 80 columns in CI logs) or ``--json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional, Sequence

import typer

from ..errors import UsageError
from ..records import CHANGE_KINDS

if TYPE_CHECKING:   # imported where used: start-up stays fast
    from ..workflows import journal
from .common import JsonFlag, ProjectDir, StoreUrl, console, open_store, print_json, project_root

journal_app = typer.Typer(
    help="The journal of every change, incident, approval and gate failure: why, expected, "
         "actual.\n\nExample: `perfloop journal --search cache --since 30d`",
    rich_markup_mode=None, invoke_without_command=True)

STATUS_STYLE = {"open": "bold yellow", "failed": "bold red", "regressed": "bold red",
                "unverified": "bold red", "inconclusive": "yellow", "approved": "cyan",
                "verified": "bold green", "done": "green"}


def _render(entry: journal.Entry, *, full: bool = False) -> None:
    from rich.text import Text
    from ..workflows import journal
    head = Text(f"{entry.id:>4}  {entry.created_at:%Y-%m-%d}  ")
    head.append(entry.status, style=STATUS_STYLE.get(entry.status, ""))
    head.append(f"  [{entry.workflow}] ")
    head.append(entry.title, style="bold")
    console.print(head)
    expected = journal.describe(entry.expected) or "-"
    actual = journal.describe(entry.actual)
    rows = [("why", entry.why or "-"), ("expected", expected),
            ("actual", actual or "OPEN LOOP: not measured yet")]
    if full or entry.commits:
        rows.append(("commits", ", ".join(c[:12] for c in entry.commits) or "-"))
    if full:
        runs = ([f"baseline #{entry.baseline_run_id}"] if entry.baseline_run_id else []) + \
            [f"#{r}" for r in entry.verification_run_ids]
        rows += [("kind", entry.kind or "-"), ("runs", ", ".join(runs) or "-"),
                 ("notes", entry.notes or "-")]
    for label, value in rows:
        console.print(Text(f"      {label}: {value}"))


@journal_app.callback()
def journal_list(
    ctx: typer.Context,
    search: Annotated[Optional[str], typer.Option("--search", "-s", help="Only entries whose text contains TEXT.", metavar="TEXT")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Only entries since: 30d, 12h, 6w or a date.")] = None,
    workflow: Annotated[Optional[str], typer.Option("--workflow", "-w", help="Only one workflow: profile-and-patch, regression, manual, ...")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """List journal entries, newest first, then the open loops.

    Example: `perfloop journal --search cache --since 30d --workflow manual`
    """
    from rich.text import Text
    from ..workflows import journal
    if ctx.invoked_subcommand is not None:
        return
    root = project_root(directory)
    cutoff = journal.parse_since(since)
    with open_store(directory, store) as db:
        found = journal.entries(db, since=cutoff, search=search, workflow=workflow, root=root)
    loops = journal.open_loops(found)
    if json:
        print_json({"entries": [e.to_dict() for e in found], "open_loops": [e.id for e in loops]})
        return
    if not found:
        console.print("no journal entries" + (" match" if search or since or workflow else "") +
                      '; add one: perfloop journal add "TITLE" --why "..." --expect "BENCH p99 -20%"')
        return
    for entry in found:
        _render(entry)
    console.print(Text(f"\n{len(found)} entries; {len(loops)} open loop(s)" +
                       (f": {', '.join(e.id for e in loops)}" if loops else "") +
                       (" (record what happened: perfloop journal actual ID \"BENCH METRIC -N%\")"
                        if loops else "")))


@journal_app.command("add")
def journal_add(
    title: Annotated[str, typer.Argument(help="The change, in a few words.")],
    why: Annotated[str, typer.Option("--why", help="Why it was made (required).")] = "",
    expect: Annotated[Optional[str], typer.Option("--expect", help='Expected effect: "BENCH METRIC -20%".')] = None,
    kind: Annotated[Optional[str], typer.Option("--kind", help=f"One of: {', '.join(CHANGE_KINDS)}.")] = None,
    commit: Annotated[Optional[list[str]], typer.Option("--commit", help="A commit of the change (repeat; refs are resolved).")] = None,
    actual: Annotated[Optional[str], typer.Option("--actual", help='What it did, if already measured: "BENCH METRIC -18%".')] = None,
    baseline: Annotated[Optional[int], typer.Option("--baseline", help="The stored run measured before the change.", metavar="RUN")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Journal a change made outside perfloop's workflows.

    Example: `perfloop journal add "raise cache to 4096" --why "lookups miss" --expect "checkout p99 -20%" --kind cache --commit HEAD`
    """
    from ..measure.git import resolve_commit
    from rich.text import Text
    from ..workflows import journal
    root = project_root(directory)
    commits = []
    for ref in commit or []:
        sha = resolve_commit(root, ref)
        if sha is None:
            raise UsageError(f"--commit {ref!r}: not a commit of the repository at {root}",
                             hint="give a sha, a branch, a tag or HEAD~N")
        commits.append(sha)
    with open_store(directory, store) as db:
        entry = journal.add_entry(db, title, why=why, expect=expect, kind=kind, commits=commits,
                                  actual=actual, baseline_run_id=baseline)
    if json:
        print_json(entry.to_dict())
        return
    _render(entry, full=True)
    console.print(Text(f"Journaled as {entry.id}. Link commits with a trailer line "
                       f"`{journal.TRAILER}: {entry.id}`."))


@journal_app.command("actual")
def journal_actual(
    entry_id: Annotated[str, typer.Argument(help="The entry's number.", metavar="ID")],
    actual: Annotated[str, typer.Argument(help='What it did: "BENCH METRIC -18%".', metavar="EFFECT")],
    run: Annotated[Optional[int], typer.Option("--run", help="The run that measured it.")] = None,
    note: Annotated[Optional[str], typer.Option("--note", help="A note to add.")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Record what a change actually did: it closes an open loop.

    Example: `perfloop journal actual 12 "checkout p99 -18%" --run 40`
    """
    from ..workflows import journal
    with open_store(directory, store) as db:
        entry = journal.record_actual(db, entry_id, actual, run_id=run, notes=note)
    if json:
        print_json(entry.to_dict())
        return
    _render(entry, full=True)


@journal_app.command("show")
def journal_show(
    entry_id: Annotated[str, typer.Argument(help="12, incident-3 or approval-5.", metavar="ID")],
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Show one entry in full, with the commits that name it in a Perf-Change trailer.

    Example: `perfloop journal show 12`
    """
    from ..workflows import journal
    root = project_root(directory)
    with open_store(directory, store) as db:
        entry = journal.get_entry(db, entry_id, root=root)
    if json:
        print_json({**entry.to_dict(), "data": dict(entry.data)})
        return
    _render(entry, full=True)


@journal_app.command("export")
def journal_export(
    output: Annotated[Path, typer.Option("-o", "--output", help="The Markdown file to write.")] = Path("TUNING.md"),
    since: Annotated[Optional[str], typer.Option("--since", help="Only entries since: 90d or a date.")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Write the journal as Markdown, open loops first.

    Example: `perfloop journal export -o TUNING.md`
    """
    from rich.text import Text
    from ..workflows import journal
    from ..report.journal import journal_markdown
    root = project_root(directory)
    with open_store(directory, store) as db:
        found = journal.entries(db, since=journal.parse_since(since), root=root)
    target = output if output.is_absolute() else root / output
    try:
        target.write_text(journal_markdown(found))
    except OSError as exc:
        raise UsageError(f"-o {output}: cannot write: {exc.strerror or exc}",
                         hint="choose a writable path") from exc
    if json:
        print_json({"path": str(target), "entries": len(found),
                    "open_loops": len(journal.open_loops(found))})
        return
    console.print(Text(f"wrote {len(found)} entries to {target}"))


def register(app: typer.Typer) -> None:
    app.add_typer(journal_app, name="journal")


__all__: Sequence[str] = ["register"]
