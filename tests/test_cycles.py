"""The risk-budgeted workflow: proposals, the budget, one change at a time, the floor, rollbacks.

Fast tests drive the workflow with a fake assessor, measurement and comparison whose answers are
set by the test; the slow test runs a whole cycle on a copy of the example shop, with a change
that adds 200 ms to every checkout request (many times the request's own latency, far above any
noise) as the one that breaks the p99 floor, and a change of the server's cache setting,
verified on the callable benchmark, as the low-risk one.
"""

from __future__ import annotations

import shutil
import socket
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from perfloop.analysis.risk import Factor, RiskScore
from perfloop.config import load_config
from perfloop.errors import UsageError
from perfloop.measure.diff import DiffFacts
from perfloop.analysis.imports import BlastRadius
from perfloop.workflows import cycles
from perfloop.workflows.risk import Assessment

from gitutil import git
from test_incident_cli import SHOP, data, ok, perfloop


def fake(score: float, level: str, factors: tuple[Factor, ...] = ()):
    def assessor(config, *, diff=None, kind=None, store=None) -> Assessment:
        return Assessment(RiskScore(score, level, kind, "tuning", factors), DiffFacts("x", None, ()),
                          BlastRadius((), (), 0), (), "code", None)
    return assessor


@pytest.fixture
def project(tmp_path: Path):
    root = tmp_path / "p"
    root.mkdir()
    (root / "perfloop.toml").write_text(textwrap.dedent('''
        [[benchmark]]
        name = "fast"
        callable = "m:f"

        [[benchmark]]
        name = "api"
        http = { url = "http://127.0.0.1:9/x", rate = 10, duration = 1 }
        metrics = ["latency_p99", "throughput"]
    '''))
    return load_config(root)


def run(store) -> int:
    """A stored run to serve as a floor (the workflow only hands its id to the comparison)."""
    from perfloop.measure.environment import fingerprint
    return store.begin_run(label="floor", commit=None, branch=None, dirty=False,
                           environment=fingerprint(), settings={}, project="")


def verdict(benchmark: str, metric: str, kind: str, change: float = 0.0) -> dict:
    return {"benchmark": benchmark, "metric": metric, "verdict": kind, "change": change}


def test_a_low_risk_change_is_applied_now_and_verified_alone(project, store) -> None:
    low, _ = cycles.propose(store, project, "cache 128 -> 256", kind="config", assessor=fake(8, "low"),
                            benchmarks=["fast"])
    with pytest.raises(UsageError, match="no floor"):
        cycles.apply(store, project.root, low.id)
    floor = run(store)
    applied = cycles.apply(store, project.root, low.id, baseline_run_id=floor)
    assert applied.status == "applied" and applied.baseline_run_id == floor and applied.cycle_id is None
    measured = []
    done = cycles.verify(store, project, low.id,
                         measure=lambda names, label: measured.append((list(names), label)) or 42,
                         compare=lambda floor, after: [verdict("fast", "cpu_time", "unchanged")])
    assert measured == [(["fast"], f"change-{low.id}")]
    assert done.status == "verified" and done.data["verification"]["run_id"] == 42


def test_high_risk_needs_a_cycle_a_rollback_plan_a_tail_test_and_budget(project, store) -> None:
    bare, _ = cycles.propose(store, project, "threads for checkout", kind="concurrency",
                             assessor=fake(70, "high"))
    with pytest.raises(UsageError) as refused:
        cycles.apply(store, project.root, bare.id)
    text = str(refused.value)
    assert "rollback plan" in text and "tail test" in text and "inside a cycle" in text
    with pytest.raises(UsageError, match="measures no tail metric"):
        cycles.propose(store, project, "x", kind="concurrency", tail_test="fast", assessor=fake(70, "high"))
    floor = run(store)
    cycles.open_cycle(store, project.root, "2026.12", 100, baseline_run_id=floor)
    with pytest.raises(UsageError, match="is open"):
        cycles.open_cycle(store, project.root, "again", 50)
    ready, _ = cycles.propose(store, project, "threads for checkout", kind="concurrency",
                              rollback_command="true", tail_test="api", assessor=fake(70, "high"))
    big, _ = cycles.propose(store, project, "new engine", kind="algorithm", rollback="revert",
                            tail_test="api", assessor=fake(40, "medium"))
    applied = cycles.apply(store, project.root, ready.id)
    assert applied.cycle_id is not None and applied.baseline_run_id == floor
    # one change at a time: the next waits for the verification of the last
    with pytest.raises(UsageError, match="not verified yet"):
        cycles.apply(store, project.root, big.id)
    cycles.verify(store, project, ready.id, measure=lambda n, l: 8,
                  compare=lambda f, a: [verdict("api", "latency_p99", "unchanged")])
    with pytest.raises(UsageError, match="over budget: 40 points, 30 left"):
        cycles.apply(store, project.root, big.id)


