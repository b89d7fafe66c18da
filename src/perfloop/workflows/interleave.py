"""Balanced interleaving of two versions of a benchmark, sampled adaptively under a cost limit.

On a shared machine two runs of the same code one after the other differ by 10% and more, and
the second of two alternating processes runs slower on average (an order effect). Measuring
base (A) and head (B) in balanced blocks ``A B B A`` on the same machine makes slow drift and
order hit both sides alike, so what is left between them is the code (see "What noise does to
verdicts" in docs/statistics.md).

One *call* measures one side in one fresh worker process (``processes = 1``): one worker of a
callable, one run of a command, one load period of an HTTP target (its server started for that
side and stopped after). Calls are merged per side with their workers renumbered, so the
statistics see ``2 * blocks`` independent workers per side.

Adaptive sampling: after ``policy.blocks`` blocks the verdicts are computed; while any is
``inconclusive`` more blocks are added, until every verdict is decided or the cost limit is
reached (``policy.max_blocks`` blocks, or ``policy.max_seconds`` for the benchmark), or the
comparison says it would need more workers than the limit allows. What is still undecided
then stays ``inconclusive``: a guess would be worse than saying so.

Pairing: the four calls of a block run with one ``PYTHONHASHSEED``, a fresh one per block
(unless the benchmark sets its own), so that the two sides of a block differ only by the code;
the comparison then analyses the block ratios (:mod:`perfloop.analysis.paired`). Verdicts with
``role == "context"`` (a time metric shown beside the one that decides) do not keep sampling
going. After the first block the verdicts are looked at once: counts with no spread at all
(``instructions``) are exact after one block per side, and stop there.

The measure and decide functions are injected, so the order and the stopping rule are tested
without timing anything.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from ..config import BenchmarkSpec
from ..measure.runner import MeasureFunction, measure_spec
from ..records import BenchmarkResult, ResultStatus, Sample
# The policy lives in a light module of its own: the gate command's --help reads its defaults.
from .sampling_policy import HOPELESS_FACTOR, SamplingPolicy

BASE, HEAD = "base", "head"
#: One balanced block. Repeated, A B B A A B B A: each side is first as often as it is second.
BLOCK = (BASE, HEAD, HEAD, BASE)

#: ``decide(base, head) -> verdicts``: objects with a ``verdict`` (``inconclusive`` keeps the
#: sampling going) and optionally ``more_workers`` (extra workers per side it would take).
DecideFunction = Callable[[BenchmarkResult, BenchmarkResult], Sequence[Any]]

# Why the sampling stopped.
DECIDED = "decided"
MAX_BLOCKS = "max_blocks"
MAX_SECONDS = "max_seconds"
HOPELESS = "hopeless"          # the comparison needs more workers than the limit allows
#: Workers per side in one block (each call is one single-process worker).
WORKERS_PER_BLOCK = 2
#: Seeds PYTHONHASHSEED takes (its documented range).
_MAX_HASH_SEED = 4294967295
FAILED = "failed"              # a side failed to measure


@dataclass(frozen=True)
class Interleaved:
    """Both sides of one benchmark measured in balanced blocks, and the verdicts on them."""

    base: BenchmarkResult
    head: BenchmarkResult
    verdicts: tuple[Any, ...]
    blocks: int                    # complete blocks measured
    seconds: float
    stopped: str                   # DECIDED, MAX_BLOCKS, MAX_SECONDS, HOPELESS or FAILED
    order: tuple[str, ...]         # the sides in the order they were measured
    failed_side: str | None = None

    @property
    def workers(self) -> int:
        """Workers per side."""
        return 2 * self.blocks

    def to_dict(self) -> dict[str, Any]:
        return {"blocks": self.blocks, "workers_per_side": self.workers, "seconds": self.seconds,
                "stopped": self.stopped, "failed_side": self.failed_side}


def kind_of(verdict: Any) -> str:
    """A verdict's kind as a plain string, whether it is an enum or a string."""
    kind = getattr(verdict, "verdict", verdict)
    return str(getattr(kind, "value", kind))


def single_process(spec: BenchmarkSpec) -> BenchmarkSpec:
    """``spec`` measured in one worker process (one run, one load period) per call."""
    return replace(spec, settings=replace(spec.settings, processes=1))


class _Side:
    """The merged measurement of one side, with workers renumbered across calls."""

    def __init__(self, spec: BenchmarkSpec) -> None:
        self.spec = spec
        self.samples: list[Sample] = []
        self.next_worker = 0
        self.first: BenchmarkResult | None = None
        self.warnings: dict[str, None] = {}
        self.duration = 0.0
        self.failure: BenchmarkResult | None = None
        self.calls = 0

    def add(self, result: BenchmarkResult) -> None:
        self.calls += 1
        self.first = self.first or result
        mapping: dict[int, int] = {}
        for s in result.samples:
            if s.worker not in mapping:
                mapping[s.worker] = self.next_worker + len(mapping)
            self.samples.append(replace(s, worker=mapping[s.worker]))
        self.next_worker += max(len(mapping), 1)
        for w in result.warnings:
            self.warnings[w] = None
        self.duration += result.duration
        if result.status is not ResultStatus.OK:
            self.failure = result

    def result(self, blocks: int) -> BenchmarkResult:
        first = self.first
        extra: dict[str, Any] = {"interleaved": {"blocks": blocks, "calls": self.calls,
                                                 "order": "ABBA",
                                                 "workers_per_block": WORKERS_PER_BLOCK}}
        if first is not None:
            extra = {**first.extra, **extra}
        fields: dict[str, Any] = {}
        if first is not None:
            fields = {"units": first.units, "directions": first.directions}
        if self.failure is not None:
            fields.update(status=self.failure.status, error=self.failure.error,
                          stderr_tail=self.failure.stderr_tail)
        else:
            fields["status"] = ResultStatus.OK
        return BenchmarkResult(name=self.spec.name, kind=self.spec.kind, samples=tuple(self.samples),
                               params=self.spec.params, warnings=tuple(self.warnings),
                               duration=self.duration, extra=extra, **fields)


