"""Paired analysis of A B B A blocks, against the unpaired analysis of all workers.

Seeded simulations with known answers. The model of one gate: per block a shared effect
(the machine's load at the time, and the block's hash seed) hits the four calls of the block
alike, a linear trend may run through the whole gate (drift), each worker adds its own
noise, and one block may be wild (a burst of load that hit the head side only).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from perfloop.analysis.compare import VerdictKind, compare_groups, compare_paired
from perfloop.analysis.paired import block_log_ratios, paired_interval
from perfloop.config import BenchmarkSpec, Settings
from perfloop.metrics import get_metric
from perfloop.records import BenchmarkResult, ResultStatus, Sample
from perfloop.workflows.interleave import DECIDED, HOPELESS, SamplingPolicy, measure_interleaved

CPU = get_metric("cpu_time")
WALL = get_metric("wall_time")
POSITIONS = (0, 1, 1, 0)      # A B B A: side of each call (0 base, 1 head)


def gate_sample(seed: int, change: float, *, blocks: int = 8, block_sd: float = 0.05,
                worker_sd: float = 0.01, drift: float = 0.0, wild: float = 0.0,
                values: int = 5) -> tuple[dict[int, list[float]], dict[int, list[float]]]:
    """One gate's base and head values, ``{worker: values}``, workers 2k and 2k+1 in block k.

    ``block_sd``: shared effect of a block (load, hash seed); ``drift``: total relative trend
    over the gate, call by call; ``wild``: one block (the second) whose head calls run this
    much slower.
    """
    rng = np.random.default_rng(seed)
    base: dict[int, list[float]] = {}
    head: dict[int, list[float]] = {}
    calls = 4 * blocks
    for k in range(blocks):
        shared = rng.normal(0.0, block_sd)
        for pos, side in enumerate(POSITIONS):
            call = 4 * k + pos
            level = 1e-3 * math.exp(shared + drift * call / calls + rng.normal(0.0, worker_sd))
            if side:
                level *= 1.0 + change
                if wild and k == 1:
                    level *= 1.0 + wild
            vals = list(level * np.exp(rng.normal(0.0, 0.003, values)))
            groups = head if side else base
            groups[2 * k + len([p for p in POSITIONS[:pos] if p == side])] = vals
    return base, head


def rates(change: float, n: int, seed0: int, **kw) -> tuple[Counter, Counter]:
    paired: Counter = Counter()
    unpaired: Counter = Counter()
    for seed in range(seed0, seed0 + n):
        base, head = gate_sample(seed, change, **kw)
        paired[compare_paired(base, head, metric=CPU).verdict] += 1
        unpaired[compare_groups(base, head, metric=CPU, resamples=400).verdict] += 1
    return paired, unpaired


def wrong(c: Counter) -> int:
    return c[VerdictKind.REGRESSED] + c[VerdictKind.IMPROVED]


def test_block_ratios_pair_the_workers_of_each_block() -> None:
    base = {0: [1.0], 1: [1.0], 2: [2.0], 3: [2.0]}
    head = {0: [1.1], 1: [1.1], 2: [2.2], 3: [2.2]}
    ratios, exact = block_log_ratios(base, head)
    assert ratios == pytest.approx([math.log(1.1)] * 2)
    assert not exact           # the workers differ between blocks
    iv = paired_interval(ratios, confidence=0.99)
    assert iv.estimate == pytest.approx(math.log(1.1)) and iv.se < 1e-12


def test_aa_false_alarms_at_or_below_nominal() -> None:
    paired, unpaired = rates(0.0, 400, 1_000)
    assert wrong(paired) <= 4, paired           # at most 1% of 400
    assert paired[VerdictKind.UNCHANGED] >= 0.9 * 400, paired


def test_aa_interval_covers_zero_at_its_confidence() -> None:
    # Coverage, not just the decision: the 99% interval of an A/A gate holds 0.
    missed = 0
    for seed in range(2_000, 2_400):
        v = compare_paired(*gate_sample(seed, 0.0, blocks=6), metric=CPU)
        missed += not (v.ci_low <= 0.0 <= v.ci_high)
    assert missed <= 8, f"{missed} of 400 intervals missed 0 (nominal 1%)"


def test_one_wild_block_does_not_raise_false_alarms() -> None:
    paired, _ = rates(0.0, 300, 3_000, wild=0.5)
    assert wrong(paired) <= 3, paired


def test_drift_inside_the_gate_cancels_in_the_blocks() -> None:
    # A 20% trend over the gate: A B B A keeps it off the block ratios.
    paired, unpaired = rates(0.0, 300, 4_000, drift=0.20)
    assert wrong(paired) <= 3, paired
    assert paired[VerdictKind.UNCHANGED] > unpaired[VerdictKind.UNCHANGED], (paired, unpaired)


def test_pairing_finds_five_percent_where_the_unpaired_analysis_cannot() -> None:
    # 5% block-to-block load noise, 1% between workers: the unpaired interval carries the load.
    paired, unpaired = rates(0.05, 200, 5_000)
    assert paired[VerdictKind.REGRESSED] >= 0.9 * 200, paired
    assert unpaired[VerdictKind.REGRESSED] < 0.5 * 200, unpaired


def test_two_percent_is_never_called_regressed() -> None:
    paired, _ = rates(0.02, 300, 6_000)
    assert paired[VerdictKind.REGRESSED] == 0, paired
    assert paired[VerdictKind.UNCHANGED] >= 0.9 * 300, paired


def test_ten_percent_is_found_at_the_first_look() -> None:
    # 4 blocks, the gate's first look: 99% or more (the rest go on sampling).
    paired, _ = rates(0.10, 200, 7_000, blocks=4)
    assert paired[VerdictKind.REGRESSED] >= 198, paired
    assert wrong(paired) == paired[VerdictKind.REGRESSED], paired


def test_zero_spread_counts_decide_on_one_block() -> None:
    base = {0: [1000.0] * 3, 1: [1000.0] * 3}
    head = {0: [1060.0] * 3, 1: [1060.0] * 3}
    v = compare_paired(base, head, metric=get_metric("instructions"))
    assert v.verdict is VerdictKind.REGRESSED and v.test.startswith("exact")
    assert v.change == pytest.approx(0.06)


def test_one_block_with_spread_is_inconclusive() -> None:
    base = {0: [1.0], 1: [1.02]}
    head = {0: [1.2], 1: [1.21]}
    v = compare_paired(base, head, metric=CPU)
    assert v.verdict is VerdictKind.INCONCLUSIVE and v.more_workers


# --- in the sampling loop ----------------------------------------------------------------------

def _spec(root: str, metrics: tuple[str, ...] = ("cpu_time",)) -> BenchmarkSpec:
    return BenchmarkSpec(name="toy", base_name="toy", kind="callable",
                         settings=Settings(processes=10, values=3), metrics=metrics,
                         callable="toymod:work", root=root)


class SimulatedGate:
    """Each call returns a value from a seeded model; the block's hash seed is recorded."""

    def __init__(self, seed: int, change: float, metric: str = "cpu_time", *,
                 wild_block: int | None = None, zero_spread: bool = False) -> None:
        self.rng = np.random.default_rng(seed)
        self.change, self.metric = change, metric
        self.wild_block, self.zero_spread = wild_block, zero_spread
        self.calls = 0
        self.now = 0.0
        self.seeds: list[str] = []
        self.shared = 0.0

    def clock(self) -> float:
        return self.now

    def measure(self, s: BenchmarkSpec, deadline, on_progress) -> BenchmarkResult:
        block, pos = divmod(self.calls, 4)
        self.calls += 1
        self.now += 1.0
        self.seeds.append(s.env.get("PYTHONHASHSEED", ""))
        if pos == 0:
            self.shared = self.rng.normal(0.0, 0.05)
        head = s.root == "/head"
        if self.zero_spread:
            value = 1e6 * (1.0 + self.change * head)
        else:
            value = 1e-3 * math.exp(self.shared + self.rng.normal(0.0, 0.01))
            value *= (1.0 + self.change * head) * (3.0 if head and block == self.wild_block else 1.0)
        samples = tuple(Sample(self.metric, value, worker=0, index=i) for i in range(3))
        return BenchmarkResult(name=s.name, kind=s.kind, status=ResultStatus.OK, samples=samples,
                               units={self.metric: "s"}, directions={self.metric: "lower"},
                               duration=1.0)


