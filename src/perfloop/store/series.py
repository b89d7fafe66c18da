"""Series queries: one benchmark and metric across runs, for history and change points.

A *series* is one benchmark and metric on one branch in one environment class (the runs'
environment fingerprint). Each point is one run: its location estimate (the median of the
run's non-warmup samples of that metric), the per-worker medians behind it, and the run's id,
commit, time and environment.

Two queries serve every series at once, whatever the number of runs: one for the result rows
that match (with their run and environment), one for their samples, read in ``(result_id,
metric)`` order along the samples' index so that only one result's values are held at a time.
Read-only: these queries need no migration and write nothing.

The queries use the store's own read transaction (``Store._read``), as a module of the store
package: its errors become :class:`~perfloop.errors.StoreError` like every other store call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from sqlalchemy import Text, and_, cast, or_, select

from ..metrics import get_metric
from .models import ApprovalRow, EnvironmentRow, ResultRow, RunRow, SampleRow
from .repository import Store, not_drill_run

#: Branch name used for runs made on a detached HEAD (or outside git), so they form a series too.
NO_BRANCH = "-"


@dataclass(frozen=True)
class SeriesKey:
    """What a series is the history of. ``environment`` is None when classes are mixed."""

    benchmark: str
    metric: str
    branch: str
    environment: str | None

    def label(self) -> str:
        env = self.environment[:8] if self.environment else "all environments"
        return f"{self.benchmark} {self.metric} on {self.branch} ({env})"


@dataclass(frozen=True)
class SeriesPoint:
    """One run's place in a series."""

    run_id: int
    commit: str | None
    dirty: bool
    label: str | None
    started_at: datetime
    environment: str                    # the run's environment fingerprint
    environment_id: int
    value: float                        # median of the run's non-warmup samples
    n: int                              # how many samples the median is of
    worker_medians: tuple[float, ...]   # one per worker process, in worker order
    tolerance: float | None = None      # the benchmark's tolerance when the run was made
    processes: int | None = None        # worker processes it was configured with

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "commit": self.commit, "dirty": self.dirty,
                "label": self.label, "started_at": self.started_at.isoformat(),
                "environment": self.environment, "value": self.value, "n": self.n,
                "workers": len(self.worker_medians)}


@dataclass(frozen=True)
class Series:
    """The points of one series, oldest first."""

    key: SeriesKey
    unit: str
    direction: str                      # "lower" or "higher" is better
    points: tuple[SeriesPoint, ...] = field(default_factory=tuple)

    @property
    def values(self) -> np.ndarray:
        return np.asarray([p.value for p in self.points], dtype=float)

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class ApprovalInfo:
    """A stored exception to the regression gate, as history shows it."""

    id: int
    benchmark: str
    metric: str | None
    commit: str | None
    reason: str
    author: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "benchmark": self.benchmark, "metric": self.metric,
                "commit": self.commit, "reason": self.reason, "author": self.author,
                "created_at": self.created_at.isoformat()}


def load_series(store: Store, *, benchmark: str | None = None,
                metrics: Sequence[str] | None = None, branch: str | None = None,
                environment: str | None = None, mix_environments: bool = False,
                since: datetime | None = None, project: str | None = None) -> list[Series]:
    """Every series the filters select, each with its points oldest first.

    ``benchmark`` matches a full name (``quote[items=10]``) or a base name (``quote``, all its
    parameter combinations). ``branch`` is a branch name (``NO_BRANCH`` for detached runs);
    ``environment`` a fingerprint or a unique prefix of one. With ``mix_environments`` the
    environment classes of a branch are joined into one series (key environment None), in time
    order, so that the places where the class changes can be shown. ``since`` keeps runs started
    at or after that time; ``project`` keeps one project's runs. Only results whose status is ``ok`` count: a failed or timed-out
    benchmark's partial samples do not describe its level.
    """
    conditions = [ResultRow.status == "ok", not_drill_run()]
    if benchmark:
        conditions.append(or_(ResultRow.name == benchmark, ResultRow.base_name == benchmark))
    if branch is not None:
        conditions.append(RunRow.branch.is_(None) if branch == NO_BRANCH else RunRow.branch == branch)
    if environment:
        conditions.append(EnvironmentRow.fingerprint.startswith(environment))
    if since is not None:
        conditions.append(RunRow.started_at >= since)
    if project is not None:   # a team server holds several projects' runs
        conditions.append(RunRow.project == project)
    where = and_(*conditions)
    joined = (select(ResultRow.id)
              .join(RunRow, RunRow.id == ResultRow.run_id)
              .join(EnvironmentRow, EnvironmentRow.id == RunRow.environment_id)
              .where(where))
    result_query = (
        # units and directions as their JSON text, decoded once per series below rather than
        # for every one of 10,000 rows
        select(ResultRow.id, ResultRow.name, cast(ResultRow.units, Text),
               cast(ResultRow.directions, Text),
               ResultRow.extra["tolerance"].as_float(),
               ResultRow.extra[("settings", "processes")].as_integer(),
               RunRow.id, RunRow.commit, RunRow.branch, RunRow.dirty, RunRow.label,
               RunRow.started_at, RunRow.environment_id, EnvironmentRow.fingerprint)
        .join(RunRow, RunRow.id == ResultRow.run_id)
        .join(EnvironmentRow, EnvironmentRow.id == RunRow.environment_id)
        .where(where))
    sample_query = (select(SampleRow.result_id, SampleRow.metric, SampleRow.worker, SampleRow.value)
                    .where(SampleRow.result_id.in_(joined.scalar_subquery()),
                           SampleRow.warmup.is_(False))
                    .order_by(SampleRow.result_id, SampleRow.metric))
    if metrics:
        sample_query = sample_query.where(SampleRow.metric.in_(list(metrics)))

    results, located = _read_located(store, result_query, sample_query)
    return _series(results, located, mix_environments=mix_environments)


