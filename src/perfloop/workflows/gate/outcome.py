"""What the gate decided: per metric (:class:`MetricOutcome`), per benchmark
(:class:`BenchmarkOutcome`) and for the change (:class:`GateReport`), for the renderers
(terminal, Markdown, JUnit, GitHub) and ``--json``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Mapping

from .options import FAIL, PASS, WARN, GateOptions

if TYPE_CHECKING:     # the statistics load where verdicts are made, not where they are read
    from ...analysis.compare import Verdict
    from ..approvals import Approval

# Benchmark and metric statuses in the gate's outcome, worst first.
APPROVED, NEW = "approved", "new"
STATUS_ORDER = (FAIL, WARN, APPROVED, NEW, PASS)
STATUS_WORDS = {FAIL: "failed", WARN: "inconclusive", APPROVED: "approved", NEW: "new",
                PASS: "passed"}


@dataclass(frozen=True)
class MetricOutcome:
    """The gate's word on one metric of one benchmark."""

    benchmark: str
    metric: str
    verdict: str                   # regressed | improved | unchanged | inconclusive
    status: str                    # pass | warn | fail | approved
    change: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    base: float | None = None      # location (trimmed mean) of each side
    head: float | None = None
    unit: str = ""
    direction: str = "lower"
    tolerance: float | None = None
    confirmed: bool | None = None  # None: no confirmation was needed
    more_workers: int | None = None
    approvals: tuple[Approval, ...] = ()
    notes: tuple[str, ...] = ()
    role: str = "decides"          # decides | context (a time metric shown beside the deciding one)
    deciding_metric: str | None = None
    deciding_reason: str | None = None
    design: str | None = None      # paired | unpaired

    def to_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "metric": self.metric, "verdict": self.verdict,
                "role": self.role, "deciding_metric": self.deciding_metric,
                "deciding_reason": self.deciding_reason, "design": self.design,
                "status": self.status, "change": self.change, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "p_value": self.p_value, "p_adjusted": self.p_adjusted,
                "base": self.base, "head": self.head, "unit": self.unit, "direction": self.direction,
                "tolerance": self.tolerance, "confirmed": self.confirmed,
                "more_workers": self.more_workers,
                "approvals": [a.to_dict() for a in self.approvals], "notes": list(self.notes)}

    @classmethod
    def from_verdict(cls, verdict: Verdict, benchmark: str | None = None) -> MetricOutcome:
        """A provisional outcome (status decided later) from a verdict of the comparison;
        undefined numbers (NaN) become None."""
        note = verdict.note
        return cls(
            benchmark=verdict.benchmark or benchmark or "", metric=verdict.metric,
            verdict=_kind(verdict.verdict), status=PASS, change=_num(verdict.change),
            ci_low=_num(verdict.ci_low), ci_high=_num(verdict.ci_high),
            p_value=_num(verdict.p_value), base=_num(verdict.base_location),
            head=_num(verdict.head_location), unit=verdict.unit or "",
            direction=_kind(verdict.direction), tolerance=_num(verdict.tolerance),
            more_workers=None if verdict.more_workers is None else int(verdict.more_workers),
            notes=(note,) if note else (), role=verdict.role,
            deciding_metric=verdict.deciding_metric, deciding_reason=verdict.deciding_reason,
            design=verdict.design)


def _kind(value: str | Enum) -> str:
    """An enum's value (VerdictKind, Direction) or a plain string, as a string."""
    return str(value.value) if isinstance(value, Enum) else value


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class BenchmarkOutcome:
    """The gate's word on one benchmark: its metrics, how it was measured, side effects."""

    name: str
    status: str
    metrics: tuple[MetricOutcome, ...] = ()
    source: str = "interleaved"             # or "stored run #N" (reused base)
    blocks: int = 0
    seconds: float = 0.0
    stopped: str | None = None
    confirmation: Mapping[str, Any] | None = None
    side_effects: tuple[str, ...] = ()
    error: str | None = None
    approvals: tuple[Approval, ...] = ()    # approvals covering a head failure
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status,
                "metrics": [m.to_dict() for m in self.metrics], "source": self.source,
                "blocks": self.blocks, "workers_per_side": 2 * self.blocks, "seconds": self.seconds,
                "stopped": self.stopped,
                "confirmation": dict(self.confirmation) if self.confirmation is not None else None,
                "side_effects": list(self.side_effects), "error": self.error,
                "approvals": [a.to_dict() for a in self.approvals], "notes": list(self.notes)}


@dataclass(frozen=True)
class GateReport:
    """Everything the gate decided, for the renderers (terminal, Markdown, JUnit, GitHub)."""

    base_ref: str
    base_commit: str
    head_ref: str
    head_commit: str | None
    head_dirty: bool
    project: str
    options: GateOptions
    benchmarks: tuple[BenchmarkOutcome, ...]
    comparisons: int = 0                    # benchmark-metric pairs under FDR control
    run_ids: Mapping[str, int] = field(default_factory=dict)
    approvals: tuple[Approval, ...] = ()    # every approval that counted for this change
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def failures(self) -> list[BenchmarkOutcome]:
        return [b for b in self.benchmarks if b.status == FAIL]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def count(self, status: str) -> int:
        return sum(1 for b in self.benchmarks if b.status == status)

    def summary(self) -> str:
        """One line: what the gate decided."""
        parts = [f"{self.count(s)} {STATUS_WORDS[s]}" for s in STATUS_ORDER if self.count(s)]
        # approvals inside benchmarks whose worst status is another one are still said
        hidden = sum(1 for b in self.benchmarks if b.status != APPROVED
                     and any(m.status == APPROVED for m in b.metrics))
        if hidden:
            parts.append(f"{hidden} more with an approved regression")
        verdict = "passed" if self.passed else "FAILED"
        return f"gate {verdict}: {', '.join(parts) or 'no benchmarks'}"

    def failure_message(self) -> str:
        items = []
        for b in self.failures:
            bad = [m for m in b.metrics if m.status == FAIL]
            if bad:
                items.append(f"{b.name}: " + ", ".join(f"{m.metric} {m.verdict} {pct(m.change)}"
                                                         for m in bad))
            else:
                items.append(f"{b.name}: {b.error or 'failed'}")
        return f"{len(items)} benchmark(s) failed the gate: " + "; ".join(items)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "exit_code": self.exit_code, "summary": self.summary(),
                "base": {"ref": self.base_ref, "commit": self.base_commit},
                "head": {"ref": self.head_ref, "commit": self.head_commit, "dirty": self.head_dirty},
                "project": self.project, "options": self.options.to_dict(),
                "comparisons": self.comparisons, "run_ids": dict(self.run_ids),
                "counts": {s: self.count(s) for s in STATUS_ORDER},
                "benchmarks": [b.to_dict() for b in self.benchmarks],
                "approvals": [a.to_dict() for a in self.approvals], "notes": list(self.notes),
                "seconds": self.seconds}


def pct(change: float | None) -> str:
    """A relative change as a signed percentage; ``-`` when undefined."""
    if change is None or not math.isfinite(change):
        return "-"
    return f"{change * 100:+.1f}%"


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this runs in a GitHub Actions job (its annotations and summary are wanted)."""
    return (environ if environ is not None else os.environ).get("GITHUB_ACTIONS") == "true"


__all__ = ["APPROVED", "BenchmarkOutcome", "GateReport", "MetricOutcome", "NEW", "STATUS_ORDER",
           "STATUS_WORDS", "in_github_actions", "pct"]

