"""History and change points on stored runs with planted answers.

The store is filled through ``Store.begin_run / add_result / finish_run`` with generated
samples: each run has 5 workers x 3 values with 1% noise around a planted level, so the run's
median sits within about 0.3% of it. The planted history of ``quote`` on ``main``:

    runs  0-19  machine A  100 ms
    runs 20-39  machine A  110 ms   <- a code regression at run 20 (commit 19..20)
    runs 40-49  machine B  130 ms   <- a new machine at run 40: environment, not code
    runs 50-59  machine B  120 ms   <- an improvement at run 50 (commit 49..50)

plus single outlier runs at 10 (x1.5) and 30 (/1.5), which are no change points.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from typer.testing import CliRunner

from perfloop.records import BenchmarkResult, RunStatus, Sample
from perfloop.report.charts import sparkline
from perfloop.store import Store
from perfloop.store.models import ApprovalRow
from perfloop.store.series import NO_BRANCH, environments, load_series
from perfloop.workflows.history import (DetectorSettings, analyze_series, benchmark_history,
                                        detect_all)

ENV_A = {"fingerprint": "a" * 16, "cpu_model": "Machine A", "cpu_count": 2,
         "packages": {"numpy": "2.0.0"}}
ENV_B = {"fingerprint": "b" * 16, "cpu_model": "Machine B", "cpu_count": 2,
         "packages": {"numpy": "2.0.0"}}
OUTLIERS = {10: 1.5, 30: 1 / 1.5}


def sha(i: int) -> str:
    return hashlib.sha1(f"commit {i}".encode()).hexdigest()


def planted_level(i: int) -> float:
    if i < 20:
        return 0.100
    if i < 40:
        return 0.110
    if i < 50:
        return 0.130
    return 0.120


def samples_at(level: float, rng: np.random.Generator, metric: str = "wall_time",
               workers: int = 5, values: int = 3, noise: float = 0.01) -> list[Sample]:
    out = [Sample(metric, level * 3, worker=w, index=0, warmup=True) for w in range(workers)]
    out += [Sample(metric, float(level * (1 + noise * rng.standard_normal())), worker=w, index=k + 1)
            for w in range(workers) for k in range(values)]
    return out


def add_run(store: Store, *, commit: str, env: dict, results: list[BenchmarkResult],
            branch: str | None = "main") -> int:
    run_id = store.begin_run(label=None, commit=commit, branch=branch, dirty=False, environment=env,
                             settings={}, project="/tmp/project")
    for result in results:
        store.add_result(run_id, result)
    store.finish_run(run_id, RunStatus.COMPLETE)
    return run_id


def result(name: str, samples: list[Sample]) -> BenchmarkResult:
    return BenchmarkResult(name, "callable", "ok", samples=tuple(samples),
                           extra={"tolerance": 0.05, "settings": {"processes": 5}})


def build_planted(store: Store) -> None:
    rng = np.random.default_rng(7)
    # another branch, too short to search, measured before main's runs
    for i in range(4):
        add_run(store, commit=sha(100 + i), env=ENV_B, branch="feature",
                results=[result("quote", samples_at(0.2, rng))])
    for i in range(60):
        level = planted_level(i) * OUTLIERS.get(i, 1.0)
        add_run(store, commit=sha(i), env=ENV_A if i < 40 else ENV_B, results=[
            result("quote", samples_at(level, rng)),
            # a stable benchmark: noise only, in both environments at the same level
            result("stable", samples_at(0.050, rng)),
        ])
    # a failed result does not make a point
    add_run(store, commit=sha(60), env=ENV_B, results=[
        BenchmarkResult("quote", "callable", "failed", samples=tuple(samples_at(9.0, rng)),
                        error="boom")])


@pytest.fixture(scope="module")
def planted_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted store, built once (about 250 committed writes) and copied for each test."""
    path = tmp_path_factory.mktemp("planted") / "perfloop.db"
    with Store.open(f"sqlite:///{path}") as built:
        build_planted(built)
    return path


@pytest.fixture
def planted_url(planted_file: Path, tmp_path: Path) -> str:
    copy = tmp_path / "planted.db"
    shutil.copyfile(planted_file, copy)
    return f"sqlite:///{copy}"


