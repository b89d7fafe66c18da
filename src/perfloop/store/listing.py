"""Listing stored runs from a SQLite store with the standard library alone.

``perfloop runs`` is the command people type most between others, and SQLAlchemy's import
alone cost more CPU than the 0.4 s the whole command may take. So a listing reads the SQLite
file with :mod:`sqlite3` when it can answer exactly as :meth:`Store.list_runs` would, and says
so by returning a list; it returns None whenever opening the store for real could change the
answer or has something to say, and the caller then opens the :class:`~perfloop.store.Store`:

- the store is not a plain SQLite file (PostgreSQL, an in-memory or URI database, a URL with
  options), or does not exist yet (opening creates it);
- its schema is not at this perfloop's revision (opening migrates it, or refuses a newer one);
- a run is ``running`` (opening marks one whose process died as interrupted);
- the project is in incident mode or runs a drill (every command says so first).

tests/test_startup.py checks that both give the same runs on the same stores.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from ..records import RunStatus
from .names import DEFAULT_DIR, DEFAULT_FILE, HEAD_REVISION, VERSION_TABLE, chosen_store

SQLITE_PREFIX = "sqlite:///"
# Characters that make a SQLite URL mean more than a file path (query options, escapes).
_URL_SPECIAL = set("?#%@")
# The drill that is running, if any (perfloop.workflows.drills keeps its state there).
DRILL_FILE = "drill.json"


@dataclass(frozen=True)
class RunInfo:
    """A stored run as listed: who, where, when, and how many results (and failures) it holds."""

    id: int
    label: str | None
    commit: str | None
    branch: str | None
    dirty: bool
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    environment_id: int
    environment_hash: str
    n_results: int
    n_failed: int    # results whose status is failed or timeout


def sqlite_file(explicit: str | None, *, root: Path, config_store: str | None = None) -> Path | None:
    """The SQLite file :func:`~perfloop.store.resolve_store_url` would choose, or None when the
    choice is not a plain file path (then only SQLAlchemy can say what it means).

    Same order: ``--store``, ``PERFLOOP_STORE``, the configuration's ``store``, the default.
    """
    chosen = chosen_store(explicit, root=root, config_store=config_store)
    if chosen is not None:
        return _plain_path(chosen[0], base=chosen[1])
    return Path(root).resolve() / DEFAULT_DIR / DEFAULT_FILE


def _plain_path(value: str, *, base: Path) -> Path | None:
    value = value.strip()
    if not value:
        return None
    if "://" not in value:
        return (Path(base) / Path(value).expanduser()).resolve()
    if not value.startswith(SQLITE_PREFIX):
        return None
    database = value[len(SQLITE_PREFIX):]
    if not database or _URL_SPECIAL & set(database) or database.startswith("file:") \
            or database == ":memory:":
        return None
    return (Path(base) / database).resolve()


def list_runs(path: Path, *, root: Path, limit: int | None = 50) -> list[RunInfo] | None:
    """Stored runs, newest first, as :meth:`Store.list_runs` lists them; None when the store
    must be opened for real to answer (see the module's docstring)."""
    if (Path(root).resolve() / DEFAULT_DIR / DRILL_FILE).exists() or not path.is_file():
        return None
    try:
        # mode=rw: never create a file here; a read-only connection could not read a WAL file
        # whose shared-memory index another process has not made yet.
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, timeout=30.0,
                               isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        conn.execute("BEGIN")   # one snapshot for every read below
        if not _at_head(conn) or _has_one(conn, "SELECT 1 FROM runs WHERE status = ?",
                                          RunStatus.RUNNING.value) \
                or _has_one(conn, "SELECT 1 FROM incidents WHERE status = 'open'"):
            return None
        rows = conn.execute(_LIST_RUNS, (-1 if limit is None else max(limit, 0),)).fetchall()
    except sqlite3.Error:
        return None   # locked past the timeout, damaged, not a store: opening it says what to do
    finally:
        conn.close()
    return [_run_info(row) for row in rows]


def _at_head(conn: sqlite3.Connection) -> bool:
    try:
        found = {r for (r,) in conn.execute(f"SELECT version_num FROM {VERSION_TABLE}")}
    except sqlite3.OperationalError:   # no version table: a new or foreign database
        return False
    return found == {HEAD_REVISION}


def _has_one(conn: sqlite3.Connection, query: str, *args: object) -> bool:
    return conn.execute(query + " LIMIT 1", args).fetchone() is not None


# The query Store.list_runs builds with SQLAlchemy, written out.
_LIST_RUNS = """
SELECT runs.id, runs.label, runs."commit", runs.branch, runs.dirty, runs.status, runs.started_at,
       runs.finished_at, runs.environment_id, environments.fingerprint, counts.n_results,
       counts.n_failed
FROM runs
JOIN environments ON environments.id = runs.environment_id
LEFT OUTER JOIN (SELECT results.run_id AS run_id, count(*) AS n_results,
                        sum(CASE WHEN results.status != 'ok' THEN 1 ELSE 0 END) AS n_failed
                 FROM results GROUP BY results.run_id) AS counts ON counts.run_id = runs.id
ORDER BY runs.started_at DESC, runs.id DESC
LIMIT ?
"""


def _run_info(row: tuple) -> RunInfo:
    (run_id, label, commit, branch, dirty, status, started_at, finished_at, environment_id,
     fingerprint, n_results, n_failed) = row
    return RunInfo(id=run_id, label=label, commit=commit, branch=branch, dirty=bool(dirty),
                   status=RunStatus(status), started_at=_utc(started_at),
                   finished_at=_utc(finished_at) if finished_at is not None else None,
                   environment_id=environment_id, environment_hash=fingerprint,
                   n_results=int(n_results or 0), n_failed=int(n_failed or 0))


def _utc(stored: str) -> datetime:
    # SQLAlchemy stores SQLite timestamps as naive UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]".
    return datetime.fromisoformat(stored).replace(tzinfo=timezone.utc)
