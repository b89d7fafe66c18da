"""The server's dashboard pages: projects, a project's runs, a benchmark's history chart,
comparisons, the journal, open incidents and the current cycle; everything escaped."""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

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


def _figures(page: str) -> dict:
    return json.loads(re.search(r'id="perfloop-figures">(.*?)</script>', page,
                                re.S).group(1).replace("<\\/", "</"))


def _data(page: str):
    return json.loads(re.search(r'id="perfloop-data">(.*?)</script>', page,
                                re.S).group(1).replace("<\\/", "</"))


def _pair(client: TestClient, token: str, slowdown: float) -> tuple[int, int]:
    """Two runs of two benchmarks, seeded: bench_0 ``slowdown`` times slower in head,
    bench_1 the same level in both."""
    rng = random.Random(5)
    ids = []
    for k, factor in enumerate((1.0, slowdown)):
        body = run_body(f"pair-run-{k}", n_results=2, seed=k)
        body["commit"] = f"{k + 100:040x}"
        for i, result in enumerate(body["results"]):
            level = 0.010 * (factor if i == 0 else 1.0)
            result["samples"] = [{"metric": "wall_time", "value": level * (1 + rng.gauss(0, 0.01)),
                                  "worker": w, "index": j} for w in range(6) for j in range(5)]
        ids.append(client.post(RUNS, json=body, headers=auth(token)).json()["run_id"])
    return ids[0], ids[1]


def test_the_compare_page_shows_the_verdicts_of_perfloop_compare(
        setup: tuple[str, dict[str, str]]) -> None:
    from perfloop.analysis.comparison import compare_runs

    url, tokens = setup
    with TestClient(create_app(url, public_projects=["shop"])) as client:
        base, head = _pair(client, tokens["write"], 1.5)
        project = client.get("/projects/shop")
        # the runs list links each run to a comparison with the run before it
        assert f'href="/projects/shop/compare?base={base}&amp;head={head}"' in project.text
        page = client.get(f"/projects/shop/compare?base={base}&head={head}")
        assert page.status_code == 200
        verdicts = {(v["benchmark"], v["metric"]): v for v in _data(page.text)["verdicts"]}
        assert verdicts[("bench_0", "wall_time")]["verdict"] == "regressed"
        assert 0.45 < verdicts[("bench_0", "wall_time")]["change"] < 0.55
        # same level on both sides: never called a change (separate runs' drift may leave it
        # undecided)
        assert verdicts[("bench_1", "wall_time")]["verdict"] in ("unchanged", "inconclusive")
        rows = re.findall(r'<tr class="verdict-row"><td>(.*?)</td>.*?class="verdict [^"]*">'
                          r'(\w+)</td>', page.text, re.S)
        assert ("bench_0", "regressed") in rows
        # the same analysis as the CLI's compare, on the same stored runs (no repeat runs of
        # one commit here, so both fall back to the default drift)
        with Store.open(url) as store:
            expected = compare_runs(store.get_run(base), store.get_run(head))
        assert [(v.benchmark, v.metric, v.verdict.value) for v in expected.verdicts] == \
            [(v["benchmark"], v["metric"], v["verdict"]) for v in _data(page.text)["verdicts"]]
        assert set(_figures(page.text)) == {"cmp-0", "cmp-1"}
        assert '<script src="/static/plotly.min.js">' in page.text
        assert client.get(f"/projects/shop/compare?base={base}&head=999").status_code == 404
        assert client.get(f"/projects/shop/compare?base={base}").status_code == 422


def test_a_run_of_another_project_is_not_compared(setup: tuple[str, dict[str, str]]) -> None:
    url, tokens = setup
    with TestClient(create_app(url, public_projects=["shop"])) as client:
        base, _ = _pair(client, tokens["write"], 1.0)
        secret = client.post("/api/v1/projects/secret/runs", json=run_body("secret-0002"),
                             headers=auth(tokens["secret"])).json()["run_id"]
        page = client.get(f"/projects/shop/compare?base={base}&head={secret}")
        assert page.status_code == 404 and "bench_0" not in page.text


def test_the_history_chart_marks_where_the_environment_changed(
        setup: tuple[str, dict[str, str]]) -> None:
    url, tokens = setup
    rng = random.Random(3)
    with TestClient(create_app(url, public_projects=["shop"])) as client:
        for k in range(16):
            body = run_body(f"env-run-{k:03d}", n_results=1, seed=k)
            body["commit"] = f"{k:040x}"
            # a new machine from run 8 on: the level moves with it
            body["environment"] = {"cpu": "old-cpu" if k < 8 else "new-cpu", "python": "3.11"}
            level = 0.010 if k < 8 else 0.012
            body["results"][0]["samples"] = [
                {"metric": "wall_time", "value": level * (1 + rng.gauss(0, 0.01)), "worker": w,
                 "index": i} for w in range(3) for i in range(5)]
            assert client.post(RUNS, json=body, headers=auth(tokens["write"])).status_code == 201
        page = client.get("/projects/shop/benchmarks/bench_0")
        assert page.status_code == 200
        (history,) = _data(page.text)
        assert [e["index"] for e in history["environment_changes"]] == [8]
        assert [c["kind"] for c in history["change_points"]] == ["environment"]
        layout = _figures(page.text)["series-0"]["layout"]
        assert any(s.get("x0") == 7.5 for s in layout["shapes"])
        assert "environment changed between run #8 and run #9" in page.text
        assert "cpu: old-cpu -&gt; new-cpu" in page.text
        # the latest environment alone has no change at all
        latest = client.get("/projects/shop/benchmarks/bench_0?environment=latest")
        assert _data(latest.text)[0]["environment_changes"] == []
        assert len(_figures(latest.text)["series-0"]["data"][0]["y"]) == 8


