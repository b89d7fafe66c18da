"""The results store's tables, as SQLAlchemy 2 ORM models.

    environments 1──* runs 1──* results 1──* samples

An *environment* is stored once per fingerprint and shared by every run made in it, so "which
runs are comparable" is an equality test on ``runs.environment_id``. Samples are the bulk of the
data (thousands per result); they have no surrogate key: ``(result_id, pos)`` keeps their order
and lets them be inserted with one ``executemany`` and no ``RETURNING``.

These models describe the *current* schema for the code. The schema in a database is created
and changed only by the Alembic migrations in ``migrations/versions``; a change here needs a
new migration there. Tables for later features (changes, incidents, approvals) will reference
``runs.id`` and ``results.id`` and need no change to the tables below.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names: migrations must be able to name a constraint to drop or alter
# it, and SQLite and PostgreSQL would otherwise invent different names.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_STATUSES = ("running", "complete", "interrupted")
RESULT_STATUSES = ("ok", "failed", "timeout")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite has no time zones and returns naive values; PostgreSQL returns them in the session's
    zone. Normalising here means no caller ever compares a naive with an aware datetime.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps stored in the results store must be timezone-aware")
        value = value.astimezone(timezone.utc)
        # SQLite would store the offset as text and compare strings; keep it uniform instead.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


class EnvironmentRow(Base):
    """Where runs happened: CPU, memory, OS, kernel, Python build, packages, governor, CI runner."""

    __tablename__ = "environments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(128), unique=True)
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    runs: Mapped[list[RunRow]] = relationship(back_populates="environment", lazy="raise")


class RunRow(Base):
    """One execution of some benchmarks at one commit in one environment."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str | None] = mapped_column(String(200))
    commit: Mapped[str | None] = mapped_column(String(64))
    branch: Mapped[str | None] = mapped_column(String(255))
    dirty: Mapped[bool] = mapped_column(Boolean, default=False)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id"))
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    project: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]]
    perfloop_version: Mapped[str] = mapped_column(String(64), default="")
    # hostname + pid identify the process that owns a "running" run, so a run left behind by a
    # crashed process can be told apart from one still in progress.
    hostname: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)

    environment: Mapped[EnvironmentRow] = relationship(back_populates="runs", lazy="raise")
    results: Mapped[list[ResultRow]] = relationship(
        back_populates="run", lazy="raise", passive_deletes=True, order_by="ResultRow.id")

    __table_args__ = (
        CheckConstraint(f"status IN {RUN_STATUSES!r}", name="status"),
        Index(None, "label"),
        Index(None, "commit"),
        Index(None, "started_at"),
        Index(None, "environment_id"),
        Index(None, "status", "hostname"),
    )


class ResultRow(Base):
    """What one benchmark produced in one run (a :class:`~perfloop.records.BenchmarkResult`)."""

    __tablename__ = "results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    base_name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    stderr_tail: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list[Any]]
    units: Mapped[dict[str, Any]]
    directions: Mapped[dict[str, Any]]
    extra: Mapped[dict[str, Any]]
    duration: Mapped[float] = mapped_column(Double, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    run: Mapped[RunRow] = relationship(back_populates="results", lazy="raise")

    __table_args__ = (
        CheckConstraint(f"status IN {RESULT_STATUSES!r}", name="status"),
        Index(None, "run_id"),
        # a benchmark's history: its results across runs, then their samples by metric
        Index(None, "name", "run_id"),
        Index(None, "base_name"),
    )


class SampleRow(Base):
    """One measured value of one metric (a :class:`~perfloop.records.Sample`)."""

    __tablename__ = "samples"

    result_id: Mapped[int] = mapped_column(
        ForeignKey("results.id", ondelete="CASCADE"), primary_key=True)
    pos: Mapped[int] = mapped_column(Integer, primary_key=True)  # order within the result
    metric: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Double)
    worker: Mapped[int] = mapped_column(Integer)
    idx: Mapped[int] = mapped_column(Integer)
    warmup: Mapped[bool] = mapped_column(Boolean)
    loops: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        # with results(name, run_id): the samples of one (benchmark, metric) across runs
        Index(None, "result_id", "metric"),
    )


# ---------------------------------------------------------------------------------------------
# The workflows' records: approvals (regression gate), incidents, hypotheses and profiles
# (profile-and-patch), and changes (the journal every workflow writes to). Free-form details
# live in JSON columns so that a workflow can add a field without a migration; what is queried
# or joined on is a real column.

INCIDENT_STATUSES = ("open", "closed")
HYPOTHESIS_OUTCOMES = ("confirmed", "refuted", "unclear")


class ApprovalRow(Base):
    """A reviewed, documented exception to the regression gate for one benchmark."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    benchmark: Mapped[str] = mapped_column(String(500))
    metric: Mapped[str | None] = mapped_column(String(100))          # None: every metric
    commit: Mapped[str | None] = mapped_column(String(64))           # the head it approves
    reason: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(255), default="")
    source: Mapped[str] = mapped_column(String(32), default="cli")   # cli | trailer
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]]

    __table_args__ = (Index(None, "benchmark"), Index(None, "commit"))


class IncidentRow(Base):
    """A profile-and-patch episode: while one is open the project is in incident mode."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="open")
    project: Mapped[str] = mapped_column(Text, default="")
    benchmarks: Mapped[list[Any]]                  # benchmark names under investigation
    metric: Mapped[str | None] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    commit_at_open: Mapped[str | None] = mapped_column(String(64))
    baseline_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    verify_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]]                   # baseline scrape, verification, journal entry

    __table_args__ = (
        CheckConstraint(f"status IN {INCIDENT_STATUSES!r}", name="status"),
        Index(None, "status", "project"),
    )


