"""Balanced interleaving and adaptive stopping, with an injected measure function and clock.

Nothing here is timed: the fake measure function returns known values and advances a fake
clock, and the fake decide function says when the verdicts are decided.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from perfloop.config import BenchmarkSpec, Settings
from perfloop.records import BenchmarkResult, ResultStatus, Sample
from perfloop.workflows.interleave import (BASE, DECIDED, FAILED, HEAD, HOPELESS, MAX_BLOCKS,
                                           MAX_SECONDS, SamplingPolicy, measure_interleaved)


def spec(root: str) -> BenchmarkSpec:
    return BenchmarkSpec(name="toy", base_name="toy", kind="callable",
                         settings=Settings(processes=10, values=3), metrics=("cost",),
                         callable="toymod:work", root=root,
                         custom_metrics={"cost": ("units", "lower")})


class FakeTarget:
    """Measures 'cost' = 100 on base, 120 on head; each call takes ``seconds`` of fake time."""

    def __init__(self, seconds: float = 1.0, fail_on: tuple[str, int] | None = None) -> None:
        self.now = 0.0
        self.seconds = seconds
        self.calls: list[tuple[str, int]] = []
        self.fail_on = fail_on

    def clock(self) -> float:
        return self.now

    def measure(self, s: BenchmarkSpec, deadline, on_progress) -> BenchmarkResult:
        assert s.settings.processes == 1, "every call is one worker process"
        side = BASE if s.root == "/base" else HEAD
        self.calls.append((side, s.settings.processes))
        self.now += self.seconds
        value = 100.0 if side == BASE else 120.0
        samples = [Sample("cost", value, worker=0, index=0, warmup=True)]
        samples += [Sample("cost", value, worker=0, index=i) for i in range(1, 4)]
        n = sum(1 for c in self.calls if c[0] == side)
        if self.fail_on == (side, n):
            return BenchmarkResult(name=s.name, kind=s.kind, status=ResultStatus.FAILED,
                                   samples=tuple(samples[:2]), error="boom", stderr_tail="Trace")
        return BenchmarkResult(name=s.name, kind=s.kind, status=ResultStatus.OK, samples=tuple(samples),
                               units={"cost": "units"}, directions={"cost": "lower"}, duration=self.seconds)


@dataclass
class FakeVerdict:
    verdict: str
    more_workers: int | None = None


def decided_at(workers: int, more: int | None = None):
    """Inconclusive until each side has ``workers`` workers; then unchanged."""
    seen: list[int] = []

    def decide(base: BenchmarkResult, head: BenchmarkResult):
        n = len(base.by_worker("cost"))
        assert n == len(head.by_worker("cost"))
        seen.append(n)
        if n >= workers:
            return [FakeVerdict("unchanged")]
        return [FakeVerdict("inconclusive", more)]

    decide.seen = seen  # type: ignore[attr-defined]
    return decide


def test_blocks_are_balanced_abba() -> None:
    target = FakeTarget()
    out = measure_interleaved(spec("/base"), spec("/head"), decide=decided_at(0),
                              policy=SamplingPolicy(blocks=3), measure=target.measure, clock=target.clock)
    assert out.order == ("base", "head", "head", "base") * 3
    assert [c[0] for c in target.calls] == list(out.order)
    assert out.stopped == DECIDED and out.blocks == 3 and out.workers == 6
    # each side: first as often as second within every block
    for i in range(0, len(out.order), 4):
        block = out.order[i:i + 4]
        assert block.count("base") == block.count("head") == 2


def test_workers_renumbered_per_side_and_values_kept() -> None:
    target = FakeTarget()
    out = measure_interleaved(spec("/base"), spec("/head"), decide=decided_at(0),
                              policy=SamplingPolicy(blocks=2), measure=target.measure, clock=target.clock)
    assert sorted(out.base.by_worker("cost")) == [0, 1, 2, 3]
    assert sorted(out.head.by_worker("cost")) == [0, 1, 2, 3]
    assert set(out.base.values("cost")) == {100.0} and set(out.head.values("cost")) == {120.0}
    assert len(out.base.values("cost", include_warmup=True)) == 16   # warmups kept, marked
    assert out.base.status is ResultStatus.OK and out.base.units["cost"] == "units"
    assert out.head.extra["interleaved"]["blocks"] == 2


def test_adaptive_sampling_adds_blocks_until_decided() -> None:
    target = FakeTarget()
    decide = decided_at(12)
    out = measure_interleaved(spec("/base"), spec("/head"), decide=decide,
                              policy=SamplingPolicy(blocks=4, max_blocks=16, step=1),
                              measure=target.measure, clock=target.clock)
    assert out.stopped == DECIDED
    assert out.blocks == 6 and decide.seen == [2, 8, 10, 12]   # one early look at 1 block
    assert len(out.order) == 24


def test_more_workers_estimate_jumps_ahead_by_half_of_what_is_measured_at_most() -> None:
    target = FakeTarget()
    decide = decided_at(18, more=6)    # "6 more workers per side": 3 more blocks
    out = measure_interleaved(spec("/base"), spec("/head"), decide=decide,
                              policy=SamplingPolicy(blocks=4, max_blocks=16),
                              measure=target.measure, clock=target.clock)
    # 4 blocks measured: at most 2 more (a plan from 4 blocks is rough); from 6 on, all 3
    assert decide.seen == [2, 8, 12, 18]
    assert out.stopped == DECIDED and out.blocks == 9


def test_a_change_is_called_on_eight_blocks_at_least() -> None:
    # "regressed" from 2 blocks on: sampling goes on to 8 blocks (2 at a time) before it stops
    seen: list[int] = []

    def decide(base: BenchmarkResult, head: BenchmarkResult):
        seen.append(len(base.by_worker("cost")))
        return [FakeVerdict("regressed")]

    target = FakeTarget()
    out = measure_interleaved(spec("/base"), spec("/head"), decide=decide,
                              policy=SamplingPolicy(blocks=2, max_blocks=48),
                              measure=target.measure, clock=target.clock)
    assert out.stopped == DECIDED and out.blocks == 8 and seen == [2, 4, 8, 12, 16]
    # a limit below 8 blocks is the limit
    short = measure_interleaved(spec("/base"), spec("/head"), decide=decide,
                                policy=SamplingPolicy(blocks=2, max_blocks=3),
                                measure=FakeTarget().measure, clock=FakeTarget().clock)
    assert short.stopped == DECIDED and short.blocks == 3


def test_stops_at_block_limit_inconclusive() -> None:
    target = FakeTarget()
    out = measure_interleaved(spec("/base"), spec("/head"), decide=decided_at(10_000),
                              policy=SamplingPolicy(blocks=2, max_blocks=5, step=2),
                              measure=target.measure, clock=target.clock)
    assert out.stopped == MAX_BLOCKS and out.blocks == 5
    assert [v.verdict for v in out.verdicts] == ["inconclusive"]


def test_stops_before_exceeding_the_time_limit() -> None:
    target = FakeTarget(seconds=1.0)     # 4 s per block
    out = measure_interleaved(spec("/base"), spec("/head"), decide=decided_at(10_000),
                              policy=SamplingPolicy(blocks=2, max_blocks=100, max_seconds=18.0, step=1),
                              measure=target.measure, clock=target.clock)
    # 2 blocks = 8 s, then one at a time while another block still fits: 12, 16; 20 would not
    assert out.stopped == MAX_SECONDS and out.blocks == 4
    assert target.now == 16.0


def test_hopeless_comparison_stops_once_patience_is_spent() -> None:
    target = FakeTarget()
    out = measure_interleaved(spec("/base"), spec("/head"), decide=decided_at(10_000, more=500),
                              policy=SamplingPolicy(blocks=4, max_blocks=16, patience=4, max_seconds=30.0),
                              measure=target.measure, clock=target.clock)
    # 4 blocks = 16 s: patience and half the 30 s limit are both spent
    assert out.stopped == HOPELESS and out.blocks == 4


def test_no_hopeless_stop_before_patience_blocks() -> None:
    # A plan of 1000 more workers from 4 blocks is not believed: sampling goes on to 12 blocks
    # (4, 6, 9, 14: half of what is measured at most each time) before it may give up, and
    # then gives up because 1000 workers are more than 8 times the 34 blocks left (and the
    # 56 s spent are more than half the 100 s limit).
    target = FakeTarget()
    decide = decided_at(10_000, more=1000)
    out = measure_interleaved(spec("/base"), spec("/head"), decide=decide,
                              policy=SamplingPolicy(blocks=4, max_blocks=48, max_seconds=100.0),
                              measure=target.measure, clock=target.clock)
    assert decide.seen == [2, 8, 12, 18, 28]
    assert out.stopped == HOPELESS and out.blocks == 14


def test_no_hopeless_stop_before_half_the_time_limit() -> None:
    # The same plan with a 300 s limit: at 14 blocks only 56 s are spent, so sampling goes on
    # (21, 32, 48 blocks) and gives up at 48 blocks, 192 s, with 52 blocks of room still left.
    target = FakeTarget()
    decide = decided_at(10_000, more=1000)
    out = measure_interleaved(spec("/base"), spec("/head"), decide=decide,
                              policy=SamplingPolicy(blocks=4, max_blocks=100, max_seconds=300.0),
                              measure=target.measure, clock=target.clock)
    assert out.stopped == HOPELESS and out.blocks == 48
    assert target.now == 192.0


def test_a_plan_within_reach_is_never_hopeless() -> None:
    # 40 more workers per side = 20 blocks, with 34 blocks of room left: keep measuring.
    target = FakeTarget()
    out = measure_interleaved(spec("/base"), spec("/head"), decide=decided_at(10_000, more=40),
                              policy=SamplingPolicy(blocks=4, max_blocks=48, patience=4),
                              measure=target.measure, clock=target.clock)
    assert out.stopped == MAX_BLOCKS and out.blocks == 48


def test_a_failing_side_stops_and_is_named() -> None:
    target = FakeTarget(fail_on=(HEAD, 3))
    out = measure_interleaved(spec("/base"), spec("/head"), decide=decided_at(0),
                              policy=SamplingPolicy(blocks=4), measure=target.measure, clock=target.clock)
    assert out.stopped == FAILED and out.failed_side == HEAD
    assert out.head.status is ResultStatus.FAILED and out.head.error == "boom"
    assert out.base.status is ResultStatus.OK
    assert out.order == ("base", "head", "head", "base", "base", "head")


def test_policy_is_checked() -> None:
    with pytest.raises(ValueError):
        SamplingPolicy(blocks=4, max_blocks=2)
    with pytest.raises(ValueError):
        SamplingPolicy(blocks=0)
    with pytest.raises(ValueError):
        SamplingPolicy(patience=-1)
    with pytest.raises(ValueError, match="hopeless_after"):
        SamplingPolicy(hopeless_after=1.5)
