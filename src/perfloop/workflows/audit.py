"""The audit: the anti-patterns a team falls into, named from its own history, with evidence.

It reads three things: the git history (one ``git log`` over the period), the store (runs,
results, and the journal: changes, incidents, hypotheses, approvals, profiles) and the project's
configuration (benchmarks, the parameter registry). Each *detector*
(:mod:`perfloop.workflows.audit_detectors`) looks for one anti-pattern and returns findings,
each with its evidence (commits, entries, benchmarks, numbers) and one next step. The report
also says how much the team's practice resembles each of the three workflows, and proposes one
small experiment for the worst finding.

A finding is silenced, with a reason, in the configuration::

    [[audit.silence]]
    finding = "premature-optimization"     # a detector's id
    match = "3f2a9c1"                       # optional: a commit, entry, benchmark in its evidence
    reason = "the 2024 rewrite predates our benchmarks; judged on production dashboards"

Silenced findings stay in the report, marked, with their reason; they do not fail the audit.

More detectors plug in with :func:`register_detector` (:mod:`.audit_base`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..config import load_config
from ..errors import ConfigError, UsageError
from ..store import Store
from ..store.models import utcnow
from . import gitlog
from .audit_base import (AuditContext, Detector, Finding, Resemblance, register_detector,
                         registered)
from .audit_detectors import resemblance
from .params import raw_config

DEFAULT_SINCE_DAYS = 90
MIN_REASON = 8


def detectors() -> Mapping[str, Detector]:
    """Every registered detector, the built-in ones (:mod:`.audit_detectors`) included."""
    return registered()


@dataclass(frozen=True)
class AuditReport:
    since: datetime
    findings: tuple[Finding, ...]
    silenced: tuple[Finding, ...]
    resemblance: tuple[Resemblance, ...]
    experiment: str | None
    stats: Mapping[str, Any]
    errors: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "ok": not self.failed,
                "findings": [f.to_dict() for f in self.findings],
                "silenced": [f.to_dict() for f in self.silenced],
                "resemblance": [r.to_dict() for r in self.resemblance],
                "experiment": self.experiment, "stats": dict(self.stats), "errors": list(self.errors)}


# --------------------------------------------------------------------------------------------
# silencing


@dataclass(frozen=True)
class Silence:
    finding: str
    reason: str
    match: str | None = None

    def covers(self, finding: Finding) -> bool:
        if finding.pattern != self.finding:
            return False
        if not self.match:
            return True
        needle = self.match.lower()
        return any(needle in s.lower() for s in (*finding.subjects, *finding.evidence))


def load_silences(raw: Mapping[str, Any], where: str = "perfloop.toml") -> list[Silence]:
    """``[[audit.silence]]`` tables, checked: each names a known detector and gives a reason."""
    audit = raw.get("audit", {})
    if not isinstance(audit, dict):
        raise ConfigError("audit must be a table", path=where, key="audit")
    items = audit.get("silence", [])
    if not isinstance(items, list):
        raise ConfigError("audit.silence must be an array of tables", path=where, key="audit.silence",
                          hint="write [[audit.silence]] for each silenced finding")
    known = detectors()
    out = []
    for i, item in enumerate(items):
        key = f"audit.silence[{i}]"
        if not isinstance(item, dict) or set(item) - {"finding", "match", "reason"}:
            raise ConfigError("expected keys finding, match, reason", path=where, key=key)
        if item.get("finding") not in known:
            raise ConfigError(f"unknown finding {item.get('finding')!r}", path=where, key=f"{key}.finding",
                              hint=f"one of: {', '.join(sorted(known))}")
        reason = str(item.get("reason", "")).strip()
        if len(reason) < MIN_REASON:
            raise ConfigError("a silenced finding needs a reason", path=where, key=f"{key}.reason",
                              hint='say why it does not apply, e.g. reason = "benchmarks predate the '
                                   'rewrite; judged on production dashboards"')
        out.append(Silence(item["finding"], reason, str(item["match"]) if item.get("match") else None))
    return out


# --------------------------------------------------------------------------------------------
# running it


def load_context(root: Path, store: Store, *, since: datetime, now: datetime | None = None) -> AuditContext:
    """Read the git history, the store and the configuration once."""
    now = now or utcnow()
    _, raw = raw_config(root)
    config = None
    if raw.get("benchmark"):
        try:
            config = load_config(root)
        except UsageError:
            config = None      # a broken config is `perfloop run`'s to report, not the audit's
    commits = gitlog.read_log(root, since=since) if gitlog.is_repository(root) else []
    # runs before the period count as baselines for the first commits in it
    runs = [r for r in store.list_runs(limit=None) if r.started_at >= since - timedelta(days=30)]
    return AuditContext(
        root=root, since=since, now=now, config=config, raw=raw, commits=commits, runs=runs,
        results=store.result_summaries(since=since), changes=store.changes(since=since),
        incidents=store.incidents(since=since), hypotheses=store.hypotheses(),
        approvals=store.approvals(since=since), profiles=store.profiles(since=since), store=store,
        release_tags=gitlog.tags(root) if commits else {})


def run_audit(root: str | Path, store: Store, *, since: datetime | None = None,
              now: datetime | None = None, only: Sequence[str] | None = None,
              clock: Callable[[], float] = time.perf_counter) -> AuditReport:
    """Run every detector (or ``only`` those) over the period; the report."""
    started = clock()
    root = Path(root).resolve()
    now = now or utcnow()
    since = since or now - timedelta(days=DEFAULT_SINCE_DAYS)
    known = detectors()
    unknown = sorted(set(only or ()) - set(known))
    if unknown:
        raise UsageError(f"unknown detector(s): {', '.join(unknown)}", hint=f"one of: {', '.join(sorted(known))}")
    ctx = load_context(root, store, since=since, now=now)
    silences = load_silences(ctx.raw)
    found: list[Finding] = []
    errors: list[str] = []
    for detector in known.values():
        if only and detector.id not in only:
            continue
        try:
            found.extend(detector.detect(ctx))
        except (UsageError, OSError) as exc:
            # one detector that cannot read its evidence does not hide the others' findings
            errors.append(f"{detector.id}: {exc}")
    active, quiet = [], []
    for finding in found:
        silence = next((s for s in silences if s.covers(finding)), None)
        if silence is None:
            active.append(finding)
        else:
            quiet.append(replace(finding, silenced=silence.reason))
    active.sort(key=lambda f: -f.weight)
    worst = active[0] if active else None
    experiment = f"{worst.title}: {known[worst.pattern].experiment}" if worst else None
    stats = {"commits": len(ctx.commits), "performance_commits": len(ctx.perf_commits),
             "runs": len([r for r in ctx.runs if r.started_at >= since]),
             "journal_entries": len(ctx.changes), "incidents": len(ctx.incidents),
             "seconds": round(clock() - started, 3)}
    return AuditReport(since=since, findings=tuple(active), silenced=tuple(quiet),
                       resemblance=tuple(resemblance(ctx)), experiment=experiment, stats=stats,
                       errors=tuple(errors))


__all__ = ["AuditContext", "AuditReport", "Detector", "Finding", "Resemblance", "Silence",
           "detectors", "load_context", "load_silences", "register_detector", "run_audit"]
