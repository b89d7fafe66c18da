"""Keeping only the regressions that hold up: Benjamini-Hochberg across the suite, then a fresh
measurement of each one that is left.

A suite of many benchmark-metric pairs calls some of them "regressed" on noise alone; the
false discovery rate control demotes a regression that is not significant among all of them
to ``inconclusive`` (:mod:`perfloop.analysis.fdr`). What remains is measured again: fresh
blocks (at least ``confirm_blocks``, more while undecided) judged together with the first
look's. It fails the gate only if all the blocks together say ``regressed`` and the fresh
blocks alone point the same way. The fresh blocks dilute a first look that stopped on a lucky
streak; demanding that they decide on their own would throw away the first look's evidence and
lose most changes near the tolerance on a busy machine (simulated: 5% found in 73% of gates
instead of 96% at a block-ratio spread of 3.5%; see docs/statistics.md).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from ...analysis.fdr import bh_adjust
from ...records import BenchmarkResult
from ..interleave import FAILED, HEAD, WORKERS_PER_BLOCK, Interleaved, SamplingPolicy
from .options import GateOptions
from .outcome import MetricOutcome, pct
from .runs import LABEL_CONFIRM_BASE, LABEL_CONFIRM_HEAD, Revision
from .sampling import DecideFunction, Measuring, Work, measure_pair, outcomes
from .worktrees import Checkouts, rooted

if TYPE_CHECKING:
    from ...analysis.compare import Verdict


def control_fdr(work: Sequence[Work], q: float) -> int:
    """Benjamini-Hochberg over every benchmark-metric pair; demotes regressions it does not
    keep to inconclusive. Returns the number of pairs."""
    pairs = [(item, i) for item in work for i, m in enumerate(item.metrics)
             if m.p_value is not None and m.role != "context"]
    adjusted = bh_adjust([min(max(item.metrics[i].p_value or 0.0, 0.0), 1.0) for item, i in pairs])
    for (item, i), adj in zip(pairs, adjusted):
        m = replace(item.metrics[i], p_adjusted=adj)
        if m.verdict == "regressed" and adj > q:
            m = replace(m, verdict="inconclusive", notes=(*m.notes, (
                f"regressed on its own (p = {m.p_value:.3g}) but not significant across the "
                f"{len(pairs)} comparisons of the suite (adjusted p = {adj:.3g} > {q:g})")))
        item.metrics[i] = m
    return len(pairs)


def confirmation_policy(options: GateOptions) -> SamplingPolicy:
    """More blocks than the first look, within the same cost limit in seconds."""
    policy = options.sampling
    return SamplingPolicy(blocks=options.confirm_blocks,
                          max_blocks=max(policy.max_blocks, options.confirm_blocks),
                          max_seconds=policy.max_seconds, step=policy.step)


def confirm(work: Sequence[Work], ctx: Measuring, options: GateOptions, checkouts: Checkouts, *,
            base: Revision, head: Revision) -> None:
    """Measure every candidate regression again, with more blocks; keep it only if confirmed.

    ``base`` and ``head`` are the sides of the first look, measured again from the same code
    (the head from the working tree unless ``options.head`` names a commit) into runs of their
    own, labelled ``gate-confirm-base`` and ``gate-confirm-head``.
    """
    policy = confirmation_policy(options)
    for item in work:
        candidates = {m.metric for m in item.metrics
                      if m.verdict == "regressed" and m.role != "context"}
        if not candidates:
            continue
        ctx.say(f"{item.name}: confirming the regression of {', '.join(sorted(candidates))}")
        if item.base_spec is None:
            assert base.commit is not None
            item.base_spec = rooted(item.spec, checkouts.of(base.commit))
        head_root = checkouts.of(head.commit if options.head else None)
        joined = replace(ctx, decide=pooled(item.first, ctx.decide))
        out = measure_pair(item, rooted(item.spec, head_root), joined, policy,
                           base=base.relabelled(LABEL_CONFIRM_BASE),
                           head=head.relabelled(LABEL_CONFIRM_HEAD))
        again = {m.metric: m for m in outcomes(out.verdicts, item.name)}
        fresh: dict[str, MetricOutcome] = {}
        if out.stopped != FAILED:
            fresh = {m.metric: m for m in outcomes(ctx.decide(out.base, out.head), item.name)}
        item.confirmation = {**out.to_dict(), "verdicts": [m.to_dict() for m in again.values()],
                             "fresh_verdicts": [m.to_dict() for m in fresh.values()],
                             "first_blocks": item.first.blocks if item.first else 0}
        if out.stopped == FAILED and out.failed_side == HEAD:
            item.fails_at_head(out.head.error)
        item.metrics = [_settle(m, out, again, fresh) if m.metric in candidates else m
                        for m in item.metrics]


def pooled(first: Interleaved | None, decide: DecideFunction) -> DecideFunction:
    """``decide`` on the first look's blocks followed by the fresh ones (the fresh workers
    numbered after the first look's, so that each block keeps its own two per side)."""
    if first is None or first.stopped == FAILED or first.blocks == 0:
        return decide
    offset = WORKERS_PER_BLOCK * first.blocks

    def both(base: BenchmarkResult, head: BenchmarkResult) -> Sequence[Verdict]:
        return decide(_joined(first.base, base, offset), _joined(first.head, head, offset))

    return both


def _joined(first: BenchmarkResult, fresh: BenchmarkResult, offset: int) -> BenchmarkResult:
    """``first`` with the samples of ``fresh`` appended, its workers shifted by ``offset``."""
    shifted = tuple(replace(s, worker=s.worker + offset) for s in fresh.samples)
    return replace(fresh, samples=first.samples + shifted)


def _settle(m: MetricOutcome, out: Interleaved, again: dict[str, MetricOutcome],
            fresh: dict[str, MetricOutcome]) -> MetricOutcome:
    """A candidate regression after its confirmation ``out``: ``again`` holds the verdicts on
    all blocks (first look and fresh), ``fresh`` those on the fresh blocks alone."""
    if out.stopped == FAILED:
        failed = out.head if out.failed_side == HEAD else out.base
        return replace(m, confirmed=None, notes=(
            *m.notes, f"the confirmation could not measure it: {failed.error}"))
    c, f = again.get(m.metric), fresh.get(m.metric)
    alone = f"the fresh blocks alone {pct(f.change if f else None)}"
    if c is not None and c.verdict == "regressed" and f is not None and _same_way(f, c):
        return replace(m, confirmed=True, change=c.change, ci_low=c.ci_low, ci_high=c.ci_high,
                       base=c.base, head=c.head, notes=(
                           *m.notes, f"confirmed by {out.blocks} fresh blocks: "
                                     f"{pct(c.change)} on all blocks, {alone}"))
    verdict = c.verdict if c is not None else "inconclusive"
    if verdict == "regressed":         # all blocks say so, the fresh ones alone do not
        verdict = "inconclusive"
    return replace(m, verdict=verdict, confirmed=False, notes=(
        *m.notes, f"not confirmed: with {out.blocks} fresh blocks it was {verdict} "
                  f"({pct(c.change if c else None)} on all blocks, {alone})"))


def _same_way(fresh: MetricOutcome, pooled: MetricOutcome) -> bool:
    """The fresh blocks alone point the way all blocks do (their estimate, not a verdict)."""
    if fresh.change is None or pooled.change is None:
        return False
    return (fresh.change > 0) == (pooled.change > 0) and fresh.change != 0


__all__ = ["confirm", "confirmation_policy", "control_fdr"]