@pytest.fixture
def planted(planted_url: str) -> Iterator[Store]:
    with Store.open(planted_url) as opened:
        yield opened


def test_series_points_are_run_medians_in_time_order(planted: Store) -> None:
    series = load_series(planted, benchmark="quote", branch="main", mix_environments=True)
    [quote] = series
    assert quote.key.environment is None and quote.unit == "s" and quote.direction == "lower"
    assert [p.commit for p in quote.points] == [sha(i) for i in range(60)]
    assert [p.environment for p in quote.points] == [ENV_A["fingerprint"]] * 40 + [ENV_B["fingerprint"]] * 20
    first = quote.points[0]
    assert first.n == 15 and len(first.worker_medians) == 5      # warmup values left out
    assert first.value == pytest.approx(0.100, rel=0.01)
    assert first.tolerance == 0.05 and first.processes == 5
    per_class = load_series(planted, benchmark="quote", branch="main")
    assert [len(s) for s in per_class] == [40, 20]
    assert {s.key.environment for s in per_class} == {ENV_A["fingerprint"], ENV_B["fingerprint"]}
    assert [s.key.branch for s in load_series(planted, benchmark="quote", metrics=["wall_time"])
            if s.key.branch != "main"] == ["feature"]


def test_all_environments_history_finds_the_planted_shifts_and_nothing_else(planted: Store) -> None:
    [history] = benchmark_history(planted, "quote", all_environments=True)
    found = [(c.index, c.kind) for c in history.change_points]
    assert found == [(20, "regression"), (40, "environment"), (50, "improvement")]
    regression, machine, improvement = history.change_points
    assert (regression.before.commit, regression.after.commit) == (sha(19), sha(20))
    assert regression.commit_range == f"{sha(19)[:10]}..{sha(20)[:10]}"
    assert regression.magnitude == pytest.approx(0.10, abs=0.01)
    assert regression.pvalue < 0.001
    assert improvement.magnitude == pytest.approx(-1 / 13, abs=0.01)
    assert (improvement.before.commit, improvement.after.commit) == (sha(49), sha(50))
    # the environment change is marked, with what changed
    assert machine.environment_change is not None
    assert (machine.before.commit, machine.after.commit) == (sha(39), sha(40))
    assert [e.index for e in history.environment_changes] == [40]
    [diff] = [d for d in history.environment_changes[0].differences if d.identity]
    assert (diff.key, diff.base, diff.head) == ("cpu_model", "Machine A", "Machine B")


def test_default_history_stays_in_the_latest_environment(planted: Store) -> None:
    [history] = benchmark_history(planted, "quote")
    assert history.series.key.environment == ENV_B["fingerprint"]
    assert history.series.key.branch == "main"
    assert len(history.series) == 20
    assert [(c.index, c.kind) for c in history.change_points] == [(10, "improvement")]
    assert history.change_points[0].after.commit == sha(50)
    assert any("other environment class" in n for n in history.notes)
    [older] = benchmark_history(planted, "quote", environment=ENV_A["fingerprint"][:6])
    assert [(c.index, c.after.commit) for c in older.change_points] == [(20, sha(20))]


def test_outliers_and_noise_give_no_change_points(planted: Store) -> None:
    [stable] = benchmark_history(planted, "stable", all_environments=True)
    assert stable.change_points == ()
    assert [e.index for e in stable.environment_changes] == [40]


def test_detect_lists_every_series_newest_first(planted: Store) -> None:
    detection = detect_all(planted)
    found = [(c.history.series.key.benchmark, c.history.series.key.environment, c.change.after.commit)
             for c in detection.changes]
    assert found == [("quote", ENV_B["fingerprint"], sha(50)), ("quote", ENV_A["fingerprint"], sha(20))]
    assert detection.series == 5 and detection.too_short == 1     # quote/stable x A/B, feature
    assert all(c.change.environment_change is None for c in detection.changes)
    mixed = detect_all(planted, all_environments=True, branch="main")
    assert [c.change.kind for c in mixed.changes] == ["improvement", "environment", "regression"]
    # since: only shifts whose new level starts at or after that time
    since = load_series(planted, benchmark="quote", branch="main", mix_environments=True)[0].points[45].started_at
    assert [c.change.after.commit for c in detect_all(planted, since=since).changes] == [sha(50)]
    data = json.loads(json.dumps(detection.to_dict(), allow_nan=False))     # JSON-ready, strictly
    assert [c["commit_after"] for c in data["change_points"]] == [sha(50), sha(20)]
    assert (data["series"], data["too_short"], len(data["series_searched"])) == (5, 1, 5)


