"""The upload API's request and response bodies, as Pydantic models (and so in the OpenAPI).

Limits here bound what one request can ask the server to store; a payload outside them is
refused with 422 before the store is touched.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ..records import BenchmarkResult, ResultStatus, RunStatus, Sample
from ..store.server_tables import UploadedRun

MAX_RESULTS = 2_000
MAX_SAMPLES = 200_000
MAX_ENTRIES = 10_000
MAX_CYCLES = 100


class SampleIn(BaseModel):
    """One measured value."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1, max_length=100)
    value: float = Field(allow_inf_nan=False)
    worker: int = Field(0, ge=0, le=2**31 - 1)
    index: int = Field(0, ge=0, le=2**31 - 1)
    warmup: bool = False
    loops: int = Field(1, ge=1, le=2**63 - 1)


class ResultIn(BaseModel):
    """What one benchmark produced in the run."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=500)
    kind: str = Field(min_length=1, max_length=32)
    status: Literal["ok", "failed", "timeout"] = "ok"
    samples: list[SampleIn] = Field(default_factory=list, max_length=MAX_SAMPLES)
    params: dict[str, Any] = Field(default_factory=dict)
    units: dict[str, str] = Field(default_factory=dict)
    directions: dict[str, Literal["lower", "higher"]] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list, max_length=1000)
    error: str | None = Field(None, max_length=100_000)
    stderr_tail: str | None = Field(None, max_length=100_000)
    duration: float = Field(0.0, ge=0, allow_inf_nan=False)
    extra: dict[str, Any] = Field(default_factory=dict)

    def to_record(self) -> BenchmarkResult:
        return BenchmarkResult(
            name=self.name, kind=self.kind, status=ResultStatus(self.status),
            samples=tuple(Sample(metric=s.metric, value=s.value, worker=s.worker, index=s.index,
                                 warmup=s.warmup, loops=s.loops) for s in self.samples),
            params=self.params, units=self.units, directions=self.directions,
            warnings=tuple(self.warnings), error=self.error, stderr_tail=self.stderr_tail,
            duration=self.duration, extra=self.extra)


class RunUpload(BaseModel):
    """A finished run with its results and samples, and the client's id for this upload.

    ``upload_id`` makes the upload idempotent: sending the same body again (a retry after a
    lost response) returns the run stored the first time.
    """

    model_config = ConfigDict(extra="forbid")

    upload_id: str = Field(min_length=8, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$")
    label: str | None = Field(None, max_length=200)
    commit: str | None = Field(None, max_length=64)
    branch: str | None = Field(None, max_length=255)
    dirty: bool = False
    environment: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    started_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    status: Literal["complete", "interrupted"] = "complete"
    perfloop_version: str = Field("", max_length=64)
    hostname: str = Field("", max_length=255)
    results: list[ResultIn] = Field(default_factory=list, max_length=MAX_RESULTS)

    @field_validator("results")
    @classmethod
    def _unique_names(cls, results: list[ResultIn]) -> list[ResultIn]:
        names = [r.name for r in results]
        if len(names) != len(set(names)):
            raise ValueError("two results have the same benchmark name")
        return results

    @field_validator("results")
    @classmethod
    def _not_too_many_samples(cls, results: list[ResultIn]) -> list[ResultIn]:
        total = sum(len(r.samples) for r in results)
        if total > MAX_SAMPLES:
            raise ValueError(f"{total} samples in one upload; at most {MAX_SAMPLES}")
        return results

    def to_uploaded(self) -> UploadedRun:
        """The run as the store takes it (ValueError when a result is inconsistent)."""
        return UploadedRun(
            label=self.label, commit=self.commit, branch=self.branch, dirty=self.dirty,
            environment=self.environment, settings=self.settings, started_at=self.started_at,
            finished_at=self.finished_at, status=RunStatus(self.status),
            results=[r.to_record() for r in self.results],
            perfloop_version=self.perfloop_version, hostname=self.hostname)


def _no_nul(value: Any) -> Any:
    """Text without NUL characters: PostgreSQL's text columns cannot hold them."""
    texts = value if isinstance(value, list) else [value]
    if any(isinstance(t, str) and "\x00" in t for t in texts):
        raise ValueError("text with a NUL character")
    return value


