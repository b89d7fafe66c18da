"""Incident mode: the profile-and-patch episode, its hypotheses, and its journal entry.

Opening an incident switches the project (its root directory) into *incident mode* until it is
closed; everything done meanwhile (hypotheses, the baseline and verification runs, profiles) is
grouped under it. The loop it carries, and the order it insists on::

    open -> hypothesis -> baseline -> profile -> (patch) -> verify -> close

*Hypothesis first*: in an incident, profiling and verifying are refused until someone has
written down what they expect (``--explore`` profiles without one, marked as exploration).
Whether the profile agreed is recorded on the hypothesis (``confirmed``, ``refuted`` or
``unclear``), so :func:`hypothesis_history` can show a team how often its intuition is right.

Closing writes the *journal entry*: hypothesis, expected, actual (the verification's verdicts
and numbers), profiles, commits, note and duration, into the incident and into the journal of
changes (``changes`` table) that the other workflows and the audit read.

The incident, hypothesis and profile records are read and written through the store's public
API (:class:`~perfloop.store.journal.JournalTables`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..config import ProjectConfig
from ..errors import UsageError
from ..metrics import BUILTIN
from ..store import HypothesisRecord, IncidentRecord, Store, json_ready
from ..store.models import utcnow
from .attribution import commits_between, snapshot_tree

WORKFLOW = "profile-and-patch"
TOO_BROAD = "too-broad"     # a hypothesis naming an entry point that contains nearly everything
OPEN = "open"
CLOSED = "closed"

#: Short names people type for metrics (``--metric p99``), and the metric they mean.
METRIC_ALIASES = {
    "p50": "latency_p50", "median": "latency_p50", "p90": "latency_p90", "p99": "latency_p99",
    "p999": "latency_p999", "p99.9": "latency_p999", "max": "latency_max",
    "latency": "latency_p99", "wall": "wall_time", "time": "wall_time", "cpu": "cpu_time",
    "rss": "peak_rss", "memory": "peak_rss", "alloc": "peak_alloc", "errors": "error_rate",
    "rps": "throughput",
}

OPEN_HINT = 'open one first: perfloop incident open "what is wrong" --benchmark NAME --metric p99'
HYPOTHESIS_HINT = ('say what you expect first: perfloop hypothesis "what you think is slow" '
                   '--expect module:function; or profile with --explore to look around '
                   '(recorded as exploration, not as a test of a hypothesis)')


def normalize_metric(name: str | None) -> str | None:
    """``p99`` -> ``latency_p99``; built-in and custom names (``NAME:p99`` scrapes) pass as they are."""
    if name is None:
        return None
    key = name.strip()
    return METRIC_ALIASES.get(key.lower(), key)


# --------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class Hypothesis:
    """What someone expected before profiling, and what the profile said."""

    id: int
    incident_id: int | None
    text: str
    expect: tuple[str, ...]
    expected_share: float | None
    expected_effect: float | None      # relative change of the target metric, -0.3 = 30% better
    created_at: datetime
    outcome: str | None
    checked_at: datetime | None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def hit(self) -> bool | None:
        """True when confirmed, False when refuted, None when unclear, too broad or not checked.

        A too-broad hypothesis (it named an entry point that contains nearly everything) is not
        a hit: counting it would reward naming the function a benchmark calls.
        """
        return {"confirmed": True, "refuted": False}.get(self.outcome or "")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "incident_id": self.incident_id, "text": self.text,
                "expect": list(self.expect), "expected_share": self.expected_share,
                "expected_effect": self.expected_effect, "created_at": self.created_at.isoformat(),
                "outcome": self.outcome,
                "checked_at": self.checked_at.isoformat() if self.checked_at else None,
                "evidence": dict(self.evidence)}


@dataclass(frozen=True)
class Incident:
    """A profile-and-patch episode. ``data`` holds the baseline, verifications and journal."""

    id: int
    title: str
    status: str
    project: str
    benchmarks: tuple[str, ...]
    metric: str | None
    opened_at: datetime
    closed_at: datetime | None
    commit_at_open: str | None
    baseline_run_id: int | None
    verify_run_id: int | None
    note: str | None
    data: Mapping[str, Any]
    hypotheses: tuple[Hypothesis, ...] = ()
    profile_ids: tuple[int, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    @property
    def hypothesis(self) -> Hypothesis | None:
        """The latest hypothesis: the one profiling and verification test."""
        return self.hypotheses[-1] if self.hypotheses else None

    @property
    def baseline(self) -> Mapping[str, Any] | None:
        return self.data.get("baseline")

    @property
    def verification(self) -> Mapping[str, Any] | None:
        found = self.data.get("verifications") or []
        return found[-1] if found else None

    def age(self, now: datetime | None = None) -> float:
        end = self.closed_at or now or datetime.now(timezone.utc)
        return (end - self.opened_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "status": self.status, "project": self.project,
                "benchmarks": list(self.benchmarks), "metric": self.metric,
                "opened_at": self.opened_at.isoformat(),
                "closed_at": self.closed_at.isoformat() if self.closed_at else None,
                "duration_seconds": self.age(), "commit_at_open": self.commit_at_open,
                "baseline_run_id": self.baseline_run_id, "verify_run_id": self.verify_run_id,
                "note": self.note, "hypotheses": [h.to_dict() for h in self.hypotheses],
                "profiles": list(self.profile_ids), "data": dict(self.data)}


def _hypothesis(row: HypothesisRecord) -> Hypothesis:
    evidence = dict(row.evidence or {})
    effect = evidence.get("expected_effect")
    outcome = row.outcome
    if outcome == "unclear" and evidence.get("outcome") == TOO_BROAD:
        outcome = TOO_BROAD
    return Hypothesis(id=row.id, incident_id=row.incident_id, text=row.text,
                      expect=tuple(row.expect or ()), expected_share=row.expected_share,
                      expected_effect=float(effect) if effect is not None else None,
                      created_at=row.created_at, outcome=outcome, checked_at=row.checked_at,
                      evidence=evidence)


def _incident(store: Store, row: IncidentRecord) -> Incident:
    hyps = sorted(store.hypotheses(incident_ids=[row.id]), key=lambda h: h.id)
    profiles = store.profile_ids(row.id)
    return Incident(id=row.id, title=row.title, status=row.status, project=row.project,
                    benchmarks=tuple(row.benchmarks or ()), metric=row.metric,
                    opened_at=row.opened_at, closed_at=row.closed_at,
                    commit_at_open=row.commit_at_open, baseline_run_id=row.baseline_run_id,
                    verify_run_id=row.verify_run_id, note=row.note, data=dict(row.data or {}),
                    hypotheses=tuple(_hypothesis(h) for h in hyps), profile_ids=tuple(profiles))


def _project(root: str | Path) -> str:
    return str(Path(root).resolve())


# --------------------------------------------------------------------------------------------
# opening, finding, updating


def current_incident(store: Store, root: str | Path) -> Incident | None:
    """The open incident of the project at ``root``, or None (normal development)."""
    rows = store.incidents(project=_project(root), status=OPEN, limit=1)
    return _incident(store, rows[0]) if rows else None


def require_incident(store: Store, root: str | Path, doing: str) -> Incident:
    """The open incident, or a UsageError that says how to open one."""
    found = current_incident(store, root)
    if found is None:
        raise UsageError(f"{doing} needs an open incident, and none is open", hint=OPEN_HINT)
    return found


def get_incident(store: Store, incident_id: int) -> Incident:
    row = store.incident(incident_id)
    if row is None:
        raise UsageError(f"no incident #{incident_id}", hint="`perfloop incident list` shows them")
    return _incident(store, row)


def list_incidents(store: Store, root: str | Path | None = None, *, limit: int = 50) -> list[Incident]:
    """Incidents of the project (all projects when ``root`` is None), newest first."""
    rows = store.incidents(project=_project(root) if root is not None else None, limit=limit)
    return [_incident(store, row) for row in rows]


def open_incident(store: Store, root: str | Path, title: str, *, benchmarks: Sequence[str] = (),
                  metric: str | None = None, config: ProjectConfig | None = None) -> Incident:
    """Open an incident: the project enters incident mode. One open incident per project."""
    title = title.strip()
    if not title:
        raise UsageError("an incident needs a title", hint='e.g. perfloop incident open "checkout p99 spike"')
    existing = current_incident(store, root)
    if existing is not None:
        raise UsageError(f"incident #{existing.id} ({existing.title!r}) is already open",
                         hint='close it first: perfloop incident close --note "what you found"')
    names = list(dict.fromkeys(benchmarks))
    if config is not None and names:
        from ..measure.suites import with_suites
        config = with_suites(config, names)
        config.select(names)      # unknown names fail here, with the known ones listed
    metric = normalize_metric(metric)
    if config is not None and metric and metric not in BUILTIN and ":" not in metric:
        custom = {m for spec in config.select(names) for m in spec.metrics}
        if metric not in custom:
            raise UsageError(f"unknown metric {metric!r}",
                             hint="use a metric the benchmarks measure, e.g. p99, p50, wall_time, "
                                  "cpu_time, peak_rss")
    snapshot = snapshot_tree(root)
    incident_id = store.add_incident(
        title=title, status=OPEN, project=_project(root), benchmarks=names, metric=metric,
        opened_at=utcnow(), commit_at_open=snapshot.commit if snapshot else None,
        data={"tree_at_open": snapshot.to_dict() if snapshot else None,
              "events": [_event("opened")]})
    return get_incident(store, incident_id)


def _event(what: str, **details: Any) -> dict[str, Any]:
    return {"at": utcnow().isoformat(), "what": what, **details}


def update_data(store: Store, incident_id: int, changes: Mapping[str, Any], *, event: str | None = None,
                append: Mapping[str, Any] | None = None, **columns: Any) -> None:
    """Merge ``changes`` into the incident's data, append to its lists, set columns, log an event."""
    def edit(data: dict[str, Any]) -> dict[str, Any]:
        data.update(_plain(changes))
        for key, item in (append or {}).items():
            data[key] = [*data.get(key, []), _plain(item)]
        if event:
            data["events"] = [*data.get("events", []), _event(event)]
        return data

    if not store.update_incident(incident_id, edit=edit, **columns):
        raise UsageError(f"no incident #{incident_id}")


