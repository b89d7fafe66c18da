"""The audit: each detector on a history built to hold its one anti-pattern, and a clean history.

Each test builds a real git repository, a store and a configuration, and checks the finding's
evidence (the commits, entries or benchmarks it names), not just that something was said.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from memory_util import add_run, cli, commit, new_repo

from perfloop.errors import ConfigError
from perfloop.store import Store
from perfloop.workflows.audit import run_audit

CONFIG = '[[benchmark]]\nname = "fast"\ncallable = "app:work"\n'
STEADY = {"wall_time": [1.0, 1.01, 0.99, 1.0, 1.005]}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = new_repo(tmp_path / "proj")
    commit(root, "initial", {"perfloop.toml": CONFIG, "app.py": "def work():\n    return 1\n"},
           days_ago=30)
    return root


@pytest.fixture
def db(tmp_path: Path) -> Store:
    with Store.open(str(tmp_path / "s.db")) as store:
        yield store


def findings(root: Path, db: Store, only: str | None = None) -> dict[str, tuple[str, ...]]:
    report = run_audit(root, db, only=[only] if only else None)
    assert report.errors == ()
    return {f.pattern: f.subjects for f in report.findings}


def _clean(repo: Path, db: Store) -> str:
    """A history that does everything right: measured before, one change at a time, journaled."""
    parent = commit(repo, "pricing table", {"app.py": "def work():\n    return 2\n"}, days_ago=10)
    add_run(db, commit=parent, metrics=STEADY)
    sha = commit(repo, "Speed up pricing by caching rules", {"app.py": "def work():\n    return 3\n"},
                 days_ago=5)
    base = add_run(db, commit=parent, metrics=STEADY)
    head = add_run(db, commit=sha, metrics=STEADY)
    db.add_change(title="cache the pricing rules", workflow="profile-and-patch", status="verified",
                  hypothesis="rules are rebuilt per line", expected={"benchmark": "fast", "metric": "wall_time"},
                  actual={"verdict": "verified", "side_effects": []}, baseline_run_id=base,
                  verification_run_ids=[head], commits=[sha])
    return sha


def test_a_clean_history_reports_nothing(repo: Path, db: Store) -> None:
    _clean(repo, db)
    report = run_audit(repo, db)
    assert [f.to_dict() for f in report.findings] == [] and report.experiment is None
    assert report.stats["performance_commits"] == 1


def test_premature_optimization_names_the_unmeasured_commit(repo: Path, db: Store) -> None:
    _clean(repo, db)
    commit(repo, "report header", {"app.py": "def work():\n    return 5\n"}, days_ago=3)
    blind = commit(repo, "Optimize the report loop", {"app.py": "def work():\n    return 4\n"}, days_ago=2)
    docs = commit(repo, "Optimize the docs build", {"docs/x.md": "faster"}, days_ago=1)
    assert findings(repo, db) == {"premature-optimization": (blind,)}
    assert docs not in findings(repo, db)["premature-optimization"]


def test_several_changes_between_two_runs(repo: Path, db: Store) -> None:
    base = commit(repo, "start", {"app.py": "x = 0\n"}, days_ago=9)
    add_run(db, commit=base, metrics=STEADY)
    one = commit(repo, "Speed up parsing", {"app.py": "x = 1\n"}, days_ago=8)
    two = commit(repo, "Faster pricing", {"app.py": "x = 2\n"}, days_ago=7)
    add_run(db, commit=two, metrics=STEADY)
    assert set(findings(repo, db, "several-changes")["several-changes"]) == {one, two}


def test_several_changes_shipped_in_one_release(repo: Path, db: Store) -> None:
    from gitutil import git
    git(repo, "tag", "v1")
    one = commit(repo, "Speed up parsing", {"app.py": "x = 1\n"}, days_ago=8)
    add_run(db, commit=one, metrics=STEADY)            # measured alone: not part of the batch
    two = commit(repo, "Faster pricing", {"app.py": "x = 2\n"}, days_ago=7)
    three = commit(repo, "Optimize the report", {"app.py": "x = 3\n"}, days_ago=6)
    git(repo, "tag", "-a", "v2", "-m", "release 2")
    [finding] = run_audit(repo, db, only=["several-changes"]).findings
    assert finding.subjects == (two, three) and finding.evidence[0].startswith("release v2: 2 ")


def test_several_changes_in_one_verified_entry(repo: Path, db: Store) -> None:
    change = db.add_change(title="two patches", workflow="profile-and-patch", hypothesis="h",
                           actual={"verdict": "verified", "attributable": False})
    assert findings(repo, db, "several-changes") == {"several-changes": (str(change),)}


def test_missing_baseline_and_no_hypothesis(repo: Path, db: Store) -> None:
    run = add_run(db, commit=None, metrics=STEADY)
    blind = db.add_change(title="pool 8", workflow="manual", hypothesis="waits", actual={"text": "x"})
    guess = db.add_change(title="patched", workflow="profile-and-patch", hypothesis=None,
                          baseline_run_id=run, actual={"verdict": "verified"})
    db.add_change(title="approved regression", workflow="regression", status="approved")
    assert findings(repo, db, "missing-baseline") == {"missing-baseline": (str(blind),)}
    assert findings(repo, db, "no-hypothesis") == {"no-hypothesis": (str(guess),)}


def test_metric_myopia_names_the_metric_that_moved(repo: Path, db: Store) -> None:
    change = db.add_change(title="faster checkout", workflow="profile-and-patch", status="verified",
                           hypothesis="h", expected={"metric": "wall_time"},
                           actual={"verdict": "verified", "side_effects": ["peak_rss +40% (regressed)"]})
    report = run_audit(repo, db, only=["metric-myopia"])
    [finding] = report.findings
    assert finding.subjects == (str(change),)
    assert "judged on wall_time while peak_rss +40%" in finding.evidence[0]


def test_over_instrumentation_names_the_unused_benchmark(repo: Path, db: Store) -> None:
    for _ in range(10):
        add_run(db, commit=None, benchmark="unused", metrics=STEADY, duration=90.0)
        add_run(db, commit=None, benchmark="gated", metrics=STEADY, duration=90.0, label="gate-head")
    [finding] = run_audit(repo, db, only=["over-instrumentation"]).findings
    assert finding.subjects == ("unused",)
    assert "10 runs, 0.2 h of measurement" in finding.evidence[0]
    db.add_change(title="drop the unused loop", workflow="manual", hypothesis="h",
                  expected={"benchmark": "unused", "metric": "wall_time"})
    assert "over-instrumentation" not in findings(repo, db, "over-instrumentation")


def test_ignoring_the_tail(repo: Path, db: Store) -> None:
    add_run(db, commit=None, benchmark="api", kind="http",
            metrics={"latency_p50": [10, 11, 10], "throughput": [50, 50, 49]})
    add_run(db, commit=None, benchmark="web", kind="http",
            metrics={"latency_p50": [10, 11, 10], "latency_p99": [30, 31, 30]})
    change = db.add_change(title="faster web", workflow="manual", hypothesis="h",
                           expected={"benchmark": "web", "metric": "latency_p50"})
    # an incident about a callable benchmark, judged on wall time, is not about latency
    inc = db.add_incident(title="slow pricing", project="/p", benchmarks=["fast[items=5]"])
    db.add_change(title="slow pricing", workflow="profile-and-patch", hypothesis="h",
                  incident_id=inc, expected={"metric": "wall_time"})
    web = db.add_incident(title="slow web", project="/p", benchmarks=["web"])
    on_mean = db.add_change(title="slow web", workflow="profile-and-patch", hypothesis="h",
                            incident_id=web, expected={"metric": "wall_time"})
    assert set(findings(repo, db, "ignoring-the-tail")["ignoring-the-tail"]) == {
        "api", str(change), str(on_mean)}


def test_goal_and_metric_mismatch(repo: Path, db: Store) -> None:
    wrong = db.add_change(title="cut the checkout p99", workflow="manual", hypothesis="tail latency",
                          expected={"benchmark": "checkout", "metric": "throughput"})
    db.add_change(title="cut the checkout p99", workflow="manual", hypothesis="tail latency",
                  expected={"benchmark": "checkout", "metric": "latency_p99"})
    inc = db.add_incident(title="rps dropped after deploy", project="/p", metric="latency_p99")
    [finding] = run_audit(repo, db, only=["goal-mismatch"]).findings
    assert len(finding.subjects) == 2
    assert finding.subjects[0].startswith(f"journal entry {wrong} ")
    assert finding.subjects[1].startswith(f"incident #{inc} ")


def test_benchmark_decay_stale_noisy_and_inconclusive(repo: Path, db: Store) -> None:
    add_run(db, commit=None, benchmark="other", metrics=STEADY)
    assert findings(repo, db, "benchmark-decay") == {"benchmark-decay": ("fast",)}   # never run
    add_run(db, commit=None, benchmark="fast", metrics={"wall_time": [1.0, 1.4, 0.7, 1.2, 0.8]})
    [finding] = run_audit(repo, db, only=["benchmark-decay"]).findings
    assert finding.subjects == ("fast",) and "spread" in finding.evidence[0]
    add_run(db, commit=None, benchmark="fast", metrics=STEADY)
    ids = [db.add_change(title="gate inconclusive: fast", workflow="regression",
                         status="inconclusive", actual={"status": "inconclusive"},
                         data={"gate": True}) for _ in range(3)]
    assert sorted(findings(repo, db, "benchmark-decay")["benchmark-decay"]) == sorted(map(str, ids))


def test_a_baseline_from_another_environment(repo: Path, db: Store) -> None:
    add_run(db, commit=None, benchmark="fast", metrics=STEADY)
    base = add_run(db, commit=None, metrics=STEADY, environment="old-box")
    head = add_run(db, commit=None, metrics=STEADY, environment="new-box")
    change = db.add_change(title="t", workflow="manual", hypothesis="h", baseline_run_id=base,
                           verification_run_ids=[head], actual={"text": "x"})
    assert findings(repo, db, "benchmark-decay") == {"benchmark-decay": (str(change),)}


def test_configuration_drift_from_the_registry(repo: Path, db: Store) -> None:
    (repo / "perfloop.toml").write_text(CONFIG + '[[parameter]]\nname = "pool"\nfile = "app.py"\n'
                                        'key = "POOL"\nvalue = 4\nwhy = "w"\n')
    (repo / "app.py").write_text("POOL = 8\n")
    assert findings(repo, db, "configuration-drift") == {"configuration-drift": ("pool",)}


def test_a_finding_is_silenced_with_a_reason(repo: Path, db: Store) -> None:
    _clean(repo, db)
    commit(repo, "report header", {"app.py": "y = 0\n"}, days_ago=3)
    blind = commit(repo, "Optimize the report loop", {"app.py": "y = 1\n"}, days_ago=2)
    (repo / "perfloop.toml").write_text(
        CONFIG + f'[[audit.silence]]\nfinding = "premature-optimization"\nmatch = "{blind[:8]}"\n'
                 'reason = "measured on the production dashboard"\n')
    report = run_audit(repo, db)
    assert report.findings == () and report.silenced[0].silenced == "measured on the production dashboard"
    (repo / "perfloop.toml").write_text(
        CONFIG + '[[audit.silence]]\nfinding = "premature-optimization"\nreason = "ok"\n')
    with pytest.raises(ConfigError, match="reason"):
        run_audit(repo, db)


def test_resemblance_and_the_experiment(repo: Path, db: Store) -> None:
    commit(repo, "Optimize the report loop", {"app.py": "y = 1\n"}, days_ago=2)
    report = run_audit(repo, db)
    scores = {r.workflow: r.score for r in report.resemblance}
    assert scores["profile-and-patch"] == 0 and scores["risk-budgeted"] == 0
    assert 0 < scores["regression-aware"] < 1        # a suite, but no runs
    assert report.experiment.startswith("performance changes made without measuring first: ")


def test_audit_command_exit_codes_and_json(repo: Path, db: Store, tmp_path: Path, capsys) -> None:
    store = str(tmp_path / "cli.db")
    code, out = cli(capsys, "audit", "-C", str(repo), "--store", store, "--json")
    data = json.loads(out)
    assert code == 1 and [f["pattern"] for f in data["findings"]] == ["benchmark-decay"] or \
        code == 0 and data["findings"] == []
    commit(repo, "Optimize the report loop", {"app.py": "y = 1\n"}, days_ago=2)
    code, out = cli(capsys, "audit", "-C", str(repo), "--store", store, "--only", "premature-optimization")
    assert code == 1 and "PREMATURE-OPTIMIZATION" in out and "Optimize the report loop" in out
    code, _ = cli(capsys, "audit", "-C", str(repo), "--store", store, "--only", "nonsense")
    assert code == 2


def test_skill_atrophy_after_drills_stop(repo: Path, db: Store) -> None:
    from datetime import timedelta
    from perfloop.store.models import utcnow
    _clean(repo, db)
    # a team that never drilled shows nothing to atrophy
    assert "skill-atrophy" not in findings(repo, db)
    drill = db.add_change(title="drill (easy): find the injected slowdown", workflow="drill",
                          status="solved", created_at=utcnow() - timedelta(days=120))
    assert findings(repo, db, "skill-atrophy") == {"skill-atrophy": (f"drill-{drill}",)}
    [finding] = run_audit(repo, db, only=["skill-atrophy"]).findings
    assert "120 days ago" in finding.evidence[0] and "1 of 1 drills solved" in finding.evidence[0]
    # a recent drill: practice goes on
    db.add_change(title="drill (hard)", workflow="drill", status="stopped",
                  created_at=utcnow() - timedelta(days=3))
    assert findings(repo, db, "skill-atrophy") == {}


# --------------------------------------------------------------------------------------------
# one anti-pattern at a time: each history below is the clean one plus one bad habit, and the
# whole audit (every detector) names that habit and nothing else


def _first_run(db: Store) -> int:
    return min(r.id for r in db.list_runs(limit=None))


def _premature(repo: Path, db: Store) -> tuple[str, ...]:
    commit(repo, "report header", {"app.py": "y = 0\n"}, days_ago=3)
    return (commit(repo, "Optimize the report loop", {"app.py": "y = 1\n"}, days_ago=2),)


def _unattributable(repo: Path, db: Store) -> tuple[str, ...]:
    return (str(db.add_change(title="two patches", workflow="profile-and-patch", hypothesis="h",
                              baseline_run_id=_first_run(db),
                              actual={"verdict": "verified", "attributable": False})),)


def _no_baseline(repo: Path, db: Store) -> tuple[str, ...]:
    return (str(db.add_change(title="pool 8", workflow="manual", hypothesis="threads wait",
                              actual={"text": "x"})),)


def _no_hypothesis(repo: Path, db: Store) -> tuple[str, ...]:
    return (str(db.add_change(title="patched", workflow="profile-and-patch", hypothesis=None,
                              baseline_run_id=_first_run(db), actual={"verdict": "verified"})),)


def _myopia(repo: Path, db: Store) -> tuple[str, ...]:
    return (str(db.add_change(
        title="faster pricing", workflow="profile-and-patch", status="verified", hypothesis="h",
        baseline_run_id=_first_run(db), expected={"metric": "wall_time"},
        actual={"verdict": "verified", "side_effects": ["peak_rss +40% (regressed)"]})),)


def _unused(repo: Path, db: Store) -> tuple[str, ...]:
    for _ in range(10):
        add_run(db, commit=None, benchmark="unused", metrics=STEADY, duration=90.0)
    return ("unused",)


def _slow_profiles(repo: Path, db: Store) -> tuple[str, ...]:
    from perfloop.store.models import utcnow
    ids = [db.add_profile(incident_id=None, hypothesis_id=None, purpose="explore", target="fast",
                          profiler="cprofile", commit=None, dirty=False, created_at=utcnow(),
                          duration=duration, hot_spots=[], signals=[], files={},
                          data={"calls": 10})
           for duration in (30.0, 12.0)]      # 3 s and 1.2 s a call, against 1 s unprofiled
    return (f"profile-{ids[0]}",)


def _costly_gate(repo: Path, db: Store) -> tuple[str, ...]:
    for _ in range(20):          # 20 runs of 1900 s: 10.6 h of CI time, nothing caught
        add_run(db, commit=None, metrics=STEADY, duration=1900.0, label="gate-head")
    return ("gate",)


def _no_tail(repo: Path, db: Store) -> tuple[str, ...]:
    add_run(db, commit=None, benchmark="api", kind="http",
            metrics={"latency_p50": [10, 11, 10], "throughput": [50, 50, 49]})
    return ("api",)


def _wrong_metric(repo: Path, db: Store) -> tuple[str, ...]:
    change = db.add_change(title="cut the checkout p99", workflow="manual", hypothesis="tail latency",
                           baseline_run_id=_first_run(db),
                           expected={"benchmark": "checkout", "metric": "throughput"})
    return (f"journal entry {change} ",)


def _inconclusive(repo: Path, db: Store) -> tuple[str, ...]:
    return tuple(str(db.add_change(title="gate inconclusive: fast", workflow="regression",
                                   status="inconclusive", actual={"status": "inconclusive"},
                                   data={"gate": True})) for _ in range(3))


def _drift(repo: Path, db: Store) -> tuple[str, ...]:
    (repo / "perfloop.toml").write_text(CONFIG + '[[parameter]]\nname = "pool"\nfile = "app.py"\n'
                                        'key = "POOL"\nvalue = 4\nwhy = "w"\n')
    (repo / "app.py").write_text("POOL = 8\n")
    return ("pool",)


def _lapsed_drills(repo: Path, db: Store) -> tuple[str, ...]:
    from datetime import timedelta
    from perfloop.store.models import utcnow
    drill = db.add_change(title="drill (easy): find the injected slowdown", workflow="drill",
                          status="solved", created_at=utcnow() - timedelta(days=120))
    return (f"drill-{drill}",)


@pytest.mark.parametrize("pattern, build", [
    ("premature-optimization", _premature), ("several-changes", _unattributable),
    ("missing-baseline", _no_baseline), ("no-hypothesis", _no_hypothesis),
    ("metric-myopia", _myopia), ("over-instrumentation", _unused),
    ("over-instrumentation", _slow_profiles), ("over-instrumentation", _costly_gate),
    ("ignoring-the-tail", _no_tail), ("goal-mismatch", _wrong_metric),
    ("benchmark-decay", _inconclusive), ("configuration-drift", _drift),
    ("skill-atrophy", _lapsed_drills),
], ids=lambda v: v if isinstance(v, str) else v.__name__.strip("_"))
def test_one_bad_habit_on_a_clean_history_is_the_only_finding(repo: Path, db: Store, pattern, build) -> None:
    _clean(repo, db)
    expected = build(repo, db)
    report = run_audit(repo, db)
    assert report.errors == ()
    assert [f.pattern for f in report.findings] == [pattern], [f.to_dict() for f in report.findings]
    [finding] = report.findings
    assert len(finding.subjects) == len(expected)
    for want in expected:
        assert any(got.startswith(want) for got in finding.subjects), (want, finding.subjects)
    assert report.experiment and report.experiment.startswith(finding.title)


def test_profiler_overhead_evidence_gives_both_times(repo: Path, db: Store) -> None:
    _clean(repo, db)
    _slow_profiles(repo, db)
    [finding] = run_audit(repo, db, only=["over-instrumentation"]).findings
    assert "3e+03 ms a call against 1e+03 ms unprofiled, +200%" in finding.evidence[0]
    assert "py-spy" in finding.next_step


def test_a_gate_that_caught_something_is_worth_its_cost(repo: Path, db: Store) -> None:
    _clean(repo, db)
    _costly_gate(repo, db)
    db.add_change(title="gate failed: fast", workflow="regression", status="failed",
                  actual={"status": "failed"}, data={"gate": True})
    assert run_audit(repo, db).findings == ()