def test_a_broken_floor_is_rolled_back_by_its_command_and_failures_are_kept(project, store, tmp_path) -> None:
    floor = run(store)
    cycles.open_cycle(store, project.root, "c", 200, baseline_run_id=floor)
    marker = tmp_path / "rolled-back"
    good, _ = cycles.propose(store, project, "swap", kind="algorithm", tail_test="api",
                             rollback_command=f"echo undone > {marker}", assessor=fake(60, "high"))
    cycles.apply(store, project.root, good.id)
    broken = cycles.verify(store, project, good.id, measure=lambda n, l: 2,
                           compare=lambda f, a: [verdict("api", "latency_p99", "regressed", 3.1),
                                                 verdict("fast", "cpu_time", "regressed", 0.2)])
    assert broken.status == "breaks-floor"
    # fast was not among the benchmarks the change was expected to move
    assert broken.data["verification"]["outside_expected"] == ["fast"]
    rolled = cycles.rollback(store, project.root, good.id)
    assert rolled.status == "rolled-back" and marker.read_text() == "undone\n"
    assert rolled.data["rollbacks"][0]["exit_code"] == 0

    bad, _ = cycles.propose(store, project, "other", kind="cache", tail_test="api",
                            rollback_command="echo cannot >&2; exit 3", assessor=fake(20, "low"))
    cycles.apply(store, project.root, bad.id, baseline_run_id=floor)
    failed = cycles.rollback(store, project.root, bad.id)
    assert failed.status == "rollback-failed"
    entry = failed.data["rollbacks"][0]
    assert entry["exit_code"] == 3 and "cannot" in entry["output"]     # recorded, nothing lost

    text, _ = cycles.propose(store, project, "manual", kind="config", rollback="set POOL=4 and restart",
                             assessor=fake(5, "low"), benchmarks=["fast"])
    cycles.apply(store, project.root, text.id, baseline_run_id=floor)
    with pytest.raises(UsageError, match="set POOL=4 and restart"):
        cycles.rollback(store, project.root, text.id)
    assert cycles.rollback(store, project.root, text.id, confirmed=True).status == "rolled-back"


def test_stagnation_and_chaos_are_counted(project, store) -> None:
    now = datetime.now(timezone.utc)
    cycle = cycles.open_cycle(store, project.root, "c", 100, baseline_run_id=run(store))
    queued, _ = cycles.propose(store, project, "waiting", kind="config", assessor=fake(10, "low"))
    later = now + timedelta(days=10)
    state = cycles.status(store, project.root, now=later)
    health = state["health"]
    assert health["stagnation"] is True and health["oldest_queued_days"] == pytest.approx(10, abs=0.1)
    assert health["unspent_share"] == 1.0 and not health["chaos"]
    for title in ("a", "b"):
        c, _ = cycles.propose(store, project, title, kind="algorithm", tail_test="api",
                              rollback_command="true", assessor=fake(30, "high"))
        cycles.apply(store, project.root, c.id)
        cycles.verify(store, project, c.id, measure=lambda n, l: 2,
                      compare=lambda f, a: [verdict("api", "latency_p99", "regressed", 1.0)])
        cycles.rollback(store, project.root, c.id)
    health = cycles.status(store, project.root, now=later)["health"]
    assert health["chaos"] is True and health["rolled_back_or_broken"] == 2
    assert health["unspent_share"] == pytest.approx(0.4)
    closed = cycles.close_cycle(store, project.root)
    assert closed.status == "closed" and closed.data["outcome"]["rolled_back"] == [2, 3]
    assert queued.id == 1 and cycle.id == closed.id


