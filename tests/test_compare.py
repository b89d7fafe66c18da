"""Known answers for the comparison and verdict engine, from generated samples.

Samples are lognormal values around 1 ms with a random offset per worker process (the noise
between processes) and independent noise per value, drawn from seeded numpy generators, so
every test is deterministic. The simulations check the targets the method is built for: at most
1% false alarms on A/A pairs, a 10% shift detected at least 95% of the time and a 5% shift at
least 80% when the data are not too noisy, and ``inconclusive`` (never a wrong verdict) when
they are.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from perfloop.analysis import stats
from perfloop.analysis.compare import Verdict, VerdictKind, compare_groups, compare_results
from perfloop.errors import UsageError
from perfloop.metrics import get_metric
from perfloop.records import BenchmarkResult, ResultStatus, Sample

pytestmark = pytest.mark.filterwarnings("error")   # no silent division by zero or NaN

WALL = get_metric("wall_time")
THROUGHPUT = get_metric("throughput")

# (worker offset sd, value sd) on the log scale, i.e. roughly coefficients of variation.
NOISY = (0.05, 0.10)      # values spread ~11%: CPU-bound Python on a shared machine
MODERATE = (0.02, 0.05)
TIGHT = (0.01, 0.03)


def groups(rng: np.random.Generator, workers: int, values: int, noise: tuple[float, float],
           shift: float = 0.0, center: float = 1e-3) -> list[list[float]]:
    """Per-worker values: ``center * (1 + shift)`` times a worker effect times value noise."""
    worker_sd, value_sd = noise
    return [list(center * (1.0 + shift) * np.exp(rng.normal(0.0, worker_sd)
                                                 + rng.normal(0.0, value_sd, values)))
            for _ in range(workers)]


def pair(seed: int, shift: float, noise: tuple[float, float] = MODERATE, workers: int = 10,
         values: int = 5) -> tuple[list[list[float]], list[list[float]]]:
    rng = np.random.default_rng(seed)
    return groups(rng, workers, values, noise), groups(rng, workers, values, noise, shift)


# --- known answers -----------------------------------------------------------------------------

def test_ten_percent_slowdown_is_regressed() -> None:
    v = compare_groups(*pair(1, 0.10), metric=WALL, benchmark="quote")
    assert v.verdict is VerdictKind.REGRESSED
    assert v.ci_low > 0.0 and v.ci_low <= 0.10 <= v.ci_high
    assert v.change == pytest.approx(0.10, abs=0.03)
    assert v.p_value < 0.01
    assert (v.benchmark, v.metric, v.unit, v.direction) == ("quote", "wall_time", "s", "lower")
    assert (v.base_workers, v.head_workers, v.base_n, v.head_n) == (10, 10, 50, 50)
    assert v.more_workers is None and v.test == "trimmed-t (workers)"


def test_ten_percent_speedup_is_improved() -> None:
    v = compare_groups(*pair(2, -0.10), metric=WALL)
    assert v.verdict is VerdictKind.IMPROVED
    assert v.ci_high < 0.0 and v.ci_low <= -0.10 <= v.ci_high


def test_change_is_relative_to_base_location() -> None:
    v = compare_groups(*pair(3, 0.10), metric=WALL)
    assert v.change == pytest.approx(v.head_location / v.base_location - 1.0)
    assert v.base_location == pytest.approx(1e-3, rel=0.05)


@pytest.mark.parametrize("seed", range(5))
def test_aa_pairs_are_not_regressed_or_improved(seed: int) -> None:
    v = compare_groups(*pair(100 + seed, 0.0), metric=WALL)
    assert v.verdict in (VerdictKind.UNCHANGED, VerdictKind.INCONCLUSIVE), v
    assert v.ci_low <= 0.0 <= v.ci_high


def test_noisy_small_sample_is_inconclusive_and_says_how_many_more_workers() -> None:
    rng = np.random.default_rng(4)
    base = groups(rng, 3, 5, (0.2, 0.5))
    head = groups(rng, 3, 5, (0.2, 0.5), shift=0.03)
    v = compare_groups(base, head, metric=WALL)
    assert v.verdict is VerdictKind.INCONCLUSIVE
    assert v.ci_low < 0.0 < v.ci_high
    assert v.more_workers is not None and v.more_workers > 0
    assert f"{v.more_workers} more workers" in v.note


def test_one_percent_shift_on_tight_data_is_unchanged() -> None:
    v = compare_groups(*pair(5, 0.01, noise=(0.003, 0.01)), metric=WALL)
    assert v.verdict is VerdictKind.UNCHANGED
    assert -0.05 < v.ci_low and v.ci_high < 0.05
    assert v.change == pytest.approx(0.01, abs=0.005)
    if v.ci_low > 0.0:
        assert v.note == "significant but within tolerance"


def test_throughput_lower_in_head_is_a_regression() -> None:
    base, head = pair(6, -0.10, noise=(0.02, 0.03))
    base = [[1000.0 * x / 1e-3 for x in g] for g in base]          # requests per second
    head = [[1000.0 * x / 1e-3 for x in g] for g in head]
    v = compare_groups(base, head, metric=THROUGHPUT)
    assert v.direction == "higher" and v.change < 0.0
    assert v.verdict is VerdictKind.REGRESSED
    up = compare_groups(head, base, metric=THROUGHPUT)
    assert up.change > 0.0 and up.verdict is VerdictKind.IMPROVED


def test_tolerance_decides_between_unchanged_and_regressed() -> None:
    base, head = pair(7, 0.03, noise=(0.002, 0.005))
    assert compare_groups(base, head, metric=WALL, tolerance=0.05).verdict is VerdictKind.UNCHANGED
    assert compare_groups(base, head, metric=WALL, tolerance=0.02).verdict is VerdictKind.REGRESSED


def test_a_single_slow_worker_is_set_aside() -> None:
    # One process of twelve ran twice as slow (a noisy neighbour): the trimmed location ignores
    # it and the 10% slowdown is still found (it must clear half the tolerance, not just zero).
    base, head = pair(8, 0.10, workers=12)
    base[3] = [2.0 * x for x in base[3]]
    v = compare_groups(base, head, metric=WALL)
    assert v.verdict is VerdictKind.REGRESSED
    assert v.change == pytest.approx(0.10, abs=0.04)


# --- simulations -------------------------------------------------------------------------------

def _verdicts(seeds: range, shift: float, noise: tuple[float, float], workers: int = 10
              ) -> tuple[Counter[VerdictKind], float]:
    counts: Counter[VerdictKind] = Counter()
    covered = 0
    for seed in seeds:
        v = compare_groups(*pair(seed, shift, noise, workers), metric=WALL)
        counts[v.verdict] += 1
        covered += v.ci_low <= shift <= v.ci_high
    return counts, covered / len(seeds)


def _rates(counts: Counter[VerdictKind], n: int) -> str:
    return ", ".join(f"{k.value} {counts[k] / n:.1%}" for k in VerdictKind)


def test_false_alarm_rate_on_aa_pairs_with_worker_effects() -> None:
    # 2000 pairs: with a true rate near 0.75%, a few hundred pairs could not tell it from 1%.
    seeds = range(10_000, 12_000)
    counts, coverage = _verdicts(seeds, 0.0, NOISY)
    alarms = (counts[VerdictKind.REGRESSED] + counts[VerdictKind.IMPROVED]) / len(seeds)
    assert alarms <= 0.01, f"false alarms {alarms:.2%} over {len(seeds)} A/A pairs ({_rates(counts, len(seeds))})"
    # The interval must keep its promise with worker effects: near 99% coverage, not 95%.
    assert coverage >= 0.98, f"99% interval covered 0 in only {coverage:.1%} of A/A pairs"


def test_false_alarm_rate_with_unequal_worker_counts() -> None:
    # 3 workers against 10: the small side's spread is poorly known, and plain Welch degrees of
    # freedom would let its chance low values through (about 1.7% false alarms).
    seeds = range(70_000, 71_000)
    counts: Counter[VerdictKind] = Counter()
    for seed in seeds:
        rng = np.random.default_rng(seed)
        v = compare_groups(groups(rng, 3, 5, NOISY), groups(rng, 10, 5, NOISY), metric=WALL)
        counts[v.verdict] += 1
    alarms = (counts[VerdictKind.REGRESSED] + counts[VerdictKind.IMPROVED]) / len(seeds)
    assert alarms <= 0.01, f"false alarms {alarms:.2%} with 3 vs 10 workers ({_rates(counts, len(seeds))})"


def test_ten_percent_shift_is_detected() -> None:
    # A change must clear half the tolerance: 10 workers find it 84% of the time, 16 all but
    # always (adaptive sampling adds the workers).
    seeds = range(20_000, 20_200)
    counts, _ = _verdicts(seeds, 0.10, MODERATE, workers=16)
    detected = counts[VerdictKind.REGRESSED] / len(seeds)
    assert detected >= 0.95, f"10% slowdown detected in {detected:.1%} ({_rates(counts, len(seeds))})"


def test_five_percent_shift_is_detected_on_tight_data() -> None:
    seeds = range(30_000, 30_200)
    counts, _ = _verdicts(seeds, 0.05, TIGHT, workers=20)
    detected = counts[VerdictKind.REGRESSED] / len(seeds)
    assert detected >= 0.80, f"5% slowdown detected in {detected:.1%} ({_rates(counts, len(seeds))})"


def test_noisy_data_give_inconclusive_not_wrong_answers() -> None:
    # At ~11% spread, 10 workers cannot resolve 10% at 99% confidence every time: what is not
    # detected must be reported as inconclusive, never as unchanged or improved.
    seeds = range(40_000, 40_150)
    counts, _ = _verdicts(seeds, 0.10, NOISY)
    assert counts[VerdictKind.IMPROVED] == 0 and counts[VerdictKind.UNCHANGED] == 0, _rates(counts, len(seeds))
    assert counts[VerdictKind.REGRESSED] + counts[VerdictKind.INCONCLUSIVE] == len(seeds)


def test_worker_effects_widen_the_interval() -> None:
    # Strong per-worker offsets: the same values treated as independent (each its own worker)
    # would claim a far narrower interval than the 10 processes support.
    base, head = pair(9, 0.0, noise=(0.10, 0.02))
    grouped = compare_groups(base, head, metric=WALL)
    flat = compare_groups([[x] for g in base for x in g], [[x] for g in head for x in g], metric=WALL)
    assert (grouped.ci_high - grouped.ci_low) > 2.0 * (flat.ci_high - flat.ci_low)


def test_more_workers_is_roughly_what_decides() -> None:
    # Re-measuring with the suggested number of extra workers decides most inconclusive cases.
    decided = tried = 0
    for seed in range(50_000, 50_060):
        v = compare_groups(*pair(seed, 0.05), metric=WALL)
        if v.verdict is not VerdictKind.INCONCLUSIVE or v.more_workers is None:
            continue
        tried += 1
        again = compare_groups(*pair(seed + 1_000_000, 0.05, workers=10 + v.more_workers), metric=WALL)
        decided += again.verdict is not VerdictKind.INCONCLUSIVE
    assert tried >= 10
    # The estimate is a median-style guess: about half decide, the rest come close.
    assert decided / tried >= 0.5, f"{decided} of {tried} decided with the suggested workers"


# --- results -----------------------------------------------------------------------------------

def _result(name: str, per_worker: dict[str, list[list[float]]], *, warmup: float | None = None,
            **kwargs: object) -> BenchmarkResult:
    samples = []
    for metric, workers in per_worker.items():
        for w, values in enumerate(workers):
            if warmup is not None:
                samples.append(Sample(metric, warmup, worker=w, index=0, warmup=True))
            samples.extend(Sample(metric, x, worker=w, index=i + 1) for i, x in enumerate(values))
    return BenchmarkResult(name=name, kind="callable", samples=tuple(samples), **kwargs)


def test_compare_results_per_metric_ignoring_warmup_and_one_sided_metrics() -> None:
    base_t, head_t = pair(11, 0.10)
    base_c, head_c = pair(12, 0.0, noise=(0.002, 0.005))
    # Warmup values 50x larger would swamp both sides if they were counted.
    base = _result("quote", {"wall_time": base_t, "cpu_time": base_c, "peak_rss": [[1e6] * 3] * 4},
                   warmup=0.05, status=ResultStatus.OK)
    head = _result("quote", {"wall_time": head_t, "cpu_time": head_c}, warmup=5e-6, status="ok")
    verdicts = compare_results(base, head)
    assert [v.metric for v in verdicts] == ["wall_time", "cpu_time"]
    wall, cpu = verdicts
    assert wall.verdict is VerdictKind.REGRESSED and wall.benchmark == "quote"
    assert wall.change == pytest.approx(0.10, abs=0.03)
    assert cpu.verdict is VerdictKind.UNCHANGED
    assert wall.base_n == 50 and wall.base_workers == 10
    only = compare_results(base, head, metrics=["cpu_time", "peak_rss", "nope"])
    assert [v.metric for v in only] == ["cpu_time"]


def test_compare_results_custom_metric_direction_and_tolerance() -> None:
    base_g, head_g = pair(13, -0.10, noise=(0.01, 0.02))
    base = _result("cache", {"hits_per_s": base_g}, status="ok", units={"hits_per_s": "1/s"},
                   directions={"hits_per_s": "higher"})
    head = _result("cache", {"hits_per_s": head_g}, status="ok", units={"hits_per_s": "1/s"},
                   directions={"hits_per_s": "higher"}, extra={"tolerance": 0.2})
    (v,) = compare_results(base, head)
    assert (v.unit, v.direction) == ("1/s", "higher")
    assert v.tolerance == 0.2                      # from head's recorded tolerance
    assert v.verdict is VerdictKind.UNCHANGED and v.note == "significant but within tolerance"
    (strict,) = compare_results(base, head, tolerance=0.05, confidence=0.95)
    assert strict.tolerance == 0.05 and strict.confidence == 0.95
    assert strict.verdict is VerdictKind.REGRESSED  # higher is better and head is ~10% lower


def test_compare_results_notes_a_failed_side() -> None:
    base_g, head_g = pair(14, 0.0)
    base = _result("b", {"wall_time": base_g}, status="ok")
    head = _result("b", {"wall_time": head_g}, status="timeout", error="killed after 300 s")
    (v,) = compare_results(base, head)
    assert v.note.startswith("head result timeout")


# --- edge cases --------------------------------------------------------------------------------

def test_too_few_workers_and_values_is_inconclusive() -> None:
    v = compare_groups([[1.0], [1.1]], [[1.2], [1.3]], metric=WALL)
    assert v.verdict is VerdictKind.INCONCLUSIVE
    assert "too few" in v.note and v.more_workers >= 1 and v.p_value == 1.0
    assert math.isnan(v.ci_low) and math.isnan(v.ci_high)
    # the undefined interval goes out as JSON null, which strict JSON allows (NaN it does not)
    data = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    assert data["ci_low"] is None and data["ci_high"] is None and data["verdict"] == "inconclusive"
    one = compare_groups([[1.0, 1.1]], [[1.2, 1.3, 1.25]], metric=WALL)
    assert one.verdict is VerdictKind.INCONCLUSIVE and one.more_workers == 1
    empty = compare_groups([], [[1.0, 1.1, 1.2]], metric=WALL)
    assert empty.verdict is VerdictKind.INCONCLUSIVE and math.isnan(empty.base_location)


def test_one_worker_with_many_values_says_it_assumes_independence() -> None:
    rng = np.random.default_rng(15)
    base = [list(1e-3 * np.exp(rng.normal(0, 0.02, 20)))]
    head = [list(1.2e-3 * np.exp(rng.normal(0, 0.02, 20)))]
    v = compare_groups(base, head, metric=WALL)
    assert v.verdict is VerdictKind.REGRESSED
    assert "independent" in v.note and v.test == "trimmed-t (values, one worker)"
    assert (v.base_workers, v.base_n) == (1, 20)


def test_zero_error_rate_on_both_sides_is_unchanged() -> None:
    v = compare_groups([[0.0] * 3] * 5, [[0.0] * 3] * 5, metric=get_metric("error_rate"))
    assert v.verdict is VerdictKind.UNCHANGED
    assert (v.change, v.ci_low, v.ci_high, v.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_zero_base_uses_the_absolute_difference() -> None:
    rng = np.random.default_rng(16)
    head = [[0.10 + 0.01 * rng.standard_normal()] for _ in range(10)]
    v = compare_groups([[0.0]] * 10, head, metric=get_metric("error_rate"))
    assert "absolute" in v.note
    assert v.change == pytest.approx(v.head_location)       # head - 0, not a ratio
    assert v.verdict is VerdictKind.REGRESSED               # ~0.10 more errors > 0.05 tolerance


def test_identical_constant_data_is_unchanged_without_division_errors() -> None:
    v = compare_groups([[5.0] * 5] * 6, [[5.0] * 5] * 6, metric=WALL)
    assert v.verdict is VerdictKind.UNCHANGED and v.p_value == 1.0 and v.test == "exact (no spread)"
    slower = compare_groups([[5.0] * 5] * 6, [[5.5] * 5] * 6, metric=WALL)
    assert slower.verdict is VerdictKind.REGRESSED and slower.p_value == 0.0
    assert slower.change == pytest.approx(0.10) and slower.ci_low == slower.ci_high


def test_heavily_tied_instruction_counts() -> None:
    # Most workers agree to the instruction; the bootstrap has little to resample.
    base = [[1_000_000.0]] * 9 + [[1_000_050.0]]
    head = [[1_020_000.0]] * 8 + [[1_020_040.0], [1_019_990.0]]
    v = compare_groups(base, head, metric=get_metric("instructions"))
    assert v.verdict is VerdictKind.UNCHANGED and v.note.endswith("significant but within tolerance")
    assert v.test == "exact (no spread)"          # the odd worker out on each side is trimmed
    assert v.change == pytest.approx(0.02, abs=1e-4)


def test_negative_values_use_the_difference_scaled_by_the_base() -> None:
    custom = get_metric("balance", unit="EUR", direction="higher")
    rng = np.random.default_rng(17)
    base = [[-100.0 + rng.normal(0, 1)] for _ in range(8)]
    head = [[-120.0 + rng.normal(0, 1)] for _ in range(8)]
    v = compare_groups(base, head, metric=custom)
    assert "divided by the base" in v.note
    assert v.change == pytest.approx(-0.2, abs=0.02)   # (head - base) / |base|
    assert v.verdict is VerdictKind.REGRESSED          # lower is worse for this metric


# --- contract ----------------------------------------------------------------------------------

def test_same_input_same_verdict_and_mapping_equals_sequence() -> None:
    base, head = pair(18, 0.04, noise=NOISY)
    first = compare_groups(base, head, metric=WALL)
    assert compare_groups(base, head, metric=WALL) == first
    as_map = compare_groups({7 + i: g for i, g in enumerate(base)}, dict(enumerate(head)), metric=WALL)
    assert as_map == first


def test_no_resamples_is_the_t_interval_which_the_bootstrap_only_widens() -> None:
    # a 10% slowdown the t interval alone decides; the bootstrap-t never narrows an interval
    base, head = pair(18, 0.10)
    t_only = compare_groups(base, head, metric=WALL, resamples=0)
    checked = compare_groups(base, head, metric=WALL)
    assert t_only.verdict is checked.verdict is VerdictKind.REGRESSED
    assert t_only.change == checked.change
    assert checked.ci_low <= t_only.ci_low < t_only.ci_high <= checked.ci_high


@pytest.mark.parametrize("seed", range(12))
def test_p_value_agrees_with_the_interval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base, head = pair(60_000 + seed, float(rng.uniform(-0.12, 0.12)), noise=NOISY,
                      workers=int(rng.integers(3, 25)))
    for confidence in (0.9, 0.95, 0.99):
        v = compare_groups(base, head, metric=WALL, confidence=confidence)
        excludes_zero = v.ci_low > 0.0 or v.ci_high < 0.0
        assert excludes_zero == (v.p_value < 1.0 - confidence), v


def test_to_dict_is_json_ready() -> None:
    v = compare_groups(*pair(19, 0.10), metric=WALL)
    d = v.to_dict()
    assert d["verdict"] == "regressed" and d["change"] == v.change and d["more_workers"] is None
    assert set(d) == {f for f in Verdict.__dataclass_fields__}
    json.dumps(d, allow_nan=False)


@pytest.mark.parametrize("kwargs", [{"confidence": 99}, {"confidence": 0.0}, {"tolerance": 5},
                                    {"tolerance": 0.0}, {"resamples": -1}])
def test_bad_settings_are_usage_errors(kwargs: dict) -> None:
    with pytest.raises(UsageError):
        compare_groups([[1.0, 1.1]] * 3, [[1.0, 1.1]] * 3, metric=WALL, **kwargs)


def test_bad_groups_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="one sequence of values per worker"):
        compare_groups([1.0, 1.1, 1.2], [[1.0]], metric=WALL)
    with pytest.raises(UsageError, match="finite"):
        compare_groups([[1.0, float("nan")]] * 3, [[1.0, 1.1]] * 3, metric=WALL)


# --- numerical core ----------------------------------------------------------------------------

def test_trimmed_mean_and_yuen_variance_known_answers() -> None:
    x = np.array([9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 100.0])
    # 10% of 10 units: drop 1 at each end -> mean of 2..9
    assert stats.trimmed_mean(x) == pytest.approx(5.5)
    # winsorised: [2,2,3,...,9,9]; variance of the trimmed mean = (n-1) s_w^2 / (h (h-1))
    w = np.array([2.0, 2, 3, 4, 5, 6, 7, 8, 9, 9])
    assert stats.yuen_variance(x) == pytest.approx(9 * w.var(ddof=1) / (8 * 7))
    # below 10 units nothing is trimmed: the textbook s^2 / n
    y = np.array([1.0, 2.0, 4.0, 8.0])
    assert stats.yuen_variance(y) == pytest.approx(y.var(ddof=1) / 4)
    assert stats.welch_df(1.0, 10, 1.0, 10) == pytest.approx(18.0)
    # equal counts: the cap never binds; unequal: it does when the small side looks quiet
    assert stats.interval_df(0.3, 10, 0.1, 10) == stats.welch_df(0.3, 10, 0.1, 10)
    assert stats.interval_df(0.01, 3, 0.1, 10) < stats.welch_df(0.01, 3, 0.1, 10)


def test_bootstrap_weights_reproduce_direct_resampling() -> None:
    units = np.sort(np.random.default_rng(20).lognormal(0, 0.1, 12))
    trimmed, winsorised = stats._resample_weights(12, 50, 0, 0)
    rng = np.random.default_rng(np.random.SeedSequence([0, 0, 12]))
    idx = np.sort(rng.integers(0, 12, size=(50, 12)), axis=1)
    direct = np.array([stats.trimmed_mean(units[row]) for row in idx])
    np.testing.assert_allclose(trimmed @ units, direct)
    var = np.array([stats.yuen_variance(units[row]) for row in idx])
    est, boot_var = stats.bootstrap_side(units, stats.LINEAR, 50, 0, 0)
    np.testing.assert_allclose(est, direct)
    np.testing.assert_allclose(boot_var, var, atol=1e-15)


def test_units_to_decide_reaches_the_target() -> None:
    iv = stats.compare_units(np.linspace(0.9, 1.1, 10), np.linspace(0.92, 1.12, 10),
                             confidence=0.99, resamples=0, seed=0)
    target = (iv.high - iv.low) / 2 / 3
    k = stats.units_to_decide(iv, target_half_width=target, confidence=0.99, limit=1000)
    assert k is not None and k > 0
    assert stats.units_to_decide(iv, target_half_width=target / 1000, confidence=0.99, limit=1000) is None
