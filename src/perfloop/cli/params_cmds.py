"""The parameter registry commands: ``params`` (list) and ``params check`` (drift, undocumented).

Thin: each calls :mod:`perfloop.workflows.params` and renders lines or ``--json``. ``params
check`` exits 1 when it finds drift, unjournaled or undocumented tuning, so CI can run it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional, Sequence

import typer

from .common import JsonFlag, ProjectDir, StoreUrl, console, open_store, print_json, project_root

params_app = typer.Typer(
    help="The registry of tuning parameters: each tunable, its value, where it lives, why.\n\n"
         "Example: `perfloop params check --since 90d`",
    rich_markup_mode=None, invoke_without_command=True)

STYLE = {"drift": "bold red", "unjournaled": "yellow", "undocumented": "yellow",
         "unreadable": "bold red"}


@params_app.callback()
def params_list(
    ctx: typer.Context,
    directory: ProjectDir = Path("."),
    json: JsonFlag = False,
) -> None:
    """List the registered parameters (``[[parameter]]`` in perfloop.toml).

    Example: `perfloop params --json`
    """
    from rich.text import Text
    if ctx.invoked_subcommand is not None:
        return
    from ..workflows import params as registry
    root = project_root(directory)
    found = registry.load_parameters(root)
    if json:
        print_json({"parameters": [p.to_dict() for p in found]})
        return
    if not found:
        console.print('no parameters registered; add [[parameter]] tables to perfloop.toml '
                      '(name, file, key, value, why): see docs/journal-and-audit.md')
        return
    for p in found:
        console.print(Text(f"{p.name} = {p.value!r}", style="bold"))
        console.print(Text(f"    where: {p.file} {p.key} ({p.kind})"))
        console.print(Text(f"    why: {p.why or '(not written down)'}"))
        if p.change is not None or p.set_by:
            console.print(Text(f"    set by: " + ", ".join(
                x for x in (f"journal entry {p.change}" if p.change is not None else "",
                            p.set_by or "") if x)))


@params_app.command("check")
def params_check(
    since: Annotated[Optional[str], typer.Option(
        "--since", help="How far back git history is read: 90d, 6w, a date (default 90d).")] = "90d",
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Compare the registry with the real files; find unjournaled and undocumented tuning.

    Exit 1 on drift, an unreadable location, a registered value changed with no journal entry,
    or a tunable-looking constant changed recently and not registered; 0 when clean.

    Example: `perfloop params check --since 30d`
    """
    from rich.text import Text
    from ..workflows import params as registry
    from ..workflows.journal import parse_since
    root = project_root(directory)
    cutoff = parse_since(since)
    params = registry.load_parameters(root)
    with open_store(directory, store) as db:
        report = registry.check(root, db, since=cutoff, parameters=params)
    if json:
        print_json(report.to_dict())
    else:
        for p in report.parameters:
            value = report.actual.get(p.name, "?")
            ok = p.name in report.actual and registry.same(p.value, value)
            line = Text(f"{'ok   ' if ok else 'DRIFT'} {p.name}: ", style="" if ok else "bold red")
            line.append(f"registry {p.value!r}, {p.file} {value!r}")
            console.print(line)
        for problem in report.problems:
            if problem.kind == "drift":
                continue
            console.print(Text(f"{problem.kind.upper()}: {problem.message}",
                               style=STYLE.get(problem.kind, "")))
        console.print(Text("clean: the registry matches the files and every change is journaled"
                           if not report.failed else
                           f"{len(report.problems)} problem(s): fix the file or the registry, "
                           "journal the change (perfloop journal add), or register the tunable"))
    if report.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(params_app, name="params")


__all__: Sequence[str] = ["register"]
