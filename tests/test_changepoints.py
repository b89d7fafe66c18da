"""Change-point detection on signals with known answers (see docs/changepoints.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from perfloop.analysis.changepoints import ChangePoint, SeededBinseg, detect_change_points, generate
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


# --- nothing to find ------------------------------------------------------------------------

def test_constant_series_has_no_change_point() -> None:
    assert indices([42.0] * 500) == []
    assert indices([0.0] * 30) == []


@pytest.mark.parametrize("n", [30, 200, 1000, 5000])
def test_pure_noise_has_no_change_point(n: int) -> None:
    for seed in range(10):
        assert indices(generate.noise(n, seed=seed)) == [], seed


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
        pytest.skip(f"{TIGERBEETLE} is absent: the TigerBeetle series is kept in shared/ beside "
                    "the repository")
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
    - perfloop also reports 61 (about +3%, 23.7k to 24.5k for ten runs before the jump at 71)
      and two steps in the slow climb from 27.7k to 29.4k (at 149, +2%, and 192, +3%).
    """
    found = indices(tigerbeetle["values"])
    assert found == [15, 61, 71, 95, 149, 192]
    docstring = tigerbeetle["visible_shifts_per_upstream_docstring"]
    assert [s for s in docstring if near(found, s)] == [16, 71, 97]
    assert not near(found, 10, tolerance=1)
    for expected in tigerbeetle["otava_expected"].values():
        assert set(expected) & {15, 71} <= set(found)
    assert {15, 71} <= set(found)