def _plain(value: Any) -> Any:
    """JSON-ready data (datetimes, paths, dataclasses as plain values)."""
    return json_ready(value)


# --------------------------------------------------------------------------------------------
# hypotheses


def add_hypothesis(store: Store, root: str | Path, text: str, *, expect: Sequence[str] = (),
                   expected_share: float | None = None,
                   expected_effect: float | None = None) -> Hypothesis:
    """Write down, in the open incident, what you expect the profile to show."""
    incident = require_incident(store, root, "a hypothesis")
    text = text.strip()
    if not text:
        raise UsageError("a hypothesis needs a sentence", hint='e.g. perfloop hypothesis "discount '
                                                              'rules are recomputed for every line"')
    for item in expect:
        module, _, function = item.partition(":")
        if not module or not all(part.isidentifier() for part in module.split(".")) or \
                (function and not all(part.isidentifier() for part in function.split("."))):
            raise UsageError(f"--expect {item!r}: not a module or module:function name",
                             hint="e.g. --expect shop.pricing:apply_discounts or --expect shop.pricing")
    if expected_share is not None and not 0 < expected_share <= 1:
        raise UsageError(f"--share {expected_share}: must be a fraction in (0, 1]", hint="e.g. 0.5 for half")
    if expected_effect is not None and not -1 < expected_effect < 10:
        raise UsageError(f"--effect {expected_effect}: a relative change such as -0.3 (30% lower)")
    hypothesis_id = store.add_hypothesis(
        incident_id=incident.id, text=text, expect=list(expect), expected_share=expected_share,
        created_at=utcnow(), evidence={"expected_effect": expected_effect})
    update_data(store, incident.id, {}, event=f"hypothesis #{hypothesis_id}")
    return get_hypothesis(store, hypothesis_id)


