"""Benjamini-Hochberg on p-values whose answer is worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from perfloop.analysis.fdr import bh_adjust, bh_reject, bh_threshold


def test_textbook_example() -> None:
    # m = 10, q = 0.05: thresholds k * 0.005. p(1..4) = .001 .008 .012 .014 are under
    # .005 .010 .015 .020; p(5) = .045 > .025, and no later p(k) is under k * .005.
    p = [0.045, 0.001, 0.60, 0.012, 0.30, 0.008, 0.20, 0.014, 0.70, 0.90]
    assert bh_reject(p, 0.05) == [False, True, False, True, False, True, False, True, False, False]
    assert bh_threshold(p, 0.05) == pytest.approx(0.014)


def test_step_up_rejects_below_a_later_passing_rank() -> None:
    # p(1) = .02 fails its own threshold (.05/3 = .0167) but p(2) = .03 passes .0333, so the
    # step-up procedure rejects both: the largest passing rank decides.
    assert bh_reject([0.02, 0.03, 0.9], 0.05) == [True, True, False]


def test_adjusted_values_by_hand() -> None:
    # m = 4: p * m / rank = .04, .04, .0533, .8, then the cumulative minimum from the top.
    adjusted = bh_adjust([0.01, 0.02, 0.04, 0.8])
    assert adjusted == pytest.approx([0.04, 0.04, 0.05333333, 0.8])
    # order of the input is kept
    assert bh_adjust([0.8, 0.01]) == pytest.approx([0.8, 0.02])


def test_noise_only_suite_raises_few_alarms() -> None:
    # 200 true null hypotheses: p-values uniform. Uncorrected at 0.05, about 10 alarms;
    # BH at q = 0.05 almost never raises any (FDR = FWER under the global null).
    rng = np.random.default_rng(7)
    alarms = [sum(bh_reject(list(rng.uniform(size=200)), 0.05)) for _ in range(50)]
    assert sum(a > 0 for a in alarms) <= 5
    uncorrected = [int((rng.uniform(size=200) < 0.05).sum()) for _ in range(50)]
    assert np.mean(uncorrected) > 5


def test_real_effects_survive_among_noise() -> None:
    rng = np.random.default_rng(11)
    p = list(rng.uniform(size=195)) + [1e-6, 1e-5, 2e-5, 1e-4, 3e-4]
    rejected = bh_reject(p, 0.05)
    assert all(rejected[-5:])


def test_edges_and_bad_input() -> None:
    assert bh_reject([]) == []
    assert bh_adjust([0.0]) == [0.0]
    assert bh_reject([1.0]) == [False]
    assert bh_threshold([0.5, 0.9]) == 0.0
    with pytest.raises(ValueError):
        bh_reject([0.5], q=0.0)
    with pytest.raises(ValueError):
        bh_adjust([1.5])
    with pytest.raises(ValueError):
        bh_adjust([float("nan")])
