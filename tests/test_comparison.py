"""Run-level comparison: drift between two separately measured runs widens time verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perfloop.analysis.compare import VerdictKind, compare_groups
from perfloop.analysis.comparison import with_run_noise
from perfloop.metrics import get_metric


def groups(rng: np.random.Generator, level: float, *, workers: int = 10, values: int = 5,
           spread: float = 0.01) -> dict[int, list[float]]:
    """Tight data: every worker close to ``level`` (a quiet machine within one run)."""
    return {w: list(level * np.exp(rng.normal(0, spread, values))) for w in range(workers)}


def verdict(shift: float, metric: str = "wall_time", seed: int = 1):
    rng = np.random.default_rng(seed)
    return compare_groups(groups(rng, 1e-3), groups(rng, 1e-3 * (1 + shift)),
                          metric=get_metric(metric), benchmark="b")


def test_a_whole_run_shift_of_five_percent_is_no_longer_called_a_change():
    # As seen on a quiet machine: one run 5% faster than the other, all its workers alike.
    inside = verdict(-0.052)
    assert inside.verdict is VerdictKind.IMPROVED          # the interval within the runs is tight
    widened = with_run_noise(inside, 0.02)
    assert widened.verdict is VerdictKind.INCONCLUSIVE
    assert widened.ci_low < inside.ci_low and widened.ci_high > inside.ci_high
    assert widened.change == inside.change
    assert widened.more_workers is None and "perfloop gate" in widened.note
    assert "run-to-run drift 2.0%" in widened.test


def test_a_large_change_still_stands_out_of_the_drift():
    v = with_run_noise(verdict(0.20), 0.02)
    assert v.verdict is VerdictKind.REGRESSED and v.ci_low > 0


def test_the_widened_interval_covers_the_true_change_as_often_as_it_claims():
    # Known answer by construction: every run's level is off by a random machine state of 2%
    # sd and the workers within a run agree closely, so nearly all the error is drift. A 99%
    # interval must then contain the true change in about 99% of pairs: no less (too narrow)
    # and not all of them (too wide), whatever the true change is.
    rng = np.random.default_rng(3)
    pairs = 1000
    for true in (0.0, 0.03):
        covered = 0
        for _ in range(pairs):
            base = groups(rng, 1e-3 * math.exp(rng.normal(0, 0.02)), spread=0.001)
            head = groups(rng, 1e-3 * (1 + true) * math.exp(rng.normal(0, 0.02)), spread=0.001)
            v = with_run_noise(compare_groups(base, head, metric=get_metric("wall_time"),
                                              resamples=0), 0.02)
            covered += v.ci_low <= true <= v.ci_high
        # binomial sd of the coverage at 99% over 1000 pairs: 0.31 points
        assert 0.975 <= covered / pairs <= 0.998, (true, covered)


@pytest.mark.parametrize("metric", ["peak_rss", "instructions", "error_rate"])
def test_metrics_that_do_not_drift_with_the_machine_are_left_alone(metric):
    v = verdict(-0.052, metric)
    assert with_run_noise(v, 0.02) == v


def test_zero_run_noise_changes_nothing():
    v = verdict(-0.052)
    assert with_run_noise(v, 0.0) == v


def test_false_alarms_on_run_level_shifts_are_bounded():
    # 2000 simulated A/A pairs of separate runs: tight within each run, each run shifted by a
    # random machine state of 2% sd. Without the drift term over a tenth are called a change.
    rng = np.random.default_rng(7)
    raw = widened = 0
    for _ in range(2000):
        base = groups(rng, 1e-3 * math.exp(rng.normal(0, 0.02)))
        head = groups(rng, 1e-3 * math.exp(rng.normal(0, 0.02)))
        v = compare_groups(base, head, metric=get_metric("wall_time"), resamples=0)
        raw += v.verdict in (VerdictKind.REGRESSED, VerdictKind.IMPROVED)
        widened += with_run_noise(v, 0.02).verdict in (VerdictKind.REGRESSED, VerdictKind.IMPROVED)
    assert raw >= 200, f"{raw}/2000: the run-level shifts should fool the within-run interval"
    # a 99% interval: about 1% of A/A pairs fall outside it by chance, fewer once the tolerance
    # has its say; 1.3% leaves room for the sampling error of 2000 pairs (sd 0.22 points)
    assert widened <= 26, f"{widened}/2000 false alarms with the drift term"
