"""The results store's API: record runs as they happen, list them, read them back, find them.

Every write is its own committed transaction, so what a run has measured survives a crash of
perfloop at any later moment, and a result is stored whole (row and samples) or not at all::

    with Store.open(url) as store:
        run_id = store.begin_run(label="baseline", commit=sha, branch="main", dirty=False,
                                 environment=env, settings=settings, project=str(root))
        for result in results:
            store.add_result(run_id, result)
        store.finish_run(run_id, RunStatus.COMPLETE)

A run whose process died while it was ``running`` is marked ``interrupted`` by
:meth:`Store.reap_stale_runs` (called when a store is opened); its stored results are kept.

Errors from SQLAlchemy and the OS are turned into :class:`~perfloop.errors.StoreError` here,
with a message that says what to do.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import psutil
from sqlalchemy import Select, and_, case, delete, exc, exists, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from ..errors import PerfloopError, RefNotFound, StoreError
from ..records import BenchmarkResult, ResultStatus, RunStatus, Sample
from .conversions import (HEX, base_name_of, environment_fingerprint, normal_sha, plain_json,
                          run_info)
from .db import ENV_VAR, READ_ONLY, create_store_engine, migrate, safe_url, to_url
from .journal import JournalTables
from .listing import RunInfo
from .server_tables import ServerTables
from .models import Base, EnvironmentRow, ResultRow, RunRow, SampleRow, utcnow

REF_HINT = ("`perfloop runs` lists stored runs; run `perfloop run --label NAME` to make one")
MIN_SHA_PREFIX = 4
# The process that owns a run existed before the run began; one created later than this many
# seconds after the run's start is another process that reused the pid.
_PID_REUSE_SLACK = 1.0
# Resolution prefers finished runs: a complete one, then an interrupted one, then one in flight.
_STATUS_RANK = {RunStatus.COMPLETE.value: 0, RunStatus.INTERRUPTED.value: 1,
                RunStatus.RUNNING.value: 2}


#: The largest run id a store can hold (a signed 64-bit integer).
MAX_RUN_ID = 2 ** 63 - 1


@dataclass(frozen=True)
class StoredRun(RunInfo):
    """A stored run in full: its environment, settings and results with their samples."""

    environment: Mapping[str, Any]
    settings: Mapping[str, Any]
    results: list[BenchmarkResult]
    project: str
    perfloop_version: str
    hostname: str
    pid: int

    def result(self, name: str) -> BenchmarkResult:
        """The result of the benchmark called ``name`` (KeyError when the run has none)."""
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"run {self.id} has no result for benchmark {name!r}")


class Store(JournalTables, ServerTables):
    """The results store: runs, their results and samples, in SQLite or PostgreSQL; and the
    workflows' records (incidents, hypotheses, profiles, approvals, the journal of changes),
    whose methods :class:`~perfloop.store.journal.JournalTables` provides.

    Make one with :meth:`Store.open`, which creates or migrates the schema. A Store is not meant
    to be shared across ``fork()``: open one in each process.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._url = safe_url(engine.url)
        self._write_sessions = sessionmaker(engine, expire_on_commit=False)
        read_options: dict[str, Any] = {READ_ONLY: True}
        if engine.dialect.name == "postgresql":
            # READ COMMITTED (the default) gives each statement its own snapshot: a run read
            # while another process adds results would mix two states (results of one, samples
            # of another). One snapshot per read transaction keeps every read consistent.
            read_options["isolation_level"] = "REPEATABLE READ"
        self._read_sessions = sessionmaker(engine.execution_options(**read_options),
                                           expire_on_commit=False)

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, reap: bool = True) -> Store:
        """Open the store at ``url`` (a SQLAlchemy URL or a SQLite file path), migrating it to
        the current schema. With ``reap``, runs left ``running`` by dead processes on this host
        are marked interrupted."""
        engine = create_store_engine(to_url(url, base=Path.cwd()))
        store = cls(engine)
        try:
            with store._guard("opening the store"):
                migrate(engine)
            if reap:
                store.reap_stale_runs()
        except BaseException:
            engine.dispose()
            raise
        return store

    @property
    def url(self) -> str:
        """The store's URL, without its password."""
        return self._url

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self._url!r})"

    # -- writing -------------------------------------------------------------------------------

    def begin_run(self, *, label: str | None, commit: str | None, branch: str | None, dirty: bool,
                  environment: Mapping[str, Any], settings: Mapping[str, Any], project: str,
                  perfloop_version: str | None = None) -> int:
        """Record the start of a run (status ``running``, owned by this process); its id."""
        env_data = plain_json(environment, "the environment")
        fingerprint = environment_fingerprint(environment)
        run = RunRow(
            label=label or None, commit=normal_sha(commit), branch=branch or None,
            dirty=bool(dirty), status=RunStatus.RUNNING.value, started_at=utcnow(),
            project=str(project), settings=plain_json(settings, "the settings"),
            perfloop_version=perfloop_version or _own_version(), hostname=socket.gethostname(),
            pid=os.getpid())
        with self._write("starting a run") as session:
            run.environment_id = self._environment_id(session, fingerprint, env_data)
            session.add(run)
            session.flush()
            return run.id

    def _environment_id(self, session: Session, fingerprint: str, data: dict[str, Any]) -> int:
        found = session.scalar(select(EnvironmentRow.id).where(EnvironmentRow.fingerprint == fingerprint))
        if found is not None:
            return found
        try:
            # A savepoint: on PostgreSQL another process may insert the same environment between
            # our select and insert, and the run must still be recorded.
            with session.begin_nested():
                row = EnvironmentRow(fingerprint=fingerprint, data=data)
                session.add(row)
            return row.id
        except exc.IntegrityError:
            return session.scalars(
                select(EnvironmentRow.id).where(EnvironmentRow.fingerprint == fingerprint)).one()

    def add_result(self, run_id: int, result: BenchmarkResult) -> None:
        """Store ``result`` and all its samples in one committed transaction."""
        row = ResultRow(
            run_id=run_id, name=result.name, base_name=base_name_of(result.name),
            kind=result.kind, params=plain_json(result.params, f"params of {result.name!r}"),
            status=ResultStatus(result.status).value, error=result.error,
            stderr_tail=result.stderr_tail, warnings=list(result.warnings),
            units=plain_json(result.units, f"units of {result.name!r}"),
            directions=plain_json(result.directions, f"directions of {result.name!r}"),
            extra=plain_json(result.extra, f"extra data of {result.name!r}"),
            duration=float(result.duration), created_at=utcnow())
        with self._write(f"storing the result of {result.name!r}") as session:
            status = session.scalar(select(RunRow.status).where(RunRow.id == run_id))
            if status is None:
                raise RefNotFound(f"no stored run with id {run_id}", hint=REF_HINT)
            if status != RunStatus.RUNNING.value:
                raise StoreError(f"run {run_id} is {status}: results can only be added to a "
                                 "running run", hint="start a new run with Store.begin_run")
            session.add(row)
            session.flush()
            self._insert_samples(session, row.id, result.samples)

    def _insert_samples(self, session: Session, result_id: int, samples: Sequence[Sample]) -> None:
        if not samples:
            return
        # Core executemany: thousands of rows in one round of the driver, no ORM objects.
        session.execute(insert(Base.metadata.tables[SampleRow.__tablename__]), [
            {"result_id": result_id, "pos": pos, "metric": s.metric, "value": float(s.value),
             "worker": int(s.worker), "idx": int(s.index), "warmup": bool(s.warmup),
             "loops": int(s.loops)}
            for pos, s in enumerate(samples)])

    def finish_run(self, run_id: int, status: RunStatus) -> None:
        """Mark a running run ``complete`` or ``interrupted``.

        Finishing a run again with the status it already has does nothing, so a cleanup path
        may call it unconditionally; changing a finished run's status is an error.
        """
        status = RunStatus(status)
        if status is RunStatus.RUNNING:
            raise ValueError("finish_run needs a final status: complete or interrupted")
        with self._write("finishing a run") as session:
            current = session.scalar(select(RunRow.status).where(RunRow.id == run_id))
            if current is None:
                raise RefNotFound(f"no stored run with id {run_id}", hint=REF_HINT)
            if current == status.value:
                return
            if current != RunStatus.RUNNING.value:
                raise StoreError(f"run {run_id} is already {current}; it cannot become {status.value}")
            session.execute(update(RunRow).where(RunRow.id == run_id)
                            .values(status=status.value, finished_at=utcnow()))

    def delete_run(self, run_id: int) -> None:
        """Remove a run with its results and samples (one transaction): for a write that must
        leave nothing behind when it fails part-way, such as an import."""
        with self._write("deleting a run") as session:
            if session.get(RunRow, run_id) is None:
                raise RefNotFound(f"no stored run with id {run_id}", hint=REF_HINT)
            # samples and results go with the run: their foreign keys cascade
            session.execute(delete(RunRow).where(RunRow.id == run_id))

    def reap_stale_runs(self) -> int:
        """Mark runs left ``running`` by a process that no longer exists as ``interrupted``.

        Only runs started on this host can be checked; the others are left alone. A reaped
        run's ``finished_at`` is the time of its last stored result (or its start): the last
        moment it is known to have been alive. Returns how many runs were reaped.
        """
        host = socket.gethostname()
        with self._write("marking dead runs as interrupted") as session:
            candidates = session.execute(
                select(RunRow.id, RunRow.pid, RunRow.started_at)
                .where(RunRow.status == RunStatus.RUNNING.value, RunRow.hostname == host)).all()
            dead = [run_id for run_id, pid, started in candidates if not _owner_alive(pid, started)]
            for run_id in dead:
                last_seen = session.scalar(select(func.max(ResultRow.created_at))
                                           .where(ResultRow.run_id == run_id))
                session.execute(
                    update(RunRow)
                    .where(RunRow.id == run_id, RunRow.status == RunStatus.RUNNING.value)
                    .values(status=RunStatus.INTERRUPTED.value,
                            finished_at=last_seen or RunRow.started_at))
        return len(dead)

    # -- reading -------------------------------------------------------------------------------

    def list_runs(self, *, limit: int | None = 50, benchmark: str | None = None) -> list[RunInfo]:
        """Stored runs, newest first; with ``benchmark``, only runs that have a result for it
        (by full name, or by base name to match all its parameter combinations)."""
        query = self._info_query()
        if benchmark:
            query = query.where(exists().where(
                ResultRow.run_id == RunRow.id,
                or_(ResultRow.name == benchmark, ResultRow.base_name == benchmark)))
        query = query.order_by(RunRow.started_at.desc(), RunRow.id.desc())
        if limit is not None:
            query = query.limit(max(limit, 0))
        with self._read("listing runs") as session:
            return [run_info(*row) for row in session.execute(query).all()]

    def get_run(self, run_id: int) -> StoredRun:
        """The run ``run_id`` with its environment, settings and results (samples included).

        One read transaction, one snapshot (REPEATABLE READ on PostgreSQL): a run another
        process is still writing is returned as it stood, with status ``running``.
        """
        if not 0 < run_id <= MAX_RUN_ID:
            raise RefNotFound(f"no stored run with id {run_id}", hint=REF_HINT)
        with self._read(f"reading run {run_id}") as session:
            row = session.execute(self._info_query().where(RunRow.id == run_id)).first()
            if row is None:
                raise RefNotFound(f"no stored run with id {run_id}", hint=REF_HINT)
            info = run_info(*row)
            run: RunRow = row[0]
            env_data = session.scalar(select(EnvironmentRow.data)
                                      .where(EnvironmentRow.id == run.environment_id))
            result_rows = session.scalars(select(ResultRow).where(ResultRow.run_id == run_id)
                                          .order_by(ResultRow.id)).all()
            samples: dict[int, list[Sample]] = {r.id: [] for r in result_rows}
            for sample in session.execute(
                    select(SampleRow.result_id, SampleRow.metric, SampleRow.value, SampleRow.worker,
                           SampleRow.idx, SampleRow.warmup, SampleRow.loops)
                    .join(ResultRow, ResultRow.id == SampleRow.result_id)
                    .where(ResultRow.run_id == run_id)
                    .order_by(SampleRow.result_id, SampleRow.pos)):
                samples[sample.result_id].append(Sample(
                    metric=sample.metric, value=sample.value, worker=sample.worker,
                    index=sample.idx, warmup=bool(sample.warmup), loops=sample.loops))
        fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(RunInfo)}
        return StoredRun(
            **fields, environment=dict(env_data or {}), settings=dict(run.settings or {}),
            results=[_to_record(r, samples[r.id]) for r in result_rows], project=run.project,
            perfloop_version=run.perfloop_version, hostname=run.hostname, pid=run.pid)

    def resolve(self, ref: str, *, commit_of: Callable[[str], str | None] | None = None) -> int:
        """The id of the run ``ref`` names.

        Tried in order: ``123`` or ``#123`` (a run id), a label (its latest run), a commit sha or
        a unique prefix of at least 4 hex digits, then ``commit_of(ref)`` (a git resolver the
        caller passes, for ``main`` or ``HEAD~1``). When several runs match, a complete one is
        preferred over an interrupted one, then the latest.
        """
        ref = ref.strip()
        tried: list[str] = []
        with self._read(f"resolving {ref!r}") as session:
            if not ref:
                raise RefNotFound("an empty run reference matches no run", hint=REF_HINT)
            digits = ref[1:] if ref.startswith("#") else ref
            if digits.isdigit():
                # Ids are 64-bit integers: a longer number is no id (and would overflow the driver).
                if int(digits) <= MAX_RUN_ID and session.get(RunRow, int(digits)) is not None:
                    return int(digits)
                if ref.startswith("#"):
                    raise RefNotFound(f"no stored run with id {digits}", hint=REF_HINT)
                tried.append("run id")
            found = self._best(session, RunRow.label == ref)
            if found is not None:
                return found
            tried.append("label")
            ambiguous: list[str] = []
            lowered = ref.lower()
            if len(lowered) >= MIN_SHA_PREFIX and HEX.match(lowered):
                commits = session.scalars(select(RunRow.commit).distinct()
                                          .where(RunRow.commit.startswith(lowered))).all()
                if len(commits) == 1:
                    found = self._best(session, and_(RunRow.commit == commits[0], not_drill_run()))
                    if found is not None:
                        return found
                    tried.append("commit (its runs were measured during a drill)")
                else:
                    ambiguous = sorted(c for c in commits if c)
                    tried.append("commit" + (" (ambiguous prefix)" if ambiguous else ""))
            if commit_of is not None:
                sha = commit_of(ref)
                if sha:
                    found = self._best(session, and_(RunRow.commit == normal_sha(sha),
                                                     not_drill_run()))
                    if found is not None:
                        return found
                    raise RefNotFound(f"{ref!r} is commit {sha[:12]}, and no stored run was made "
                                      "at that commit", hint=REF_HINT)
                tried.append("git ref")
        if ambiguous:
            shown = ", ".join(c[:12] for c in ambiguous[:5])
            raise RefNotFound(f"{ref!r} is a prefix of several stored commits ({shown})",
                              hint="give more characters of the commit")
        raise RefNotFound(f"no stored run matches {ref!r} (tried: {', '.join(tried)})",
                          hint=REF_HINT)

    def _best(self, session: Session, condition: Any) -> int | None:
        rank = case(_STATUS_RANK, value=RunRow.status, else_=3)
        return session.scalar(select(RunRow.id).where(condition)
                              .order_by(rank, RunRow.started_at.desc(), RunRow.id.desc()).limit(1))

    @staticmethod
    def _info_query() -> Select[Any]:
        counts = (select(ResultRow.run_id.label("run_id"), func.count().label("n_results"),
                         func.sum(case((ResultRow.status != ResultStatus.OK.value, 1), else_=0))
                         .label("n_failed"))
                  .group_by(ResultRow.run_id).subquery())
        return (select(RunRow, EnvironmentRow.fingerprint, counts.c.n_results, counts.c.n_failed)
                .join(EnvironmentRow, EnvironmentRow.id == RunRow.environment_id)
                .outerjoin(counts, counts.c.run_id == RunRow.id))

    # -- transactions and errors ---------------------------------------------------------------

    @contextmanager
    def _write(self, action: str) -> Iterator[Session]:
        with self._guard(action), self._write_sessions.begin() as session:
            yield session

    @contextmanager
    def _read(self, action: str) -> Iterator[Session]:
        with self._guard(action), self._read_sessions.begin() as session:
            yield session

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except PerfloopError:
            raise
        except exc.SQLAlchemyError as e:
            raise _store_error(e, self._url, action) from e
        except OSError as e:
            raise StoreError(f"{action} in {self._url} failed: {e.strerror or e}",
                             hint="check that the store's location exists and is writable") from e