def get_hypothesis(store: Store, hypothesis_id: int) -> Hypothesis:
    row = store.hypothesis(hypothesis_id)
    if row is None:
        raise UsageError(f"no hypothesis #{hypothesis_id}")
    return _hypothesis(row)


def record_outcome(store: Store, hypothesis_id: int, outcome: str, evidence: Mapping[str, Any]) -> None:
    """Store what the profile said about a hypothesis (its latest check wins)."""
    if outcome not in ("confirmed", "refuted", "unclear", TOO_BROAD):
        raise ValueError(f"unknown outcome {outcome!r}")
    # the outcome column keeps its three values (no migration): too broad is stored as
    # unclear, which counts the same in the hit rate, and told apart by the evidence
    column = "unclear" if outcome == TOO_BROAD else outcome
    found = store.update_hypothesis(
        hypothesis_id, edit=lambda old: {**old, **_plain(evidence), "outcome": outcome},
        outcome=column, checked_at=utcnow())
    if not found:
        raise UsageError(f"no hypothesis #{hypothesis_id}")


def record_effect(store: Store, hypothesis_id: int, effect: Mapping[str, Any]) -> None:
    """Store how the target metric actually moved, next to the effect the hypothesis expected."""
    store.update_hypothesis(hypothesis_id, edit=lambda old: {**old, "effect": _plain(effect)})


