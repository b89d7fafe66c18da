"""The store's API for a team server: project tokens and idempotent, all-or-nothing uploads.

A token is shown once, when it is made; the store keeps only its SHA-256 and compares hashes
in constant time, so a leaked database holds no usable token and a timing probe learns nothing::

    token = store.create_token(project="shop", scope="write", name="ci")
    record = store.check_token(token, project="shop", scope="write")   # None when refused

An upload stores one run (results and samples) in one transaction, keyed by the client's
``upload_id``: the ``uploads`` table's unique (project, upload_id) means a retry, even one racing
the first attempt on another connection, returns the run already stored and adds nothing.

A journal upload is a store's whole journal (and its open release cycle), also in one
transaction: entries are keyed by (project, origin store, entry id), so sending the same journal
again changes nothing, an entry whose content changed (an open loop closed) is replaced, and an
entry the store no longer shows (an incident since closed) is removed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy import Select, delete, exc, func, select, update
from sqlalchemy.orm import Session

from ..errors import StoreError
from ..records import BenchmarkResult, ResultStatus, RunStatus
from .conversions import (base_name_of, environment_fingerprint, json_default, normal_sha,
                          plain_json, run_info)
from .models import (TOKEN_SCOPES, JournalEntryRow, ProjectCycleRow, ResultRow, RunRow,
                     TokenRow, UploadRow, utcnow)

TOKEN_PREFIX = "plt_"


@dataclass(frozen=True)
class TokenRecord:
    """A stored token, without the token itself (the ``tokens`` table)."""

    id: int
    project: str
    scope: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class JournalOutcome:
    """What a journal upload changed: entries and cycles created, updated, removed, unchanged."""

    created: int
    updated: int
    removed: int
    unchanged: int

    def to_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "removed": self.removed,
                "unchanged": self.unchanged}


@dataclass(frozen=True)
class UploadedRun:
    """A run as a client uploads it: what :meth:`ServerTables.store_upload` stores."""

    label: str | None
    commit: str | None
    branch: str | None
    dirty: bool
    environment: Mapping[str, Any]
    settings: Mapping[str, Any]
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    results: Sequence[BenchmarkResult]
    perfloop_version: str = ""
    hostname: str = ""


@dataclass(frozen=True)
class UploadOutcome:
    """Where an upload went: the run's id, and whether this request stored it (False: a retry)."""

    run_id: int
    created: bool


