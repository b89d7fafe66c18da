"""From verdicts to statuses: approvals let a confirmed regression through, ``on_inconclusive``
decides what "cannot tell" does, and what an approval let through is recorded and journaled.

An approval comes from ``perfloop approve`` or a ``Perf-Approved:`` commit trailer between
base and head; it covers the regression it approved, not one clearly larger.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

from ...analysis.side_effects import side_effects
from ...store import Store
from ..approvals import (Approval, journal_approved, list_approvals, record_size, remember,
                         trailer_approvals)
from .options import FAIL, PASS, GateOptions
from .outcome import APPROVED, NEW, STATUS_ORDER, BenchmarkOutcome, MetricOutcome
from .runs import LABEL_BASE, LABEL_HEAD
from .sampling import Work


def approvals_for(store: Store, root: Path, base: str, head: str | None) -> list[Approval]:
    """Stored approvals plus the trailers between base and head (stored too, for the history)."""
    trailers = trailer_approvals(root, base, head) if head else []
    stored = list_approvals(store)
    known = {s.id for s in stored}
    return [*stored, *[a for a in remember(store, trailers) if a.id not in known]]


def judge(item: Work, approvals: Sequence[Approval], options: GateOptions) -> BenchmarkOutcome:
    """Statuses of the metrics and the benchmark, from verdicts, approvals and the policy."""
    metrics = [judge_metric(item.name, m, approvals, options) for m in item.metrics]
    covering_failure: tuple[Approval, ...] = ()
    if item.status == FAIL:
        covering_failure = tuple(a for a in approvals
                                 if a.covers(item.name, None) and a.metric is None)
        status = APPROVED if covering_failure else FAIL
    elif item.status == NEW:
        status = NEW
    else:
        statuses = {m.status for m in metrics}
        status = next((s for s in STATUS_ORDER if s in statuses), PASS)
    return BenchmarkOutcome(
        name=item.name, status=status, metrics=tuple(metrics), source=item.source,
        blocks=item.blocks, seconds=item.seconds, stopped=item.stopped,
        confirmation=item.confirmation, side_effects=tuple(side_effects(metrics)),
        error=item.error, approvals=covering_failure, notes=tuple(item.notes))


def judge_metric(benchmark: str, m: MetricOutcome, approvals: Sequence[Approval],
                 options: GateOptions) -> MetricOutcome:
    """The status of metric ``m`` of ``benchmark``."""
    if m.role == "context":
        # Shown beside the deciding time metric; it neither fails nor warns.
        return replace(m, status=PASS)
    if m.verdict == "inconclusive":
        return replace(m, status=options.on_inconclusive)
    if m.verdict != "regressed":
        return replace(m, status=PASS)
    covering = [a for a in approvals if a.covers(benchmark, m.metric)]
    # An approval covers the regression it approved, not one clearly larger.
    checked = [(a, a.exceeded_by(benchmark, m.metric, m.change, m.ci_low, m.ci_high,
                                 m.direction)) for a in covering]
    fits = tuple(a for a, why in checked if why is None)
    notes = tuple(f"the approval by {a.author or 'unknown'} ({a.reason}) does not cover "
                  f"it: {why}" for a, why in checked if why and not fits)
    return replace(m, status=APPROVED if fits else FAIL, approvals=fits, notes=(*m.notes, *notes))


def record_sizes(store: Store, outcome: BenchmarkOutcome, head: str | None) -> None:
    """The first gate that uses an approval records what it let through: the approval's size."""
    for m in outcome.metrics:
        if m.status != APPROVED:
            continue
        for a in m.approvals:
            record_size(store, a, outcome.name, m.metric,
                        {"change": m.change, "ci_low": m.ci_low, "ci_high": m.ci_high,
                         "direction": m.direction, "head": head})


def journal_approval(store: Store, outcome: BenchmarkOutcome, *, base: str, head: str | None,
                     run_ids: Mapping[str, int]) -> None:
    """An approved benchmark in the journal of changes: what was let through, and by whom."""
    used = {a.id or id(a): a for m in outcome.metrics for a in m.approvals}
    used.update({a.id or id(a): a for a in outcome.approvals})
    journal_approved(
        store, benchmark=outcome.name, approvals=list(used.values()),
        actual={"status": outcome.status, "error": outcome.error,
                "metrics": [m.to_dict() for m in outcome.metrics if m.status == APPROVED]},
        base=base, head=head, base_run_id=run_ids.get(LABEL_BASE),
        head_run_id=run_ids.get(LABEL_HEAD))


__all__ = ["approvals_for", "journal_approval", "judge", "judge_metric", "record_sizes"]
