"""What the audit's detectors share: a finding, the context they read, the detector registry.

Kept apart from :mod:`perfloop.workflows.audit` so that the detectors
(:mod:`perfloop.workflows.audit_detectors`) and the audit that runs them import it, not each
other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from ..config import ProjectConfig
from ..store import (ApprovalRecord, ChangeRecord, HypothesisRecord, IncidentRecord,
                     ProfileRecord, ResultSummary, RunInfo, Store)
from .gitlog import Commit
from .params import ParamReport, check


@dataclass(frozen=True)
class Finding:
    """One anti-pattern seen in the history: evidence, and what to do next."""

    pattern: str                      # the detector's id
    title: str
    evidence: tuple[str, ...]
    next_step: str
    severity: int = 2                 # 1 minor, 2 costly, 3 misleading the team
    subjects: tuple[str, ...] = ()    # commits, entry ids, benchmarks: what a silence can match
    silenced: str | None = None       # the reason, when silenced

    @property
    def weight(self) -> int:
        """How bad: its severity times how much evidence there is (capped)."""
        return self.severity * min(max(len(self.subjects), 1), 10)

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "title": self.title, "evidence": list(self.evidence),
                "next_step": self.next_step, "severity": self.severity,
                "subjects": list(self.subjects), "silenced": self.silenced}


@dataclass
class AuditContext:
    """Everything the detectors read, loaded once."""

    root: Path
    since: datetime
    now: datetime
    config: ProjectConfig | None
    raw: Mapping[str, Any]
    commits: list[Commit]
    runs: list[RunInfo]
    results: list[ResultSummary]
    changes: list[ChangeRecord]
    incidents: list[IncidentRecord]
    hypotheses: list[HypothesisRecord]
    approvals: list[ApprovalRecord]
    profiles: list[ProfileRecord]
    store: Store
    release_tags: Mapping[str, str] = field(default_factory=dict)   # commit -> tag
    _params: ParamReport | None = field(default=None, repr=False)

    @property
    def perf_commits(self) -> list[Commit]:
        return [c for c in self.commits if c.perf and len(c.parents) <= 1]

    def params(self) -> ParamReport:
        """The registry check (read lazily: it reads patches from git)."""
        if self._params is None:
            self._params = check(self.root, self.store, since=self.since)
        return self._params


Detect = Callable[[AuditContext], list[Finding]]


@dataclass(frozen=True)
class Detector:
    id: str
    title: str
    detect: Detect
    experiment: str                   # a small experiment that would fix the worst case


_DETECTORS: dict[str, Detector] = {}


def register_detector(detector: Detector) -> None:
    """Add a detector; the built-in ones register themselves in :mod:`.audit_detectors`."""
    _DETECTORS[detector.id] = detector


@dataclass(frozen=True)
class Resemblance:
    workflow: str
    score: float                      # 0..1
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"workflow": self.workflow, "score": round(self.score, 2), "reasons": list(self.reasons)}


def registered() -> Mapping[str, Detector]:
    """The detectors registered so far (the audit imports the built-in ones first)."""
    return dict(_DETECTORS)


__all__ = ["AuditContext", "Detect", "Detector", "Finding", "Resemblance", "register_detector",
           "registered"]