class UploadConflict(StoreError):
    """The upload id was used before for a different run."""


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token: what the store keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ServerTables:
    """Mixed into :class:`~perfloop.store.Store`: tokens and uploads of a team server."""

    # provided by Store
    _read: Callable[[str], AbstractContextManager[Session]]
    _write: Callable[[str], AbstractContextManager[Session]]
    _environment_id: Callable[[Session, str, dict[str, Any]], int]
    _insert_samples: Callable[..., None]
    _info_query: Callable[[], Select[Any]]

    # -- tokens --------------------------------------------------------------------------------

    def create_token(self, *, project: str, scope: str, name: str = "") -> str:
        """Make a token for ``project`` with ``scope`` (read or write); the token, shown once."""
        if scope not in TOKEN_SCOPES:
            raise StoreError(f"unknown token scope {scope!r}", hint="use read or write")
        if not project.strip():
            raise StoreError("a token needs a project name", hint="e.g. --project shop")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._write("creating a token") as session:
            session.add(TokenRow(project=project, scope=scope, name=name,
                                 token_hash=hash_token(token), created_at=utcnow()))
        return token

    def check_token(self, token: str, *, project: str, scope: str) -> TokenRecord | None:
        """The token's record when ``token`` belongs to ``project`` and allows ``scope`` (a write
        token also reads); None otherwise."""
        presented = hash_token(token)
        allowed = ("read", "write") if scope == "read" else ("write",)
        with self._read("checking a token") as session:
            rows = session.scalars(select(TokenRow).where(TokenRow.project == project,
                                                          TokenRow.revoked_at.is_(None))).all()
        found = None
        for row in rows:
            # every row is compared, in constant time: no early exit to time
            if hmac.compare_digest(row.token_hash, presented) and row.scope in allowed:
                found = row
        if found is None:
            return None
        return _token_record(found)

    def tokens(self, *, project: str | None = None) -> list[TokenRecord]:
        """Stored tokens (never the tokens themselves), revoked ones too, oldest first."""
        query = select(TokenRow).order_by(TokenRow.id)
        if project is not None:
            query = query.where(TokenRow.project == project)
        with self._read("listing tokens") as session:
            return [_token_record(r) for r in session.scalars(query)]

    def revoke_token(self, token_id: int) -> TokenRecord | None:
        """Refuse token ``token_id`` from now on (kept, for the record); None when there is no
        such token. Revoking a revoked token keeps its first revocation time."""
        with self._write(f"revoking token {token_id}") as session:
            row = session.get(TokenRow, token_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                session.flush()
            return _token_record(row)

    # -- uploads -------------------------------------------------------------------------------

    def store_upload(self, project: str, upload_id: str, run: UploadedRun) -> UploadOutcome:
        """Store an uploaded run with its results and samples in one transaction, once.

        The same ``upload_id`` again returns the run stored the first time; with different
        content it raises :class:`UploadConflict`. Any failure stores nothing.
        """
        digest = _digest(run)
        with self._write(f"storing upload {upload_id!r}") as session:
            existing = self._existing_upload(session, project, upload_id, digest)
            if existing is not None:
                return UploadOutcome(existing, created=False)
            try:
                # Claim the upload id first: a racing retry on PostgreSQL waits here for this
                # transaction, then fails on the unique constraint and returns our run.
                with session.begin_nested():
                    claim = UploadRow(project=project, upload_id=upload_id, digest=digest,
                                      created_at=utcnow())
                    session.add(claim)
            except exc.IntegrityError:
                existing = self._existing_upload(session, project, upload_id, digest)
                if existing is None:
                    raise
                return UploadOutcome(existing, created=False)
            run_id = self._insert_uploaded_run(session, project, run)
            session.execute(update(UploadRow).where(UploadRow.id == claim.id)
                            .values(run_id=run_id))
            return UploadOutcome(run_id, created=True)

    def _existing_upload(self, session: Session, project: str, upload_id: str,
                         digest: str) -> int | None:
        row = session.execute(select(UploadRow.run_id, UploadRow.digest).where(
            UploadRow.project == project, UploadRow.upload_id == upload_id)).first()
        if row is None:
            return None
        if row.digest != digest:
            raise UploadConflict(f"upload id {upload_id!r} of project {project!r} was already "
                                 "used for a different run",
                                 hint="give each run its own upload id")
        return int(row.run_id)

    def _insert_uploaded_run(self, session: Session, project: str, run: UploadedRun) -> int:
        env = plain_json(run.environment, "the environment")
        row = RunRow(label=run.label or None, commit=normal_sha(run.commit),
                     branch=run.branch or None, dirty=bool(run.dirty),
                     status=RunStatus(run.status).value, started_at=run.started_at,
                     finished_at=run.finished_at, project=project,
                     settings=plain_json(run.settings, "the settings"),
                     perfloop_version=run.perfloop_version, hostname=run.hostname, pid=0)
        row.environment_id = self._environment_id(session, environment_fingerprint(env), env)
        session.add(row)
        session.flush()
        for result in run.results:
            result_row = ResultRow(
                run_id=row.id, name=result.name, base_name=base_name_of(result.name),
                kind=result.kind, params=plain_json(result.params, f"params of {result.name!r}"),
                status=ResultStatus(result.status).value, error=result.error,
                stderr_tail=result.stderr_tail, warnings=list(result.warnings),
                units=plain_json(result.units, f"units of {result.name!r}"),
                directions=plain_json(result.directions, f"directions of {result.name!r}"),
                extra=plain_json(result.extra, f"extra data of {result.name!r}"),
                duration=float(result.duration), created_at=run.finished_at or run.started_at)
            session.add(result_row)
            session.flush()
            self._insert_samples(session, result_row.id, result.samples)
        return row.id

    # -- the journal -----------------------------------------------------------------------------

    def store_journal(self, project: str, origin: str, entries: Sequence[Mapping[str, Any]],
                      cycles: Sequence[Mapping[str, Any]] = ()) -> JournalOutcome:
        """Store the journal of one origin store, all of it in one transaction.

        ``entries`` are plain dicts with at least ``id``, ``source``, ``title``, ``workflow``,
        ``status`` and ``created_at`` (a datetime); ``cycles`` dicts with ``id``, ``name``,
        ``status``, ``budget`` and ``opened_at``. Both are the origin's whole journal: what it
        no longer holds is removed (an entry) or marked closed (a cycle).
        """
        ids = [str(e["id"]) for e in entries]
        if len(ids) != len(set(ids)):
            raise StoreError("two journal entries have the same id",
                             hint="upload each entry once")
        kept = set(ids)
        created = updated = removed = unchanged = 0
        with self._write(f"storing the journal of {project!r}") as session:
            # rows are written in one order whatever the body's: two uploads racing on
            # PostgreSQL then wait for each other instead of deadlocking
            for entry in sorted(entries, key=lambda e: str(e["id"])):
                values = {"source": str(entry["source"]), "title": str(entry["title"]),
                          "workflow": str(entry["workflow"]), "status": str(entry["status"]),
                          "created_at": entry["created_at"], "entry": _plain_dict(entry),
                          "digest": _content_digest(entry), "uploaded_at": utcnow()}
                outcome = self._upsert(session, JournalEntryRow, values, project=project,
                                       origin=origin, entry_id=str(entry["id"]))
                created += outcome == "created"
                updated += outcome == "updated"
                unchanged += outcome == "unchanged"
            gone = [row_id for row_id, entry_id in session.execute(
                select(JournalEntryRow.id, JournalEntryRow.entry_id).where(
                    JournalEntryRow.project == project, JournalEntryRow.origin == origin))
                if entry_id not in kept]
            if gone:
                session.execute(delete(JournalEntryRow).where(JournalEntryRow.id.in_(gone)))
                removed += len(gone)
            cycle_ids = {int(c["id"]) for c in cycles}
            for cycle in sorted(cycles, key=lambda c: int(c["id"])):
                values = {"name": str(cycle["name"]), "status": str(cycle["status"]),
                          "budget": float(cycle["budget"]), "opened_at": cycle["opened_at"],
                          "cycle": _plain_dict(cycle), "digest": _content_digest(cycle),
                          "uploaded_at": utcnow()}
                outcome = self._upsert(session, ProjectCycleRow, values, project=project,
                                       origin=origin, cycle_id=int(cycle["id"]))
                created += outcome == "created"
                updated += outcome == "updated"
                unchanged += outcome == "unchanged"
            # a cycle the origin no longer shows open was closed there
            closed = session.execute(update(ProjectCycleRow).where(
                ProjectCycleRow.project == project, ProjectCycleRow.origin == origin,
                ProjectCycleRow.status == "open",
                ProjectCycleRow.cycle_id.not_in(sorted(cycle_ids) or [-1]))
                .values(status="closed", uploaded_at=utcnow()))
            updated += int(getattr(closed, "rowcount", 0) or 0)
        return JournalOutcome(created, updated, removed, unchanged)

    def _upsert(self, session: Session, model: Any, values: dict[str, Any],
                **key: Any) -> str:
        """Insert or update the row of ``model`` with ``key``; created, updated or unchanged."""
        where = [getattr(model, k) == v for k, v in key.items()]
        for _ in range(2):
            found = session.execute(select(model.id, model.digest).where(*where)).first()
            if found is not None:
                if found.digest == values["digest"]:
                    return "unchanged"
                session.execute(update(model).where(model.id == found.id).values(**values))
                return "updated"
            try:
                # a racing upload of the same journal on PostgreSQL waits here, then fails on
                # the unique key and updates the row the other one made
                with session.begin_nested():
                    session.add(model(**key, **values))
                return "created"
            except exc.IntegrityError:
                continue
        raise StoreError("a journal entry was written by two uploads at once",
                         hint="upload the journal again")

    def project_journal(self, project: str, *, limit: int | None = None,
                        source: str | None = None,
                        status: str | None = None) -> list[dict[str, Any]]:
        """The project's uploaded journal entries (as uploaded, with ``origin``), newest first."""
        query = (select(JournalEntryRow.origin, JournalEntryRow.entry)
                 .where(JournalEntryRow.project == project)
                 .order_by(JournalEntryRow.created_at.desc(), JournalEntryRow.id.desc()))
        if source is not None:
            query = query.where(JournalEntryRow.source == source)
        if status is not None:
            query = query.where(JournalEntryRow.status == status)
        if limit is not None:
            query = query.limit(max(limit, 0))
        with self._read(f"reading the journal of {project!r}") as session:
            return [{**(entry or {}), "origin": origin}
                    for origin, entry in session.execute(query).all()]

    def project_cycles(self, project: str, *, status: str | None = None) -> list[dict[str, Any]]:
        """The project's uploaded release cycles (as uploaded, status as stored), newest first."""
        query = (select(ProjectCycleRow.origin, ProjectCycleRow.status, ProjectCycleRow.cycle)
                 .where(ProjectCycleRow.project == project)
                 .order_by(ProjectCycleRow.opened_at.desc(), ProjectCycleRow.id.desc()))
        if status is not None:
            query = query.where(ProjectCycleRow.status == status)
        with self._read(f"reading the cycles of {project!r}") as session:
            return [{**(cycle or {}), "status": row_status, "origin": origin}
                    for origin, row_status, cycle in session.execute(query).all()]

    # -- reading by project --------------------------------------------------------------------

    def projects(self) -> list[tuple[str, int]]:
        """Projects that have stored runs, with how many, by name."""
        with self._read("listing projects") as session:
            rows = session.execute(select(RunRow.project, func.count()).group_by(RunRow.project)
                                   .order_by(RunRow.project)).all()
        return [(str(p), int(n)) for p, n in rows]

    def project_runs(self, project: str, *, limit: int = 50, offset: int = 0) -> list[Any]:
        """Runs of ``project``, newest first (as :class:`~perfloop.store.RunInfo`)."""
        query = (self._info_query().where(RunRow.project == project)
                 .order_by(RunRow.started_at.desc(), RunRow.id.desc())
                 .limit(max(limit, 0)).offset(max(offset, 0)))
        with self._read(f"listing runs of {project!r}") as session:
            return [run_info(*row) for row in session.execute(query).all()]

    def project_benchmarks(self, project: str) -> list[tuple[str, int]]:
        """Benchmarks with results in ``project``'s runs, with how many runs, by name."""
        query = (select(ResultRow.name, func.count(func.distinct(ResultRow.run_id)))
                 .join(RunRow, RunRow.id == ResultRow.run_id).where(RunRow.project == project)
                 .group_by(ResultRow.name).order_by(ResultRow.name))
        with self._read(f"listing benchmarks of {project!r}") as session:
            return [(str(name), int(n)) for name, n in session.execute(query).all()]

    def run_project(self, run_id: int) -> str | None:
        """The project a run belongs to, or None when there is no such run."""
        with self._read(f"reading run {run_id}") as session:
            return session.scalar(select(RunRow.project).where(RunRow.id == run_id))


def _token_record(row: TokenRow) -> TokenRecord:
    return TokenRecord(id=row.id, project=row.project, scope=row.scope, name=row.name,
                       created_at=row.created_at, revoked_at=row.revoked_at)


def _plain_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    from .journal import json_ready
    return dict(json_ready(dict(value)))


def _content_digest(value: Mapping[str, Any]) -> str:
    body = json.dumps(_plain_dict(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _digest(run: UploadedRun) -> str:
    """A hash of the run's content, to tell a true retry from a reused upload id."""
    content = {
        "label": run.label, "commit": run.commit, "branch": run.branch, "dirty": run.dirty,
        "environment": run.environment, "settings": run.settings,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "status": RunStatus(run.status).value,
        "results": [{"name": r.name, "kind": r.kind, "status": ResultStatus(r.status).value,
                     "params": r.params, "units": r.units, "directions": r.directions,
                     "warnings": list(r.warnings), "error": r.error, "duration": r.duration,
                     "samples": [[s.metric, s.value, s.worker, s.index, s.warmup, s.loops]
                                 for s in r.samples]}
                    for r in run.results]}
    body = json.dumps(content, default=json_default, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()
