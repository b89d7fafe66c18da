"""The team server's upload API: tokens, idempotent all-or-nothing uploads, size limits."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from perfloop.errors import StoreError  # noqa: E402
from perfloop.records import BenchmarkResult, RunStatus, Sample  # noqa: E402
from perfloop.server.app import create_app  # noqa: E402
from perfloop.store import Store  # noqa: E402
from perfloop.store.server_tables import UploadedRun, UploadConflict, hash_token  # noqa: E402

START = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def run_body(upload_id: str, *, n_results: int = 3, n_samples: int = 5, seed: int = 0,
             label: str = "ci") -> dict[str, Any]:
    return {
        "upload_id": upload_id, "label": label, "commit": "ab" * 20, "branch": "main",
        "dirty": False, "environment": {"cpu": "test-cpu", "python": "3.11"},
        "settings": {"processes": 2}, "started_at": (START + timedelta(minutes=seed)).isoformat(),
        "finished_at": (START + timedelta(minutes=seed, seconds=30)).isoformat(),
        "status": "complete", "hostname": "runner-1",
        "results": [{"name": f"bench_{i}", "kind": "callable", "status": "ok",
                     "samples": [{"metric": "wall_time", "value": 0.001 * (i + 1) + 1e-6 * j,
                                  "worker": j % 2, "index": j} for j in range(n_samples)]}
                    for i in range(n_results)]}


@pytest.fixture
def tokens(store_url: str) -> dict[str, str]:
    with Store.open(store_url) as store:
        return {"write": store.create_token(project="shop", scope="write", name="ci"),
                "read": store.create_token(project="shop", scope="read"),
                "other": store.create_token(project="other", scope="write")}


@pytest.fixture
def client(store_url: str, tokens: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(store_url, max_body=64 * 1024)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stored_runs(store_url: str) -> int:
    with Store.open(store_url) as store:
        return len(store.list_runs(limit=None))


RUNS = "/api/v1/projects/shop/runs"


def test_upload_stores_the_run_with_its_samples(client: TestClient, tokens: dict[str, str],
                                                 store_url: str) -> None:
    response = client.post(RUNS, json=run_body("upload-0001"), headers=auth(tokens["write"]))
    assert response.status_code == 201, response.text
    run_id = response.json()["run_id"]
    assert response.json()["created"] is True
    with Store.open(store_url) as store:
        run = store.get_run(run_id)
    assert run.project == "shop" and run.label == "ci" and run.status is RunStatus.COMPLETE
    assert [r.name for r in run.results] == ["bench_0", "bench_1", "bench_2"]
    assert run.result("bench_1").values("wall_time")[:2] == [0.002, 0.002 + 1e-6]
    assert run.started_at == START


def test_reading_back_with_a_read_token(client: TestClient, tokens: dict[str, str]) -> None:
    run_id = client.post(RUNS, json=run_body("upload-0002"),
                         headers=auth(tokens["write"])).json()["run_id"]
    listed = client.get(RUNS, headers=auth(tokens["read"]))
    assert listed.status_code == 200
    assert [(r["id"], r["results"]) for r in listed.json()] == [(run_id, 3)]
    one = client.get(f"{RUNS}/{run_id}", headers=auth(tokens["read"]))
    assert one.status_code == 200
    assert len(one.json()["benchmarks"][0]["samples"]) == 5
    # another project's run is not found through this project, even with a valid token
    assert client.get(f"/api/v1/projects/other/runs/{run_id}",
                      headers=auth(tokens["other"])).status_code == 404


@pytest.mark.parametrize("who", ["none", "wrong", "read", "other", "basic"])
def test_writes_without_a_write_token_of_the_project_are_refused(
        client: TestClient, tokens: dict[str, str], store_url: str, who: str) -> None:
    headers = {"none": {}, "wrong": auth("plt_" + "x" * 43), "read": auth(tokens["read"]),
               "other": auth(tokens["other"]),
               "basic": {"Authorization": "Basic dXNlcjpwYXNz"}}[who]
    response = client.post(RUNS, json=run_body("upload-0003"), headers=headers)
    assert response.status_code in (401, 403), response.text
    assert "token" in response.json()["detail"]
    assert stored_runs(store_url) == 0


def test_reads_need_a_token_of_the_project(client: TestClient, tokens: dict[str, str]) -> None:
    assert client.get(RUNS).status_code == 401
    assert client.get(RUNS, headers=auth(tokens["other"])).status_code == 403
    assert client.get(RUNS, headers=auth(tokens["write"])).status_code == 200


def test_a_public_project_is_read_without_a_token_but_not_written(
        store_url: str, tokens: dict[str, str]) -> None:
    with TestClient(create_app(store_url, public_projects=["shop"])) as c:
        assert c.get(RUNS).status_code == 200
        assert c.post(RUNS, json=run_body("upload-0004")).status_code == 401
        assert c.get("/api/v1/projects/other/runs").status_code == 401


def test_a_retried_upload_is_stored_once(client: TestClient, tokens: dict[str, str],
                                         store_url: str) -> None:
    first = client.post(RUNS, json=run_body("upload-0005"), headers=auth(tokens["write"]))
    again = client.post(RUNS, json=run_body("upload-0005"), headers=auth(tokens["write"]))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == {"run_id": first.json()["run_id"], "created": False}
    assert stored_runs(store_url) == 1
    # the same id for another run is a conflict, not a silent overwrite
    other = client.post(RUNS, json=run_body("upload-0005", seed=3),
                        headers=auth(tokens["write"]))
    assert other.status_code == 409 and "already used" in other.json()["detail"]
    assert stored_runs(store_url) == 1


def test_an_invalid_sample_in_the_last_result_stores_nothing(
        client: TestClient, tokens: dict[str, str], store_url: str) -> None:
    body = run_body("upload-0006")
    body["results"][-1]["samples"][-1]["loops"] = 0
    response = client.post(RUNS, json=body, headers=auth(tokens["write"]))
    assert response.status_code == 422
    assert "loops" in json.dumps(response.json()["detail"])
    body = run_body("upload-0006")
    body["results"][-1]["samples"][-1]["value"] = 12345.5
    raw = json.dumps(body).replace("12345.5", "NaN")
    assert "NaN" in raw
    response = client.post(RUNS, content=raw, headers={**auth(tokens["write"]),
                                                       "Content-Type": "application/json"})
    assert response.status_code == 422
    assert stored_runs(store_url) == 0


def test_a_body_cut_off_midway_is_refused(client: TestClient, tokens: dict[str, str],
                                          store_url: str) -> None:
    raw = json.dumps(run_body("upload-0007"))
    response = client.post(RUNS, content=raw[: len(raw) // 2],
                           headers={**auth(tokens["write"]), "Content-Type": "application/json"})
    assert response.status_code == 422
    assert stored_runs(store_url) == 0


def test_a_failed_result_without_an_error_is_refused(client: TestClient,
                                                     tokens: dict[str, str], store_url: str) -> None:
    body = run_body("upload-0008")
    body["results"][1]["status"] = "failed"
    response = client.post(RUNS, json=body, headers=auth(tokens["write"]))
    assert response.status_code == 422 and "error message" in response.json()["detail"]
    assert stored_runs(store_url) == 0


def test_an_oversized_body_gets_413_and_stores_nothing(
        client: TestClient, tokens: dict[str, str], store_url: str) -> None:
    body = run_body("upload-0009", n_results=20, n_samples=200)   # well over 64 KiB
    response = client.post(RUNS, json=body, headers=auth(tokens["write"]))
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    assert stored_runs(store_url) == 0


def test_a_streamed_oversized_body_gets_413(client: TestClient, tokens: dict[str, str],
                                            store_url: str) -> None:
    def chunks() -> Iterator[bytes]:   # no Content-Length: the limit counts what arrives
        for _ in range(100):
            yield b" " * 1024
    response = client.post(RUNS, content=chunks(), headers={**auth(tokens["write"]),
                                                            "Content-Type": "application/json"})
    assert response.status_code == 413
    assert stored_runs(store_url) == 0


def test_the_openapi_description_lists_the_upload(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/api/v1/projects/{project}/runs"]["post"]
    assert "requestBody" in post
    assert "RunUpload" in json.dumps(post["requestBody"])


def test_tokens_are_stored_hashed(store_url: str, tokens: dict[str, str]) -> None:
    from sqlalchemy import create_engine, text
    engine = create_engine(store_url)
    with engine.connect() as conn:
        hashes = set(conn.execute(text("SELECT token_hash FROM tokens")).scalars())
    engine.dispose()
    assert hash_token(tokens["write"]) in hashes
    assert not any(t in hashes for t in tokens.values())
    with Store.open(store_url) as store:
        assert store.check_token(tokens["write"], project="shop", scope="read") is not None
        assert store.check_token(tokens["read"], project="shop", scope="write") is None
        assert [t.name for t in store.tokens(project="shop")] == ["ci", ""]


def test_a_store_failure_midway_through_an_upload_stores_nothing(store_url: str) -> None:
    good = BenchmarkResult(name="a", kind="callable", status="ok",
                           samples=(Sample("wall_time", 1.0),))
    # the last result's extra data cannot be stored: the failure comes after the run row and
    # the first result were written in the same transaction
    bad = BenchmarkResult(name="b", kind="callable", status="ok",
                          samples=(Sample("wall_time", 1.0),), extra={"x": object()})
    run = UploadedRun(label="x", commit=None, branch=None, dirty=False, environment={},
                      settings={}, started_at=START, finished_at=START, status=RunStatus.COMPLETE,
                      results=[good, bad])
    with Store.open(store_url) as store:
        with pytest.raises(StoreError, match="extra data of 'b'"):
            store.store_upload("shop", "upload-cut-1", run)
        assert store.list_runs(limit=None) == []
        # the upload id was not claimed either: the corrected upload goes through
        fixed = UploadedRun(**{**run.__dict__, "results": [good]})
        outcome = store.store_upload("shop", "upload-cut-1", fixed)
        assert outcome.created and len(store.list_runs(limit=None)) == 1
        with pytest.raises(UploadConflict):
            store.store_upload("shop", "upload-cut-1", run)


def test_the_client_retries_server_errors_and_not_refusals() -> None:
    import httpx

    from perfloop.errors import UsageError
    from perfloop.server.client import UploadFailed, upload

    answers = iter([httpx.Response(503, json={"detail": "busy"}),
                    httpx.Response(502, text="bad gateway"),
                    httpx.Response(201, json={"run_id": 7, "created": True})])
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append({"auth": request.headers["Authorization"],
                     "path": request.url.raw_path.decode()})
        return next(answers)

    slept: list[float] = []
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        answer = upload("http://server", "tok", "my shop", {"upload_id": "x"}, client=http,
                        sleep=slept.append)
    assert answer == {"run_id": 7, "created": True}
    assert len(seen) == 3 and slept == [2.0, 4.0]
    assert seen[0] == {"auth": "Bearer tok", "path": "/api/v1/projects/my%20shop/runs"}

    refusals = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal refusals
        refusals += 1
        return httpx.Response(403, json={"detail": "this token may not write project 'x'"})

    with httpx.Client(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(UsageError, match="refused the upload \\(403\\): this token"):
            upload("http://server", "tok", "x", {}, client=http, sleep=slept.append)
    assert refusals == 1

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(down)) as http:
        with pytest.raises(UploadFailed, match="after 4 attempts: cannot reach"):
            upload("http://server", "tok", "x", {}, client=http, sleep=lambda s: None)
