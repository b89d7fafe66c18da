"""A first run's warnings are grouped: one line per benchmark with its worst problem, each
piece of advice once; the full text with --verbose (and in ``show``)."""

from __future__ import annotations

import io

from rich.console import Console

from perfloop.records import BenchmarkResult, ResultStatus, Sample
from perfloop.report.text import render_results

NOISE = ("wall_time varies by {cv}% (coefficient of variation; IQR/median 9%), more than the 5% tolerance: this "
         "benchmark's noise exceeds its tolerance; use more processes (now 10) or, for CPU-bound "
         "code, the instructions metric")
OUTLIERS = ("3 of 50 wall_time values (6%) are outliers beyond the IQR fences: something else on the "
            "machine disturbed the measurement; rerun on a quiet machine or with more processes")


def results() -> list[BenchmarkResult]:
    return [BenchmarkResult(name=f"checkout[items={n}]", kind="callable", status=ResultStatus.OK,
                            samples=(Sample("wall_time", 0.01),),
                            warnings=(NOISE.format(cv=10 + n), OUTLIERS))
            for n in range(5)]


def render(detail: bool) -> str:
    out = io.StringIO()
    render_results(Console(file=out, width=100, force_terminal=False), results(), title="run #1",
                   detail=detail, more="in full: perfloop show 1")
    return out.getvalue()


def test_warnings_are_grouped_by_default() -> None:
    text = render(detail=False)
    below = text.split("with warnings", 1)[1]
    for n in range(5):
        lines = [line for line in below.splitlines() if f"checkout[items={n}]" in line]
        assert len(lines) == 1, below
        assert f"wall_time varies by {10 + n}%, more than the 5% tolerance (+1 more)" in lines[0]
    assert below.count("use more processes (now 10)") == 1
    assert below.count("rerun on a quiet machine") == 1
    assert "perfloop show 1" in text
    assert len(below.strip().splitlines()) <= 5 + 2 + 1


def test_verbose_shows_every_warning_in_full() -> None:
    text = render(detail=True)
    assert text.count("use more processes (now 10)") == 5
    assert text.count("beyond the IQR fences") == 5
