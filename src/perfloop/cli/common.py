"""Options and helpers shared by every CLI command: project directory, store, JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import UsageError

if TYPE_CHECKING:   # imported where used: `perfloop --help` needs neither (start-up time)
    from rich.console import Console

    from ..config import ProjectConfig
    from ..store import RunInfo, Store

ProjectDir = Annotated[Path, typer.Option(
    "-C", "--directory", help="Act on the project in DIR (default: the current directory).",
    metavar="DIR", show_default=False)]
StoreUrl = Annotated[Optional[str], typer.Option(
    "--store", envvar="PERFLOOP_STORE", metavar="URL",
    help="Results store: a SQLAlchemy URL or a SQLite file path "
         "(default: .perfloop/perfloop.db in the project; env PERFLOOP_STORE).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


class LazyConsole:
    """A Rich console made on first use: a command's ``--help`` never prints through one, and
    importing Rich's console machinery was a fifth of its start-up time."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def real(self) -> Console:
        """The console itself (made now if it was not yet)."""
        if self._console is None:
            from rich.console import Console
            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)

    # Special methods are looked up on the type, never through __getattr__.
    def __enter__(self) -> Console:
        return self.real().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.real().__exit__(*exc)


def real_console(console: Console) -> Console:
    """The Rich console behind ``console``: what to hand to Rich's own machinery (a progress
    bar, a live display), which may test its type."""
    return console.real() if isinstance(console, LazyConsole) else console


console: Console = LazyConsole(highlight=False)  # type: ignore[assignment]
err_console: Console = LazyConsole(stderr=True, highlight=False)  # type: ignore[assignment]


def project_root(directory: Path) -> Path:
    root = directory.resolve()
    if not root.is_dir():
        raise UsageError(f"-C {directory}: no such directory", hint="pass the project's directory")
    return root


def open_store(directory: Path, store: str | None, *, config: ProjectConfig | None = None) -> Store:
    """Open the store for the project at ``directory`` (the config's ``store`` key if set).

    The store is a context manager: ``with open_store(directory, store) as db:`` closes it
    however the command ends.
    """
    from ..store import Store, resolve_store_url
    root = project_root(directory)
    config_store = config.store if config else _config_store(root)
    opened = Store.open(resolve_store_url(store, root=root, config_store=config_store))
    show_mode_banner(opened, root)
    return opened


def list_runs(directory: Path, store: str | None, *, limit: int | None) -> list[RunInfo]:
    """Stored runs, newest first, as ``open_store(...).list_runs(limit=...)`` gives them.

    Straight from the SQLite file when the store is one and opening it would neither change the
    answer nor print a banner (:mod:`perfloop.store.listing`): SQLAlchemy's import alone was
    most of ``perfloop runs``.
    """
    from ..store import listing
    root = project_root(directory)
    path = listing.sqlite_file(store, root=root, config_store=_config_store(root))
    found = listing.list_runs(path, root=root, limit=limit) if path is not None else None
    if found is not None:
        return found
    db = open_store(directory, store)
    try:
        return db.list_runs(limit=limit)
    finally:
        db.close()


def show_mode_banner(store: Store, root: Path) -> None:
    """In incident mode every command says so first (on stderr, so --json output stays clean)."""
    from ..workflows.drills import active
    from ..workflows.incident import incident_banner
    from rich.markup import escape
    banner = incident_banner(store, root)
    if banner:
        err_console.print(f"[bold magenta]{escape(banner)}[/]")
    drill = active(root)
    if drill is not None:
        err_console.print(f"[bold yellow]DRILL #{drill['id']} running: a hidden slowdown is "
                          "injected; runs are marked and kept out of history "
                          "(perfloop drill answer / stop)[/]")


def _config_store(root: Path) -> str | None:
    from ..config import find_config, load_config
    if find_config(root) is None:
        return None
    try:
        return load_config(root).store
    except UsageError:
        return None   # commands that only read the store should not fail on a broken config


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