class HypothesisRow(Base):
    """What someone expects to find before profiling, and whether the profile agreed."""

    __tablename__ = "hypotheses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    expect: Mapped[list[Any]]                      # "module:function" or "module" names
    expected_share: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str | None] = mapped_column(String(16))
    checked_at: Mapped[datetime | None]
    evidence: Mapped[dict[str, Any]]

    __table_args__ = (
        CheckConstraint(f"outcome IS NULL OR outcome IN {HYPOTHESIS_OUTCOMES!r}", name="outcome"),
        Index(None, "incident_id"),
    )


class ProfileRow(Base):
    """A stored profile: its hot spots, systemic signals and where its flame graph was written."""

    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    hypothesis_id: Mapped[int | None] = mapped_column(ForeignKey("hypotheses.id", ondelete="SET NULL"))
    purpose: Mapped[str] = mapped_column(String(32), default="hypothesis")  # hypothesis|exploration|after
    target: Mapped[str] = mapped_column(Text)       # benchmark name, command line or pid
    profiler: Mapped[str] = mapped_column(String(32))
    commit: Mapped[str | None] = mapped_column(String(64))
    dirty: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration: Mapped[float] = mapped_column(Double, default=0.0)
    hot_spots: Mapped[list[Any]]
    signals: Mapped[list[Any]]
    files: Mapped[dict[str, Any]]                   # format -> path
    data: Mapped[dict[str, Any]]                    # aggregated frames, for differential profiles

    __table_args__ = (Index(None, "incident_id"),)


class ChangeRow(Base):
    """One tuning change, the unit of the journal: why, expected, actual."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str | None] = mapped_column(String(32))       # config, index, cache, code path, ...
    workflow: Mapped[str] = mapped_column(String(32))          # profile-and-patch | regression | risk-budget
    status: Mapped[str] = mapped_column(String(32), default="proposed")
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    hypothesis: Mapped[str | None] = mapped_column(Text)
    expected: Mapped[dict[str, Any]]                # metric, direction, size
    actual: Mapped[dict[str, Any]]                  # verdicts and numbers
    risk_score: Mapped[float | None] = mapped_column(Double)
    risk_factors: Mapped[dict[str, Any]]
    rollback_plan: Mapped[str | None] = mapped_column(Text)
    baseline_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    verification_run_ids: Mapped[list[Any]]
    commits: Mapped[list[Any]]
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]]

    __table_args__ = (Index(None, "incident_id"), Index(None, "created_at"))


CYCLE_STATUSES = ("open", "closed")


class CycleRow(Base):
    """A release cycle of the risk-budgeted workflow: its budget in risk points and outcome.

    The changes scheduled into it are journal rows (``changes``) whose ``data["cycle_id"]``
    names it.
    """

    __tablename__ = "cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    project: Mapped[str] = mapped_column(Text)
    budget: Mapped[float] = mapped_column(Double)
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    baseline_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    data: Mapped[dict[str, Any]]

    __table_args__ = (
        CheckConstraint(f"status IN {CYCLE_STATUSES!r}", name="status"),
        Index(None, "project", "status"),
    )


# ---------------------------------------------------------------------------------------------
# The team server: API tokens and the uploads it has accepted.

TOKEN_SCOPES = ("read", "write")


class TokenRow(Base):
    """An API token of one project: only the SHA-256 of the token is kept, never the token."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)   # refused from then on

    __table_args__ = (
        CheckConstraint(f"scope IN {TOKEN_SCOPES!r}", name="scope"),
        Index(None, "project"),
    )


class UploadRow(Base):
    """An accepted upload: its client-chosen id is unique per project, so a retried upload (or
    two racing retries) can only ever store its run once."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(200))
    upload_id: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64))     # SHA-256 of the uploaded run's content
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("project", "upload_id"),
        Index(None, "run_id"),
    )


class JournalEntryRow(Base):
    """A journal entry uploaded to a team server, as the uploading store shows it.

    Entries are keyed by the project, the store they came from (``origin``: two stores may
    both have an entry 12) and the entry's id there; an upload replaces an entry whose content
    changed (an open loop closed) and leaves an unchanged one alone.
    """

    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(200))
    entry_id: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    workflow: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    entry: Mapped[dict[str, Any]]                   # the entry's fields, as uploaded
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the entry's content
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("project", "origin", "entry_id"),
        Index(None, "project", "created_at"),
    )


class ProjectCycleRow(Base):
    """A release cycle of the risk-budgeted workflow, uploaded to a team server with the journal."""

    __tablename__ = "project_cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(200))
    cycle_id: Mapped[int] = mapped_column(Integer)   # its id in the uploading store
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    budget: Mapped[float] = mapped_column(Double)
    opened_at: Mapped[datetime]
    cycle: Mapped[dict[str, Any]]                    # budget, spent, changes, health
    digest: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("project", "origin", "cycle_id"),
        Index(None, "project", "status"),
    )