def test_approvals_show_in_the_history(planted: Store) -> None:
    with planted._write("approving") as session:
        session.add(ApprovalRow(benchmark="quote", metric=None, commit=sha(20),
                                reason="correctness fix needs the copy", author="Ann", data={}))
        session.add(ApprovalRow(benchmark="other", metric=None, commit=sha(20), reason="unrelated one",
                                author="Bob", data={}))
    [history] = benchmark_history(planted, "quote", all_environments=True)
    [approval] = history.approvals
    assert approval.author == "Ann" and history.approval_index(approval) == 20
    assert history.to_dict()["approvals"][0]["index"] == 20


def test_detector_settings_and_short_series(planted: Store) -> None:
    [short] = benchmark_history(planted, "quote", branch="feature")
    assert short.change_points == () and "change points need at least 10" in short.notes[0]
    # a minimum magnitude above the 7.7% improvement keeps only the bigger shifts
    [history] = benchmark_history(planted, "quote", all_environments=True,
                                  settings=DetectorSettings(min_magnitude=0.09))
    assert [c.index for c in history.change_points] == [20, 40]
    with pytest.raises(Exception, match="min_size"):
        DetectorSettings(min_size=1)


def test_unknown_benchmark_is_a_usage_error(planted: Store) -> None:
    from perfloop.errors import UsageError
    with pytest.raises(UsageError, match="no stored results"):
        benchmark_history(planted, "nope")


def test_detached_runs_form_their_own_branch(store: Store) -> None:
    rng = np.random.default_rng(1)
    for i in range(3):
        add_run(store, commit=sha(i), env=ENV_A, branch=None, results=[result("q", samples_at(1.0, rng))])
    [series] = load_series(store)
    assert series.key.branch == NO_BRANCH and len(series) == 3
    assert load_series(store, branch=NO_BRANCH)[0].key == series.key
    assert environments(store, [series.points[0].environment_id])[series.points[0].environment_id][
        "cpu_model"] == "Machine A"


def test_higher_is_better_metrics_regress_downwards(store: Store) -> None:
    rng = np.random.default_rng(3)
    for i in range(24):
        level = 1000.0 if i < 12 else 900.0
        add_run(store, commit=sha(i), env=ENV_A, results=[result("api", samples_at(level, rng, "throughput"))])
    [series] = load_series(store)
    history = analyze_series(series)
    assert series.direction == "higher"
    assert [(c.index, c.kind) for c in history.change_points] == [(12, "regression")]


def test_sparkline_marks_and_scales() -> None:
    line = sparkline([1, 1, 1, 2, 2, 2])
    assert line == "▁▁▁███"
    assert len(sparkline(list(range(200)), width=50)) == 50
    assert sparkline([3.0, 3.0]) == "▄▄"
    assert sparkline([]) == ""


def test_cli_history_and_detect_json(planted_url: str) -> None:
    from perfloop.cli.app import app
    runner = CliRunner()
    out = runner.invoke(app, ["history", "quote", "--all-environments", "--json", "--store", planted_url])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    [series] = data["series"]
    assert [c["index"] for c in series["change_points"]] == [20, 40, 50]
    assert series["change_points"][1]["kind"] == "environment"
    text = runner.invoke(app, ["history", "quote", "--all-environments", "--store", planted_url])
    assert text.exit_code == 0, text.output
    assert sha(20)[:10] in text.stdout and "environment" in text.stdout
    detect = runner.invoke(app, ["detect", "--json", "--store", planted_url])
    assert detect.exit_code == 0, detect.output
    assert [c["commit_after"] for c in json.loads(detect.stdout)["change_points"]] == [sha(50), sha(20)]
    since = runner.invoke(app, ["detect", "--since", "2000-01-01", "--store", planted_url])
    assert since.exit_code == 0 and sha(50)[:10] in since.stdout
    from perfloop.cli.app import main
    with pytest.raises(SystemExit) as exit_info:      # the entry point turns errors into exit 2
        main(["history", "nope", "--store", planted_url])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", "--since", "last tuesday", "--store", planted_url])
    assert exit_info.value.code == 2