class JournalEntryIn(BaseModel):
    """One journal entry, as ``perfloop journal --json`` shows it."""

    model_config = ConfigDict(extra="ignore")   # derived fields (expected_text, ...) are redone

    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=32)
    title: str = Field(max_length=2000)
    workflow: str = Field(min_length=1, max_length=64)
    status: str = Field(min_length=1, max_length=64)
    created_at: AwareDatetime
    kind: str | None = Field(None, max_length=64)
    why: str | None = Field(None, max_length=100_000)
    expected: dict[str, Any] = Field(default_factory=dict)
    actual: dict[str, Any] = Field(default_factory=dict)
    commits: list[str] = Field(default_factory=list, max_length=1000)
    baseline_run_id: int | None = Field(None, ge=1, le=2**63 - 1)
    verification_run_ids: list[int] = Field(default_factory=list, max_length=1000)
    notes: str | None = Field(None, max_length=100_000)

    _texts = field_validator("id", "source", "title", "workflow", "status", "kind", "why",
                             "commits", "notes")(_no_nul)


class CycleIn(BaseModel):
    """A release cycle of the uploading store (``perfloop cycle status --json``): its budget,
    its changes with their risk scores, and its health."""

    model_config = ConfigDict(extra="ignore")

    id: int = Field(ge=1, le=2**31 - 1)
    name: str = Field(min_length=1, max_length=500)
    status: Literal["open", "closed"]
    budget: float = Field(gt=0, allow_inf_nan=False)
    spent: float = Field(0.0, allow_inf_nan=False)
    left: float = Field(0.0, allow_inf_nan=False)
    opened_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    baseline_run_id: int | None = Field(None, ge=1, le=2**63 - 1)
    changes: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_ENTRIES)
    queue: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_ENTRIES)
    health: dict[str, Any] = Field(default_factory=dict)

    _texts = field_validator("name")(_no_nul)


class JournalUpload(BaseModel):
    """A store's whole journal and its open release cycle.

    ``origin`` names the uploading store (two stores may both have an entry 12): uploading the
    same journal again changes nothing; what the store no longer shows is removed.
    """

    model_config = ConfigDict(extra="forbid")

    origin: str = Field(min_length=8, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$")
    entries: list[JournalEntryIn] = Field(default_factory=list, max_length=MAX_ENTRIES)
    cycles: list[CycleIn] = Field(default_factory=list, max_length=MAX_CYCLES)

    @field_validator("entries")
    @classmethod
    def _unique_ids(cls, entries: list[JournalEntryIn]) -> list[JournalEntryIn]:
        ids = [e.id for e in entries]
        if len(ids) != len(set(ids)):
            raise ValueError("two entries have the same id")
        return entries

    @field_validator("cycles")
    @classmethod
    def _unique_cycles(cls, cycles: list[CycleIn]) -> list[CycleIn]:
        if len({c.id for c in cycles}) != len(cycles):
            raise ValueError("two cycles have the same id")
        return cycles


class JournalOut(BaseModel):
    """What the journal upload changed on the server."""

    created: int
    updated: int
    removed: int
    unchanged: int


class UploadOut(BaseModel):
    """Where the upload was stored; ``created`` is false for a retry of a stored upload."""

    run_id: int
    created: bool


class RunSummaryOut(BaseModel):
    id: int
    label: str | None
    commit: str | None
    branch: str | None
    dirty: bool
    status: str
    started_at: datetime
    finished_at: datetime | None
    environment: str
    results: int
    failed: int


class RunOut(RunSummaryOut):
    environment_data: dict[str, Any]
    settings: dict[str, Any]
    perfloop_version: str
    hostname: str
    benchmarks: list[dict[str, Any]]