@dataclass(frozen=True)
class HypothesisHistory:
    """Every hypothesis of a project with its outcome, and the hit rate by month and overall."""

    items: tuple[tuple[Hypothesis, int | None, str], ...]   # (hypothesis, incident id, its title)
    periods: tuple[dict[str, Any], ...]

    @property
    def confirmed(self) -> int:
        return sum(1 for h, _, _ in self.items if h.outcome == "confirmed")

    @property
    def refuted(self) -> int:
        return sum(1 for h, _, _ in self.items if h.outcome == "refuted")

    @property
    def hit_rate(self) -> float | None:
        decided = self.confirmed + self.refuted
        return self.confirmed / decided if decided else None

    def to_dict(self) -> dict[str, Any]:
        return {"hit_rate": self.hit_rate, "confirmed": self.confirmed, "refuted": self.refuted,
                "unclear": sum(1 for h, _, _ in self.items if h.outcome == "unclear"),
                "too_broad": sum(1 for h, _, _ in self.items if h.outcome == "too-broad"),
                "unchecked": sum(1 for h, _, _ in self.items if h.outcome is None),
                "periods": list(self.periods),
                "hypotheses": [{**h.to_dict(), "incident_title": t} for h, _, t in self.items]}


def hypothesis_history(store: Store, root: str | Path) -> HypothesisHistory:
    """The project's hypotheses, oldest first, with the hit rate per month and running total.

    The hit rate counts confirmed against refuted; unclear, too-broad and unchecked hypotheses
    are shown but not counted, since they say nothing either way about the intuition.
    """
    project = _project(root)
    titles = {i.id: i.title for i in store.incidents(project=project)}
    items = tuple((_hypothesis(h), h.incident_id, titles.get(h.incident_id or -1, ""))
                  for h in store.hypotheses(project=project))
    periods: dict[str, dict[str, Any]] = {}
    hits = decided = 0
    for hyp, _, _ in items:
        month = hyp.created_at.strftime("%Y-%m")
        p = periods.setdefault(month, {"period": month, "hypotheses": 0, "confirmed": 0,
                                       "refuted": 0, "unclear": 0, "too-broad": 0, "unchecked": 0})
        p["hypotheses"] += 1
        p[hyp.outcome or "unchecked"] += 1
        if hyp.hit is not None:
            decided += 1
            hits += int(hyp.hit)
        p["hit_rate"] = p["confirmed"] / (p["confirmed"] + p["refuted"]) \
            if p["confirmed"] + p["refuted"] else None
        p["cumulative_hit_rate"] = hits / decided if decided else None
    return HypothesisHistory(items, tuple(periods.values()))


# --------------------------------------------------------------------------------------------
# mode and banner


def _duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def next_step(incident: Incident) -> str:
    """What the incident needs next, as the command to run."""
    if incident.hypothesis is None:
        return 'perfloop hypothesis "..." --expect module:function'
    if incident.baseline is None:
        return "perfloop baseline (before you patch)"
    if not incident.profile_ids:
        return "perfloop profile"
    if incident.verification is None:
        return "patch, then perfloop verify"
    return 'perfloop incident close --note "..."'


def incident_banner(store: Store, root: str | Path) -> str | None:
    """One line that every command shows in incident mode, or None in normal development."""
    incident = current_incident(store, root)
    if incident is None:
        return None
    parts = [f"INCIDENT MODE: #{incident.id} {incident.title!r}, open {_duration_text(incident.age())}"]
    hyp = incident.hypothesis
    parts.append(f"hypothesis: {hyp.text!r} ({hyp.outcome or 'unchecked'})" if hyp else "no hypothesis yet")
    parts.append(f"baseline: run #{incident.baseline_run_id}" if incident.baseline_run_id else "no baseline")
    parts.append(f"next: {next_step(incident)}")
    return " | ".join(parts)


# --------------------------------------------------------------------------------------------
# closing: the journal entry


def _profile_summaries(store: Store, incident_id: int) -> list[dict[str, Any]]:
    out = []
    for r in store.profiles(incident_id=incident_id):
        top = (r.hot_spots or [None])[0]
        check = (r.data or {}).get("check") or {}
        out.append({"id": r.id, "purpose": r.purpose, "target": r.target, "profiler": r.profiler,
                    "commit": r.commit, "dirty": r.dirty, "created_at": r.created_at.isoformat(),
                    "files": dict(r.files or {}),
                    "top_hot_spot": {"function": top.get("function"),
                                     "self_share": top.get("self_share")} if top else None,
                    "hypothesis_verdict": check.get("verdict")})
    return out


