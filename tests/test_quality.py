"""Quality warnings on constructed results: each problem gives one warning with a next step."""

from __future__ import annotations

from typing import Sequence

import pytest

from perfloop.config import Settings
from perfloop.measure.quality import format_seconds, quality_warnings, quartiles
from perfloop.records import BenchmarkResult, ResultStatus, Sample

SETTINGS = Settings(processes=4, values=5, warmup=1, min_time=0.02, tolerance=0.05)
QUIET = [1.00, 1.01, 0.99, 1.00, 1.02, 0.98, 1.00, 1.01, 0.99, 1.00]


def result(workers: Sequence[Sequence[float]], *, kind: str = "callable", loops: int = 1000,
           warmups: Sequence[float] = (), resolution: float = 1e-9, metric: str = "wall_time",
           status: ResultStatus = ResultStatus.OK) -> BenchmarkResult:
    """One worker per inner sequence; ``warmups`` are put before each worker's values."""
    samples = []
    for w, values in enumerate(workers):
        tagged = [(v, True) for v in warmups] + [(v, False) for v in values]
        samples += [Sample(metric, v, worker=w, index=i, warmup=warm, loops=loops)
                    for i, (v, warm) in enumerate(tagged)]
    return BenchmarkResult(name="b", kind=kind, status=status, samples=samples,
                           extra={"loops": loops, "timer_resolution": resolution},
                           error=None if status is ResultStatus.OK else "it broke")


def per_worker(values: Sequence[float], size: int = 5) -> list[list[float]]:
    return [list(values[i:i + size]) for i in range(0, len(values), size)]


def test_quiet_measurement_has_no_warnings():
    assert quality_warnings(result(per_worker(QUIET)), SETTINGS) == []


def test_failed_results_get_no_quality_warnings():
    noisy = result([[1.0, 5.0, 0.1]], status=ResultStatus.FAILED)
    assert quality_warnings(noisy, SETTINGS) == []


def test_values_too_short_for_the_timer_name_the_resolution_and_min_time():
    short = result(per_worker([v * 1e-8 for v in QUIET]), loops=1, resolution=1e-8)
    [warning] = quality_warnings(short, SETTINGS)
    assert "timer resolution (10 ns)" in warning and "min_time" in warning
    # the same per-call time looped a million times is long enough
    assert quality_warnings(result(per_worker([v * 1e-8 for v in QUIET]), loops=1_000_000,
                                   resolution=1e-8), SETTINGS) == []


def test_commands_under_5_ms_warn_about_process_start_up():
    fast = result([[v * 0.001] for v in QUIET], kind="command", loops=1)
    [warning] = quality_warnings(fast, SETTINGS)
    assert "start-up" in warning and "1 ms" in warning


def test_high_variation_warns_with_a_next_step():
    noisy = [1.0, 1.2, 0.8, 1.1, 0.9, 1.15, 0.85, 1.05, 0.95, 1.0]
    warnings = quality_warnings(result(per_worker(noisy)), SETTINGS)
    [warning] = [w for w in warnings if "varies" in w]
    assert "noise exceeds its tolerance" in warning
    assert "more processes (now 4)" in warning and "instructions" in warning
    # within a wider tolerance the same values are fine
    assert not [w for w in quality_warnings(result(per_worker(noisy)), Settings(tolerance=0.3))
                if "varies" in w]


def test_variation_warning_reports_both_cv_and_iqr():
    bimodal = [1.0, 1.1] * 5
    [warning] = [w for w in quality_warnings(result(per_worker(bimodal)), SETTINGS) if "varies" in w]
    assert "varies by 5.0% (coefficient of variation; IQR/median 9.5%)" in warning


def test_iqr_alone_above_the_tolerance_is_enough():
    # tight middle, wide quartiles: CV 5.3% stays under an 8% tolerance, IQR/median 10% does not
    values = [0.95] * 5 + [1.05] * 5
    warnings = quality_warnings(result(per_worker(values)), Settings(tolerance=0.08))
    assert any("IQR/median 10.0%" in w for w in warnings)


def test_outliers_beyond_the_iqr_fences():
    values = QUIET * 2 + [2.0, 2.5, 3.0]        # 3 of 23 far out
    warnings = quality_warnings(result([values]), Settings(tolerance=0.9))
    [warning] = [w for w in warnings if "outliers" in w]
    assert "3 of 23" in warning and "quiet machine" in warning


def test_a_single_mild_outlier_in_many_values_is_not_worth_a_warning():
    values = QUIET * 4 + [1.2]                   # 1 of 41: 2.4%
    assert not [w for w in quality_warnings(result([values]), Settings(tolerance=0.9)) if "outliers" in w]


def test_slow_first_value_in_most_workers_suggests_warmup():
    workers = [[1.5, 1.0, 1.01, 0.99, 1.0], [1.4, 1.0, 0.99, 1.01, 1.0],
               [1.0, 1.01, 0.99, 1.0, 1.0], [1.6, 1.0, 1.0, 1.01, 0.99]]
    warnings = quality_warnings(result(workers), Settings(tolerance=0.3, warmup=1))
    [warning] = [w for w in warnings if "first" in w]
    assert "3 of 4 workers" in warning and "raise warmup (now 1)" in warning


def test_slow_first_value_in_one_worker_only_is_not_a_warmup_problem():
    workers = [[1.5, 1.0, 1.01, 0.99, 1.0]] + [[1.0, 1.01, 0.99, 1.0, 1.0]] * 3
    assert not [w for w in quality_warnings(result(workers), Settings(tolerance=0.3)) if "first" in w]


def test_slow_first_run_of_a_command():
    runs = [[2.0]] + [[v] for v in QUIET]
    warnings = quality_warnings(result(runs, kind="command", loops=1), Settings(tolerance=0.9))
    [warning] = [w for w in warnings if "first" in w]
    assert "2.0x the median" in warning and "warmup" in warning


def test_first_value_above_the_median_by_less_than_the_tolerance_is_fine():
    runs = [[1.03]] + [[1.0]] * 9
    assert not [w for w in quality_warnings(result(runs, kind="command", loops=1), SETTINGS) if "first" in w]


def test_warmup_values_are_ignored():
    workers = per_worker(QUIET)
    assert quality_warnings(result(workers, warmups=[9.0]), SETTINGS) == []


def test_other_timing_metrics_are_checked_when_wall_time_is_absent():
    noisy = [0.010, 0.012, 0.008, 0.011, 0.009]
    warnings = quality_warnings(result([noisy], kind="http", metric="latency_p50", loops=1), SETTINGS)
    assert any("latency_p50 varies" in w for w in warnings)


def test_results_without_timing_metrics_have_no_warnings():
    assert quality_warnings(result([[1.0, 9.0, 1.0]], metric="peak_rss"), SETTINGS) == []


def test_quartiles_and_format():
    assert quartiles([1, 2, 3, 4, 5]) == (2, 4)
    assert quartiles([7]) == (7, 7)
    assert format_seconds(85e-9) == "85 ns"
    assert format_seconds(12.3e-6) == "12.3 us"
    assert format_seconds(0.00456) == "4.56 ms"
    assert format_seconds(1.5) == "1.5 s"


@pytest.mark.parametrize("n", [1, 2])
def test_too_few_values_give_no_spread_warnings(n):
    assert quality_warnings(result([[1.0, 2.0][:n]]), SETTINGS) == []
