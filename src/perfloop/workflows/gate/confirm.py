"""Keeping only the regressions that hold up: Benjamini-Hochberg across the suite, then a fresh
measurement of each one that is left.

A suite of many benchmark-metric pairs calls some of them "regressed" on noise alone; the
false discovery rate control demotes a regression that is not significant among all of them
to ``inconclusive`` (:mod:`perfloop.analysis.fdr`). What remains is measured again, afresh and
with more blocks, and fails the gate only if that measurement says ``regressed`` too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from ...analysis.fdr import bh_adjust
from ..interleave import FAILED, HEAD, Interleaved, SamplingPolicy
from .options import GateOptions
from .outcome import MetricOutcome, pct
from .runs import LABEL_CONFIRM_BASE, LABEL_CONFIRM_HEAD, Revision
from .sampling import Measuring, Work, measure_pair, outcomes
from .worktrees import Checkouts, rooted


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
        out = measure_pair(item, rooted(item.spec, head_root), ctx, policy,
                           base=base.relabelled(LABEL_CONFIRM_BASE),
                           head=head.relabelled(LABEL_CONFIRM_HEAD))
        again = {m.metric: m for m in outcomes(out.verdicts, item.name)}
        item.confirmation = {**out.to_dict(), "verdicts": [m.to_dict() for m in again.values()]}
        if out.stopped == FAILED and out.failed_side == HEAD:
            item.fails_at_head(out.head.error)
        item.metrics = [_settle(m, out, again) if m.metric in candidates else m
                        for m in item.metrics]


def _settle(m: MetricOutcome, out: Interleaved, again: dict[str, MetricOutcome]) -> MetricOutcome:
    """A candidate regression after its confirmation ``out`` (``again``: its new verdicts)."""
    if out.stopped == FAILED:
        failed = out.head if out.failed_side == HEAD else out.base
        return replace(m, confirmed=None, notes=(
            *m.notes, f"the confirmation could not measure it: {failed.error}"))
    c = again.get(m.metric)
    if c is not None and c.verdict == "regressed":
        return replace(m, confirmed=True, change=c.change, ci_low=c.ci_low, ci_high=c.ci_high,
                       base=c.base, head=c.head, notes=(
                           *m.notes, f"confirmed by a fresh measurement of {out.blocks} blocks "
                                     f"({pct(c.change)})"))
    verdict = c.verdict if c is not None else "inconclusive"
    return replace(m, verdict=verdict, confirmed=False, notes=(
        *m.notes, f"not confirmed: measured again with {out.blocks} blocks it was {verdict} "
                  f"({pct(c.change if c else None)})"))


__all__ = ["confirm", "confirmation_policy", "control_fdr"]