def _decide(base: BenchmarkResult, head: BenchmarkResult):
    from perfloop.analysis.compare import compare_results
    return compare_results(base, head, tolerance=0.05, paired=True)


def test_both_sides_of_a_block_share_a_fresh_hash_seed() -> None:
    sim = SimulatedGate(1, 0.0)
    measure_interleaved(_spec("/base"), _spec("/head"), decide=_decide, measure=sim.measure,
                        clock=sim.clock, policy=SamplingPolicy(blocks=3, max_blocks=3))
    blocks = [sim.seeds[i:i + 4] for i in range(0, len(sim.seeds), 4)]
    assert all(len(set(b)) == 1 and b[0].isdigit() for b in blocks), blocks
    assert len({b[0] for b in blocks}) == len(blocks)


def test_a_wild_block_does_not_end_sampling_as_hopeless() -> None:
    sim = SimulatedGate(2, 0.0, wild_block=1)
    out = measure_interleaved(_spec("/base"), _spec("/head"), decide=_decide, measure=sim.measure,
                              clock=sim.clock)
    assert out.stopped == DECIDED and out.stopped != HOPELESS, out.to_dict()
    assert [v.verdict.value for v in out.verdicts] == ["unchanged"]


def test_instructions_decide_after_one_block_per_side() -> None:
    sim = SimulatedGate(3, 0.06, "instructions", zero_spread=True)
    out = measure_interleaved(_spec("/base", ("instructions",)), _spec("/head", ("instructions",)),
                              decide=_decide, measure=sim.measure, clock=sim.clock)
    assert out.blocks == 1 and out.stopped == DECIDED
    assert out.verdicts[0].verdict is VerdictKind.REGRESSED
