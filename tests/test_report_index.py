"""The HTML report shows what matters first: an index of regressions and change points at the
top, linked; charts against commits and dates with the tolerance visible; MiB like the CLI;
the gate's own runs are not a history of their own."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from perfloop.records import BenchmarkResult, RunStatus, Sample
from perfloop.report.html import history_figure, render_report
from perfloop.store import Store
from perfloop.workflows.history import all_histories

ENV = {"python": "3.11", "cpu": "test"}


def sha(i: int) -> str:
    return hashlib.sha1(f"c{i}".encode()).hexdigest()


def fill(store: Store) -> None:
    """Per run three benchmarks: 'alpha' flat, 'memory' flat in bytes, 'zeta' 25% slower from
    run 12 (last by name, so an alphabetical page would bury it); plus gate runs of a detached
    base worktree (no branch)."""
    rng = np.random.default_rng(4)
    for i in range(20):
        run_id = store.begin_run(label=f"nightly-{i}", commit=sha(i), branch="main", dirty=False,
                                 environment=ENV, settings={}, project="/p")
        for name, metric, level in (("alpha", "wall_time", 1.0), ("memory", "peak_rss", 50 * 2**20),
                                    ("zeta", "wall_time", 1.0 if i < 12 else 1.25)):
            samples = tuple(Sample(metric, float(level * (1 + 0.001 * rng.standard_normal())),
                                   worker=w, index=k) for w in range(4) for k in range(2))
            store.add_result(run_id, BenchmarkResult(name, "callable", "ok", samples=samples))
        store.finish_run(run_id, RunStatus.COMPLETE)
    for i in range(6):
        run_id = store.begin_run(label="gate-base", commit=sha(100 + i), branch=None, dirty=False,
                                 environment=ENV, settings={}, project="/p")
        samples = tuple(Sample("wall_time", 1.0 + 0.01 * k, worker=k) for k in range(4))
        store.add_result(run_id, BenchmarkResult("alpha", "callable", "ok", samples=samples))
        store.finish_run(run_id, RunStatus.COMPLETE)


def test_index_first_and_what_matters_first(store: Store) -> None:
    fill(store)
    html = render_report(histories=all_histories(store, all_environments=True))
    # the index comes before every chart and links to the regression's chart
    index = html.index('id="index"')
    assert index < html.index('id="history"')
    links = re.findall(r'<li><a class="bad" href="#(h-series-\d+)">([^<]*)</a>', html)
    assert links and "zeta" in links[0][1] and "regression +25" in links[0][1]
    assert f'id="{links[0][0]}"' in html
    # the regressed series is the first chart, though 'zeta' is last by name
    titles = re.findall(r'<h3 id="h-series-\d+">([^<]*)</h3>', html)
    assert titles[0].startswith("zeta")
    # the gate's detached base runs are not charted as a series of their own
    branches = re.findall(r'<div class="sub">branch (\S+) ·', html)
    assert branches and set(branches) == {"main"}, branches


def test_charts_show_commits_tolerance_and_mib(store: Store) -> None:
    fill(store)
    histories = {h.series.key.benchmark: h for h in all_histories(store)}
    alpha = history_figure(histories["alpha"])
    axis = alpha["layout"]["xaxis"]
    assert sha(0)[:7] in axis["ticktext"][0] and "tolerance" in axis["title"]["text"]
    # a 0.1% wiggle does not fill the chart: the y range spans the ±5% tolerance band
    low, high = alpha["layout"]["yaxis"]["range"]
    assert low < 0.95 and high > 1.05
    band = alpha["layout"]["shapes"][0]
    assert band["type"] == "rect" and band["y0"] < 0.96 and band["y1"] > 1.04
    memory = history_figure(histories["memory"])
    assert "MiB" in memory["layout"]["yaxis"]["title"]["text"]
    assert abs(memory["data"][0]["y"][0] - 50) < 1


def test_values_that_round_up_take_the_next_unit() -> None:
    from perfloop.report.units import format_value
    assert format_value(0.99996, "s") == "1 s"
    assert format_value(1023.99 * 1024, "B") == "1 MiB"
    assert format_value(0.00123, "s") == "1.23 ms"
