"""History and change points: where each benchmark's level shifted, and what was behind it.

A series (one benchmark and metric on one branch in one environment class) is read from the
store (:mod:`perfloop.store.series`) and handed to the change-point detector
(:mod:`perfloop.analysis.changepoints`). Each change point is tied to

- its **commit range**: the last commit measured at the old level and the first at the new
  one (``git log A..B`` lists the suspects);
- its **magnitude** and **significance** (the detector's relative change and p-value), and
  whether it is a regression or an improvement for the metric's direction;
- an **environment change** when the environment class changed at the same place (a new
  machine, a library upgrade): that is benchmark decay, not a code regression.

Each series also carries its **sensitivity**: its noise and the smallest step the detector
could have found in it, so that "no change points" says how small a shift could still hide.

By default a series stays in one environment class, so a new machine starts a new series
instead of showing up as a regression. With ``all_environments`` the classes of a branch are
joined and every place where the class changes is listed with what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

from ..analysis.changepoints import Sensitivity, detect_change_points, minimum_detectable_step
from ..errors import UsageError
from ..measure.environment import EnvDifference, diff_environments
from ..metrics import Direction
from ..store import Store
from ..store.series import (ApprovalInfo, Series, SeriesKey, SeriesPoint, approvals,
                            environments, load_series)

#: A change point this many runs or fewer from a change of environment class is put down to
#: the environment: the detector places a step to within a point or two in noisy data, and
#: when code and machine change within two runs of each other no history can tell them apart.
ENVIRONMENT_REACH = 2


@dataclass(frozen=True)
class DetectorSettings:
    """How change points are searched for (see ``docs/changepoints.md``)."""

    min_size: int = 5            # runs that must stand at a new level before it is reported
    max_pvalue: float = 0.001    # family-wise significance level over the whole series
    min_magnitude: float = 0.0   # smallest relative change reported (0.02 is 2%)

    def __post_init__(self) -> None:
        if self.min_size < 2:
            raise UsageError(f"min_size={self.min_size}: a level needs at least 2 runs",
                             hint="use --min-size 2 or more (5 by default)")
        if not 0.0 < self.max_pvalue <= 1.0:
            raise UsageError(f"max_pvalue={self.max_pvalue} is not in (0, 1]", hint="e.g. 0.001")
        if self.min_magnitude < 0.0:
            raise UsageError(f"min_magnitude={self.min_magnitude} is negative",
                             hint="it is a relative change: 0.02 for 2%")


@dataclass(frozen=True)
class EnvironmentChange:
    """A place where a series moves to another environment class."""

    index: int                   # first point measured in the new class
    before: SeriesPoint          # last point in the old class
    after: SeriesPoint
    differences: tuple[EnvDifference, ...]

    def describe(self, limit: int = 4) -> str:
        shown = [d.describe() for d in self.differences if d.identity][:limit]
        more = sum(1 for d in self.differences if d.identity) - len(shown)
        if not shown:
            return f"environment {self.before.environment[:8]} -> {self.after.environment[:8]}"
        return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "run_before": self.before.run_id, "run_after": self.after.run_id,
                "environment_before": self.before.environment,
                "environment_after": self.after.environment,
                "commit_before": self.before.commit, "commit_after": self.after.commit,
                "differences": [{"key": d.key, "before": d.base, "after": d.head,
                                 "identity": d.identity} for d in self.differences]}


@dataclass(frozen=True)
class SeriesChangePoint:
    """A level shift in a series, tied to the commits and runs on either side of it."""

    index: int                   # first point at the new level
    before: SeriesPoint          # last run at the old level
    after: SeriesPoint           # first run at the new level
    mean_before: float
    mean_after: float
    magnitude: float             # (after - before) / |before|, +0.05 is 5% up
    pvalue: float
    regression: bool             # worse for the metric's direction
    environment_change: EnvironmentChange | None = None

    @property
    def kind(self) -> str:
        """``environment`` (benchmark decay), ``regression`` or ``improvement``."""
        if self.environment_change is not None:
            return "environment"
        return "regression" if self.regression else "improvement"

    @property
    def commit_range(self) -> str:
        """``A..B`` in git's notation: the commits after A up to B changed the level."""
        return f"{_sha(self.before.commit)}..{_sha(self.after.commit)}"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "regression": self.regression,
                "commit_before": self.before.commit, "commit_after": self.after.commit,
                "commit_range": self.commit_range,
                "run_before": self.before.run_id, "run_after": self.after.run_id,
                "time_before": self.before.started_at.isoformat(),
                "time_after": self.after.started_at.isoformat(),
                "mean_before": self.mean_before, "mean_after": self.mean_after,
                "magnitude": self.magnitude, "pvalue": self.pvalue,
                "environment_change": (self.environment_change.to_dict()
                                       if self.environment_change else None)}


