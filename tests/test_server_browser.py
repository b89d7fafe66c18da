"""The dashboard in a real browser: Playwright drives Debian's Chromium (no browser download)
against `perfloop serve` in its own process, after runs were uploaded over HTTP."""

from __future__ import annotations

import os
import shutil

import httpx
import pytest

from perfloop.store import Store
from test_server_cli import server  # noqa: F401  (the running server fixture)
from test_server_dashboard import N_RUNS, STEP_AT, _upload_history

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
CHROMIUM = os.environ.get("PERFLOOP_TEST_CHROMIUM") or shutil.which("chromium") \
    or shutil.which("chromium-browser")


@pytest.mark.slow
def test_the_dashboard_draws_the_uploaded_history_with_its_change_point(
        server: tuple[str, str]) -> None:  # noqa: F811
    if not CHROMIUM:
        pytest.skip("no Chromium found: apt-get install chromium, or set PERFLOOP_TEST_CHROMIUM")
    url, store_url = server
    with Store.open(store_url) as store:
        write = store.create_token(project="shop", scope="write")
        read = store.create_token(project="shop", scope="read")
    with httpx.Client(base_url=url, timeout=60) as http:
        _upload_history(http, write)   # type: ignore[arg-type]  (same post() as TestClient)

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
            # nothing came from anywhere but the server (no CDN)
            assert requests and all(r.startswith(url) for r in requests), requests
        finally:
            browser.close()
