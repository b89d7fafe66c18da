"""Many runners uploading at once to a server on PostgreSQL: nothing lost, nothing doubled."""

from __future__ import annotations

import threading
from typing import Any

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from perfloop.server.app import create_app  # noqa: E402
from perfloop.store import Store  # noqa: E402
from test_server import RUNS, auth, run_body  # noqa: E402

UPLOADERS = 8
RUNS_EACH = 6


@pytest.mark.postgres
def test_eight_parallel_uploaders_store_exactly_what_they_sent(postgres_url: str) -> None:
    with Store.open(postgres_url) as store:
        token = store.create_token(project="shop", scope="write")
    app = create_app(postgres_url)
    answers: list[tuple[int, int, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(UPLOADERS)

    def uploader(n: int) -> None:
        try:
            client = TestClient(app)   # no lifespan: the app's store stays open for all
            start.wait()
            if True:
                for i in range(RUNS_EACH):
                    body = run_body(f"runner-{n}-run-{i}", seed=n * 100 + i, label=f"r{n}")
                    # every upload is sent twice, as a runner retrying after a lost answer
                    # would; the retries race the other runners' uploads
                    for _ in range(2):
                        response = client.post(RUNS, json=body, headers=auth(token))
                        with lock:
                            answers.append((n, i, (response.status_code, response.json())))
        except BaseException as e:   # reported below, with the thread's failure
            errors.append(e)

    threads = [threading.Thread(target=uploader, args=(n,)) for n in range(UPLOADERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    assert len(answers) == UPLOADERS * RUNS_EACH * 2
    by_upload: dict[tuple[int, int], set[int]] = {}
    for n, i, (status, body) in answers:
        assert status in (200, 201), body
        by_upload.setdefault((n, i), set()).add(body["run_id"])
    assert all(len(ids) == 1 for ids in by_upload.values())      # a retry names the same run
    with Store.open(postgres_url) as store:
        runs = store.project_runs("shop", limit=1000)
        assert len(runs) == UPLOADERS * RUNS_EACH
        assert {r.id for r in runs} == {next(iter(ids)) for ids in by_upload.values()}
        assert all(r.n_results == 3 for r in runs)


@pytest.mark.postgres
def test_two_racing_retries_of_one_upload_store_it_once(postgres_url: str) -> None:
    with Store.open(postgres_url) as store:
        token = store.create_token(project="shop", scope="write")
    app = create_app(postgres_url)
    body = run_body("the-same-upload", n_results=10, n_samples=200)
    ids: list[int] = []
    start = threading.Barrier(UPLOADERS)

    def send() -> None:
        client = TestClient(app)
        start.wait()
        if True:
            ids.append(client.post(RUNS, json=body, headers=auth(token)).json()["run_id"])

    threads = [threading.Thread(target=send) for _ in range(UPLOADERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(ids) == UPLOADERS and len(set(ids)) == 1
    with Store.open(postgres_url) as store:
        assert len(store.project_runs("shop")) == 1


@pytest.mark.postgres
def test_eight_racing_uploads_of_one_journal_store_each_entry_once(
        postgres_url: str, tmp_path) -> None:
    from test_server_journal import local_journal

    with Store.open(postgres_url) as store:
        token = store.create_token(project="shop", scope="write")
    app = create_app(postgres_url)
    body = local_journal(tmp_path)
    answers: list[dict[str, int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(UPLOADERS)

    def send() -> None:
        try:
            client = TestClient(app)
            start.wait()
            response = client.post("/api/v1/projects/shop/journal", json=body,
                                   headers=auth(token))
            assert response.status_code == 200, response.text
            answers.append(response.json())
        except BaseException as e:   # reported below
            errors.append(e)

    threads = [threading.Thread(target=send) for _ in range(UPLOADERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(answers) == UPLOADERS
    items = len(body["entries"]) + len(body["cycles"])
    # every entry and cycle was created by exactly one of the racing uploads
    assert sum(a["created"] for a in answers) == items
    assert all(a["created"] + a["updated"] + a["unchanged"] == items for a in answers)
    with Store.open(postgres_url) as store:
        assert len(store.project_journal("shop")) == len(body["entries"])
        assert len(store.project_cycles("shop")) == 1