@dataclass(frozen=True)
class SeriesHistory:
    """A series with its change points, environment changes and the approvals for it."""

    series: Series
    change_points: tuple[SeriesChangePoint, ...] = ()
    environment_changes: tuple[EnvironmentChange, ...] = ()
    approvals: tuple[ApprovalInfo, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    sensitivity: Sensitivity | None = None   # None: too short to search

    def approval_index(self, approval: ApprovalInfo) -> int | None:
        """The first point measured at the approval's commit, if the series has one."""
        if not approval.commit:
            return None
        for i, p in enumerate(self.series.points):
            if p.commit and (p.commit.startswith(approval.commit) or approval.commit.startswith(p.commit)):
                return i
        return None

    def to_dict(self) -> dict[str, Any]:
        key = self.series.key
        return {"benchmark": key.benchmark, "metric": key.metric, "branch": key.branch,
                "environment": key.environment, "unit": self.series.unit,
                "direction": self.series.direction,
                "points": [p.to_dict() for p in self.series.points],
                "change_points": [c.to_dict() for c in self.change_points],
                "environment_changes": [e.to_dict() for e in self.environment_changes],
                "approvals": [{**a.to_dict(), "index": self.approval_index(a)} for a in self.approvals],
                "sensitivity": self.sensitivity.to_dict() if self.sensitivity else None,
                "notes": list(self.notes)}


def analyze_series(series: Series, env_data: Mapping[int, Mapping[str, Any]] | None = None, *,
                   settings: DetectorSettings | None = None,
                   approvals_for: Sequence[ApprovalInfo] = ()) -> SeriesHistory:
    """Run the detector over ``series`` and tie each change point to its commits and runs.

    ``env_data`` maps environment ids to their stored facts, for saying what changed where the
    class changes (without it, only the fingerprints are shown).
    """
    settings = settings or DetectorSettings()
    env_data = env_data or {}
    points = series.points
    env_changes = tuple(
        EnvironmentChange(index=i, before=points[i - 1], after=points[i],
                          differences=tuple(diff_environments(
                              env_data.get(points[i - 1].environment_id, {}),
                              env_data.get(points[i].environment_id, {}))))
        for i in range(1, len(points)) if points[i].environment != points[i - 1].environment)
    notes: list[str] = []
    if len(points) < 2 * settings.min_size:
        notes.append(f"{len(points)} runs: change points need at least {2 * settings.min_size} "
                     f"({settings.min_size} on each side of a shift)")
        found, sensitivity = [], None
    else:
        found = detect_change_points(series.values, max_pvalue=settings.max_pvalue,
                                     min_magnitude=settings.min_magnitude,
                                     min_size=settings.min_size)
        sensitivity = minimum_detectable_step(series.values, max_pvalue=settings.max_pvalue,
                                              min_size=settings.min_size)
    lower_is_better = series.direction != Direction.HIGHER.value
    change_points = []
    for cp in found:
        near = [e for e in env_changes if abs(e.index - cp.index) <= ENVIRONMENT_REACH]
        env = min(near, key=lambda e: abs(e.index - cp.index)) if near else None
        # When the environment explains the shift, the boundary is where the level changed.
        index = env.index if env is not None else cp.index
        worse = cp.mean_after > cp.mean_before if lower_is_better else cp.mean_after < cp.mean_before
        change_points.append(SeriesChangePoint(
            index=index, before=points[index - 1], after=points[index],
            mean_before=cp.mean_before, mean_after=cp.mean_after, magnitude=cp.magnitude,
            pvalue=cp.pvalue, regression=worse, environment_change=env))
    if any(p.dirty for p in points):
        notes.append(f"{sum(p.dirty for p in points)} run(s) were made with uncommitted changes "
                     "(dirty): their commit does not fully describe the code measured")
    return SeriesHistory(series=series, change_points=tuple(change_points),
                         environment_changes=env_changes, approvals=tuple(approvals_for),
                         notes=tuple(notes), sensitivity=sensitivity)


def benchmark_history(store: Store, benchmark: str, *, metrics: Sequence[str] | None = None,
                      branch: str | None = None, environment: str | None = None,
                      all_environments: bool = False,
                      settings: DetectorSettings | None = None,
                      project: str | None = None) -> list[SeriesHistory]:
    """The history of ``benchmark`` (a full or base name), one :class:`SeriesHistory` per
    parameter combination and metric.

    Without ``branch``, the branch of the benchmark's latest run; without ``environment``, the
    environment class of its latest run on that branch (the others are named in a note), unless
    ``all_environments`` joins them all.
    """
    found = load_series(store, benchmark=benchmark, metrics=metrics, branch=branch,
                        environment=environment, mix_environments=True, project=project)
    if not found:
        what = f"benchmark {benchmark!r}" + (f" metric {', '.join(metrics)}" if metrics else "")
        raise UsageError(f"no stored results for {what}"
                         + (f" on branch {branch!r}" if branch else "")
                         + (f" in environment {environment!r}" if environment else ""),
                         hint="`perfloop runs` lists stored runs; `perfloop detect` lists every "
                              "stored series")
    if branch is None:
        branch = max(((s.points[-1].started_at, s.points[-1].run_id, s.key.branch) for s in found))[2]
        found = [s for s in found if s.key.branch == branch]
    latest = max(((s.points[-1].started_at, s.points[-1].run_id, s.points[-1].environment)
                  for s in found))[2]
    env_data = environments(store, {p.environment_id for s in found for p in s.points})
    histories = []
    for mixed in found:
        series, notes = mixed, []
        if not all_environments:
            chosen = environment or latest
            kept = tuple(p for p in mixed.points if p.environment.startswith(chosen))
            others = {p.environment for p in mixed.points} - {p.environment for p in kept}
            if not kept:
                continue
            series = Series(key=_with_environment(mixed, kept[-1].environment), unit=mixed.unit,
                            direction=mixed.direction, points=kept)
            if others:
                left_out = len(mixed.points) - len(kept)
                notes.append(f"{left_out} run(s) in {len(others)} other environment class(es) "
                             "left out; --all-environments shows them with the places where the "
                             "class changes")
        history = analyze_series(series, env_data, settings=settings,
                                 approvals_for=[a for a in approvals(store, series.key.benchmark)
                                                if a.metric in (None, series.key.metric)])
        histories.append(SeriesHistory(
            series=history.series, change_points=history.change_points,
            environment_changes=history.environment_changes, approvals=history.approvals,
            notes=history.notes + tuple(notes), sensitivity=history.sensitivity))
    return histories


@dataclass(frozen=True)
class DetectedChange:
    """A change point of one stored series, for ``perfloop detect``."""

    history: SeriesHistory
    change: SeriesChangePoint

    def to_dict(self) -> dict[str, Any]:
        key = self.history.series.key
        return {"benchmark": key.benchmark, "metric": key.metric, "branch": key.branch,
                "environment": key.environment, "unit": self.history.series.unit,
                **self.change.to_dict()}


@dataclass(frozen=True)
class Detection:
    """What ``detect`` found: change points newest first, how many series it searched, and
    each series with the smallest step it could have shown."""

    changes: tuple[DetectedChange, ...]
    series: int
    too_short: int               # series with too few runs to search
    histories: tuple[SeriesHistory, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"series": self.series, "too_short": self.too_short,
                "change_points": [c.to_dict() for c in self.changes],
                "series_searched": [_series_summary(h) for h in self.histories]}


def _series_summary(h: SeriesHistory) -> dict[str, Any]:
    key = h.series.key
    return {"benchmark": key.benchmark, "metric": key.metric, "branch": key.branch,
            "environment": key.environment, "unit": h.series.unit, "runs": len(h.series),
            "change_points": len(h.change_points),
            "sensitivity": h.sensitivity.to_dict() if h.sensitivity else None}


def all_histories(store: Store, *, benchmark: str | None = None,
                  metrics: Sequence[str] | None = None, branch: str | None = None,
                  all_environments: bool = False, since: datetime | None = None,
                  settings: DetectorSettings | None = None) -> list[SeriesHistory]:
    """Every stored series the filters select, analysed, with the approvals for each.

    One series per benchmark x metric x branch x environment class; with ``all_environments``
    the classes of a branch are joined. ``since`` keeps only runs started at or after it.
    """
    every = load_series(store, benchmark=benchmark, metrics=metrics, branch=branch,
                        mix_environments=all_environments, since=since)
    env_data = environments(store, {p.environment_id for s in every for p in s.points}) \
        if all_environments else {}
    stored = approvals(store)
    return [analyze_series(series, env_data, settings=settings,
                           approvals_for=[a for a in stored
                                          if a.benchmark in (series.key.benchmark,
                                                             series.key.benchmark.split("[", 1)[0])
                                          and a.metric in (None, series.key.metric)])
            for series in every]


def detect_all(store: Store, *, since: datetime | None = None, branch: str | None = None,
               benchmark: str | None = None, metrics: Sequence[str] | None = None,
               all_environments: bool = False,
               settings: DetectorSettings | None = None) -> Detection:
    """Change points across every stored series (benchmark x metric x branch x environment
    class), newest first (by the time of the first run at the new level).

    ``since`` keeps change points whose new level starts at or after it; the whole series is
    still searched, since a shift is only seen against the runs before it.
    """
    settings = settings or DetectorSettings()
    histories = all_histories(store, benchmark=benchmark, metrics=metrics, branch=branch,
                              all_environments=all_environments, settings=settings)
    changes = [DetectedChange(h, cp) for h in histories for cp in h.change_points
               if since is None or cp.after.started_at >= since]
    changes.sort(key=lambda c: (c.change.after.started_at, c.change.after.run_id), reverse=True)
    too_short = sum(1 for h in histories if len(h.series) < 2 * settings.min_size)
    return Detection(changes=tuple(changes), series=len(histories), too_short=too_short,
                     histories=tuple(histories))


def _with_environment(series: Series, fingerprint: str) -> SeriesKey:
    key = series.key
    return SeriesKey(benchmark=key.benchmark, metric=key.metric, branch=key.branch,
                     environment=fingerprint)


def _sha(commit: str | None) -> str:
    return commit[:10] if commit else "?"


__all__ = ["DetectedChange", "all_histories", "Detection", "DetectorSettings", "EnvironmentChange",
           "SeriesChangePoint", "SeriesHistory", "analyze_series", "benchmark_history",
           "detect_all", "ENVIRONMENT_REACH"]
