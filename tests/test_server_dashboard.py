"""The server's dashboard pages: projects, a project's runs, a benchmark's history chart."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from perfloop.server.app import create_app  # noqa: E402
from perfloop.store import Store  # noqa: E402
from test_server import RUNS, auth, run_body  # noqa: E402

N_RUNS = 24
STEP_AT = 12   # runs from here on are 50% slower: a known regression


def _upload_history(client: TestClient, token: str) -> list[float]:
    rng = random.Random(17)
    levels = []
    for k in range(N_RUNS):
        level = 0.010 * (1.5 if k >= STEP_AT else 1.0)
        body = run_body(f"history-{k:03d}", n_results=1, n_samples=1, seed=k)
        body["commit"] = f"{k:040x}"
        body["results"][0]["samples"] = [
            {"metric": "wall_time", "value": level * (1 + rng.gauss(0, 0.01)), "worker": w,
             "index": i} for w in range(3) for i in range(5)]
        assert client.post(RUNS, json=body, headers=auth(token)).status_code == 201
        levels.append(level)
    return levels


@pytest.fixture
def setup(tmp_path: Path) -> tuple[str, dict[str, str]]:
    url = f"sqlite:///{tmp_path / 'server.db'}"
    with Store.open(url) as store:
        tokens = {"write": store.create_token(project="shop", scope="write"),
                  "read": store.create_token(project="shop", scope="read"),
                  "secret": store.create_token(project="secret", scope="write")}
    return url, tokens


def test_the_history_page_charts_the_uploaded_points_with_the_change_point(
        setup: tuple[str, dict[str, str]]) -> None:
    url, tokens = setup
    with TestClient(create_app(url, public_projects=["shop"])) as client:
        _upload_history(client, tokens["write"])
        client.post("/api/v1/projects/secret/runs", json=run_body("secret-0001"),
                    headers=auth(tokens["secret"]))
        home = client.get("/")
        assert home.status_code == 200
        assert 'href="/projects/shop"' in home.text and "secret" not in home.text
        project = client.get("/projects/shop")
        assert project.status_code == 200
        assert 'href="/projects/shop/benchmarks/bench_0"' in project.text
        assert project.text.count("<td>#") == N_RUNS
        page = client.get("/projects/shop/benchmarks/bench_0")
        assert page.status_code == 200
        # charts load Plotly from the server itself: no CDN
        assert '<script src="/static/plotly.min.js">' in page.text
        assert "cdn" not in page.text.lower()
        js = client.get("/static/plotly.min.js")
        assert js.status_code == 200 and "Plotly" in js.text[:5000]
        figures = json.loads(re.search(r'id="perfloop-figures">(.*?)</script>', page.text,
                                       re.S).group(1).replace("<\\/", "</"))
        points = figures["series-0"]["data"][0]["y"]
        assert len(points) == N_RUNS
        # the chart's points are the runs' medians (in seconds), in upload order
        assert all(0.0095 < y < 0.0105 for y in points[:STEP_AT]), points
        assert all(0.0143 < y < 0.0157 for y in points[STEP_AT:]), points
        data = json.loads(re.search(r'id="perfloop-data">(.*?)</script>', page.text,
                                    re.S).group(1).replace("<\\/", "</"))
        changes = data[0]["change_points"]
        assert [c["index"] for c in changes] == [STEP_AT]
        assert changes[0]["kind"] == "regression"
        assert 'class="regression"' in page.text


def test_a_private_project_needs_a_read_token(setup: tuple[str, dict[str, str]]) -> None:
    url, tokens = setup
    with TestClient(create_app(url)) as client:
        client.post(RUNS, json=run_body("private-0001"), headers=auth(tokens["write"]))
        assert "/projects/shop" not in client.get("/").text
        assert client.get("/projects/shop").status_code == 401
        assert client.get("/projects/shop", headers=auth(tokens["secret"])).status_code == 403
        assert client.get("/projects/shop", headers=auth(tokens["read"])).status_code == 200
        client.cookies.set("perfloop_token", tokens["read"])
        assert 'href="/projects/shop"' in client.get("/").text
        assert client.get("/projects/shop/benchmarks/bench_1").status_code == 200
        assert client.get("/projects/shop/benchmarks/nothing").status_code == 404
