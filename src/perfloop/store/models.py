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