def test_the_journal_incidents_and_cycle_pages(setup: tuple[str, dict[str, str]],
                                               tmp_path: Path) -> None:
    from test_server_journal import local_journal

    url, tokens = setup
    with TestClient(create_app(url, public_projects=["shop"])) as client:
        client.post(RUNS, json=run_body("journal-run-1"), headers=auth(tokens["write"]))
        body = local_journal(tmp_path)
        assert client.post("/api/v1/projects/shop/journal", json=body,
                           headers=auth(tokens["write"])).status_code == 200
        project = client.get("/projects/shop").text
        assert "checkout p99 spike" in project                   # the open incident
        assert "release-7" in project and "30 of 100 risk points spent, 70 left" in project
        assert 'href="/projects/shop/journal"' in project
        journal_page = client.get("/projects/shop/journal")
        assert journal_page.status_code == 200
        rows = re.findall(r'<tr class="entry( open-loop)?"><td>([^<]+)</td>', journal_page.text)
        assert len(rows) == 4
        open_loops = re.search(r'<ul id="open-loops">(.*?)</ul>', journal_page.text, re.S).group(1)
        assert "raise the product cache to 4096" in open_loops
        assert "index orders.created_at" not in open_loops
        assert "report wall_time -61%" in journal_page.text
        cycle = client.get("/projects/shop/cycle")
        assert cycle.status_code == 200
        assert "<strong>70 left</strong>" in cycle.text and "pool 10 -&gt; 32" in cycle.text
        assert "30 (medium)" in cycle.text


def test_every_page_escapes_what_clients_uploaded(setup: tuple[str, dict[str, str]]) -> None:
    url, tokens = setup
    hostile = '<script>alert("x")</script>\x1b[31m\u202e'
    with TestClient(create_app(url, public_projects=["shop"])) as client:
        first = run_body("hostile-1", n_results=1)
        first["label"] = hostile
        first["branch"] = hostile
        first["results"][0]["name"] = "bench</script><img src=x onerror=alert(1)>"
        second = {**first, "upload_id": "hostile-2",
                  "started_at": (datetime.fromisoformat(first["started_at"])
                                 + timedelta(minutes=5)).isoformat()}
        ids = [client.post(RUNS, json=b, headers=auth(tokens["write"])).json()["run_id"]
               for b in (first, second)]
        entry = {"id": "1", "source": "change", "title": hostile, "workflow": "manual",
                 "status": "open", "created_at": "2026-11-30T12:00:00+00:00", "why": hostile,
                 "commits": ["<b>c</b>"]}
        cycle = {"id": 1, "name": hostile, "status": "open", "budget": 10.0,
                 "opened_at": "2026-11-30T12:00:00+00:00",
                 "changes": [{"id": 2, "title": hostile, "score": 1, "level": "low",
                              "status": "applied"}]}
        assert client.post("/api/v1/projects/shop/journal",
                           json={"origin": "origin-hostile", "entries": [entry],
                                 "cycles": [cycle]},
                           headers=auth(tokens["write"])).status_code == 200
        name = quote(first["results"][0]["name"], safe="")
        pages = ["/", "/projects/shop", f"/projects/shop/benchmarks/{name}",
                 f"/projects/shop/compare?base={ids[0]}&head={ids[1]}",
                 "/projects/shop/journal", "/projects/shop/cycle"]
        for path in pages:
            page = client.get(path)
            assert page.status_code == 200, path
            outside_json = re.sub(r'<script type="application/json".*?</script>', "", page.text,
                                  flags=re.S)
            assert "<script>alert" not in page.text and "<img" not in outside_json, path
            assert "\x1b" not in page.text and "\u202e" not in page.text, path
        journal_page = client.get("/projects/shop/journal").text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;\\x1b[31m\\u202e" in journal_page


def test_a_cycle_uploaded_with_odd_health_and_changes_still_renders(
        setup: tuple[str, dict[str, str]]) -> None:
    url, tokens = setup
    odd = {"id": 3, "name": "odd", "status": "open", "budget": 40.0, "spent": 50.0,
           "opened_at": "2026-11-30T12:00:00+00:00",
           "health": {"stagnation": "yes", "chaos": True, "unspent_share": {"x": 1},
                      "rolled_back_or_broken": "two"},
           "changes": [{}, {"id": [1], "score": "high", "title": {"t": 1}}],
           "queue": [{"blocked_by": "everything", "age_days": None}]}
    with TestClient(create_app(url, public_projects=["shop"])) as client:
        assert client.post("/api/v1/projects/shop/journal",
                           json={"origin": "origin-odd-1", "cycles": [odd]},
                           headers=auth(tokens["write"])).status_code == 200
        page = client.get("/projects/shop/cycle")
        assert page.status_code == 200
        # over budget: the bar is full, not wider; only a true flag counts
        assert 'style="width: 100.0%"' in page.text
        assert '<span class="flag">chaos</span>' in page.text
        assert '<span class="flag">stagnation</span>' not in page.text
        assert client.get("/projects/shop").status_code == 200
