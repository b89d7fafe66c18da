"""The journal: entries from every workflow, search, open loops, trailers, export, gate failures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from memory_util import add_run, cli, commit, new_repo

from perfloop.errors import UsageError
from perfloop.report.journal import journal_markdown
from perfloop.store import Store
from perfloop.store.models import utcnow
from perfloop.workflows import journal


@pytest.fixture
def db(tmp_path: Path) -> Store:
    with Store.open(str(tmp_path / "s.db")) as store:
        yield store


def test_expected_effects_are_parsed_with_metric_aliases() -> None:
    assert journal.parse_effect("checkout p99 -20%") == {
        "benchmark": "checkout", "metric": "latency_p99", "change": -0.2,
        "text": "checkout latency_p99 -20%"}
    assert journal.parse_effect("api rps +5.5%")["change"] == pytest.approx(0.055)
    for bad in ("checkout -20%", "checkout p99 20", "p99 down"):
        with pytest.raises(UsageError, match="--expect"):
            journal.parse_effect(bad)
    now = utcnow()
    assert journal.parse_since("30d", now=now) == now - timedelta(days=30)
    assert journal.parse_since("2026-01-02").year == 2026
    with pytest.raises(UsageError, match="--since"):
        journal.parse_since("lately")


def test_entries_from_changes_open_incidents_and_unused_approvals(db: Store) -> None:
    manual = journal.add_entry(db, "raise cache to 4096", why="lookups miss the cache",
                               expect="checkout p99 -20%", kind="cache")
    db.add_incident(title="api p99 spike", project="/p", metric="latency_p99")
    db.add_approval(benchmark="report", reason="correctness fix needs it", author="Ann")
    used = db.add_approval(benchmark="quote", reason="accepted for the new rule", author="Bob")
    db.add_change(title="approved regression of quote", workflow="regression", status="approved",
                  actual={"status": "approved"}, data={"approvals": [{"id": used.id}]})
    found = journal.entries(db)
    assert {e.source for e in found} == {"change", "incident", "approval"}
    assert [e.id for e in found if e.source == "approval"] == ["approval-1"]   # #2 is in the gate's entry
    loops = journal.open_loops(found)
    assert {e.id for e in loops} == {manual.id, "incident-1"}
    assert [e.id for e in journal.entries(db, search="CACHE")] == [manual.id]
    assert [e.id for e in journal.entries(db, workflow="manual")] == [manual.id]
    closed = journal.record_actual(db, manual.id, "checkout p99 -18%", run_id=7)
    assert closed.actual["change"] == pytest.approx(-0.18) and closed.verification_run_ids == (7,)
    assert manual.id not in {e.id for e in journal.open_loops(journal.entries(db))}


def test_an_incident_closed_without_verification_is_an_open_loop(db: Store) -> None:
    db.add_change(title="patched blind", workflow="profile-and-patch", status="unverified",
                  hypothesis="h", actual={"verdict": "not verified"})
    [entry] = journal.entries(db)
    assert entry.open_loop


def test_since_filters_by_time(db: Store) -> None:
    db.add_change(title="old", workflow="manual", created_at=utcnow() - timedelta(days=60))
    db.add_change(title="new", workflow="manual")
    assert [e.title for e in journal.entries(db, since=journal.parse_since("30d"))] == ["new"]


def test_an_entry_needs_a_reason(db: Store) -> None:
    with pytest.raises(UsageError, match="--why"):
        journal.add_entry(db, "tweak", why=" ")
    with pytest.raises(UsageError, match="--kind"):
        journal.add_entry(db, "tweak", why="w", kind="magic")


def test_perf_change_trailers_link_commits(tmp_path: Path, db: Store) -> None:
    repo = new_repo(tmp_path / "r")
    entry = journal.add_entry(db, "bigger pool", why="requests wait for connections")
    commit(repo, "base", {"a.py": "A = 1\n"})
    sha = commit(repo, "pool 8\n\nPerf-Change: #1, 5", {"a.py": "A = 2\n"})
    assert journal.trailer_links(repo) == {"1": [(sha, "pool 8")], "5": [(sha, "pool 8")]}
    assert journal.get_entry(db, "1", root=repo).commits == (sha,)
    assert journal.get_entry(db, entry.id).commits == ()
    with pytest.raises(UsageError, match="no journal entry"):
        journal.get_entry(db, "incident-9")


@dataclass
class _Outcome:
    name: str
    status: str

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status}


def test_gate_failures_and_inconclusive_gates_are_journaled(db: Store) -> None:
    runs = {"gate-base": add_run(db, commit="b"), "gate-head": add_run(db, commit="h")}
    assert journal.journal_gate(db, [_Outcome("a", "pass")], base="b", head="h", run_ids=runs) is None
    failed = journal.journal_gate(db, [_Outcome("a", "fail"), _Outcome("b", "warn")],
                                  base="b", head="h", run_ids=runs)
    unsure = journal.journal_gate(db, [_Outcome("b", "warn")], base="b", head="h2", run_ids=runs)
    f, u = db.change(failed), db.change(unsure)
    assert (f.status, f.title, f.baseline_run_id, f.verification_run_ids) == ("failed", "gate failed: a", 1, [2])
    assert (u.status, u.actual["benchmarks"]) == ("inconclusive", {"b": "warn"})


def test_markdown_export_lists_open_loops_first(db: Store) -> None:
    journal.add_entry(db, "raise cache", why="misses", expect="checkout p99 -20%")
    journal.add_entry(db, "pool 8", why="waits", actual="api p50 -5%", commits=["a" * 40])
    text = journal_markdown(journal.entries(db))
    assert text.index("## Open loops") < text.index("### 2: pool 8")
    assert "- 1: raise cache (expected: checkout latency_p99 -20%)" in text
    assert "- **Actual:** api latency_p50 -5%" in text and "`aaaaaaaaaaaa`" in text


def test_journal_commands(tmp_path: Path, capsys) -> None:
    repo = new_repo(tmp_path / "r")
    commit(repo, "base", {"a.py": "A = 1\n"})
    store = str(tmp_path / "cli.db")
    base = ["-C", str(repo), "--store", store]
    code, out = cli(capsys, "journal", "add", "raise cache", "--why", "misses", "--expect",
                    "checkout p99 -20%", "--commit", "HEAD", *base, "--json")
    assert code == 0 and json.loads(out)["expected"]["metric"] == "latency_p99"
    code, out = cli(capsys, "journal", *base)
    assert code == 0 and "OPEN LOOP" in out and "1 open loop(s): 1" in out
    code, out = cli(capsys, "journal", "--search", "nothing-like-it", *base, "--json")
    assert code == 0 and json.loads(out) == {"entries": [], "open_loops": []}
    code, out = cli(capsys, "journal", "actual", "1", "checkout p99 -12%", *base)
    assert code == 0 and "-12%" in out
    code, out = cli(capsys, "journal", "show", "1", *base, "--json")
    assert code == 0 and json.loads(out)["open_loop"] is False
    code, _ = cli(capsys, "journal", "export", "-o", "TUNING.md", *base)
    assert code == 0 and "raise cache" in (repo / "TUNING.md").read_text()
    code, _ = cli(capsys, "journal", "add", "x", "--why", "y", "--expect", "soon", *base)
    assert code == 2
    code, _ = cli(capsys, "journal", "add", "x", "--why", "y", "--commit", "nope", *base)
    assert code == 2
