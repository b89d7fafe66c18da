"""The dashboard in a real browser: Playwright drives Debian's Chromium (no browser download)
against `perfloop serve` in its own process, after runs and a journal were uploaded over HTTP:
a benchmark's history chart with its change point, the comparison across that change point,
and the journal."""

from __future__ import annotations

import os
import shutil

import httpx
import pytest

from perfloop.store import Store
from test_server_cli import server  # noqa: F401  (the running server fixture)
from test_server_dashboard import N_RUNS, STEP_AT, _upload_history
from test_server_journal import local_journal

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
CHROMIUM = os.environ.get("PERFLOOP_TEST_CHROMIUM") or shutil.which("chromium") \
    or shutil.which("chromium-browser")


@pytest.mark.slow
def test_the_dashboard_draws_the_uploaded_history_its_comparison_and_the_journal(
        server: tuple[str, str], tmp_path) -> None:  # noqa: F811
    if not CHROMIUM:
        pytest.skip("no Chromium found: apt-get install chromium, or set PERFLOOP_TEST_CHROMIUM")
    url, store_url = server
    with Store.open(store_url) as store:
        write = store.create_token(project="shop", scope="write")
        read = store.create_token(project="shop", scope="read")
    with httpx.Client(base_url=url, timeout=60) as http:
        _upload_history(http, write)   # type: ignore[arg-type]  (same post() as TestClient)
        sent = http.post("/api/v1/projects/shop/journal", json=local_journal(tmp_path),
                         headers={"Authorization": f"Bearer {write}"})
        assert sent.status_code == 200, sent.text

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context()
            host = url.split("//", 1)[1].split(":")[0]
            context.add_cookies([{"name": "perfloop_token", "value": read, "domain": host,
                                  "path": "/"}])
            requests: list[str] = []
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url + "/")
            page.get_by_role("link", name="shop").click()
            page.get_by_role("link", name="bench_0").click()
            page.wait_for_selector("#series-0 .main-svg")
            drawn = page.evaluate("document.getElementById('series-0').data[0].y.length")
            assert drawn == N_RUNS
            # the markers are in the SVG: the browser drew every uploaded run
            assert page.locator("#series-0 .scatterlayer .trace").first \
                .locator("path.point").count() == N_RUNS
            change = page.locator("ul.change-points li.regression")
            assert change.count() == 1
            # runs were stored with ids 1..N in upload order: the step is between these two
            assert f"between run #{STEP_AT} and run #{STEP_AT + 1}" in change.inner_text()

            # the change point's comparison: the same step, called a regression
            change.get_by_role("link", name="compare").click()
            page.wait_for_selector("#cmp-0 .main-svg")
            assert page.url.endswith(f"/compare?base={STEP_AT}&head={STEP_AT + 1}")
            row = page.locator("tr.verdict-row", has_text="wall_time")
            assert row.count() == 1 and row.locator("td.verdict").inner_text() == "regressed"
            assert page.evaluate("document.getElementById('cmp-0').data.length") == 2

            # the journal, from the navigation: every entry, the open loops listed first
            page.get_by_role("link", name="journal", exact=True).click()
            page.wait_for_selector("table#journal")
            assert page.locator("table#journal tr.entry").count() == 4
            assert "raise the product cache to 4096" in page.locator("#open-loops").inner_text()
            page.get_by_role("link", name="shop", exact=True).click()
            assert "checkout p99 spike" in page.locator("#incidents").inner_text()
            # nothing came from anywhere but the server (no CDN)
            assert requests and all(r.startswith(url) for r in requests), requests
        finally:
            browser.close()