def _store_error(error: exc.SQLAlchemyError, url: str, action: str) -> StoreError:
    """A StoreError that says what went wrong in words a user can act on."""
    message = str(getattr(error, "orig", None) or error).strip()
    detail = message.splitlines()[0] if message else type(error).__name__
    lowered = detail.lower()
    where = f"{action} in {url} failed: {detail}"
    if "database is locked" in lowered or "database table is locked" in lowered:
        return StoreError(where, hint="another process kept the store busy for over 30 s; wait "
                                      "for it to finish, or use a separate store with --store")
    if "readonly database" in lowered or "read-only" in lowered:
        return StoreError(where, hint="the store is not writable: check the file's permissions "
                                      f"or point --store or {ENV_VAR} elsewhere")
    if "unable to open database file" in lowered:
        return StoreError(where, hint="check that the directory exists and is writable, or "
                                      f"point --store or {ENV_VAR} elsewhere")
    if "malformed" in lowered:
        return StoreError(where, hint="the SQLite store is damaged (a disk fault, or a copy taken "
                                      "while it was written); restore it from a backup, or try "
                                      "sqlite3 FILE '.recover' | sqlite3 NEW.db and point --store "
                                      f"or {ENV_VAR} at the new file")
    if "file is not a database" in lowered:
        return StoreError(where, hint="that file is not a SQLite database (or its header is "
                                      f"damaged); point --store or {ENV_VAR} at a perfloop store")
    if "disk is full" in lowered or "no space" in lowered:
        return StoreError(where, hint="free some disk space and run again")
    if "already exists" in lowered:
        return StoreError(where, hint="the database already holds tables of that name from "
                                      "something else: give perfloop its own database or schema")
    if isinstance(error, exc.OperationalError) and url.startswith("postgresql"):
        return StoreError(f"cannot reach the store at {url} while {action}: {detail}",
                          hint="check that the PostgreSQL server is running and reachable and "
                               f"that the URL (--store or {ENV_VAR}) names the right host, port, "
                               "user and database")
    return StoreError(where, hint=f"check the store URL (--store or {ENV_VAR}) and that the "
                                  "database is reachable and writable")


def not_drill_run() -> Any:
    """The condition that a run was not measured during a drill (with an injected slowdown).

    Such runs stay stored and can be named by id or label, but a commit or git ref, a history
    series and a baseline never pick them.
    """
    return RunRow.settings["drill"].as_integer().is_(None)


def _owner_alive(pid: int, started_at: datetime) -> bool:
    """Whether the process that began a run (on this host) is still running."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        # A pid can be reused: a process born after the run began is not its owner.
        return process.create_time() <= started_at.timestamp() + _PID_REUSE_SLACK
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True   # it exists; we just may not look at it


def _to_record(row: ResultRow, samples: Iterable[Sample]) -> BenchmarkResult:
    return BenchmarkResult(
        name=row.name, kind=row.kind, status=ResultStatus(row.status), samples=tuple(samples),
        params=row.params or {}, units=row.units or {}, directions=row.directions or {},
        warnings=tuple(row.warnings or ()), error=row.error, stderr_tail=row.stderr_tail,
        duration=row.duration, extra=row.extra or {})


def _own_version() -> str:
    from .. import __version__   # the package root, not a higher layer
    return __version__
