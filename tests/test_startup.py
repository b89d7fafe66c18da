"""Start-up: the CLI parses its arguments before it imports the heavy libraries, so that
``perfloop --help`` and a command's ``--help`` are quick (figures in BENCHMARKS.md)."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from perfloop.records import BenchmarkResult, ResultStatus, RunStatus, Sample

import pytest

HEAVY = ("scipy", "numpy", "sqlalchemy", "pandas", "pyinstrument", "alembic", "fastapi")


def loaded_modules_after(code: str) -> set[str]:
    """Every module in sys.modules after running ``code`` in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys, json\n"
                          "print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def loaded_after(code: str) -> set[str]:
    """Top-level packages in sys.modules after running ``code`` in a fresh interpreter."""
    return {m.split(".")[0] for m in loaded_modules_after(code)}


def test_importing_the_cli_imports_no_heavy_library() -> None:
    loaded = loaded_after("import perfloop.cli.app")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.slow   # one fresh interpreter per command
def test_command_help_imports_no_heavy_library() -> None:
    for command in ("gate", "runs", "report", "compare", "import", "incident", "journal", "audit",
                    "params", "risk", "change", "cycle", "drill", "advise", "mode"):
        code = ("import sys\nfrom perfloop.cli.app import app\n"
                f"try:\n    app(args=[{command!r}, '--help'], standalone_mode=False)\n"
                "except SystemExit:\n    pass\n")
        loaded = loaded_after(code)
        assert not loaded & set(HEAVY), (command, sorted(loaded & set(HEAVY)))


def test_import_formats_in_the_help_are_the_importers() -> None:
    from perfloop.cli.import_cmds import FORMATS as shown
    from perfloop.importers import FORMATS
    assert tuple(shown) == tuple(FORMATS)


def test_listing_runs_does_not_load_the_statistics(tmp_path) -> None:
    store = f"sqlite:///{tmp_path / 'perfloop.db'}"
    code = ("from perfloop.cli.app import app\n"
            f"try:\n    app(args=['runs', '--store', {store!r}, '-C', {str(tmp_path)!r}], "
            "standalone_mode=False)\nexcept SystemExit:\n    pass\n")
    loaded = loaded_after(code)
    assert "sqlalchemy" in loaded                      # it did read the store
    assert not loaded & {"scipy", "numpy"}, sorted(loaded & {"scipy", "numpy"})


# -- the command table: `perfloop --help` lists commands without importing them -----------------

def _first_paragraph(command) -> str:
    """The command's help as the listing shows it: first paragraph, on one line."""
    text = inspect.cleandoc(command.short_help or command.help or "")
    return text.split("\n\n")[0].replace("\n", " ").strip()


def _registered() -> dict[str, tuple[str, str]]:
    """Every command each ``perfloop.cli.*_cmds`` module registers: name -> (module, help)."""
    import perfloop.cli
    found: dict[str, tuple[str, str]] = {}
    for info in pkgutil.iter_modules(perfloop.cli.__path__):
        if not info.name.endswith("_cmds"):
            continue
        module = importlib.import_module(f"perfloop.cli.{info.name}")
        scratch = typer.Typer()
        module.register(scratch)
        for name, command in typer.main.get_group(scratch).commands.items():
            assert name not in found, f"{name} is registered by two modules"
            found[name] = (module.__name__, _first_paragraph(command))
    return found


def test_the_command_table_lists_what_the_modules_register() -> None:
    """A new command, a renamed one or a changed first paragraph of help must be written in
    perfloop.cli.app.COMMANDS too, or `perfloop --help` would list something else."""
    from perfloop.cli.app import COMMANDS
    registered = _registered()
    listed = {entry.name: (entry.module, entry.help) for entry in COMMANDS}
    fix = "update COMMANDS in src/perfloop/cli/app.py"
    assert len(listed) == len(COMMANDS), "a command is listed twice"
    assert sorted(listed) == sorted(registered), fix
    for name, (module, short_help) in registered.items():
        assert listed[name] == (module, short_help), f"{name}: {fix}"


