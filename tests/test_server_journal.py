"""Journal uploads to the team server, and revoked tokens: the journal is stored whole, once per
origin store, in one transaction; revoked, wrong and other projects' tokens are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from perfloop.server.app import create_app  # noqa: E402
from perfloop.server.client import journal_payload, origin_for  # noqa: E402
from perfloop.store import Store  # noqa: E402
from perfloop.workflows import cycles, journal  # noqa: E402
from test_server import RUNS, START, auth, run_body  # noqa: E402

JOURNAL = "/api/v1/projects/shop/journal"


def local_journal(root: Path) -> dict[str, Any]:
    """A project's local store with two journal entries, an open incident and an open cycle
    with one change scheduled in it; the body that uploads them."""
    url = f"sqlite:///{root / 'local.db'}"
    made = (root / "local.db").exists()
    with Store.open(url) as store:
        if made:
            return journal_payload(store, root, origin_for(url, "runner-1"))
        journal.add_entry(store, "raise the product cache to 4096", why="lookups miss the cache",
                          expect="checkout wall_time -20%", kind="cache")
        journal.add_entry(store, "index orders.created_at", why="the report scans the table",
                          expect="report wall_time -50%", actual="report wall_time -61%",
                          kind="index")
        store.add_incident(title="checkout p99 spike", project=str(root), metric="latency_p99")
        cycle = cycles.open_cycle(store, root, "release-7", 100.0)
        store.add_change(title="pool 10 -> 32", kind="config", workflow=cycles.WORKFLOW,
                         status="scheduled", risk_score=30.0, rollback_plan="set the pool to 10",
                         data={"project": str(root.resolve()), "level": "medium",
                               "cycle_id": cycle.id})
        return journal_payload(store, root, origin_for(url, "runner-1"))


@pytest.fixture
def tokens(store_url: str) -> dict[str, str]:
    with Store.open(store_url) as store:
        made = {"write": store.create_token(project="shop", scope="write"),
                "read": store.create_token(project="shop", scope="read"),
                "other": store.create_token(project="other", scope="write"),
                "revoked": store.create_token(project="shop", scope="write", name="old")}
        revoked = next(t for t in store.tokens() if t.name == "old")
        assert store.revoke_token(revoked.id) is not None
    return made


@pytest.fixture
def client(store_url: str, tokens: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(store_url, max_body=64 * 1024)) as c:
        yield c


def stored_entries(store_url: str) -> list[dict[str, Any]]:
    with Store.open(store_url) as store:
        return store.project_journal("shop")


def test_the_journal_is_stored_with_its_open_incident_and_cycle(
        client: TestClient, tokens: dict[str, str], store_url: str, tmp_path: Path) -> None:
    body = local_journal(tmp_path)
    # four entries: the two added, the open incident, the cycle's change
    assert len(body["entries"]) == 4 and len(body["cycles"]) == 1
    response = client.post(JOURNAL, json=body, headers=auth(tokens["write"]))
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 5, "updated": 0, "removed": 0, "unchanged": 0}
    entries = stored_entries(store_url)
    by_title = {e["title"]: e for e in entries}
    assert by_title["raise the product cache to 4096"]["open_loop"] is True
    assert by_title["index orders.created_at"]["actual_text"] == "report wall_time -61%"
    assert by_title["checkout p99 spike"]["source"] == "incident"
    with Store.open(store_url) as store:
        (cycle,) = store.project_cycles("shop", status="open")
        assert store.project_journal("shop", source="incident", status="open")[0]["title"] \
            == "checkout p99 spike"
    assert (cycle["name"], cycle["budget"], cycle["spent"], cycle["left"]) == \
        ("release-7", 100.0, 30.0, 70.0)
    assert [c["title"] for c in cycle["changes"]] == ["pool 10 -> 32"]
    listed = client.get(JOURNAL, headers=auth(tokens["read"]))
    assert listed.status_code == 200 and len(listed.json()) == 4


def test_uploading_the_same_journal_again_changes_nothing_and_a_change_is_updated(
        client: TestClient, tokens: dict[str, str], store_url: str, tmp_path: Path) -> None:
    body = local_journal(tmp_path)
    client.post(JOURNAL, json=body, headers=auth(tokens["write"]))
    again = client.post(JOURNAL, json=body, headers=auth(tokens["write"]))
    assert again.json() == {"created": 0, "updated": 0, "removed": 0, "unchanged": 5}
    assert len(stored_entries(store_url)) == 4

    # locally: the open loop is closed, the incident is closed (no longer an entry), the
    # cycle is closed (no longer open)
    local = f"sqlite:///{tmp_path / 'local.db'}"
    with Store.open(local) as store:
        loop = next(c for c in store.changes() if c.title.startswith("raise"))
        journal.record_actual(store, str(loop.id), "checkout wall_time -18%")
        incident = store.incidents(status="open")[0]
        store.update_incident(incident.id, status="closed")
        (cycle,) = store.cycles(status="open")
        store.update_cycle(cycle.id, status="closed")
        newer = journal_payload(store, tmp_path, body["origin"])
    answer = client.post(JOURNAL, json=newer, headers=auth(tokens["write"])).json()
    # updated: the closed loop and the cycle; removed: the incident; unchanged: the rest
    assert answer == {"created": 0, "updated": 2, "removed": 1, "unchanged": 2}
    entries = {e["title"]: e for e in stored_entries(store_url)}
    assert sorted(entries) == ["index orders.created_at", "pool 10 -> 32",
                               "raise the product cache to 4096"]
    assert entries["raise the product cache to 4096"]["open_loop"] is False
    with Store.open(store_url) as store:
        assert store.project_cycles("shop", status="open") == []
        assert [c["status"] for c in store.project_cycles("shop")] == ["closed"]

    # another store's journal is kept beside this one, even with the same entry ids
    other = {**newer, "origin": origin_for("sqlite:///elsewhere.db", "runner-2"), "cycles": []}
    assert client.post(JOURNAL, json=other, headers=auth(tokens["write"])).json()["created"] == 3
    assert len(stored_entries(store_url)) == 6


def test_an_invalid_entry_anywhere_stores_nothing(client: TestClient, tokens: dict[str, str],
                                                  store_url: str, tmp_path: Path) -> None:
    body = local_journal(tmp_path)
    body["entries"][-1]["created_at"] = "2026-11-30T12:00:00"     # no time zone
    response = client.post(JOURNAL, json=body, headers=auth(tokens["write"]))
    assert response.status_code == 422
    body = local_journal(tmp_path)
    body["entries"].append(dict(body["entries"][0]))              # the same id twice
    assert client.post(JOURNAL, json=body, headers=auth(tokens["write"])).status_code == 422
    assert stored_entries(store_url) == []


def test_a_journal_over_the_size_limit_gets_413(client: TestClient, tokens: dict[str, str],
                                                store_url: str, tmp_path: Path) -> None:
    body = local_journal(tmp_path)
    entry = body["entries"][0]
    body["entries"] = [{**entry, "id": str(k), "notes": "x" * 1000} for k in range(100)]
    response = client.post(JOURNAL, json=body, headers=auth(tokens["write"]))
    assert response.status_code == 413
    assert stored_entries(store_url) == []


def test_a_store_failure_midway_through_a_journal_stores_nothing(store_url: str) -> None:
    from perfloop.errors import StoreError

    good = {"id": "1", "source": "change", "title": "a", "workflow": "manual", "status": "open",
            "created_at": START}
    bad = {**good, "id": "2", "created_at": START.replace(tzinfo=None)}   # refused by the store
    with Store.open(store_url) as store:
        with pytest.raises((StoreError, ValueError)):
            store.store_journal("shop", "origin-0001", [good, bad])
        assert store.project_journal("shop") == []
        assert store.store_journal("shop", "origin-0001", [good]).created == 1


WHO = ["none", "wrong", "read", "other", "revoked"]


def _headers(who: str, tokens: dict[str, str]) -> dict[str, str]:
    if who == "none":
        return {}
    return auth("plt_" + "y" * 43) if who == "wrong" else auth(tokens[who])


@pytest.mark.parametrize("who", WHO)
def test_journal_writes_without_a_live_write_token_of_the_project_are_refused(
        client: TestClient, tokens: dict[str, str], store_url: str, tmp_path: Path,
        who: str) -> None:
    response = client.post(JOURNAL, json=local_journal(tmp_path), headers=_headers(who, tokens))
    assert response.status_code in (401, 403), response.text
    assert stored_entries(store_url) == []


@pytest.mark.parametrize("who", ["none", "wrong", "other", "revoked"])
def test_reading_the_journal_and_its_pages_needs_a_live_token_of_the_project(
        client: TestClient, tokens: dict[str, str], tmp_path: Path, who: str) -> None:
    client.post(JOURNAL, json=local_journal(tmp_path), headers=auth(tokens["write"]))
    first = client.post(RUNS, json=run_body("run-0001"), headers=auth(tokens["write"]))
    second = client.post(RUNS, json=run_body("run-0002", seed=1), headers=auth(tokens["write"]))
    pair = f"base={first.json()['run_id']}&head={second.json()['run_id']}"
    for path in (JOURNAL, "/projects/shop/journal", "/projects/shop/cycle",
                 f"/projects/shop/compare?{pair}", "/projects/shop/benchmarks/bench_0",
                 "/projects/shop"):
        response = client.get(path, headers=_headers(who, tokens))
        assert response.status_code in (401, 403), (path, response.status_code)
        assert "checkout p99 spike" not in response.text
        assert client.get(path, headers=auth(tokens["read"])).status_code == 200, path


@pytest.mark.parametrize("who", WHO)
def test_run_uploads_with_a_revoked_or_foreign_token_are_refused(
        client: TestClient, tokens: dict[str, str], store_url: str, who: str) -> None:
    response = client.post(RUNS, json=run_body("run-0003"), headers=_headers(who, tokens))
    assert response.status_code in (401, 403)
    with Store.open(store_url) as store:
        assert store.project_runs("shop") == []


def test_a_token_revoked_while_the_server_runs_is_refused_from_the_next_request(
        client: TestClient, tokens: dict[str, str], store_url: str) -> None:
    assert client.post(RUNS, json=run_body("run-0004"),
                       headers=auth(tokens["write"])).status_code == 201
    with Store.open(store_url) as store:
        record = next(t for t in store.tokens(project="shop") if t.scope == "write"
                      and t.revoked_at is None)
        revoked = store.revoke_token(record.id)
        assert revoked is not None and revoked.revoked_at is not None
        # revoking again keeps the first time; an unknown id is None
        assert store.revoke_token(record.id).revoked_at == revoked.revoked_at
        assert store.revoke_token(10_000) is None
        assert store.check_token(tokens["write"], project="shop", scope="read") is None
    response = client.post(RUNS, json=run_body("run-0005", seed=1), headers=auth(tokens["write"]))
    assert response.status_code == 403
    assert client.get("/projects/shop", headers=auth(tokens["write"])).status_code == 403
    # the read token was not touched
    assert client.get(RUNS, headers=auth(tokens["read"])).status_code == 200


def test_text_with_a_nul_character_is_refused(client: TestClient, tokens: dict[str, str],
                                              store_url: str, tmp_path: Path) -> None:
    body = local_journal(tmp_path)
    body["entries"][0]["title"] = "cache\x00size"
    response = client.post(JOURNAL, json=body, headers=auth(tokens["write"]))
    assert response.status_code == 422 and "NUL" in json.dumps(response.json())
    assert stored_entries(store_url) == []
