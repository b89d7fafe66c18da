"""The HTML report: one self-contained file that carries the series, change points and verdicts."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from perfloop.records import BenchmarkResult, RunStatus, Sample
from perfloop.report.html import history_figure, load_gate_json, render_report
from perfloop.store import Store
from perfloop.workflows.history import all_histories

ENV_A = {"fingerprint": "a" * 16, "cpu_model": "Machine A"}
ENV_B = {"fingerprint": "b" * 16, "cpu_model": "Machine B"}


def sha(i: int) -> str:
    return hashlib.sha1(f"c{i}".encode()).hexdigest()


def fill(store: Store) -> None:
    """30 runs: 1.0 s, a 20% regression at run 12, a new machine (and +30%) at run 24."""
    rng = np.random.default_rng(9)
    for i in range(30):
        level = 1.0 if i < 12 else 1.2 if i < 24 else 1.56
        run_id = store.begin_run(label=f"r{i}", commit=sha(i), branch="main", dirty=False,
                                 environment=ENV_A if i < 24 else ENV_B, settings={}, project="/p")
        samples = tuple(Sample("wall_time", float(level * (1 + 0.01 * rng.standard_normal())),
                               worker=w, index=k) for w in range(4) for k in range(2))
        store.add_result(run_id, BenchmarkResult("render</script><b>", "callable", "ok", samples=samples))
        store.finish_run(run_id, RunStatus.COMPLETE)


GATE = {
    "passed": False, "exit_code": 1, "summary": "gate FAILED: 1 fail, 1 pass",
    "base": {"ref": "main", "commit": sha(1)}, "head": {"ref": "HEAD", "commit": sha(2), "dirty": False},
    "benchmarks": [
        {"name": "render", "status": "fail", "side_effects": ["improved cpu_time but regressed wall_time"],
         "metrics": [{"benchmark": "render", "metric": "wall_time", "verdict": "regressed",
                      "status": "fail", "change": 0.21, "ci_low": 0.15, "ci_high": 0.27,
                      "p_value": 1e-6, "p_adjusted": 2e-6, "unit": "s", "approvals": [], "notes": []}]},
        {"name": "parse", "status": "pass",
         "metrics": [{"benchmark": "parse", "metric": "wall_time", "verdict": "unchanged",
                      "status": "pass", "change": 0.004, "ci_low": -0.01, "ci_high": 0.02,
                      "p_value": 0.6, "p_adjusted": 0.6, "unit": "s",
                      "approvals": [{"author": "Ann", "reason": "expected: new feature"}],
                      "notes": ["measured in 6 blocks"]}]},
    ],
    "approvals": [], "notes": ["inconclusive verdicts pass with a warning"],
}


def external_references(html: str) -> list[str]:
    """Every script, stylesheet, image or frame the page would fetch from the network."""
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", html, flags=re.IGNORECASE)
    refs = [t for t in tags if re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", t, re.IGNORECASE)]
    refs += re.findall(r"@import\s+url\(\s*['\"]?https?://", html)
    return refs


def page_data(html: str, element: str = "perfloop-data") -> dict:
    match = re.search(rf'<script type="application/json" id="{element}">(.*?)</script>', html, re.DOTALL)
    assert match, element
    return json.loads(match.group(1))


@pytest.fixture
def filled(store: Store) -> Store:
    fill(store)
    return store


def test_report_is_one_offline_file_with_the_series_and_change_points(filled: Store) -> None:
    histories = all_histories(filled, all_environments=True)
    html = render_report(histories=histories, store_url=filled.url)
    assert external_references(html) == []
    assert "Plotly.newPlot" in html and len(html) > 1_000_000         # plotly.js is inline
    # the series data and the change points, as numbers
    [series] = page_data(html)["series"]
    assert [p["commit"] for p in series["points"]] == [sha(i) for i in range(30)]
    assert [(c["index"], c["kind"]) for c in series["change_points"]] == [(12, "regression"),
                                                                         (24, "environment")]
    assert series["change_points"][0]["commit_range"] == f"{sha(11)[:10]}..{sha(12)[:10]}"
    # the chart marks them where the new level starts, and the table lists them
    figures = page_data(html, "perfloop-figures")
    [figure] = figures.values()
    assert [s["x0"] for s in figure["layout"]["shapes"] if s["type"] == "line"] == [11.5, 23.5]
    assert figure["data"][0]["y"] == pytest.approx([p["value"] for p in series["points"]])
    assert 'data-kind="regression"' in html and 'data-kind="environment"' in html
    assert "cpu_model: Machine A -&gt; Machine B" in html
    # a name that looks like markup is escaped, and cannot close the JSON's script element early
    assert "render</script><b>" not in html and "render&lt;/script&gt;&lt;b&gt;" in html


def test_environment_changes_without_a_shift_are_dashed_lines() -> None:
    from datetime import datetime, timezone

    from perfloop.store.series import Series, SeriesKey, SeriesPoint
    from perfloop.workflows.history import analyze_series
    when = datetime(2024, 1, 1, tzinfo=timezone.utc)
    points = tuple(SeriesPoint(run_id=i, commit=sha(i), dirty=False, label=None, started_at=when,
                               environment="a" * 16 if i < 6 else "b" * 16, environment_id=1 if i < 6 else 2,
                               value=1.0, n=1, worker_medians=(1.0,)) for i in range(12))
    history = analyze_series(Series(SeriesKey("b", "wall_time", "main", None), "s", "lower", points))
    figure = history_figure(history)
    [shape] = [s for s in figure["layout"]["shapes"] if s["type"] == "line"]
    assert shape["x0"] == 5.5 and shape["line"]["dash"] == "dash"


def test_gate_verdicts_are_shown(filled: Store) -> None:
    html = render_report(gate=load_gate_json(json.dumps(GATE)))
    assert external_references(html) == []
    assert "gate FAILED: 1 fail, 1 pass" in html
    assert html.count('class="gate-row"') == 3          # two metrics and one side effect
    assert "+21.0%" in html and "approved by Ann: expected: new feature" in html
    assert page_data(html)["gate"]["passed"] is False
    with pytest.raises(ValueError, match="benchmarks"):
        load_gate_json('{"passed": true}')


def test_comparison_distributions_with_verdicts(filled: Store) -> None:
    from perfloop.analysis.comparison import compare_runs
    runs = filled.list_runs(limit=None)
    base = filled.get_run(min(r.id for r in runs))
    head = filled.get_run(max(r.id for r in runs))
    html = render_report(comparison=compare_runs(base, head))
    assert external_references(html) == []
    figures = page_data(html, "perfloop-figures")
    [figure] = figures.values()
    assert [d["type"] for d in figure["data"]] == ["box", "box"]
    assert figure["data"][0]["y"] == pytest.approx(base.results[0].values("wall_time"))
    [row] = verdict_rows(html)
    assert row[:2] == ["render&lt;/script&gt;&lt;b&gt;", "wall_time"] and row[-1] == "regressed"


def verdict_rows(html: str) -> list[list[str]]:
    """The cells of each row of the comparison table, as the page shows them."""
    rows = re.findall(r'<tr class="verdict-row">(.*?)</tr>', html, flags=re.DOTALL)
    return [[c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, flags=re.DOTALL)] for r in rows]


def test_the_comparison_table_names_the_benchmark_that_regressed(store: Store) -> None:
    # "slow" is 40% slower on the head run, "steady" is not: only its row may say regressed
    # (between separate runs the default drift term hides changes under about 20%)
    from perfloop.analysis.comparison import compare_runs
    rng = np.random.default_rng(4)
    ids = []
    for i, slowdown in enumerate((1.0, 1.4)):
        run_id = store.begin_run(label=f"r{i}", commit=sha(i), branch="main", dirty=False,
                                 environment=ENV_A, settings={}, project="/p")
        for name, level in (("slow", slowdown), ("steady", 1.0)):
            samples = tuple(Sample("wall_time", float(level * (1 + 0.01 * rng.standard_normal())),
                                   worker=w, index=k) for w in range(8) for k in range(3))
            store.add_result(run_id, BenchmarkResult(name, "callable", "ok", samples=samples))
        store.finish_run(run_id, RunStatus.COMPLETE)
        ids.append(run_id)
    html = render_report(comparison=compare_runs(store.get_run(ids[0]), store.get_run(ids[1])))
    verdicts = {(row[0], row[1]): row[-1] for row in verdict_rows(html)}
    assert set(verdicts) == {("slow", "wall_time"), ("steady", "wall_time")}
    assert verdicts["slow", "wall_time"] == "regressed"
    # separate runs: drift between them may leave "steady" undecided, never called a change
    assert verdicts["steady", "wall_time"] in ("unchanged", "inconclusive")
    [change] = [row[4] for row in verdict_rows(html) if row[0] == "slow"]
    assert change.startswith("+") and 35 <= float(change.strip("+%")) <= 45, change


def test_report_command_writes_the_file(filled: Store, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from perfloop.cli.app import app
    gate = tmp_path / "gate.json"
    gate.write_text(json.dumps(GATE))
    out = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(app, ["report", "-o", str(out), "--gate", str(gate), "--json",
                                      "--store", filled.url, "-C", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["series"] == 2 and summary["change_points"] == 1 and summary["gate"] is True
    html = out.read_text()
    assert external_references(html) == [] and "gate FAILED" in html
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    from perfloop.cli.app import main
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "-o", str(out), "--gate", str(bad), "--store", filled.url, "-C", str(tmp_path)])
    assert exit_info.value.code == 2
