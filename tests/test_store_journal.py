"""The store's public API for the workflow tables, and the rule that nothing else opens sessions."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

import perfloop
from perfloop.store import Store
from perfloop.store.models import utcnow

PACKAGE = Path(perfloop.__file__).parent


@pytest.fixture
def db(any_store: Store) -> Store:
    """SQLite always; PostgreSQL too when PERFLOOP_TEST_POSTGRES_URL is set."""
    return any_store


def test_nothing_outside_the_store_opens_its_sessions_or_uses_its_rows() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "store" or "store" in path.relative_to(PACKAGE).parts[:1]:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("_read", "_write"):
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("store.models"):
                used = {a.name for a in node.names} - {"utcnow"}
                if used:
                    offenders.append(f"{path.name}:{node.lineno} imports {sorted(used)}")
    assert offenders == []


def test_incidents_hypotheses_and_profiles_round_trip(db: Store) -> None:
    iid = db.add_incident(title="p99 spike", project="/p", benchmarks=["api"], metric="latency_p99",
                          data={"events": [{"what": "opened"}]})
    other = db.add_incident(title="elsewhere", project="/q")
    assert [i.id for i in db.incidents(project="/p")] == [iid]
    assert [i.id for i in db.incidents(status="open")] == [other, iid]
    assert db.update_incident(iid, edit=lambda d: {**d, "baseline": {"run_id": 3}}, baseline_run_id=None)
    assert db.incident(iid).data == {"events": [{"what": "opened"}], "baseline": {"run_id": 3}}
    assert not db.update_incident(999, edit=lambda d: d)
    assert db.incident(999) is None
    hid = db.add_hypothesis(incident_id=iid, text="pricing", expect=["shop.pricing"],
                            evidence={"expected_effect": -0.3})
    db.update_hypothesis(hid, edit=lambda e: {**e, "reading": "hot"}, outcome="confirmed")
    hyp = db.hypothesis(hid)
    assert hyp.outcome == "confirmed" and hyp.evidence == {"expected_effect": -0.3, "reading": "hot"}
    assert [h.id for h in db.hypotheses(project="/p")] == [hid] and db.hypotheses(project="/q") == []
    pid = db.add_profile(incident_id=iid, hypothesis_id=hid, purpose="hypothesis", target="api",
                         profiler="pyinstrument", commit=None, dirty=False, duration=1.5,
                         data={"tree": "abc"})
    db.update_profile(pid, files={"svg": "x.svg"})
    assert db.profile(pid).files == {"svg": "x.svg"} and db.profile_ids(iid) == [pid]
    assert [p.id for p in db.profiles(incident_id=iid, target="api")] == [pid]


def test_closing_an_incident_journals_its_change_in_one_step(db: Store) -> None:
    iid = db.add_incident(title="slow", project="/p")
    change_id = db.close_incident(
        iid, {"title": "slow", "workflow": "profile-and-patch", "status": "verified",
              "incident_id": iid, "actual": {"verdict": "verified"}},
        edit=lambda data, cid: {**data, "change_id": cid}, status="closed", closed_at=utcnow())
    closed = db.incident(iid)
    assert closed.status == "closed" and closed.data == {"change_id": change_id}
    [change] = db.changes(incident_id=iid)
    assert (change.id, change.workflow, change.actual) == (change_id, "profile-and-patch",
                                                           {"verdict": "verified"})


def test_changes_filter_and_update(db: Store) -> None:
    old = db.add_change(title="old", workflow="manual", created_at=utcnow() - timedelta(days=40))
    new = db.add_change(title="new", workflow="regression", status="approved", commits=["abc"])
    assert [c.id for c in db.changes()] == [new, old]
    assert [c.id for c in db.changes(since=utcnow() - timedelta(days=30))] == [new]
    assert [c.id for c in db.changes(workflow="manual")] == [old]
    assert [c.id for c in db.changes(status="approved")] == [new]
    before = db.change(old).updated_at
    assert db.update_change(old, actual={"text": "p99 -18%"}, edit=lambda d: {**d, "k": 1})
    changed = db.change(old)
    assert changed.actual == {"text": "p99 -18%"} and changed.data == {"k": 1}
    assert changed.updated_at >= before and changed.commits == []


def test_approvals_keep_their_data_as_given(db: Store) -> None:
    first = db.add_approval(benchmark="quote", reason="a correctness fix", author="Ann",
                            commit="abc", data={"size": {"change": 0.12, "interval": [0.1, 0.14]}})
    db.add_approval(benchmark="other", reason="another reason", commit="def")
    assert first.id and first.data == {"size": {"change": 0.12, "interval": [0.1, 0.14]}}
    assert [a.benchmark for a in db.approvals(benchmarks={"quote"})] == ["quote"]
    assert [a.commit for a in db.approvals(commits=["def"])] == ["def"]
    assert len(db.approvals(limit=1)) == 1


def test_non_finite_numbers_are_stored_as_null(db: Store) -> None:
    change = db.add_change(title="gate failed", workflow="regression",
                           actual={"interval": [float("nan"), float("inf")], "change": 0.1})
    assert db.change(change).actual == {"interval": [None, None], "change": 0.1}