def test_the_listing_from_the_table_is_the_listing_of_the_real_commands(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`perfloop --help` rendered from the table, then again once every command is built."""
    from perfloop.cli.app import app
    monkeypatch.setenv("COLUMNS", "80")
    group = typer.main.get_command(app)

    def shown() -> str:
        try:
            group.main(["--help"], prog_name="perfloop", standalone_mode=False)
        except SystemExit:
            pass
        return capsys.readouterr().out

    from_table = shown()
    assert not any(group.commands.built(name) for name in group.commands)
    assert len(dict(group.commands.items())) == len(group.commands)   # builds every command
    from_commands = shown()
    assert from_table == from_commands
    assert "List stored runs, newest first." in from_table and "token" in from_table


def test_a_command_imports_only_its_own_module() -> None:
    help_only = loaded_modules_after("from perfloop.cli.app import main\n"
                                     "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n")
    assert not {m for m in help_only if m.startswith("perfloop.cli.") and m.endswith("_cmds")}
    assert "pydantic" not in {m.split(".")[0] for m in help_only}
    gate_help = loaded_modules_after("from perfloop.cli.app import main\n"
                                     "try:\n    main(['gate', '--help'])\nexcept SystemExit:\n    pass\n")
    commands = {m for m in gate_help if m.startswith("perfloop.cli.") and m.endswith("_cmds")}
    assert commands == {"perfloop.cli.gate_cmds"}
    # a group's absent --help is not validated (typer would import pydantic to do it)
    assert "pydantic" not in {m.split(".")[0] for m in gate_help}


def test_help_is_plain_text_with_examples_kept_whole() -> None:
    # Rich (and the Markdown parser it brings for help) was most of what `perfloop --help`
    # cost; plain help starts in about a third of the time and reads the same in a pipe.
    help_only = loaded_modules_after("from perfloop.cli.app import main\n"
                                     "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n")
    assert not {m for m in help_only if m.split(".")[0] in ("rich", "markdown_it")}
    from perfloop.cli.app import app
    result = CliRunner().invoke(app, ["gate", "--help"], terminal_width=80)
    assert result.exit_code == 0
    assert "╭" not in result.output and "`" not in result.output
    example = [line for line in result.output.splitlines() if "Example:" in line]
    assert example == ["  Example: perfloop gate --base origin/main --markdown gate.md --junit gate.xml"]


def test_no_command_help_loads_rich_or_the_config() -> None:
    # Each command module imported Rich (its console, tables, markup) and some the config
    # schema at import time: a command's --help cost 0.16-0.19 s of CPU against 0.09 s for
    # `perfloop --help`. Every command's help, in one interpreter: none may load them.
    from perfloop.cli.app import COMMANDS
    names = [entry.name for entry in COMMANDS]
    loaded = loaded_modules_after(
        "import contextlib, io\nfrom perfloop.cli.app import main\n"
        f"for name in {names!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n            main([name, '--help'])\n        except SystemExit:\n"
        "            pass\n")
    assert {m for m in loaded if m.startswith("perfloop.cli.") and m.endswith("_cmds")}
    unwanted = {m for m in loaded if m.split(".")[0] in ("rich", "markdown_it")
                or m in ("perfloop.config", "perfloop.measure.runner", "perfloop.workflows.interleave")}
    assert not unwanted, sorted(unwanted)


def test_an_unknown_command_still_gets_a_suggestion() -> None:
    from perfloop.cli.app import app
    result = CliRunner().invoke(app, ["rnus"])
    assert result.exit_code == 2 and "Did you mean 'runs'?" in result.output


# -- listing runs without SQLAlchemy ------------------------------------------------------------

def test_listing_an_existing_store_loads_no_sqlalchemy(tmp_path: Path) -> None:
    from perfloop.store import Store
    url = f"sqlite:///{tmp_path / 'perfloop.db'}"
    with Store.open(url) as store:
        _add_run(store, "only", statuses=("ok",))
    code = ("from perfloop.cli.app import app\n"
            f"try:\n    app(args=['runs', '--json', '--store', {url!r}, '-C', {str(tmp_path)!r}], "
            "standalone_mode=False)\nexcept SystemExit:\n    pass\n")
    assert "sqlalchemy" not in loaded_after(code)


def _add_run(store, label, *, statuses=(), dirty=False, finish=RunStatus.COMPLETE, env="e1"):
    run = store.begin_run(label=label, commit=None if label is None else "ab" * 20, branch="main",
                          dirty=dirty, environment={"fingerprint": env}, settings={}, project="/p")
    for i, status in enumerate(statuses):
        store.add_result(run, BenchmarkResult(
            name=f"b{i}", kind="callable", status=ResultStatus(status),
            samples=(Sample("wall_time", 0.01),) if status == "ok" else (),
            error=None if status == "ok" else f"it {status}"))
    if finish is not None:
        store.finish_run(run, finish)
    return run


@pytest.fixture
def varied_store(tmp_path: Path):
    """Runs with and without labels, commits and results, failed and timed-out results, a dirty
    tree, an interrupted run, and two environments."""
    from perfloop.store import Store
    path = tmp_path / "perfloop.db"
    with Store.open(f"sqlite:///{path}") as store:
        _add_run(store, "base", statuses=("ok", "ok"))
        _add_run(store, None, statuses=())
        _add_run(store, "broken", statuses=("ok", "failed", "timeout"), dirty=True, env="e2")
        _add_run(store, "cut", statuses=("ok",), finish=RunStatus.INTERRUPTED)
        _add_run(store, "head", statuses=("failed",))
    return path


@pytest.mark.parametrize("limit", [None, 0, 1, 3, 50])
def test_the_sqlite_listing_is_the_store_listing(varied_store: Path, limit: int | None) -> None:
    from perfloop.store import Store, listing
    quick = listing.list_runs(varied_store, root=varied_store.parent, limit=limit)
    with Store.open(f"sqlite:///{varied_store}") as store:
        assert quick == store.list_runs(limit=limit)
    assert quick is not None and len(quick) == (5 if limit is None else min(limit, 5))


def test_the_sqlite_listing_leaves_to_the_store_what_opening_it_would_change(
        varied_store: Path) -> None:
    from perfloop.store import Store, listing
    from perfloop.store.names import VERSION_TABLE
    from perfloop.workflows.drills import STATE_FILE
    root = varied_store.parent
    assert listing.list_runs(varied_store, root=root) is not None
    assert listing.list_runs(root / "missing.db", root=root) is None        # opening creates it
    with Store.open(f"sqlite:///{varied_store}") as store:
        running = _add_run(store, "now", finish=None)                   # opening may reap it
    assert listing.list_runs(varied_store, root=root) is None
    with Store.open(f"sqlite:///{varied_store}") as store:
        store.finish_run(running, RunStatus.COMPLETE)
        incident = store.add_incident(title="spike", project=str(root))  # every command says so
    assert listing.list_runs(varied_store, root=root) is None
    with Store.open(f"sqlite:///{varied_store}") as store:
        store.update_incident(incident, status="closed")
    assert listing.list_runs(varied_store, root=root) is not None
    assert STATE_FILE == listing.DRILL_FILE
    (root / ".perfloop").mkdir()
    (root / ".perfloop" / STATE_FILE).write_text("{}")                   # a drill runs
    assert listing.list_runs(varied_store, root=root) is None
    (root / ".perfloop" / STATE_FILE).unlink()
    with sqlite3.connect(varied_store) as conn:                           # opening migrates it
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = '0001'")
    assert listing.list_runs(varied_store, root=root) is None


@pytest.mark.parametrize("value, plain", [
    ("plain.db", True), ("sub/../plain.db", True), ("~/x.db", True), ("with space.db", True),
    ("odd#name?.db", True), ("sqlite:///rel.db", True), ("sqlite:////abs/dir/x.db", True),
    ("sqlite:///q.db?mode=ro", False), ("sqlite:///%41.db", False), ("sqlite://", False),
    ("sqlite:///:memory:", False), ("postgresql://u@h/db", False),
    ("sqlite+pysqlite:///x.db", False), ("a://b", False)])
def test_the_sqlite_file_is_the_one_the_store_url_names(
        value: str, plain: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the listing reads a file, it is the file the store would open; anything else it
    leaves to SQLAlchemy."""
    from sqlalchemy import make_url

    from perfloop.store import listing, resolve_store_url
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "project"
    root.mkdir()
    for explicit, env, config in ((value, None, None), (None, value, None), (None, None, value)):
        if env is None:
            monkeypatch.delenv("PERFLOOP_STORE", raising=False)
        else:
            monkeypatch.setenv("PERFLOOP_STORE", env)
        path = listing.sqlite_file(explicit, root=root, config_store=config)
        assert (path is not None) == plain, (value, explicit, env, config)
        if path is not None:
            url = make_url(resolve_store_url(explicit, root=root, config_store=config))
            assert url.get_backend_name() == "sqlite" and not url.query, value
            assert Path(url.database).resolve() == path, value
    monkeypatch.delenv("PERFLOOP_STORE", raising=False)
    default = make_url(resolve_store_url(None, root=root))
    assert listing.sqlite_file(None, root=root) == Path(default.database).resolve()


def test_the_lazy_console_is_a_console_where_rich_needs_one() -> None:
    # A progress bar enters its console (`with console:`); special methods do not go through
    # __getattr__, so `perfloop run` failed once the console was made on first use.
    from rich.console import Console

    from perfloop.cli.common import LazyConsole, real_console
    from perfloop.cli.progress import RichProgress
    lazy = LazyConsole(stderr=True, highlight=False)
    with lazy as entered:
        assert isinstance(entered, Console)
    assert isinstance(real_console(lazy), Console) and real_console(lazy) is lazy.real()
    assert isinstance(RichProgress(lazy).console, Console)  # type: ignore[arg-type]
