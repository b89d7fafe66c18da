"""Incident mode as a library: mode, hypotheses, refusals, baseline and verify, journal entry.

Verdicts are tested on data whose answer is known: a fake metrics endpoint whose latency
histogram and memory gauge are made up interval by interval (scrape baseline and verify, no
waiting), and made-up verdicts for the judgement. The real profiler runs on a copy of the
example shop, where the hot spot is known (marked slow).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest

from perfloop.config import load_config
from perfloop.errors import ConfigError, UsageError
from perfloop.store import Store
from perfloop.store.models import ChangeRow
from perfloop.workflows import incident as inc
from perfloop.workflows.modes import project_mode

from gitutil import git

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"

CONFIG = '''
[defaults]
processes = 2
values = 2

[[benchmark]]
name = "toy"
callable = "toymod:work"
'''




@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "svc"
    root.mkdir()
    (root / "toymod.py").write_text("def work():\n    return sum(range(100))\n")
    (root / "perfloop.toml").write_text(CONFIG)
    (root / ".gitignore").write_text(".perfloop/\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "service")
    return root


@pytest.fixture
def db(project: Path) -> Iterator[Store]:
    (project / ".perfloop").mkdir(exist_ok=True)
    with Store.open(f"sqlite:///{project / '.perfloop' / 'perfloop.db'}") as store:
        yield store


# -- mode, opening, closing ----------------------------------------------------------------------

def test_opening_an_incident_switches_the_mode_and_closing_returns_it(project: Path, db: Store) -> None:
    assert project_mode(db, project)["mode"] == "development" and inc.incident_banner(db, project) is None
    opened = inc.open_incident(db, project, "checkout p99 spike", benchmarks=["toy"], metric="p99",
                               config=load_config(project))
    assert opened.metric == "latency_p99" and opened.benchmarks == ("toy",)
    assert opened.commit_at_open == git(project, "rev-parse", "HEAD")
    state = project_mode(db, project)
    assert state["mode"] == "incident" and state["incident"]["id"] == opened.id
    banner = inc.incident_banner(db, project)
    assert banner and banner.startswith("INCIDENT MODE: #") and "checkout p99 spike" in banner
    assert "next: perfloop hypothesis" in banner
    with pytest.raises(UsageError, match="already open"):
        inc.open_incident(db, project, "another")
    closed = inc.close_incident(db, project, note="false alarm")
    assert closed.status == "closed" and closed.note == "false alarm"
    state = project_mode(db, project)
    assert state["mode"] == "development"
    # closed without verify: the hotfix's effect was never measured, an open loop until it is
    [loop] = state["open_loops"]
    assert loop["kind"] == "hotfix" and loop["title"] == "checkout p99 spike"
    assert "perfloop compare" in loop["closes_with"]
    with pytest.raises(UsageError, match="none is open"):
        inc.close_incident(db, project)


def test_incident_mode_is_per_project(project: Path, db: Store, tmp_path: Path) -> None:
    inc.open_incident(db, project, "one")
    other = tmp_path / "other"
    other.mkdir()
    assert inc.current_incident(db, other) is None
    inc.open_incident(db, other, "two")
    assert [i.title for i in inc.list_incidents(db)] == ["two", "one"]
    assert [i.title for i in inc.list_incidents(db, project)] == ["one"]


def test_unknown_benchmarks_and_metrics_are_refused(project: Path, db: Store) -> None:
    config = load_config(project)
    with pytest.raises(ConfigError, match="no benchmark named nope"):
        inc.open_incident(db, project, "x", benchmarks=["nope"], config=config)
    with pytest.raises(UsageError, match="unknown metric"):
        inc.open_incident(db, project, "x", benchmarks=["toy"], metric="speediness", config=config)
    assert inc.current_incident(db, project) is None


# -- hypothesis first --------------------------------------------------------------------------------

def test_a_hypothesis_needs_an_incident_and_checks_its_names(project: Path, db: Store) -> None:
    with pytest.raises(UsageError, match="needs an open incident") as err:
        inc.add_hypothesis(db, project, "x is slow")
    assert "perfloop incident open" in (err.value.hint or "")
    inc.open_incident(db, project, "slow")
    with pytest.raises(UsageError, match="not a module or module:function"):
        inc.add_hypothesis(db, project, "x", expect=["shop/pricing.py"])
    hyp = inc.add_hypothesis(db, project, "rules recomputed per line",
                             expect=["shop.pricing:apply_discounts"], expected_share=0.5, expected_effect=-0.5)
    assert (hyp.expect, hyp.expected_share, hyp.expected_effect) == (
        ("shop.pricing:apply_discounts",), 0.5, -0.5)
    assert inc.current_incident(db, project).hypothesis.id == hyp.id


def test_profile_without_a_hypothesis_is_refused_with_what_to_run(project: Path, db: Store) -> None:
    from perfloop.workflows.profiling import profile
    inc.open_incident(db, project, "slow", benchmarks=["toy"])
    with pytest.raises(UsageError, match="has no hypothesis yet") as err:
        profile(db, project, config=load_config(project))
    assert 'perfloop hypothesis "' in (err.value.hint or "") and "--explore" in (err.value.hint or "")
    assert not list((project / ".perfloop").glob("profiles/*"))


def test_verify_without_a_baseline_is_refused_with_what_to_run(project: Path, db: Store) -> None:
    from perfloop.workflows.verify import verify
    config = load_config(project)
    with pytest.raises(UsageError, match="needs an open incident"):
        verify(config, db)
    inc.open_incident(db, project, "slow", benchmarks=["toy"])
    with pytest.raises(UsageError, match="has no hypothesis"):
        verify(config, db)
    inc.add_hypothesis(db, project, "toy is slow", expect=["toymod:work"])
    with pytest.raises(UsageError, match="has no baseline") as err:
        verify(config, db)
    assert "perfloop baseline" in (err.value.hint or "") and "git stash" in (err.value.hint or "")
    assert db.list_runs() == []        # refused before measuring anything


def test_hit_rate_over_time(project: Path, db: Store) -> None:
    for title, outcome in (("a", "confirmed"), ("b", "refuted"), ("c", "confirmed"), ("d", None)):
        inc.open_incident(db, project, title)
        hyp = inc.add_hypothesis(db, project, f"guess {title}", expect=["m:f"])
        if outcome:
            inc.record_outcome(db, hyp.id, outcome, {"reading": "made up"})
        inc.close_incident(db, project)
    history = inc.hypothesis_history(db, project)
    assert (history.confirmed, history.refuted) == (2, 1)
    assert history.hit_rate == pytest.approx(2 / 3)
    [month] = history.periods
    assert month["hypotheses"] == 4 and month["unchecked"] == 1
    assert month["cumulative_hit_rate"] == pytest.approx(2 / 3)
    assert history.to_dict()["hypotheses"][1]["outcome"] == "refuted"


# -- the judgement, on verdicts whose answer is known ---------------------------------------------

def verdict(benchmark: str, metric: str, kind: str, change: float, unit: str = "s",
            direction: str = "lower") -> SimpleNamespace:
    from perfloop.analysis.compare import VerdictKind
    return SimpleNamespace(benchmark=benchmark, metric=metric, verdict=VerdictKind(kind), change=change,
                           ci_low=change - 0.01, ci_high=change + 0.01, unit=unit, direction=direction,
                           base_location=1.0, head_location=1.0 + change)


def test_judge_verified_and_stand_ins() -> None:
    from perfloop.workflows.verify import judge
    result, reading, rows, side, trades, notes = judge(
        [verdict("checkout", "wall_time", "improved", -0.8), verdict("checkout", "peak_rss", "unchanged", 0.0, "B")],
        "latency_p99", -0.5)
    assert result == "verified" and rows[0]["metric"] == "wall_time" and rows[0]["as_expected"]
    assert notes == ["checkout does not measure latency_p99; wall_time stands in for it"]
    assert not side and not trades


def test_judge_names_a_latency_for_memory_trade() -> None:
    from perfloop.workflows.verify import judge
    result, reading, rows, side, trades, _ = judge(
        [verdict("checkout", "wall_time", "improved", -0.9),
         verdict("report", "wall_time", "unchanged", 0.01),
         verdict("report", "peak_rss", "regressed", 0.09, "B")], "wall_time", None)
    assert result == "trade-off"
    assert any("trades latency for memory" in t and "peak_rss +9.0% (report)" in t for t in trades)
    assert side == ["peak_rss of report regressed +9.0% (from 1 to 1.09 B)"]


def test_judge_tail_partial_regressed_inconclusive() -> None:
    from perfloop.workflows.verify import judge
    tail = judge([verdict("api", "latency_p50", "improved", -0.2), verdict("api", "latency_p99", "regressed", 0.3)],
                 "latency_p50", None)
    assert tail[0] == "trade-off" and any("median got better" in t and "tail got worse" in t for t in tail[4])
    assert judge([verdict("a", "wall_time", "improved", -0.1)], "wall_time", -0.5)[0] == "partial"
    assert judge([verdict("a", "wall_time", "regressed", 0.1)], "wall_time", None)[0] == "regressed"
    assert judge([verdict("a", "wall_time", "inconclusive", -0.02)], "wall_time", None)[0] == "inconclusive"
    assert judge([verdict("a", "wall_time", "unchanged", 0.0)], "wall_time", None)[0] == "not-verified"


# -- scrape baseline and verify, end to end without waiting --------------------------------------------

PAGE = """# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{{le="0.01"}} {fast}
http_request_duration_seconds_bucket{{le="0.05"}} {mid}
http_request_duration_seconds_bucket{{le="0.2"}} {total}
http_request_duration_seconds_bucket{{le="+Inf"}} {total}
http_request_duration_seconds_sum {sum}
http_request_duration_seconds_count {total}
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes {rss}
"""


class Service:
    """A metrics endpoint made up interval by interval. ``slow``: each interval's slowest requests
    land in the 50-200 ms bucket (before the fix); ``memory``: RSS grows 5 MB per scrape."""

    def __init__(self, *, slow: bool, memory: bool = False) -> None:
        self.slow, self.memory = slow, memory
        self.now = 0.0
        self.k = 0
        self.counts = {"fast": 0, "mid": 0, "total": 0, "sum": 0.0}

    def fetch(self, url: str) -> str:
        if self.k:
            wobble = self.k % 3                   # a little deterministic variation per interval
            n_slow = 10 + wobble
            self.counts["fast"] += 100 - n_slow
            self.counts["mid"] += 100 - (n_slow if self.slow else 0)
            self.counts["total"] += 100
            self.counts["sum"] += 1.0 + wobble * 0.1
        rss = 50_000_000 + (self.k * 5_000_000 if self.memory else (self.k % 2) * 100_000)
        self.k += 1
        return PAGE.format(**self.counts, rss=rss)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def scrape_flow(project: Path, db: Store, after: Service) -> object:
    from perfloop.workflows.verify import capture_baseline, verify
    config = load_config(project)
    inc.open_incident(db, project, "checkout p99 spike", metric="p99", config=config)
    inc.add_hypothesis(db, project, "slow requests", expect=["toymod:work"], expected_effect=-0.3)
    before = Service(slow=True)
    outcome = capture_baseline(config, db, scrape_url="http://svc/metrics",
                               scrape_metrics=["http_request_duration_seconds", "process_resident_memory_bytes"],
                               duration=150, interval=15, fetch=before.fetch, clock=before.clock,
                               sleep=before.sleep)
    assert outcome.settings.scrape and before.k == 11
    stored = db.get_run(outcome.run_id)
    assert stored.label.startswith("incident-") and stored.results[0].kind == "scrape"
    (project / "toymod.py").write_text("def work():\n    return 4950\n")
    return verify(config, db, fetch=after.fetch, clock=after.clock, sleep=after.sleep)


def test_scraped_p99_before_and_after_a_fix_is_verified(project: Path, db: Store) -> None:
    report = scrape_flow(project, db, Service(slow=False))
    assert report.verdict == "verified", report.reading
    [p99] = report.target
    assert p99["metric"] == "http_request_duration_seconds:p99" and p99["verdict"] == "improved"
    assert p99["change"] < -0.5 and p99["as_expected"]
    assert report.attribution.attributable and report.attribution.changes[0].path == "toymod.py"
    incident = inc.current_incident(db, project)
    assert incident.verify_run_id == report.run_id and incident.verification["verdict"] == "verified"


def test_a_fix_that_costs_memory_is_reported_as_a_trade(project: Path, db: Store) -> None:
    report = scrape_flow(project, db, Service(slow=False, memory=True))
    assert report.verdict == "trade-off", report.reading
    assert any("trades latency for memory" in t for t in report.tradeoffs)
    assert any(s.startswith("process_resident_memory_bytes of process_resident_memory_bytes regressed")
               for s in report.side_effects)


def test_a_mixed_change_cannot_be_attributed_and_the_journal_says_so(project: Path, db: Store) -> None:
    (project / "app.toml").write_text("[pool]\nsize = 4\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "pool config")
    from perfloop.workflows.verify import capture_baseline, verify
    config = load_config(project)
    inc.open_incident(db, project, "spike", metric="p99", config=config)
    hyp = inc.add_hypothesis(db, project, "slow requests", expect=["toymod:work"])
    before = Service(slow=True)
    capture_baseline(config, db, scrape_url="u", scrape_metrics=["http_request_duration_seconds"],
                     duration=60, interval=15, fetch=before.fetch, clock=before.clock, sleep=before.sleep)
    (project / "toymod.py").write_text("def work():\n    return 4950\n")
    (project / "app.toml").write_text("[pool]\nsize = 16\n")
    git(project, "commit", "-qam", "faster work, bigger pool")
    after = Service(slow=False)
    report = verify(config, db, fetch=after.fetch, clock=after.clock, sleep=after.sleep)
    assert not report.attribution.attributable
    assert "cannot attribute" in report.reading and "pool.size" in (report.attribution.suggestion or "")

    closed = inc.close_incident(db, project, note="shipped both; split next time")
    journal = closed.data["journal"]
    assert journal["hypotheses"][0]["text"] == "slow requests"
    assert journal["expected"]["metric"] == "latency_p99" and journal["expected"]["where"] == ["toymod:work"]
    assert journal["actual"]["verdict"] == report.verdict and journal["actual"]["attributable"] is False
    assert [c["subject"] for c in journal["commits"]] == ["faster work, bigger pool"]
    assert journal["note"] == "shipped both; split next time" and journal["duration_seconds"] >= 0
    assert journal["baseline"]["run_id"] == closed.baseline_run_id
    assert inc.get_hypothesis(db, hyp.id).evidence["effect"]["verdict"] == report.verdict
    with db._read("test") as session:    # the journal of changes holds it too
        change = session.query(ChangeRow).one()
        assert (change.workflow, change.incident_id, change.notes) == (
            "profile-and-patch", closed.id, "shipped both; split next time")


def test_adopting_an_old_run_warns_that_it_is_older_than_the_code(project: Path, db: Store) -> None:
    from perfloop.workflows.run import run_project
    from perfloop.workflows.verify import capture_baseline
    config = load_config(project)
    old = run_project(config, db, label="old", processes=1, values=1)
    (project / "toymod.py").write_text("def work():\n    return 1\n")
    git(project, "commit", "-qam", "change")
    inc.open_incident(db, project, "spike", benchmarks=["toy"], config=config)
    outcome = capture_baseline(config, db, adopt_run=old.run_id)
    assert outcome.adopted and outcome.run_id == old.run_id
    assert any("older than the code it claims to describe" in w for w in outcome.warnings)
    assert any("before the incident was opened" in w for w in outcome.warnings)


# -- the real profiler on the example shop ------------------------------------------------------------

@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".perfloop", "__pycache__"))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shop")
    (root / ".perfloop").mkdir()
    return root


@pytest.mark.slow
def test_profile_finds_the_shop_hot_spot_and_judges_hypotheses(shop: Path) -> None:
    from perfloop.report.flamegraph import write_flamegraph
    from perfloop.workflows.profiling import profile
    from perfloop.workflows.verify import capture_baseline
    config = load_config(shop)
    with Store.open(f"sqlite:///{shop / '.perfloop' / 'perfloop.db'}") as store:
        inc.open_incident(store, shop, "checkout slow", benchmarks=["checkout[items=20]"], config=config)
        broad = inc.add_hypothesis(store, shop, "the time is in discount pricing",
                                   expect=["shop.pricing:apply_discounts"])
        with pytest.raises(UsageError, match="has no baseline yet"):
            profile(store, shop, config=config, duration=1.0)
        capture_baseline(config, store, processes=1, values=1, warmup=0)
        # apply_discounts holds the whole benchmark: naming it says nothing, and is not a hit
        entry = profile(store, shop, config=config, duration=1.0)
        assert entry.outcome == "too-broad" and "Too broad" in (entry.reading or "")
        assert "shop.pricing:parse_condition" in (entry.reading or "")
        assert inc.get_hypothesis(store, broad.id).outcome == "too-broad"
        assert inc.hypothesis_history(store, shop).hit_rate is None
        right = inc.add_hypothesis(store, shop, "discount rule conditions are parsed again for every line",
                                   expect=["shop.pricing:parse_condition"])
        report = profile(store, shop, config=config, duration=1.0, write_files=write_flamegraph)
        [target] = report.targets
        table = target.hot_spots(5)
        assert table[0].function == "shop.pricing:parse_condition" and table[0].rank == 1
        assert table[0].self_share > 0.4
        assert "shop.pricing:prepare_rules" in [h.function for h in table[:4]]
        assert report.outcome == "confirmed" and inc.get_hypothesis(store, right.id).outcome == "confirmed"
        assert set(target.files) == {"speedscope", "svg", "html"}
        assert all(Path(p).is_file() and ".perfloop/profiles/incident-" in p for p in target.files.values())
        assert {s.name for s in target.result.signals} >= {"off_cpu", "gc_time"}

        wrong = inc.add_hypothesis(store, shop, "it is the JSON encoding", expect=["shop.serialize:dumps"])
        refuted = profile(store, shop, config=config, duration=1.0)
        assert refuted.outcome == "refuted" and inc.get_hypothesis(store, wrong.id).outcome == "refuted"
        assert "The time is spent in" in (refuted.reading or "") and "shop.pricing" in (refuted.reading or "")

        subprocess.run(["patch", "-p1", "-s", "-i", "patches/fix-hot-spot.patch"], cwd=shop, check=True)
        after = profile(store, shop, config=config, duration=1.0)
        [target] = after.targets
        assert target.purpose == "after" and target.diff_against == entry.targets[0].profile_id
        prepare = next(d for d in target.diff if d.function == "shop.pricing:prepare_rules")
        assert prepare.share_change < 0
        assert inc.get_hypothesis(store, wrong.id).outcome == "refuted"   # an after profile does not re-judge