def journal_entry(store: Store, incident: Incident, note: str | None,
                  closed_at: datetime | None = None) -> dict[str, Any]:
    """The record of an incident: what was thought, expected, done and found."""
    closed_at = closed_at or datetime.now(timezone.utc)
    verification = incident.verification
    hyp = incident.hypothesis
    root = incident.project
    head = snapshot_tree(root) if Path(root).is_dir() else None
    commits = commits_between(root, incident.commit_at_open, "HEAD") \
        if incident.commit_at_open and head and head.commit else []
    expected = {"metric": incident.metric, "direction": "better",
                "effect": hyp.expected_effect if hyp else None,
                "where": list(hyp.expect) if hyp else [],
                "share": hyp.expected_share if hyp else None}
    actual: dict[str, Any]
    if verification:
        actual = {"verdict": verification.get("verdict"), "reading": verification.get("reading"),
                  "target": verification.get("target", []),
                  "side_effects": verification.get("side_effects", []),
                  "tradeoffs": verification.get("tradeoffs", []),
                  "counts": verification.get("counts", {}),
                  "attribution": (verification.get("attribution") or {}).get("summary"),
                  "attributable": (verification.get("attribution") or {}).get("attributable")}
    else:
        actual = {"verdict": "not verified",
                  "reading": "the incident was closed without `perfloop verify`: the effect of the "
                             "patch was not measured"}
    return _plain({
        "incident": incident.id, "title": incident.title, "project": incident.project,
        "opened_at": incident.opened_at, "closed_at": closed_at,
        "duration_seconds": (closed_at - incident.opened_at).total_seconds(),
        "benchmarks": list(incident.benchmarks), "metric": incident.metric,
        "hypotheses": [{"id": h.id, "text": h.text, "expect": list(h.expect), "outcome": h.outcome,
                        "reading": (h.evidence or {}).get("reading"),
                        "expected_effect": h.expected_effect,
                        "effect": (h.evidence or {}).get("effect")} for h in incident.hypotheses],
        "expected": expected, "actual": actual,
        "profiles": _profile_summaries(store, incident.id),
        "baseline": dict(incident.baseline) if incident.baseline else None,
        "verifications": list(incident.data.get("verifications", [])),
        "commit_at_open": incident.commit_at_open,
        "commits": [{"sha": s, "subject": t} for s, t in (commits or [])],
        "uncommitted_at_close": list(head.dirty_files) if head else [],
        "note": note,
    })


def close_incident(store: Store, root: str | Path, note: str | None = None) -> Incident:
    """Close the open incident: write its journal entry, return to normal development."""
    incident = require_incident(store, root, "closing an incident")
    closed_at = utcnow()
    entry = journal_entry(store, incident, note, closed_at)
    verdict = entry["actual"]["verdict"]
    # the journal's status vocabulary: what a reader of the journal needs to know first
    status = {"verified": "verified", "trade-off": "verified", "regressed": "regressed",
              "not verified": "unverified"}.get(verdict or "", "closed")
    change = dict(
        title=incident.title, kind=None, workflow=WORKFLOW, status=status,
        incident_id=incident.id, hypothesis=incident.hypothesis.text if incident.hypothesis else None,
        expected=entry["expected"], actual=entry["actual"], risk_factors={},
        baseline_run_id=incident.baseline_run_id,
        verification_run_ids=[v.get("run_id") for v in incident.data.get("verifications", [])
                              if v.get("run_id")],
        commits=[c["sha"] for c in entry["commits"]], notes=note, created_at=closed_at,
        updated_at=closed_at, data={"journal": entry})

    def edit(data: dict[str, Any], change_id: int) -> dict[str, Any]:
        data = {**data, "journal": entry, "change_id": change_id}
        data["events"] = [*data.get("events", []), _event("closed")]
        return data

    store.close_incident(incident.id, change, edit=edit, status=CLOSED, closed_at=closed_at,
                         note=note)
    return get_incident(store, incident.id)


__all__ = ["Hypothesis", "HypothesisHistory", "Incident", "METRIC_ALIASES", "add_hypothesis",
           "close_incident", "current_incident", "get_hypothesis", "get_incident",
           "hypothesis_history", "incident_banner", "journal_entry", "list_incidents",
           "next_step", "normalize_metric", "open_incident", "record_effect", "record_outcome",
           "require_incident", "update_data"]
