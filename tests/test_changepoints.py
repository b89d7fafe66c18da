"""Change-point detection on signals with known answers (see docs/changepoints.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from perfloop.analysis.changepoints import (ChangePoint, SeededBinseg, detect_change_points, generate,
                                            minimum_detectable_step)
from perfloop.errors import UsageError

TIGERBEETLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "peers" / "tigerbeetle.json"


def indices(values, **settings) -> list[int]:
    return [cp.index for cp in detect_change_points(values, **settings)]


# --- noise-free steps: exact breakpoints --------------------------------------------------

@pytest.mark.parametrize("levels, lengths", [
    ([1.0, 5.0], [20, 20]),
    ([1.0, 5.0, 2.0, 2.5, -3.0], [30, 20, 50, 10, 40]),
    ([100.0, 101.0, 100.0], [10, 10, 10]),
    ([0.0, 1e6, 0.0, 1e3], [5, 5, 5, 5]),
])
def test_noise_free_steps_give_exact_breakpoints(levels, lengths) -> None:
    signal = generate.steps(levels, lengths)
    assert indices(signal.values) == list(signal.change_points)


def test_class_has_ruptures_shape_and_same_answer() -> None:
    signal = generate.steps([3.0, 7.0, 4.0], [25, 25, 25])
    detector = SeededBinseg(min_size=5, max_pvalue=0.001)
    assert detector.fit(signal.values).predict() == [25, 50]
    assert detector.change_points() == detect_change_points(signal.values)
    assert SeededBinseg().fit_predict(signal.values.reshape(-1, 1)) == [25, 50]


def test_change_point_record() -> None:
    [cp] = detect_change_points([10.0] * 20 + [12.0] * 20)
    assert isinstance(cp, ChangePoint)
    assert (cp.index, cp.mean_before, cp.mean_after) == (20, 10.0, 12.0)
    assert cp.magnitude == pytest.approx(0.2)
    assert 0.0 <= cp.pvalue < 1e-6
    with pytest.raises(AttributeError):
        cp.index = 3  # type: ignore[misc]


# --- noisy histories with planted shifts --------------------------------------------------

def test_planted_shifts_are_found_within_two_points_and_nothing_else() -> None:
    """3 shifts of 5-20% in 2% noise, 400 points, segments of 30 or more, 30 seeds.

    A 5% shift is 2.5 noise standard deviations; the best possible split then lands 3 points
    away now and then (1 of 300 seeds here, seed 16: the values around the shift make either
    place as likely). So: every shift found, nothing else, all within 3 points and all but at
    most one of the 90 within 2.
    """
    misplaced = 0
    for seed in range(30):
        planted = generate.history(400, shifts=3, min_shift=0.05, max_shift=0.20, noise=0.02, seed=seed)
        found = indices(planted.values)
        assert len(found) == 3, (seed, planted.change_points, found)
        errors = [abs(f - p) for f, p in zip(found, planted.change_points)]
        assert max(errors) <= 3, (seed, planted.change_points, found)
        misplaced += sum(e > 2 for e in errors)
    assert misplaced <= 1


def test_small_shift_in_long_noisy_series_is_found() -> None:
    planted = generate.history(2000, shifts=2, min_shift=0.02, max_shift=0.03, noise=0.02,
                               min_segment=300, seed=7)
    found = indices(planted.values)
    assert len(found) == 2
    assert all(abs(f - p) <= 5 for f, p in zip(found, planted.change_points))


def test_single_outliers_are_not_change_points() -> None:
    for seed in range(20):
        planted = generate.history(400, shifts=3, noise=0.02, outliers=6, outlier_factor=1.6, seed=seed)
        found = indices(planted.values)
        assert len(found) == 3, (seed, planted.change_points, planted.outliers, found)
        assert not set(found) & set(planted.outliers)


def test_lone_spike_in_flat_or_noisy_series() -> None:
    flat = np.full(50, 100.0)
    flat[20] = 40.0
    assert indices(flat) == []
    noisy = generate.noise(200, seed=3)
    noisy[[50, 120, 199]] *= [0.5, 3.0, 2.0]
    assert indices(noisy) == []


# --- noisy histories: 5-10% steps in 5% noise ----------------------------------------------

def test_noisy_steps_generator_plants_what_it_says() -> None:
    planted = generate.noisy_steps(1000, steps=9, noise=0.05, seed=4)
    lengths = np.diff([0, *planted.change_points, 1000])
    assert len(planted.change_points) == 9 and lengths.min() >= 20 and lengths.max() <= 200
    levels = [planted.values[a:b].mean() for a, b in zip([0, *planted.change_points],
                                                         [*planted.change_points, 1000])]
    steps = np.abs(np.diff(levels)) / np.asarray(levels[:-1])
    assert 0.02 < steps.min() and steps.max() < 0.13     # 5-10%, give or take the noise
    assert np.array_equal(generate.noisy_steps(1000, seed=4).values, planted.values)


def test_noisy_steps_are_found() -> None:
    """20 series of 1,000 points, each with 9 steps of 5-10% in 5% noise (a 5% step is one
    noise standard deviation): at least 160 of the 180 steps found within 5 points, at most 5
    points further than 5 from any step. Measured on seeds 0-19: 161 found, 4 further (before
    a piece between two accepted change points was searched as a family of its own: 157 and
    3; before steps were placed where they most probably lie within 5 points, re-tested
    between their neighbours too, and a window's autocorrelation pooled with the series':
    149 and 9)."""
    found = false = 0
    for seed in range(20):
        planted = generate.noisy_steps(1000, noise=0.05, seed=seed)
        cps = indices(planted.values)
        hits = [c for c in planted.change_points if any(abs(c - f) <= 5 for f in cps)]
        found += len(hits)
        false += sum(all(abs(f - c) > 5 for c in planted.change_points) for f in cps)
    assert found >= 160, found
    assert false <= 5, false


def test_a_segment_between_change_points_is_a_family_at_the_level() -> None:
    """Once change points are accepted, the segment between two of them is searched at
    ``max_pvalue`` over its own m ln m tests: each segment is a family, so a series with k
    clear steps may get a false point with a chance of about (k + 1) x 0.001. Measured: 200
    series with 9 clear steps (15-25% in 2% noise, 2,000 segments) get 2 points further than
    5 from any step (0 when only the whole series counted as the family)."""
    found = false = 0
    for seed in range(200):
        planted = generate.noisy_steps(1000, noise=0.02, min_step=0.15, max_step=0.25, seed=70_000 + seed)
        cps = indices(planted.values)
        found += sum(any(abs(c - f) <= 5 for f in cps) for c in planted.change_points)
        false += sum(all(abs(f - c) > 5 for c in planted.change_points) for f in cps)
    assert found == 1800
    assert false <= 4, false    # the level allows about 2


def test_narrow_window_places_a_step_between_two_others() -> None:
    """Three steps where a wide window's best single split falls between two of them."""
    signal = generate.steps([100.0, 103.0, 106.0, 100.0], [150, 40, 150, 100]).values
    rng = np.random.default_rng(1)
    noisy = signal * (1 + 0.01 * rng.standard_normal(len(signal)))
    found = indices(noisy)
    assert len(found) == 3 and all(abs(f - c) <= 2 for f, c in zip(found, [150, 190, 340])), found