def test_each_series_says_the_smallest_step_it_would_show(planted_url: str) -> None:
    """Run medians of 15 values with 1% noise spread about 0.3% (1.25 x 1% / sqrt(15)); the
    ``stable`` series has no change point, and says how small a step could still hide."""
    from perfloop.cli.app import app
    runner = CliRunner()
    out = runner.invoke(app, ["history", "stable", "--json", "--store", planted_url])
    assert out.exit_code == 0, out.output
    [series] = json.loads(out.stdout)["series"]
    assert series["change_points"] == []
    sens = series["sensitivity"]
    assert sens["points"] == 20 and 0.001 < sens["noise"] < 0.006
    # 20 runs: (t + z(0.8)) x noise x sqrt(2/10 + ...) x (1 + 2.5/sqrt(20)), about 4 noise sd.
    assert 3.0 < sens["min_detectable_step"] / sens["noise"] < 5.5
    text = runner.invoke(app, ["history", "stable", "--store", planted_url], env={"COLUMNS": "80"})
    assert "no change points" in text.stdout
    assert f"smallest step it would show: {sens['min_detectable_step'] * 100:.1f}%" in text.stdout
    detect = runner.invoke(app, ["detect", "--json", "--store", planted_url])
    searched = json.loads(detect.stdout)["series_searched"]
    assert {(s["benchmark"], s["branch"], s["runs"]) for s in searched} >= {
        ("quote", "main", 40), ("stable", "main", 20), ("quote", "feature", 4)}
    short = [s for s in searched if s["branch"] == "feature"]
    assert short[0]["sensitivity"] is None              # 4 runs: too short to search
    text = runner.invoke(app, ["detect", "--store", planted_url], env={"COLUMNS": "80"})
    assert "series searched" in text.stdout and "min step" in text.stdout


def test_since_takes_dates_and_spans_back_from_now() -> None:
    from datetime import datetime, timezone

    from perfloop.cli.history_cmds import parse_since
    from perfloop.errors import UsageError
    now = datetime(2024, 5, 10, 12, 0, tzinfo=timezone.utc)
    assert parse_since("7d", now=now) == datetime(2024, 5, 3, 12, 0, tzinfo=timezone.utc)
    assert parse_since("12h", now=now) == datetime(2024, 5, 10, 0, 0, tzinfo=timezone.utc)
    assert parse_since("2w", now=now) == datetime(2024, 4, 26, 12, 0, tzinfo=timezone.utc)
    assert parse_since("2024-05-01") == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert parse_since(None) is None
    with pytest.raises(UsageError, match="--since"):
        parse_since("yesterday")


def test_series_queries_on_every_backend(any_store: Store) -> None:
    """The JSON lookups (tolerance, processes) and the sample scan work on PostgreSQL too."""
    rng = np.random.default_rng(2)
    for i in range(3):
        add_run(any_store, commit=sha(i), env=ENV_A if i < 2 else ENV_B, branch=None if i == 1 else "main",
                results=[result("quote[items=10]", samples_at(0.1 * (i + 1), rng))])
    [main] = load_series(any_store, benchmark="quote", branch="main", mix_environments=True)
    assert [p.commit for p in main.points] == [sha(0), sha(2)]
    assert main.points[1].value == pytest.approx(0.3, rel=0.02)
    assert (main.points[0].tolerance, main.points[0].processes) == (0.05, 5)
    assert [s.key.branch for s in load_series(any_store, environment=ENV_A["fingerprint"][:4])] == [NO_BRANCH, "main"]
    assert load_series(any_store, benchmark="other") == []
