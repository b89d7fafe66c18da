"""The verdict benchmark's own machinery: background load, reading verdicts, targets.

``benchmarks/detection.py`` decides what BENCHMARKS.md claims, so the parts that turn tool
output into counts are tested here with inputs whose right answer is known.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

from procutil import wait_dead

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _detection_report as report  # noqa: E402
from _load import BackgroundLoad  # noqa: E402
from _tools import _by_metric  # noqa: E402


def test_background_load_starts_busy_processes_and_kills_them_on_an_exception() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with BackgroundLoad(2) as load:
            pids = load.pids
            assert len(pids) == 2
            # Each is a spinning child: it accumulates CPU time (polled, no timing assertion).
            procs = [psutil.Process(p) for p in pids]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all(
                    sum(p.cpu_times()[:2]) > 0.05 for p in procs):
                time.sleep(0.05)
            assert all(sum(p.cpu_times()[:2]) > 0.05 for p in procs)
            raise RuntimeError("boom")
    assert wait_dead(pids) == []


def test_background_load_of_zero_starts_nothing() -> None:
    with BackgroundLoad(0) as load:
        assert load.pids == []
    with pytest.raises(ValueError, match=">= 0"):
        BackgroundLoad(-1)


def _v(metric: str, verdict: str, **extra: object) -> dict:
    return {"metric": metric, "verdict": verdict, **extra}


def test_the_metric_perfloop_names_decides_else_cpu_time() -> None:
    named = _by_metric([_v("wall_time", "inconclusive", deciding_metric="cpu_time", role="context"),
                        _v("cpu_time", "regressed", deciding_metric="cpu_time", role="decides"),
                        _v("peak_rss", "unchanged")], "")
    assert named["decides"] == "cpu_time" and named["decides_named"]
    assert named["metrics"]["cpu_time"]["call"] == "slower"
    assert named["metrics"]["wall_time"]["call"] == "inconclusive"
    waits = _by_metric([_v("wall_time", "regressed", deciding_metric="wall_time"),
                        _v("cpu_time", "unchanged", deciding_metric="wall_time")], "")
    assert waits["decides"] == "wall_time"
    old = _by_metric([_v("wall_time", "inconclusive"), _v("cpu_time", "unchanged")], "")
    assert old["decides"] == "cpu_time" and not old["decides_named"]
    with pytest.raises(ValueError, match="cpu_time and wall_time"):
        _by_metric([_v("wall_time", "unchanged")], "")


def _pair(slowdown: float, perfloop: tuple[str, str], pyperf: str, seconds: float = 10.0) -> dict:
    wall, cpu = perfloop
    cells = {"wall_time": {"call": wall, "raw": wall, "ratio": 1.0},
             "cpu_time": {"call": cpu, "raw": cpu, "ratio": 1.0 + slowdown}}
    return {"slowdown": slowdown, "load": [4.0, 4.0, 4.0], "verdicts": {
        "perfloop": {"call": cpu, "raw": cpu, "seconds": seconds, "ratio": 1.0 + slowdown,
                     "detail": {"decides": "cpu_time", "decides_named": True, "metrics": cells}},
        "pyperf": {"call": pyperf, "raw": pyperf, "seconds": 40.0, "ratio": 1.0, "detail": {}}}}


def test_targets_count_each_metric_of_perfloop_and_say_by_how_much_they_are_missed() -> None:
    pairs = [_pair(0.0, ("inconclusive", "same"), "faster") for _ in range(20)]
    pairs += [_pair(0.05, ("inconclusive", "slower" if i < 9 else "same"), "slower") for i in range(10)]
    pairs += [_pair(0.10, ("slower", "slower"), "slower") for _ in range(4)]
    pairs += [_pair(0.02, ("same", "slower" if i == 0 else "same"), "same") for i in range(4)]
    doc = {"tools": ["perfloop", "pyperf"], "sizes": [0.02, 0.05, 0.10], "pairs": pairs,
           "load_processes": 3, "perfloop_args": []}
    s = report.summarize(doc)
    cpu = next(k for k in s if "cpu_time (decides)" in k)
    wall = next(k for k in s if k.endswith("wall_time"))
    assert s[cpu]["by_slowdown"]["0.05"]["slower"] == 9
    assert s[wall]["by_slowdown"]["0.05"]["inconclusive"] == 10
    text = "\n".join(report.targets(s))
    row = next(line for line in text.splitlines() if "cpu_time (decides)" in line)
    assert "met: 0/20" in row                      # no false alarm in 20 A/A verdicts
    assert "met: 9/10 (90%)" in row                # 5% detected in 90%
    assert "met: 4/4 (100%)" in row                # 10%
    assert "missed: 1/4 regressed" in row          # a 2% change called regressed
    assert "met: 10 s vs 40 s (0.25x)" in row
    wrow = next(line for line in text.splitlines() if line.startswith("| perfloop") and
                line.split("|")[1].strip().endswith("wall_time"))
    assert "missed: 0/10 (0%, 90% short)" in wrow
    assert "loaded (3 busy processes, load 4.0-4.0" in report.condition(doc)


def test_run_level_shift_is_the_median_move_of_all_benchmarks_of_a_run() -> None:
    import math

    import aa_shop

    runs = [{"a": {"cpu_time": 1.0}, "b": {"cpu_time": 2.0}, "c": {"cpu_time": 3.0}},
            {"a": {"cpu_time": 1.0}, "b": {"cpu_time": 2.0}, "c": {"cpu_time": 3.0}},
            # the whole run 10% slower, and one benchmark of it 50% slower on top
            {"a": {"cpu_time": 1.1}, "b": {"cpu_time": 2.2}, "c": {"cpu_time": 3.0 * 1.1 * 1.5}}]
    shifts = aa_shop.shifts(runs, "cpu_time")
    assert shifts[0] == pytest.approx(0.0) and shifts[1] == pytest.approx(0.0)
    assert shifts[2] == pytest.approx(math.log(1.1))
    assert aa_shop.shifts(runs, "wall_time") == [None, None, None]


def test_a_verdict_counts_when_its_role_decides_or_perfloop_names_its_metric() -> None:
    import aa_shop

    assert aa_shop.decides({"metric": "wall_time", "role": "context"}) is False
    assert aa_shop.decides({"metric": "cpu_time", "deciding_metric": "cpu_time"}) is True
    assert aa_shop.decides({"metric": "wall_time"}, {"deciding_metric": "cpu_time"}) is False
    assert aa_shop.decides({"metric": "wall_time"}) is None


def test_runs_of_one_condition_merge_into_one_and_other_conditions_are_refused() -> None:
    one = {"tools": ["pyperf"], "sizes": [0.05], "load_processes": 3, "perfloop_args": [],
           "pairs": [{"pair": 0}, {"pair": 1}], "elapsed": 60.0, "command": "a"}
    two = {**one, "pairs": [{"pair": 0}], "elapsed": 30.0, "command": "b"}
    both = report.merged([one, two])
    assert len(both["pairs"]) == 3 and both["elapsed"] == 90.0 and both["command"] == "a; b"
    with pytest.raises(SystemExit, match="different load_processes"):
        report.merged([one, {**two, "load_processes": 0}])
