"""``perfloop import``: pytest-benchmark, pyperf and asv result files become stored runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


from ..errors import UsageError
from .common import JsonFlag, ProjectDir, StoreUrl, console, err_console, open_store, print_json

#: perfloop.importers.FORMATS, written out so that ``--help`` does not import the store (a test
#: keeps the two equal).
FORMATS = ("pytest-benchmark", "pyperf", "asv")


def import_(
    files: Annotated[list[Path], typer.Argument(
        help="Result files: pytest-benchmark JSON, pyperf JSON (.json or .json.gz), asv "
             "results/MACHINE/*.json.", show_default=False)],
    label: Annotated[Optional[str], typer.Option(
        "--label", "-l", help="Name the run (default: the file's name; with several files, "
                              "LABEL/STEM each).")] = None,
    fmt: Annotated[Optional[str], typer.Option(
        "--format", help=f"Skip detection: one of {', '.join(FORMATS)}.")] = None,
    branch: Annotated[Optional[str], typer.Option(
        "--branch", help="File runs whose file records no branch (asv's never do) under BRANCH, "
                         "so their history joins perfloop's own runs there.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Read and check the files, store nothing.")] = False,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Import benchmark results written by pytest-benchmark, pyperf or asv: one run per file.

    Every file is checked before anything is stored; a bad file stores nothing and exits 2.
    Imported runs keep the file's commit, branch and machine facts, and form their own
    environment class (marked "imported").

    Example: `perfloop import .benchmarks/Linux-CPython-3.11-64bit/0001_main.json --label main`
    or `perfloop import results/my-machine/*.json --branch main`
    """
    from ..report.tables import print_table
    from rich.markup import escape
    from ..importers import ImportedRun, is_asv_companion, read_all, store_imported
    from rich.table import Table
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: unknown format", hint=f"one of: {', '.join(FORMATS)}")
    # Every file is checked before the store is opened: a bad file stores nothing, and does not
    # even create an empty store.
    parsed = read_all(files, fmt=fmt, label=label, branch=branch)
    skipped = [f for f in files if len(files) > 1 and is_asv_companion(f)]
    rows: list[tuple[ImportedRun, int | None]]
    if dry_run:
        rows = [(imported, None) for imported in parsed]
    else:
        with open_store(directory, store) as db:
            rows = [(imported, store_imported(db, imported)) for imported in parsed]
    for f in skipped:
        err_console.print(f"[dim]skipped {f}: asv's own {f.name}, read beside the results files[/]")
    if json:
        print_json([{**imported.to_dict(), "run_id": run_id} for imported, run_id in rows])
        return
    table = Table(title="dry run: nothing stored" if dry_run else "imported runs")
    for column in ("file", "format", "run", "label", "commit", "benchmarks", "samples"):
        table.add_column(column, justify="right" if column in ("run", "benchmarks", "samples") else "left")
    for imported, run_id in rows:
        d = imported.to_dict()
        table.add_row(escape(str(imported.path)), imported.format, "-" if run_id is None else f"#{run_id}",
                      escape(imported.label or ""), (imported.commit or "-")[:12], str(d["benchmarks"]), str(d["samples"]))
    print_table(console, table)
    for imported, _ in rows:
        for note in imported.notes:
            console.print(f"[yellow]note:[/] {imported.path}: {note}")
    if not dry_run and rows:
        console.print(f"Show one with: perfloop show {rows[-1][1]}")


def register(app: typer.Typer) -> None:
    app.command(name="import")(import_)