def test_minimum_detectable_step_shrinks_with_length_and_grows_with_noise() -> None:
    small = minimum_detectable_step(generate.noise(2000, relative_sd=0.02, seed=1))
    short = minimum_detectable_step(generate.noise(100, relative_sd=0.02, seed=1))
    noisy = minimum_detectable_step(generate.noise(2000, relative_sd=0.08, seed=1))
    assert small.min_step < short.min_step and small.min_step < noisy.min_step
    assert noisy.min_step == pytest.approx(4 * small.min_step, rel=0.15)
    # Level shifts and outliers are not noise: the estimate comes from first differences.
    planted = generate.history(2000, shifts=6, noise=0.02, outliers=20, seed=3)
    assert minimum_detectable_step(planted.values).noise == pytest.approx(0.02, rel=0.15)
    assert minimum_detectable_step([1.0] * 9) is None           # too short to search
    assert minimum_detectable_step([5.0] * 50).min_step == 0.0  # no noise: any step shows


@pytest.mark.parametrize("n", [40, 100, 300, 1000])
def test_minimum_detectable_step_matches_the_detector(n: int) -> None:
    # The figure `history` prints for a series is a promise: a step of that size in the
    # middle is found (near where it is) with probability `power`, 0.8. Planted in 60 seeded
    # series of 4% noise, each with its own figure, at 0.5, 1 and 1.5 times it (measured:
    # 2-8, 45-53 and 51-59 of 60; one and a half times it 58-59 from 100 points on).
    found = {0.5: 0, 1.0: 0, 1.5: 0}
    noises = []
    near = max(15, n // 20)
    for seed in range(60):
        values = generate.noise(n, relative_sd=0.04, seed=seed)
        sensitivity = minimum_detectable_step(values)
        assert sensitivity is not None and sensitivity.power == 0.8
        noises.append(sensitivity.noise)
        for share in found:
            stepped = values.copy()
            stepped[n // 2:] *= 1.0 + share * sensitivity.min_step
            found[share] += any(abs(c - n // 2) <= near for c in indices(stepped))
    assert float(np.median(noises)) == pytest.approx(0.04, rel=0.15)
    assert found[0.5] <= 15 and found[1.0] >= 42, found
    assert found[1.5] >= (48 if n < 100 else 54), found


# --- nothing to find ------------------------------------------------------------------------

def test_constant_series_has_no_change_point() -> None:
    assert indices([42.0] * 500) == []
    assert indices([0.0] * 30) == []


@pytest.mark.parametrize("n", [30, 200, 1000, 5000])
def test_pure_noise_has_no_change_point(n: int) -> None:
    for seed in range(10):
        assert indices(generate.noise(n, seed=seed)) == [], seed


@pytest.mark.parametrize("relative_sd", [0.02, 0.08])
def test_long_pure_noise_has_no_change_point(relative_sd: float) -> None:
    assert indices(generate.noise(100_000, relative_sd=relative_sd, seed=5)) == []


def test_bimodal_values_are_not_steps() -> None:
    """Each run lands on one of two levels 6% apart at random, half or a fifth of the runs on
    the upper one, with 0.5% noise around each (a bimodal benchmark): no level shift. Measured
    on these 12 series of 3,000 points: none in the half-and-half kind, 5 false change points
    in two of the one-fifth kind (the minority mode's runs of a few points look like short
    levels); an outlier filter that carves the minority mode into runs gave dozens."""
    false = []
    for share in (0.5, 0.2):
        for seed in range(6):
            rng = np.random.default_rng(seed)
            values = 100.0 * (1 + 0.06 * (rng.random(3000) < share)) * (1 + 0.005 * rng.standard_normal(3000))
            false.append(len(indices(values)))
    assert sum(false[:6]) == 0 and sum(false) <= 6, false


def ar1(n: int, rho: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0]
    for i in range(1, n):
        x[i] = rho * x[i - 1] + e[i]
    return 100.0 + x


def test_noise_autocorrelation_is_estimated_through_steps_and_spikes() -> None:
    from perfloop.analysis.changepoints._stats import lag_one_autocorrelation
    assert lag_one_autocorrelation(ar1(5000, 0.5, seed=1)) == pytest.approx(0.5, abs=0.08)
    white = generate.history(5000, shifts=20, noise=0.02, outliers=50, seed=2).values
    assert lag_one_autocorrelation(white) < 0.08


def test_autocorrelated_noise_rarely_gives_a_change_point() -> None:
    """AR(1) noise with rho 0.5 wanders; measured on these 20 seeds, 3 series of 1,000 points
    get a change point (13 of 100 seeds in all, with a two-level window's autocorrelation
    pooled with the series' or not; 14 when it was instead taken less one standard error;
    an earlier release: 11 of 100)."""
    flagged = sum(bool(indices(ar1(1000, 0.5, seed=9000 + s))) for s in range(20))
    assert flagged <= 3, flagged


def test_smooth_trend_is_not_a_staircase() -> None:
    trend = 100.0 + 0.05 * np.arange(500) + generate.noise(500, level=1.0, seed=1)
    assert indices(trend) == []


def test_short_series() -> None:
    assert indices([]) == []
    assert indices([1.0, 2.0, 3.0]) == []


# --- settings -------------------------------------------------------------------------------

def test_min_magnitude_drops_small_shifts() -> None:
    signal = generate.steps([100.0, 101.0, 120.0], [40, 40, 40]).values
    assert indices(signal) == [40, 80]
    assert indices(signal, min_magnitude=0.05) == [80]


def test_min_size_is_the_shortest_level() -> None:
    signal = generate.steps([0.0, 10.0, 0.0], [30, 4, 30]).values
    assert indices(signal, min_size=5) == []
    assert indices(signal, min_size=2) == [30, 34]


def test_deterministic() -> None:
    planted = generate.history(3000, shifts=8, outliers=10, seed=11)
    first = detect_change_points(planted.values)
    assert all(detect_change_points(planted.values.copy()) == first for _ in range(3))


@pytest.mark.parametrize("settings", [
    {"max_pvalue": 0.0}, {"max_pvalue": 2.0}, {"min_magnitude": -0.1}, {"min_size": 1},
    {"window": 5, "min_size": 5},
])
def test_bad_settings_are_usage_errors(settings) -> None:
    with pytest.raises(UsageError):
        detect_change_points([1.0] * 50, **settings)


@pytest.mark.parametrize("values", [[1.0, float("nan"), 2.0], np.ones((10, 2)), ["a", "b"]])
def test_bad_series_are_usage_errors(values) -> None:
    with pytest.raises(UsageError):
        detect_change_points(values)


def test_predict_before_fit() -> None:
    with pytest.raises(UsageError):
        SeededBinseg().predict()


# --- a real history: TigerBeetle, as in Apache Otava's tests ------------------------------

@pytest.fixture(scope="module")
def tigerbeetle() -> dict:
    if not TIGERBEETLE.exists():
        why = (f"real-data test not run: {TIGERBEETLE} is absent (the TigerBeetle series is kept "
               "in shared/data/peers/ beside the repository)")
        if os.environ.get("CI") or os.environ.get("PERFLOOP_TEST_REAL_DATA"):   # set by .ci/run
            pytest.fail(f"{why}; CI has the data, so its absence is an error")
        pytest.skip(why)
    return json.loads(TIGERBEETLE.read_text())


def near(found: list[int], index: int, tolerance: int = 2) -> bool:
    return any(abs(f - index) <= tolerance for f in found)


def test_tigerbeetle(tigerbeetle: dict) -> None:
    """What perfloop finds at its defaults, against the shifts documented with the series.

    - Upstream docstring's visible shifts 10, 16, 71, 97: 16 is found as 15 (the first value
      of the new level), 71 exactly, 97 as 95 (the first lower value). 10 is one spike
      (15672 among values near 26700) and is deliberately not reported.
    - Otava's expected [15, 71] (p 0.01 and 0.05): both found exactly. Otava's 10 and 11 at
      p 0.1 and 0.2 are the spike's two edges, not reported here.
    - perfloop also reports 59 (about +3%, 23.7k to 24.5k for a dozen runs before the jump at
      71) and two steps in the slow climb from 27.7k to 29.4k (near 154, +2%, and 191, +3%).
      These are not documented with the series, so they are only bounded in number, not pinned.
    """
    found = indices(tigerbeetle["values"])
    spike = 10
    visible = [s for s in tigerbeetle["visible_shifts_per_upstream_docstring"] if s != spike]
    for shift in visible:                        # within two points of where the docstring puts it
        assert near(found, shift), (shift, found)
    assert not near(found, spike, tolerance=1), found      # nor its second edge, 11
    strict = [tigerbeetle["otava_expected"][f"window30_p{p}_mag0.05"] for p in ("0.01", "0.05")]
    for expected in strict:
        assert set(expected) <= set(found), (expected, found)
    documented = [*visible, *(i for expected in strict for i in expected)]
    undocumented = [f for f in found if not near(documented, f)]
    assert len(undocumented) <= 3, undocumented


def test_a_clear_step_in_a_short_series_is_never_lost_to_a_chance_autocorrelation() -> None:
    """20 points, a 25% step after 12, noise 0.1%: 250 times the noise, found in every draw.

    The autocorrelation of a 20-point series cannot be estimated; a chance ratio of MADs once
    set the floor at its cap and hid this step.
    """
    rng = np.random.default_rng(11)
    level = np.array([1.0] * 12 + [1.25] * 8)
    found = [[cp.index for cp in detect_change_points(level * (1 + 0.001 * rng.standard_normal(20)))]
             for _ in range(200)]
    assert all(f == [12] for f in found)


# --- placing a step, re-testing between neighbours, a window's own autocorrelation ---------

def _best_split(y: np.ndarray, min_size: int = 5) -> int:
    """Where two flat levels fit ``y`` best (the maximum-likelihood step), ``min_size`` from
    either end."""
    n = len(y)
    left = np.cumsum(y)[:-1]
    j = np.arange(1, n)
    gain = left ** 2 / j + (y.sum() - left) ** 2 / (n - j)
    gain = np.where((j >= min_size) & (j <= n - min_size), gain, -np.inf)
    return int(j[np.argmax(gain)])


def test_a_step_is_placed_where_it_most_probably_lies_within_min_size() -> None:
    """400 draws of one step the size of the noise, 40 points on each side: the best single
    split is within 5 points of the step in 332 draws, the placement in 345 (measured); it
    never moves a step by more than min_size, and leaves a noise-free step where it is."""
    from perfloop.analysis.changepoints._stats import PrefixSums
    from perfloop.analysis.changepoints.seeded import place_steps

    rng = np.random.default_rng(3)
    by_best = by_placement = 0
    for _ in range(400):
        y = np.r_[np.zeros(40), np.ones(40)] + rng.standard_normal(80)
        best = _best_split(y)
        placed = place_steps(PrefixSums.of(y), [best], np.array([0]), np.array([80]), 5)[0]
        assert abs(placed - best) <= 5
        by_best += abs(best - 40) <= 5
        by_placement += abs(placed - 40) <= 5
    assert by_placement >= by_best + 10, (by_best, by_placement)
    exact = np.r_[np.zeros(40), np.ones(40)]
    assert place_steps(PrefixSums.of(exact), [40], np.array([0]), np.array([80]), 5) == [40]


def test_placed_steps_stay_min_size_apart_and_within_their_windows() -> None:
    """Neighbouring change points that would both move towards each other: the second is
    kept min_size from the first as placed, and each stays min_size inside its window."""
    from perfloop.analysis.changepoints._stats import PrefixSums
    from perfloop.analysis.changepoints.seeded import place_steps

    rng = np.random.default_rng(8)
    for _ in range(200):
        cps = sorted(rng.choice(np.arange(20, 180), size=4, replace=False).tolist())
        cps = [c for i, c in enumerate(cps) if i == 0 or c - cps[i - 1] >= 10]
        y = rng.standard_normal(200) + np.repeat(rng.normal(0, 2, len(cps) + 1),
                                                 np.diff([0, *cps, 200]))
        bounds = [0, *cps, 200]
        a, b = np.asarray(bounds[:-2]), np.asarray(bounds[2:])
        placed = place_steps(PrefixSums.of(y), cps, a, b, 5)
        assert all(y2 - y1 >= 5 for y1, y2 in zip(placed, placed[1:])), (cps, placed)
        assert all(lo + 5 <= p <= hi - 5 and abs(p - c) <= 5
                   for p, c, lo, hi in zip(placed, cps, a, b)), (cps, placed)


def test_a_step_that_passed_in_its_window_is_kept_when_a_neighbour_trims_the_window() -> None:
    """noisy_steps seed 5 (5% noise) has a step at 816 between steps at 758 and 879. It passes
    in the 88-point window that found it, [792, 880), by a hair; once its right neighbour is
    placed at 878 that window loses two points and the step failed its re-test there and was
    dropped. Re-tested between its neighbours as well, it stands."""
    planted = generate.noisy_steps(1000, noise=0.05, seed=5)
    assert 816 in planted.change_points
    found = indices(planted.values)
    assert near(found, 816, tolerance=5), found
    assert all(any(abs(f - c) <= 5 for c in planted.change_points) for f in found), found


def test_a_window_autocorrelation_is_pooled_with_the_series_own() -> None:
    """A 40-point window inside 1,000 points, 300 draws each of white noise and of AR(1)
    noise with rho 0.5. The factor by which autocorrelation deflates the window's squared t
    (measured): on white noise, whose true factor is 1, 1.105 on average from the window's
    own estimate and 1.063 pooled with the series'; on AR(1) noise 2.45 and 2.48, so the
    protection of wandering series stays."""
    from perfloop.analysis.changepoints import _stats

    def factors(y: np.ndarray) -> tuple[float, float]:
        a, t, b = np.array([480]), np.array([500]), np.array([520])
        floor = _stats.lag_one_autocorrelation(y)
        # A series estimate of 0 worth any number of points: no deflation at all.
        plain = _stats.step_test(_stats.PrefixSums.of(y, 0.0, 0.0, 1e12), a, t, b).t2[0]
        window = _stats.step_test(_stats.PrefixSums.of(y, floor), a, t, b).t2[0]
        pooled = _stats.step_test(
            _stats.PrefixSums.of(y, floor, *_stats.series_autocorrelation(y)), a, t, b).t2[0]
        return plain / window, plain / pooled

    rng = np.random.default_rng(1)
    white = np.array([factors(rng.standard_normal(1000)) for _ in range(300)]).mean(axis=0)
    assert white[1] < white[0] - 0.03 and white[1] < 1.08, white
    wandering = np.array([factors(ar1(1000, 0.5, seed=int(rng.integers(1 << 30))))
                          for _ in range(300)]).mean(axis=0)
    assert wandering[1] > 2.3 and wandering[1] >= wandering[0] - 0.05, wandering


def test_values_on_a_coarse_grid_are_not_pooled_for_autocorrelation() -> None:
    """Rounded to half a noise standard deviation, 14% of first differences equal their
    median and the ratio of MADs counts quanta, not correlation: the series' estimate is
    given no weight. Unrounded, it is worth n / 9 points of a window."""
    from perfloop.analysis.changepoints._stats import series_autocorrelation

    noise = np.random.default_rng(2).standard_normal(1000)
    assert series_autocorrelation(100.0 + noise) == (pytest.approx(0.0, abs=0.3), 1000 / 9)
    _, points = series_autocorrelation(100.0 + np.round(noise / 0.5) * 0.5)
    assert points == 0.0


def test_means_are_those_of_the_segments_as_placed() -> None:
    """After placement the means on either side of each change point are those of the
    segments between the reported change points (of the values with outliers replaced)."""
    from perfloop.analysis.changepoints.robust import replace_outliers

    for seed in range(5):
        raw = generate.noisy_steps(1000, noise=0.05, seed=seed).values
        cps = detect_change_points(raw)
        values = replace_outliers(raw, half_width=4)
        bounds = [0, *(cp.index for cp in cps), len(values)]
        for k, cp in enumerate(cps):
            assert cp.mean_before == pytest.approx(values[bounds[k]:bounds[k + 1]].mean(), rel=1e-12)
            assert cp.mean_after == pytest.approx(values[bounds[k + 1]:bounds[k + 2]].mean(), rel=1e-12)


def test_placement_never_takes_a_shift_under_min_magnitude() -> None:
    """Every reported shift is at least min_magnitude, as placed (20 noisy histories)."""
    for seed in range(20):
        values = generate.noisy_steps(1000, noise=0.05, seed=seed).values
        assert all(abs(cp.magnitude) >= 0.06 for cp in detect_change_points(values, min_magnitude=0.06))