def test_calibration_ranks_risk_against_outcomes(project, store) -> None:
    for i, (score, bad) in enumerate([(10, False), (20, False), (60, True), (80, True), (30, False)]):
        cycles.open_cycle(store, project.root, f"c{i}", 100, baseline_run_id=run(store))
        c, _ = cycles.propose(store, project, f"c{i}", kind="algorithm", tail_test="api",
                              rollback_command="true", assessor=fake(score, "high"))
        cycles.apply(store, project.root, c.id)
        cycles.verify(store, project, c.id, measure=lambda n, l: 2,
                      compare=lambda f, a, bad=bad: [verdict("api", "latency_p99",
                                                             "regressed" if bad else "unchanged")])
        cycles.close_cycle(store, project.root)
    calib = cycles.calibration(store, project.root)
    assert calib["changes"] == 5 and calib["bad_outcomes"] == 2
    assert calib["spearman"] == pytest.approx(0.866, abs=0.01)   # known: ranks 1..5 vs 0,0,1,1,0
    assert "rank the changes that went wrong first" in calib["reading"]


def test_calibration_names_the_factors_that_predicted_and_those_that_did_not(project, store) -> None:
    # "kind" points follow the scores (ranks 1..5); "size" points run against them (5..1)
    for i, (score, bad) in enumerate([(10, False), (20, False), (60, True), (80, True), (30, False)]):
        factors = (Factor("kind", score / 2, ""), Factor("size", 5.0 - i, ""), Factor("coverage", 0.0, ""))
        cycles.open_cycle(store, project.root, f"c{i}", 100, baseline_run_id=run(store))
        c, _ = cycles.propose(store, project, f"c{i}", kind="algorithm", tail_test="api",
                              rollback_command="true", assessor=fake(score, "high", factors))
        cycles.apply(store, project.root, c.id)
        cycles.verify(store, project, c.id, measure=lambda n, l: 2,
                      compare=lambda f, a, bad=bad: [verdict("api", "latency_p99",
                                                             "regressed" if bad else "unchanged")])
        cycles.close_cycle(store, project.root)
    calib = cycles.calibration(store, project.root)
    # known: kind ranks 1..5 against outcomes 0,0,1,1,0; size ranks 5..1; coverage is constant
    assert calib["factors"]["kind"] == pytest.approx(0.866, abs=0.01)
    assert calib["factors"]["size"] == pytest.approx(-0.289, abs=0.01)
    assert calib["factors"]["coverage"] is None
    assert "weights worth raising): kind (+0.87)" in calib["reading"]
    assert "weights worth lowering): size (-0.29)" in calib["reading"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_cycle_end_to_end_on_the_example_shop(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shutil.copytree(SHOP, shop, ignore=shutil.ignore_patterns(".perfloop", "__pycache__", "var"))
    cfg = shop / "perfloop.toml"
    # six load periods a side: the p99 interval of three is too wide to call even a 5x change
    text = cfg.read_text().replace('name = "api-checkout"\nprocesses = 3', 'name = "api-checkout"\nprocesses = 6')
    assert "processes = 6" in text and "8765" in text
    # a port of its own: another shop server on the example's port would answer the benchmark
    # in place of this copy's, and the change under test would never be measured
    text = text.replace("8765", str(_free_port()))
    cfg.write_text(text + textwrap.dedent('''
        [risk]
        high_from = 40

        [risk.boundaries]
        storage = ["shop/db.py"]
        service = ["shop/service.py", "shop/app.py"]
    '''))
    git(shop, "init", "-q", "-b", "main")
    git(shop, "add", "-A")
    git(shop, "commit", "-qm", "the shop")
    ok(shop, "run", "api-checkout", "checkout", "--label", "floor")
    ok(shop, "cycle", "open", "2026.12", "--budget", "100", "--baseline", "floor")

    # low risk: the server's cache size, verified on the callable benchmark it cannot slow
    cfg.write_text(cfg.read_text().replace('SHOP_CACHE_SIZE = "128"', 'SHOP_CACHE_SIZE = "256"'))
    git(shop, "commit", "-qam", "cache 128 -> 256")
    low = data(shop, "change", "propose", "cache 128 -> 256", "--kind", "config",
               "--diff", "HEAD~1..HEAD", "--benchmark", "checkout")
    assert low["level"] == "low", low
    ok(shop, "change", "apply", str(low["id"]))
    assert data(shop, "change", "verify", str(low["id"]))["status"] == "verified"

    # high risk: checkout on a new concurrency model across the service and storage
    # boundaries, which makes every checkout request 200 ms slower
    service = shop / "shop" / "service.py"
    service.write_text(service.read_text().replace(
        "    def checkout(self, customer_id: int, items: Sequence[tuple[int, int]]) -> Order:\n",
        "    def checkout(self, customer_id: int, items: Sequence[tuple[int, int]]) -> Order:\n"
        "        __import__('time').sleep(0.2)   # waits for a worker of the new model\n", 1))
    assert "sleep(0.2)" in service.read_text()
    db = shop / "shop" / "db.py"
    db.write_text(db.read_text() + "\n# connections are opened per request thread\n")
    git(shop, "commit", "-qam", "checkout on a new concurrency model")
    high = data(shop, "change", "propose", "new concurrency model", "--kind", "concurrency",
                "--diff", "HEAD~1..HEAD")
    assert high["level"] == "high", high
    refused = perfloop(shop, "change", "apply", str(high["id"]))
    assert refused.returncode == 2 and "rollback plan" in refused.stderr
    high = data(shop, "change", "propose", "new concurrency model", "--kind", "concurrency",
                "--diff", "HEAD~1..HEAD", "--tail-test", "api-checkout",
                "--rollback-cmd", "git revert --no-edit HEAD")
    ok(shop, "change", "apply", str(high["id"]))
    broken = perfloop(shop, "change", "verify", str(high["id"]))
    assert broken.returncode == 1 and "breaks the floor" in broken.stdout, broken.stdout
    rolled = data(shop, "change", "rollback", str(high["id"]))
    assert rolled["status"] == "rolled-back" and rolled["rollbacks"][0]["exit_code"] == 0
    assert "sleep(0.2)" not in service.read_text()     # the plan really ran: reverted

    state = data(shop, "cycle", "status")
    cycle = state["cycle"]
    assert cycle["spent"] == pytest.approx(high["score"], abs=0.01)
    assert cycle["left"] == pytest.approx(100 - high["score"], abs=0.01)
    assert state["health"]["rolled_back_or_broken"] == 1 and state["health"]["chaos"] is True
    # the break landed where it was predicted (the tail test), and the queue is minutes old:
    # chaos from the rollback, no stagnation although most of the budget is left
    assert state["health"]["effects_outside_expected"] == 0
    assert state["health"]["unspent_share"] == pytest.approx((100 - high["score"]) / 100, abs=0.001)
    assert state["health"]["oldest_queued_days"] < 1 and state["health"]["stagnation"] is False
    assert [q["title"] for q in state["queue"]] == ["new concurrency model"]   # the refused one
    closed = data(shop, "cycle", "close")
    assert closed["status"] == "closed" and closed["outcome"]["rolled_back"] == [high["id"]]


def test_the_mode_shows_the_risk_overlay_and_the_cycles_open_loops(project, store) -> None:
    from perfloop.workflows.modes import project_mode
    assert project_mode(store, project.root)["risk"] is None
    cycles.open_cycle(store, project.root, "2026.12", 100, baseline_run_id=run(store))
    c, _ = cycles.propose(store, project, "swap", kind="algorithm", tail_test="api",
                          rollback_command="true", assessor=fake(60, "high"))
    cycles.apply(store, project.root, c.id)
    state = project_mode(store, project.root)
    assert state["risk"]["cycle"] == "2026.12" and state["risk"]["spent"] == 60
    assert [(l["kind"], l["closes_with"]) for l in state["open_loops"]] == [
        ("change", f"perfloop change verify {c.id}")]
    cycles.verify(store, project, c.id, measure=lambda n, l: 2,
                  compare=lambda f, a: [verdict("api", "latency_p99", "regressed", 1.0)])
    [loop] = project_mode(store, project.root)["open_loops"]
    assert loop["kind"] == "rollback" and loop["closes_with"].endswith(f"rollback {c.id}")
    cycles.rollback(store, project.root, c.id)
    assert project_mode(store, project.root)["open_loops"] == []