def with_hash_seed(spec: BenchmarkSpec, seed: int) -> BenchmarkSpec:
    """``spec`` run with ``PYTHONHASHSEED=seed``, unless the benchmark sets its own."""
    if "PYTHONHASHSEED" in spec.env:
        return spec
    return replace(spec, env={**spec.env, "PYTHONHASHSEED": str(seed)})


#: Verdicts that call a change. One is believed only on ``change_blocks`` blocks: seen in an
#: A/A gate on a busy machine, 4 blocks called a benchmark 30% faster (a burst of other work
#: that happened to fall on one side of every block); an ``unchanged`` needs no such care.
CHANGES = ("regressed", "improved")


def _deciding(verdicts: Sequence[Any]) -> list[Any]:
    return [v for v in verdicts if getattr(v, "role", "decides") != "context"]


def _exact(verdict: Any) -> bool:
    return str(getattr(verdict, "test", "")).startswith("exact")


def measure_interleaved(base_spec: BenchmarkSpec, head_spec: BenchmarkSpec, *,
                        decide: DecideFunction, policy: SamplingPolicy | None = None,
                        measure: MeasureFunction | None = None,
                        clock: Callable[[], float] = time.monotonic,
                        on_block: Callable[[int, int], None] | None = None,
                        seeds: random.Random | None = None) -> Interleaved:
    """Measure base and head in balanced ``A B B A`` blocks until decided or out of budget.

    ``base_spec`` and ``head_spec`` are the same benchmark rooted in the two versions of the
    project. ``seeds`` draws each block's hash seed (a fresh system-random one by default). ``on_block(done, planned)`` is called after each block. A side that fails stops the
    measurement (``stopped == FAILED``, ``failed_side`` says which); KeyboardInterrupt
    propagates from the measure function.
    """
    policy = policy or SamplingPolicy()
    measure = measure or measure_spec
    sides = {BASE: _Side(base_spec), HEAD: _Side(head_spec)}
    specs = {BASE: single_process(base_spec), HEAD: single_process(head_spec)}
    order: list[str] = []
    started = clock()
    blocks = 0
    planned = policy.blocks
    verdicts: tuple[Any, ...] = ()
    seeds = seeds or random.SystemRandom()
    looked_early = False

    def finish(stopped: str, failed_side: str | None = None) -> Interleaved:
        return Interleaved(base=sides[BASE].result(blocks), head=sides[HEAD].result(blocks),
                           verdicts=verdicts, blocks=blocks, seconds=clock() - started,
                           stopped=stopped, order=tuple(order), failed_side=failed_side)

    while True:
        while blocks < planned:
            seed = seeds.randint(0, _MAX_HASH_SEED)
            for side in BLOCK:
                spec = with_hash_seed(specs[side], seed)
                result = measure(spec, clock() + spec.settings.timeout, lambda fraction: None)
                order.append(side)
                sides[side].add(result)
                if result.status is not ResultStatus.OK:
                    return finish(FAILED, side)
            blocks += 1
            if on_block is not None:
                on_block(blocks, planned)
            if blocks == 1 and planned > 1 and not looked_early:
                # One look after the first block: exact counts need nothing more.
                looked_early = True
                verdicts = tuple(decide(sides[BASE].result(blocks), sides[HEAD].result(blocks)))
                deciding = _deciding(verdicts)
                if deciding and all(_exact(v) and kind_of(v) != "inconclusive" for v in deciding):
                    return finish(DECIDED)
        verdicts = tuple(decide(sides[BASE].result(blocks), sides[HEAD].result(blocks)))
        undecided = [v for v in _deciding(verdicts) if kind_of(v) == "inconclusive"
                     or (kind_of(v) in CHANGES and not _exact(v)
                         and blocks < min(policy.change_blocks, policy.max_blocks))]
        if not undecided:
            return finish(DECIDED)
        if blocks >= policy.max_blocks:
            return finish(MAX_BLOCKS)
        elapsed = clock() - started
        per_block = elapsed / blocks
        room = policy.max_blocks - blocks
        # Extra workers per side each undecided verdict says it needs (None: no estimate).
        needs = [getattr(v, "more_workers", None) for v in undecided]
        known = [n for n in needs if isinstance(n, int) and n > 0]
        planned_all = bool(needs) and len(known) == len(needs)
        if (planned_all and blocks >= policy.patience
                and elapsed >= policy.hopeless_after * policy.max_seconds
                and min(known) > HOPELESS_FACTOR * WORKERS_PER_BLOCK * room):
            return finish(HOPELESS)
        add = math.ceil(max(known) / 2) if planned_all else policy.step
        # A plan made from few blocks is a rough one: grow by half of what is measured at most,
        # and look again, rather than jump to the limit on an early estimate.
        add = max(1, min(add, room, max(policy.step, math.ceil(blocks / 2))))
        # Do not start blocks the time limit cannot pay for: stop before, not after, it.
        affordable = int((policy.max_seconds - elapsed) // per_block) if per_block > 0 else add
        if affordable < 1:
            return finish(MAX_SECONDS)
        planned = blocks + min(add, affordable)


__all__ = ["BASE", "BLOCK", "WORKERS_PER_BLOCK", "with_hash_seed", "DECIDED", "DecideFunction", "FAILED", "HEAD", "HOPELESS", "Interleaved",
           "MAX_BLOCKS", "MAX_SECONDS", "SamplingPolicy", "kind_of", "measure_interleaved",
           "single_process"]
