"""``perfloop risk``: the risk score of a change, factor by factor.

Thin: parse, call :func:`perfloop.workflows.risk.assess`, render as text or ``--json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional, Sequence

import typer
from rich.table import Table
from rich.text import Text

from ..config import load_config
from .common import JsonFlag, ProjectDir, StoreUrl, console, open_store, print_json, project_root

LEVEL_STYLE = {"low": "bold green", "medium": "bold yellow", "high": "bold red"}


def risk(
    diff: Annotated[Optional[str], typer.Option(
        "--diff", metavar="REV..REV", help="A commit range (default: the working tree against HEAD).")] = None,
    kind: Annotated[Optional[str], typer.Option(
        "--kind", help="config, index, cache, code path, dependency, algorithm, concurrency, "
                       "infrastructure.")] = None,
    coverage: Annotated[bool, typer.Option(
        "--coverage/--no-coverage", help="Check which touched files a benchmark exercises "
                                         "(profiles each callable benchmark once per commit).")] = True,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Score the risk of a change (0-100) from what it touches, with each factor's points.

    Factors: kind, size, diffusion, blast radius in the import graph, declared fault
    boundaries crossed, reversibility, history of the touched files, benchmark coverage.

    Example: `perfloop risk --diff main..HEAD --kind algorithm`
    """
    from ..workflows.risk import assess
    root = project_root(directory)
    config = load_config(root)
    db = open_store(directory, store, config=config)
    try:
        found = assess(config, diff=diff, kind=kind, store=db,
                       **({} if coverage else {"coverage": None}))
    finally:
        db.close()
    if json:
        print_json(found.to_dict())
        return
    s = found.score
    console.print(Text.assemble(("risk ", "bold"), (f"{s.score:.0f}/100 {s.level}", LEVEL_STYLE[s.level]),
                                f"  {found.diff.spec}: {len(found.diff.files)} files, "
                                f"+{found.diff.added} -{found.diff.deleted}"))
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    table.add_column("factor", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("why", overflow="fold")
    for f in s.factors:
        table.add_row(f.name, f"{f.points:.1f}", Text(f.detail))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(risk)


__all__: Sequence[str] = ["register"]
