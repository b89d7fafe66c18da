"""The store's API for the workflows' records: incidents, hypotheses, profiles, approvals, changes.

These tables are the team's memory. The workflows (incident mode, profiling, the regression
gate, the journal, the audit) read and write them only through these methods, never through
sessions or ORM rows, so that every error becomes a :class:`~perfloop.errors.StoreError` and a
change of schema stays inside this package::

    incident_id = store.add_incident(title="checkout p99 spike", project=root, data={...})
    store.update_incident(incident_id, edit=lambda data: {**data, "baseline": b})
    for change in store.changes(since=cutoff):
        print(change.id, change.title, change.actual)

Records come back as frozen dataclasses whose fields are the table's columns. Free-form details
travel in the ``data`` (and ``evidence``, ``expected``, ``actual``) dicts as they are given: a
workflow may add a key there without any change to this module or to the schema.

``edit`` callables receive a copy of a JSON column and return its new value; they run inside
the write transaction, so a read-modify-write of one row is atomic.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from .models import (ApprovalRow, ChangeRow, CycleRow, HypothesisRow, IncidentRow, ProfileRow,
                     ResultRow, RunRow, SampleRow, utcnow)

Edit = Callable[[dict[str, Any]], Mapping[str, Any]]
_R = TypeVar("_R")


@dataclass(frozen=True)
class IncidentRecord:
    """A stored profile-and-patch episode (the ``incidents`` table)."""

    id: int
    title: str
    status: str
    project: str
    benchmarks: list[Any]
    metric: str | None
    opened_at: datetime
    closed_at: datetime | None
    commit_at_open: str | None
    baseline_run_id: int | None
    verify_run_id: int | None
    note: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class HypothesisRecord:
    """A stored hypothesis and what the profile said about it (the ``hypotheses`` table)."""

    id: int
    incident_id: int | None
    text: str
    expect: list[Any]
    expected_share: float | None
    created_at: datetime
    outcome: str | None
    checked_at: datetime | None
    evidence: dict[str, Any]


@dataclass(frozen=True)
class ProfileRecord:
    """A stored profile (the ``profiles`` table)."""

    id: int
    incident_id: int | None
    hypothesis_id: int | None
    purpose: str
    target: str
    profiler: str
    commit: str | None
    dirty: bool
    created_at: datetime
    duration: float
    hot_spots: list[Any]
    signals: list[Any]
    files: dict[str, Any]
    data: dict[str, Any]


@dataclass(frozen=True)
class ApprovalRecord:
    """A stored exception to the regression gate (the ``approvals`` table)."""

    id: int
    benchmark: str
    metric: str | None
    commit: str | None
    reason: str
    author: str
    source: str
    created_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class ChangeRecord:
    """A journal entry: one tuning change, why, expected, actual (the ``changes`` table)."""

    id: int
    title: str
    kind: str | None
    workflow: str
    status: str
    incident_id: int | None
    hypothesis: str | None
    expected: dict[str, Any]
    actual: dict[str, Any]
    risk_score: float | None
    risk_factors: dict[str, Any]
    rollback_plan: str | None
    baseline_run_id: int | None
    verification_run_ids: list[Any]
    commits: list[Any]
    notes: str | None
    created_at: datetime
    updated_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class CycleRecord:
    """A release cycle of the risk-budgeted workflow (the ``cycles`` table)."""

    id: int
    name: str
    project: str
    budget: float
    status: str
    opened_at: datetime
    closed_at: datetime | None
    baseline_run_id: int | None
    data: dict[str, Any]


@dataclass(frozen=True)
class ResultSummary:
    """One stored result without its samples: what the audit needs to know of the history."""

    run_id: int
    label: str | None
    commit: str | None
    started_at: datetime
    environment_id: int
    name: str
    base_name: str
    kind: str
    status: str
    duration: float
    metrics: tuple[str, ...]


_JSON_COLUMNS = {"data", "evidence", "expected", "actual", "risk_factors", "files", "benchmarks",
                 "expect", "hot_spots", "signals", "verification_run_ids", "commits"}


def _record(cls: type[_R], row: Any) -> _R:
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        value = getattr(row, f.name)
        if f.name in _JSON_COLUMNS and value is None:
            value = [] if f.name in ("benchmarks", "expect", "hot_spots", "signals",
                                     "verification_run_ids", "commits") else {}
        values[f.name] = value
    return cls(**values)


def json_ready(value: Any) -> Any:
    """``value`` as plain JSON data: datetimes as ISO text, paths as text, dataclasses as dicts,
    sets and tuples as lists; anything else unknown as its text; NaN and infinities as None."""

    def default(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, PurePath):
            return str(v)
        if isinstance(v, enum.Enum):
            return v.value
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return dataclasses.asdict(v)
        if isinstance(v, Mapping):
            return dict(v)
        if isinstance(v, (set, frozenset, tuple)):
            return list(v)
        return str(v)

    try:
        return json.loads(json.dumps(value, default=default, allow_nan=False))
    except ValueError:
        # NaN or infinity (an undefined interval, say): PostgreSQL's JSON refuses them, and a
        # record must not be lost for one number, so they are stored as null
        return _finite(json.loads(json.dumps(value, default=default)))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _columns(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: json_ready(v) if k in _JSON_COLUMNS else v for k, v in values.items()}


class JournalTables:
    """Mixed into :class:`~perfloop.store.Store`: the workflow tables' reads and writes."""

    # provided by Store: sessions that turn driver errors into StoreError
    _read: Callable[[str], AbstractContextManager[Session]]
    _write: Callable[[str], AbstractContextManager[Session]]

    # -- incidents -----------------------------------------------------------------------------

    def add_incident(self, *, title: str, project: str, benchmarks: Sequence[str] = (),
                     metric: str | None = None, status: str = "open",
                     opened_at: datetime | None = None, commit_at_open: str | None = None,
                     data: Mapping[str, Any] | None = None) -> int:
        """Store a new incident; its id."""
        row = IncidentRow(title=title, status=status, project=project, benchmarks=list(benchmarks),
                          metric=metric, opened_at=opened_at or utcnow(),
                          commit_at_open=commit_at_open, data=json_ready(dict(data or {})))
        with self._write("opening an incident") as session:
            session.add(row)
            session.flush()
            return row.id

    def incident(self, incident_id: int) -> IncidentRecord | None:
        """The incident ``incident_id``, or None."""
        with self._read(f"reading incident {incident_id}") as session:
            row = session.get(IncidentRow, incident_id)
            return _record(IncidentRecord, row) if row else None

    def incidents(self, *, project: str | None = None, status: str | None = None,
                  since: datetime | None = None, limit: int | None = None) -> list[IncidentRecord]:
        """Incidents, newest first; of one project, in one status, opened since a time."""
        query = select(IncidentRow).order_by(IncidentRow.id.desc())
        if project is not None:
            query = query.where(IncidentRow.project == project)
        if status is not None:
            query = query.where(IncidentRow.status == status)
        if since is not None:
            query = query.where(IncidentRow.opened_at >= since)
        if limit is not None:
            query = query.limit(max(limit, 0))
        with self._read("listing incidents") as session:
            return [_record(IncidentRecord, r) for r in session.scalars(query).all()]

    def update_incident(self, incident_id: int, *, edit: Edit | None = None,
                        **columns: Any) -> bool:
        """Set columns of an incident and, with ``edit``, rewrite its data; False when missing."""
        with self._write(f"updating incident {incident_id}") as session:
            return _update(session, IncidentRow, incident_id, "data", edit, columns)

    def close_incident(self, incident_id: int, change: Mapping[str, Any], *,
                       edit: Callable[[dict[str, Any], int], Mapping[str, Any]],
                       **columns: Any) -> int:
        """Journal ``change`` and update the incident in one transaction; the change's id.

        ``edit(data, change_id)`` returns the incident's new data, knowing the change's id.
        """
        with self._write("closing an incident") as session:
            row = ChangeRow(**_columns({**_change_defaults(), **change}))
            session.add(row)
            session.flush()
            change_id = row.id
            _update(session, IncidentRow, incident_id, "data",
                    lambda data: edit(data, change_id), columns)
            return change_id

    # -- hypotheses ----------------------------------------------------------------------------

    def add_hypothesis(self, *, incident_id: int | None, text: str, expect: Sequence[str] = (),
                       expected_share: float | None = None,
                       evidence: Mapping[str, Any] | None = None,
                       created_at: datetime | None = None) -> int:
        """Store a hypothesis; its id."""
        row = HypothesisRow(incident_id=incident_id, text=text, expect=list(expect),
                            expected_share=expected_share, created_at=created_at or utcnow(),
                            evidence=json_ready(dict(evidence or {})))
        with self._write("recording a hypothesis") as session:
            session.add(row)
            session.flush()
            return row.id

    def hypothesis(self, hypothesis_id: int) -> HypothesisRecord | None:
        """The hypothesis ``hypothesis_id``, or None."""
        with self._read(f"reading hypothesis {hypothesis_id}") as session:
            row = session.get(HypothesisRow, hypothesis_id)
            return _record(HypothesisRecord, row) if row else None

    def hypotheses(self, *, incident_ids: Iterable[int] | None = None,
                   project: str | None = None) -> list[HypothesisRecord]:
        """Hypotheses, oldest first; of some incidents, or of one project's incidents."""
        query = select(HypothesisRow).order_by(HypothesisRow.created_at, HypothesisRow.id)
        if incident_ids is not None:
            query = query.where(HypothesisRow.incident_id.in_(list(incident_ids)))
        if project is not None:
            query = query.join(IncidentRow, IncidentRow.id == HypothesisRow.incident_id) \
                .where(IncidentRow.project == project)
        with self._read("reading hypotheses") as session:
            return [_record(HypothesisRecord, r) for r in session.scalars(query).all()]

    def update_hypothesis(self, hypothesis_id: int, *, edit: Edit | None = None,
                          **columns: Any) -> bool:
        """Set columns of a hypothesis and, with ``edit``, rewrite its evidence."""
        with self._write("updating a hypothesis") as session:
            return _update(session, HypothesisRow, hypothesis_id, "evidence", edit, columns)

    # -- profiles ------------------------------------------------------------------------------

    def add_profile(self, **columns: Any) -> int:
        """Store a profile (keyword arguments are the ``profiles`` columns); its id."""
        row = ProfileRow(**_columns({"created_at": utcnow(), "files": {}, "data": {},
                                     "hot_spots": [], "signals": [], **columns}))
        with self._write("storing a profile") as session:
            session.add(row)
            session.flush()
            return row.id

    def profile(self, profile_id: int) -> ProfileRecord | None:
        """The profile ``profile_id``, or None."""
        with self._read(f"reading profile {profile_id}") as session:
            row = session.get(ProfileRow, profile_id)
            return _record(ProfileRecord, row) if row else None

    def profiles(self, *, incident_id: int | None = None, target: str | None = None,
                 since: datetime | None = None) -> list[ProfileRecord]:
        """Profiles, oldest first; of one incident, of one target, made since a time."""
        query = select(ProfileRow).order_by(ProfileRow.id)
        if incident_id is not None:
            query = query.where(ProfileRow.incident_id == incident_id)
        if target is not None:
            query = query.where(ProfileRow.target == target)
        if since is not None:
            query = query.where(ProfileRow.created_at >= since)
        with self._read("reading profiles") as session:
            return [_record(ProfileRecord, r) for r in session.scalars(query).all()]

    def profile_ids(self, incident_id: int) -> list[int]:
        """The ids of an incident's profiles, oldest first (without their stacks)."""
        with self._read("reading profiles") as session:
            return list(session.scalars(select(ProfileRow.id).where(
                ProfileRow.incident_id == incident_id).order_by(ProfileRow.id)).all())

    def update_profile(self, profile_id: int, **columns: Any) -> bool:
        """Set columns of a stored profile (its files, once written)."""
        with self._write("storing a profile") as session:
            return _update(session, ProfileRow, profile_id, "data", None, columns)

    # -- approvals -----------------------------------------------------------------------------

    def add_approval(self, *, benchmark: str, reason: str, author: str = "",
                     metric: str | None = None, commit: str | None = None, source: str = "cli",
                     created_at: datetime | None = None,
                     data: Mapping[str, Any] | None = None) -> ApprovalRecord:
        """Store an approval as given (``data`` is kept whole); the stored record."""
        row = ApprovalRow(benchmark=benchmark, metric=metric, commit=commit, reason=reason,
                          author=author, source=source, created_at=created_at or utcnow(),
                          data=json_ready(dict(data or {})))
        with self._write("recording an approval") as session:
            session.add(row)
            session.flush()
            return _record(ApprovalRecord, row)

    def approval(self, approval_id: int) -> ApprovalRecord | None:
        """The approval ``approval_id``, or None."""
        with self._read(f"reading approval {approval_id}") as session:
            row = session.get(ApprovalRow, approval_id)
            return _record(ApprovalRecord, row) if row else None

    def update_approval(self, approval_id: int, *, edit: Edit | None = None,
                        **columns: Any) -> bool:
        """Set columns of an approval and, with ``edit``, rewrite its data."""
        with self._write("updating an approval") as session:
            return _update(session, ApprovalRow, approval_id, "data", edit, columns)

    def approvals(self, *, benchmarks: Iterable[str] | None = None,
                  commits: Iterable[str] | None = None, since: datetime | None = None,
                  limit: int | None = None) -> list[ApprovalRecord]:
        """Approvals, newest first; of some benchmark names, of some commits, since a time."""
        query = select(ApprovalRow).order_by(ApprovalRow.created_at.desc(), ApprovalRow.id.desc())
        if benchmarks is not None:
            query = query.where(ApprovalRow.benchmark.in_(list(benchmarks)))
        if commits is not None:
            query = query.where(ApprovalRow.commit.in_(list(commits)))
        if since is not None:
            query = query.where(ApprovalRow.created_at >= since)
        if limit is not None:
            query = query.limit(max(limit, 0))
        with self._read("reading approvals") as session:
            return [_record(ApprovalRecord, r) for r in session.scalars(query).all()]

    # -- results, summarised -------------------------------------------------------------------

    def result_summaries(self, *, since: datetime | None = None) -> list[ResultSummary]:
        """Every stored result (no samples) of runs started since a time, oldest first."""
        query = (select(ResultRow.id, RunRow.id, RunRow.label, RunRow.commit, RunRow.started_at,
                        RunRow.environment_id, ResultRow.name, ResultRow.base_name, ResultRow.kind,
                        ResultRow.status, ResultRow.duration)
                 .join(ResultRow, ResultRow.run_id == RunRow.id)
                 .order_by(RunRow.started_at, RunRow.id, ResultRow.id))
        metrics = (select(SampleRow.result_id, SampleRow.metric).distinct()
                   .join(ResultRow, ResultRow.id == SampleRow.result_id)
                   .join(RunRow, RunRow.id == ResultRow.run_id))
        if since is not None:
            query = query.where(RunRow.started_at >= since)
            metrics = metrics.where(RunRow.started_at >= since)
        with self._read("summarising results") as session:
            rows = session.execute(query).all()
            by_result: dict[int, list[str]] = {}
            for result_id, metric in session.execute(metrics).all():
                by_result.setdefault(result_id, []).append(metric)
        return [ResultSummary(*row[1:], metrics=tuple(sorted(by_result.get(row[0], ()))))
                for row in rows]

    # -- changes: the journal ------------------------------------------------------------------

    def add_change(self, **columns: Any) -> int:
        """Journal a change (keyword arguments are the ``changes`` columns); its id."""
        row = ChangeRow(**_columns({**_change_defaults(), **columns}))
        with self._write("journaling a change") as session:
            session.add(row)
            session.flush()
            return row.id

    def change(self, change_id: int) -> ChangeRecord | None:
        """The journal entry ``change_id``, or None."""
        with self._read(f"reading change {change_id}") as session:
            row = session.get(ChangeRow, change_id)
            return _record(ChangeRecord, row) if row else None

    def changes(self, *, workflow: str | None = None, status: str | None = None,
                since: datetime | None = None, incident_id: int | None = None,
                limit: int | None = None) -> list[ChangeRecord]:
        """Journal entries, newest first, filtered by workflow, status, time and incident."""
        query = select(ChangeRow).order_by(ChangeRow.created_at.desc(), ChangeRow.id.desc())
        if workflow is not None:
            query = query.where(ChangeRow.workflow == workflow)
        if status is not None:
            query = query.where(ChangeRow.status == status)
        if since is not None:
            query = query.where(ChangeRow.created_at >= since)
        if incident_id is not None:
            query = query.where(ChangeRow.incident_id == incident_id)
        if limit is not None:
            query = query.limit(max(limit, 0))
        with self._read("reading the journal") as session:
            return [_record(ChangeRecord, r) for r in session.scalars(query).all()]

    def update_change(self, change_id: int, *, edit: Edit | None = None, **columns: Any) -> bool:
        """Set columns of a journal entry (``updated_at`` too) and, with ``edit``, its data."""
        with self._write(f"updating change {change_id}") as session:
            return _update(session, ChangeRow, change_id, "data", edit,
                           {"updated_at": utcnow(), **columns})


    # -- cycles: the risk budget ---------------------------------------------------------------

    def add_cycle(self, *, name: str, project: str, budget: float,
                  baseline_run_id: int | None = None) -> CycleRecord:
        """Open a release cycle; the stored record."""
        row = CycleRow(name=name, project=project, budget=float(budget), status="open",
                       opened_at=utcnow(), baseline_run_id=baseline_run_id, data={})
        with self._write("opening a cycle") as session:
            session.add(row)
            session.flush()
            return _record(CycleRecord, row)

    def cycles(self, *, project: str | None = None, status: str | None = None) -> list[CycleRecord]:
        """Release cycles, newest first; of one project, in one status."""
        query = select(CycleRow).order_by(CycleRow.id.desc())
        if project is not None:
            query = query.where(CycleRow.project == project)
        if status is not None:
            query = query.where(CycleRow.status == status)
        with self._read("reading cycles") as session:
            return [_record(CycleRecord, r) for r in session.scalars(query).all()]

    def update_cycle(self, cycle_id: int, *, edit: Edit | None = None, **columns: Any) -> bool:
        """Set columns of a cycle and, with ``edit``, rewrite its data."""
        with self._write(f"updating cycle {cycle_id}") as session:
            return _update(session, CycleRow, cycle_id, "data", edit, columns)


def _change_defaults() -> dict[str, Any]:
    now = utcnow()
    return {"kind": None, "status": "proposed", "expected": {}, "actual": {}, "risk_factors": {},
            "verification_run_ids": [], "commits": [], "created_at": now, "updated_at": now,
            "data": {}}


def _update(session: Session, model: type, row_id: int, json_column: str, edit: Edit | None,
            columns: Mapping[str, Any]) -> bool:
    values = _columns(columns)
    if edit is not None:
        current = session.scalar(select(getattr(model, json_column)).where(model.id == row_id))  # type: ignore[attr-defined]
        if current is None and session.get(model, row_id) is None:
            return False
        values[json_column] = json_ready(dict(edit(dict(current or {}))))
    if not values:
        return session.get(model, row_id) is not None
    # an UPDATE's result is a CursorResult, which counts the rows it matched
    result = cast(CursorResult[Any], session.execute(
        update(model).where(model.id == row_id).values(**values)))  # type: ignore[attr-defined]
    return bool(result.rowcount)
