"""Opening a results store: where it is, how to connect, and bringing its schema up to date.

The store's URL is resolved in this order (first one set wins)::

    --store (explicit)  >  PERFLOOP_STORE  >  store = "..." in the configuration  >  default

The default is a SQLite file ``<project>/.perfloop/perfloop.db``. A bare filesystem path is
accepted anywhere a URL is and means a SQLite file; a relative one is relative to the current
directory when typed (``--store``, ``PERFLOOP_STORE``) and to the project root when written in
the configuration file, since that is where the file lives.

SQLite is tuned for several perfloop processes sharing one file: WAL journal (readers never
block the writer), a 30 s busy timeout, foreign keys on, and ``BEGIN IMMEDIATE`` for writes so
that two writers queue up instead of failing with "database is locked" half-way through.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from sqlalchemy import URL, create_engine, event, exc, inspect, make_url, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from ..errors import StoreError
from .names import DEFAULT_DIR, DEFAULT_FILE, ENV_VAR, HEAD_REVISION, VERSION_TABLE, chosen_store

if TYPE_CHECKING:
    from alembic.config import Config

SQLITE_BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's transaction
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Key of the PostgreSQL advisory lock that serialises concurrent first opens of one database.
_PG_MIGRATION_LOCK = 0x706572666C6F6F70 & 0x7FFFFFFFFFFFFFFF  # "perfloop"
# Connection-level option: read-only work on SQLite starts a deferred transaction.
READ_ONLY = "perfloop_read_only"

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
URL_HINT = ("use a file path, sqlite:///path/to/perfloop.db or "
            "postgresql+psycopg://user@host:5432/dbname")


def resolve_store_url(explicit: str | None, *, root: Path, config_store: str | None = None) -> str:
    """The URL of the store to use, from ``--store``, ``PERFLOOP_STORE``, the config or the default.

    Creates ``<root>/.perfloop`` when the default is chosen, so that opening it works.
    """
    chosen = chosen_store(explicit, root=root, config_store=config_store)
    if chosen is not None:
        return to_url(chosen[0], base=chosen[1])
    directory = Path(root).resolve() / DEFAULT_DIR
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the store directory {directory}: {e.strerror or e}",
                         hint=f"check permissions, or set {ENV_VAR} or --store to another "
                              "location") from e
    return _sqlite_url(directory / DEFAULT_FILE)


def to_url(value: str, *, base: Path) -> str:
    """``value`` as a SQLAlchemy URL: bare paths become ``sqlite:///`` URLs relative to ``base``."""
    value = value.strip()
    if not value:
        raise StoreError("empty store URL", hint=URL_HINT)
    if not _URL_SCHEME.match(value):
        if "://" in value:
            raise StoreError(f"not a valid store URL: {value!r}", hint=URL_HINT)
        return _sqlite_url(Path(base) / Path(value).expanduser())
    url = _parse(value)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:") and not Path(url.database).is_absolute():
        return _sqlite_url(Path(base) / url.database, query=url.query)
    return value


def _sqlite_url(path: Path, query: Any = None) -> str:
    url = URL.create("sqlite", database=str(Path(path).resolve()), query=query or {})
    return url.render_as_string(hide_password=False)


def _parse(value: str) -> URL:
    try:
        return make_url(value)
    except (exc.ArgumentError, ValueError) as e:
        raise StoreError(f"not a valid store URL: {value!r}", hint=URL_HINT) from e


def safe_url(url: str | URL) -> str:
    """The URL as it may be shown to a user: never with its password."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except (exc.ArgumentError, ValueError):
        return "<invalid URL>"
    return parsed.render_as_string(hide_password=True)


def create_store_engine(url: str) -> Engine:
    """An engine for ``url`` with the connection settings the store relies on."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {}
    if backend == "postgresql" and parsed.drivername == "postgresql":
        # The bare scheme means psycopg2 to SQLAlchemy; psycopg 3 is the driver perfloop ships.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
        if in_memory:
            # One connection for everyone: each new in-memory connection would be a new database.
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            parent = Path(database).parent
            if not database.startswith("file:") and not parent.is_dir():
                raise StoreError(f"the directory of the store {database} does not exist",
                                 hint=f"create {parent}, or point --store or {ENV_VAR} elsewhere")
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT}
    else:
        # A team server's connections sit idle between runs; check them before use.
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (exc.NoSuchModuleError, exc.ArgumentError) as e:
        raise StoreError(f"unsupported store URL {safe_url(parsed)}: {e}", hint=URL_HINT) from e
    except ImportError as e:
        raise StoreError(f"the database driver for {safe_url(parsed)} is not installed ({e})",
                         hint="for PostgreSQL: pip install 'perfloop[postgres]' and use a "
                              "postgresql+psycopg:// URL") from e
    if backend == "sqlite":
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below): the sqlite3 module's own implicit BEGIN
        # comes too late for DDL and cannot be made IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY when
        # another process wrote in between (no busy wait in WAL mode); taking the write lock up
        # front makes concurrent writers wait for each other instead.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config() -> Config:
    """An Alembic configuration for the migrations shipped in this package (no ini file)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the store's schema to the newest revision this perfloop knows; no-op when current.

    Runs in one transaction holding the write lock (SQLite) or an advisory lock (PostgreSQL),
    so two processes opening a new store at once do not both create its tables.
    """
    if current_revisions(engine) == {HEAD_REVISION}:
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    cfg = alembic_config()
    script = ScriptDirectory.from_config(cfg)
    heads = set(script.get_heads())
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        current = set(context.get_current_heads())
        for revision in current:
            try:
                known = script.get_revision(revision) is not None
            except CommandError:
                known = False
            if not known:
                raise StoreError(
                    f"the store {safe_url(engine.url)} has schema revision {revision!r}, "
                    "which this perfloop does not know: it was written by a newer perfloop",
                    hint="upgrade perfloop (pip install -U perfloop), or use another store "
                         f"with --store or {ENV_VAR}")
        if current == heads:
            return
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def current_revisions(engine: Engine) -> set[str]:
    """The schema revision(s) recorded in the store; empty for a new store."""
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return set()
        return set(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())