def _read_located(store: Store, result_query: Any, sample_query: Any
                  ) -> tuple[dict[int, Any], dict[tuple[int, str], tuple[float, int, tuple[float, ...]]]]:
    """The selected results' rows by id, and (result id, metric) -> (median, n, worker medians)."""
    with store._read("reading benchmark series") as session:
        # Core rows, not ORM ones: a long history has hundreds of thousands of samples, and the
        # ORM's per-row work cost more than the query itself
        connection = session.connection()
        results = {row[0]: row for row in connection.execute(result_query)}
        # (result id, metric) -> (median, n, worker medians), one result's values at a time.
        located: dict[tuple[int, str], tuple[float, int, tuple[float, ...]]] = {}
        current: tuple[int, str] | None = None
        by_worker: dict[int, list[float]] = {}
        for result_id, metric, worker, value in connection.execute(sample_query):
            if (result_id, metric) != current:
                if current is not None:
                    located[current] = _locate(by_worker)
                current, by_worker = (result_id, metric), {}
            by_worker.setdefault(worker, []).append(value)
        if current is not None:
            located[current] = _locate(by_worker)
    return results, located


def _series(results: dict[int, Any], located: dict[tuple[int, str], tuple[float, int, tuple[float, ...]]],
            *, mix_environments: bool) -> list[Series]:
    """The located values grouped into series, each oldest first, in a stable order."""
    grouped: dict[SeriesKey, list[SeriesPoint]] = {}
    units: dict[SeriesKey, tuple[str, str]] = {}
    for (result_id, metric), (value, n, workers) in located.items():
        (_, name, unit_map, direction_map, tolerance, processes, run_id, commit, run_branch, dirty,
         label, started_at, env_id, fingerprint) = results[result_id]
        key = SeriesKey(benchmark=name, metric=metric, branch=run_branch or NO_BRANCH,
                        environment=None if mix_environments else fingerprint)
        grouped.setdefault(key, []).append(SeriesPoint(
            run_id=run_id, commit=commit, dirty=bool(dirty), label=label, started_at=started_at,
            environment=fingerprint, environment_id=env_id, value=value, n=n,
            worker_medians=workers, tolerance=tolerance, processes=processes))
        if key not in units:
            m = get_metric(metric, unit=(_json_map(unit_map)).get(metric, ""),
                           direction=(_json_map(direction_map)).get(metric, "lower"))
            units[key] = (m.unit, m.direction.value)
    out = []
    for key, points in grouped.items():
        # A run holds one result per benchmark; should it hold more, the earliest stands for it.
        points.sort(key=lambda p: (p.started_at, p.run_id))
        unique = [p for i, p in enumerate(points) if i == 0 or p.run_id != points[i - 1].run_id]
        unit, direction = units[key]
        out.append(Series(key=key, unit=unit, direction=direction, points=tuple(unique)))
    out.sort(key=lambda s: (s.key.benchmark, s.key.metric, s.key.branch, s.key.environment or ""))
    return out


def _json_map(text: str | None) -> dict[str, Any]:
    value = json.loads(text) if text else None
    return value if isinstance(value, dict) else {}


def _locate(by_worker: Mapping[int, list[float]]) -> tuple[float, int, tuple[float, ...]]:
    # statistics.median, not numpy's: on a handful of values numpy's per-call overhead is ten
    # times the work, and a history of 10,000 runs makes 40,000 such calls (same values)
    everything = [v for values in by_worker.values() for v in values]
    workers = tuple(float(median(by_worker[w])) for w in sorted(by_worker))
    return float(median(everything)), len(everything), workers


def environments(store: Store, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The stored facts of the environments ``ids`` (id -> data, fingerprint included)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    with store._read("reading environments") as session:
        rows = session.execute(select(EnvironmentRow.id, EnvironmentRow.fingerprint, EnvironmentRow.data)
                               .where(EnvironmentRow.id.in_(wanted)))
        return {env_id: {**(data or {}), "fingerprint": fingerprint}
                for env_id, fingerprint, data in rows}


def approvals(store: Store, benchmark: str | None = None) -> list[ApprovalInfo]:
    """Stored approvals, oldest first; with ``benchmark``, those for it (full or base name)."""
    query = select(ApprovalRow).order_by(ApprovalRow.created_at, ApprovalRow.id)
    if benchmark:
        base = benchmark.split("[", 1)[0] if benchmark.endswith("]") else benchmark
        query = query.where(ApprovalRow.benchmark.in_(sorted({benchmark, base})))
    with store._read("reading approvals") as session:
        return [ApprovalInfo(id=a.id, benchmark=a.benchmark, metric=a.metric, commit=a.commit,
                             reason=a.reason, author=a.author or "", created_at=a.created_at)
                for a in session.scalars(query)]


def latest_environment(store: Store) -> str | None:
    """The fingerprint of the environment of the most recent run, if any run is stored."""
    with store._read("reading the latest run's environment") as session:
        return session.scalar(select(EnvironmentRow.fingerprint)
                              .join(RunRow, RunRow.environment_id == EnvironmentRow.id)
                              .order_by(RunRow.started_at.desc(), RunRow.id.desc()).limit(1))


__all__ = ["ApprovalInfo", "NO_BRANCH", "Series", "SeriesKey", "SeriesPoint", "approvals",
           "environments", "latest_environment", "load_series"]
