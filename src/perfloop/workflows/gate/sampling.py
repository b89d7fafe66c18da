"""Measuring one benchmark for the gate: base and head interleaved in ``A B B A`` blocks (or
head alone against a stored base run), stored as the gate's runs, with progress said as it goes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ...config import DEFAULT_TOLERANCE, BenchmarkSpec
from ...measure.runner import MeasureFunction
from ...records import BenchmarkResult, ResultStatus
from ..interleave import (BASE, FAILED, Interleaved, SamplingPolicy, measure_interleaved,
                          single_process)
from .options import FAIL
from .outcome import NEW, MetricOutcome
from .runs import GateRuns, Revision, StoredBase

if TYPE_CHECKING:     # the statistics load when the gate decides, not when it is imported
    from ...analysis.compare import Verdict

#: ``on_event(message)``: what the gate is doing, for a progress display.
EventFunction = Callable[[str], None]
#: ``decide(base, head) -> verdicts``: the comparison (tests inject one of their own).
DecideFunction = Callable[[BenchmarkResult, BenchmarkResult], Sequence["Verdict"]]


@dataclass
class Work:
    """One benchmark on its way through the gate."""

    spec: BenchmarkSpec
    base_spec: BenchmarkSpec | None = None
    metrics: list[MetricOutcome] = field(default_factory=list)
    source: str = "interleaved"
    blocks: int = 0
    seconds: float = 0.0
    stopped: str | None = None
    error: str | None = None
    status: str | None = None       # set early for new or failed benchmarks
    notes: list[str] = field(default_factory=list)
    confirmation: dict[str, Any] | None = None
    first: Interleaved | None = None      # the first look's measurement, which confirmation extends

    @property
    def name(self) -> str:
        return self.spec.name

    def fails_at_head(self, error: str | None) -> None:
        self.status, self.error = FAIL, f"fails at head: {error}"


@dataclass(frozen=True)
class Measuring:
    """What every measurement of one gate shares."""

    measure: MeasureFunction
    decide: DecideFunction
    runs: GateRuns
    clock: Callable[[], float]
    say: EventFunction


def make_decide(tolerance: float | None, confidence: float,
                tolerances: Mapping[str, float] | None = None,
                decide_on: Mapping[str, str] | None = None) -> DecideFunction:
    """The comparison the gate uses: per-metric verdicts of :mod:`perfloop.analysis.compare`.

    ``tolerance`` overrides every benchmark's own, which ``tolerances`` gives by name;
    ``decide_on`` names each benchmark's forced deciding time metric (``auto`` by default).
    Results measured interleaved (both carry ``extra["interleaved"]``) are analysed paired,
    block by block; a stored base against a fresh head is not.
    """
    from ...analysis import compare     # the verdict engine (numpy), loaded when a gate runs
    own = dict(tolerances or {})
    forced = dict(decide_on or {})

    def decide(base: BenchmarkResult, head: BenchmarkResult) -> list[Verdict]:
        tol = tolerance if tolerance is not None else own.get(
            head.name, float(head.extra.get("tolerance", DEFAULT_TOLERANCE)))
        paired = "interleaved" in base.extra and "interleaved" in head.extra
        return list(compare.compare_results(base, head, tolerance=tol, confidence=confidence,
                                            paired=paired, decide_on=forced.get(head.name)))

    return decide


def outcomes(verdicts: Sequence[Verdict], benchmark: str) -> list[MetricOutcome]:
    return [MetricOutcome.from_verdict(v, benchmark) for v in verdicts]


def measure_pair(item: Work, head_spec: BenchmarkSpec, ctx: Measuring, policy: SamplingPolicy, *,
                 base: Revision, head: Revision) -> Interleaved:
    """Measure base and head of ``item`` interleaved, and store both sides."""
    assert item.base_spec is not None
    ctx.say(f"{item.name}: measuring base and head interleaved ({policy.blocks} blocks A B B A)")
    out = measure_interleaved(item.base_spec, head_spec, decide=ctx.decide, policy=policy,
                              measure=ctx.measure, clock=ctx.clock,
                              on_block=block_progress(item.name, policy, ctx.say))
    info = out.to_dict()
    ctx.runs.add(base, out.base, info)
    ctx.runs.add(head, out.head, info)
    return out


def first_look(item: Work, head_spec: BenchmarkSpec, ctx: Measuring, policy: SamplingPolicy, *,
               base: Revision, head: Revision) -> None:
    """The first interleaved measurement of ``item``: its verdicts, or why there are none."""
    out = measure_pair(item, head_spec, ctx, policy, base=base, head=head)
    item.first = out
    item.blocks, item.seconds, item.stopped = out.blocks, out.seconds, out.stopped
    if out.stopped != FAILED:
        item.metrics = outcomes(out.verdicts, item.name)
    elif out.failed_side != BASE:
        item.fails_at_head(out.head.error)
    else:
        # Does head run at all? A benchmark new in head has nothing to compare with.
        spec = single_process(head_spec)
        check = ctx.measure(spec, time.monotonic() + spec.settings.timeout, _no_progress)
        if check.status is ResultStatus.OK:
            item.status = NEW
            item.notes.append(f"the base could not run it ({out.base.error}); nothing to "
                              "compare with: a new benchmark?")
        else:
            item.fails_at_head(check.error)


def cleared_by_stored(item: Work, head_spec: BenchmarkSpec, stored: StoredBase, ctx: Measuring, *,
                      head: Revision) -> bool:
    """Measure head alone against a stored base run; True when that clears every metric."""
    base_result = stored.result
    workers = (max(len(base_result.by_worker(m)) for m in base_result.metrics)
               if base_result.metrics else 1)
    spec = replace(head_spec, settings=replace(head_spec.settings, processes=max(workers, 2)))
    ctx.say(f"{item.name}: head against stored base run #{stored.run_id}")
    result = ctx.measure(spec, time.monotonic() + spec.settings.timeout, _no_progress)
    if result.status is not ResultStatus.OK:
        return False
    found = outcomes(ctx.decide(base_result, result), item.name)
    if not found or any(m.verdict not in ("unchanged", "improved") for m in found):
        ctx.say(f"{item.name}: not cleared by the stored base; measuring both, interleaved")
        return False
    ctx.runs.add(head, result, {"against_run": stored.run_id})
    item.metrics = found
    item.source = f"stored run #{stored.run_id}"
    item.stopped = "decided"
    return True


def block_progress(name: str, policy: SamplingPolicy, say: EventFunction
                   ) -> Callable[[int, int], None]:
    """Progress of the blocks, saying why the plan grows: the first look measures
    ``policy.blocks``; while a verdict is inconclusive more are added, up to the cost limit."""
    seen = {"planned": policy.blocks}

    def on_block(done: int, planned: int) -> None:
        if planned > seen["planned"]:
            say(f"{name}: still inconclusive after {seen['planned']} blocks: measuring "
                f"{planned - seen['planned']} more (at most {policy.max_blocks} blocks in all)")
            seen["planned"] = planned
        say(f"{name}: block {done} of {planned}")

    return on_block


def _no_progress(fraction: float) -> None:
    """A single measurement's progress: the gate says per block instead."""


__all__ = ["DecideFunction", "EventFunction", "Measuring", "Work", "block_progress",
           "cleared_by_stored", "first_look", "make_decide", "measure_pair", "outcomes"]
