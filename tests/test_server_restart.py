"""A server killed (SIGKILL) while a runner uploads, then restarted: every acknowledged upload
is stored, and the runner's retries store nothing twice."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from perfloop.store import Store
from test_server import run_body
from test_server_cli import _free_port

UPLOADS = 30


def _start(store_url: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "perfloop", "serve", "--store", store_url,
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        if proc.poll() is not None:
            pytest.fail("the server exited at start")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("the server did not start within 60 s")


@pytest.mark.slow
def test_a_server_killed_during_uploads_loses_no_acknowledged_run(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'server.db'}"
    with Store.open(store_url) as store:
        token = store.create_token(project="shop", scope="write")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api/v1/projects/shop/runs"
    acked: dict[str, int] = {}
    failures: list[str] = []
    first_acks = threading.Event()

    def uploader() -> None:
        with httpx.Client(timeout=30) as http:
            for i in range(UPLOADS):
                body = run_body(f"restart-{i:04d}", seed=i)
                deadline = time.monotonic() + 120
                while True:   # a runner retries the same upload until it is acknowledged
                    try:
                        r = http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
                        if r.status_code in (200, 201):
                            acked[body["upload_id"]] = r.json()["run_id"]
                            break
                        failures.append(f"{r.status_code} {r.text[:200]}")
                        return
                    except httpx.HTTPError:
                        if time.monotonic() > deadline:
                            failures.append(f"upload {i} never acknowledged")
                            return
                        time.sleep(0.1)
                if len(acked) >= 5:
                    first_acks.set()

    proc = _start(store_url, port)
    thread = threading.Thread(target=uploader)
    try:
        thread.start()
        assert first_acks.wait(120)
        proc.kill()          # no shutdown: whatever was in flight is cut off
        proc.wait()
        killed_after = len(acked)
        proc = _start(store_url, port)
        thread.join(240)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert not failures, failures
    assert killed_after < UPLOADS     # the kill did come during the uploads
    assert len(acked) == UPLOADS
    with Store.open(store_url) as store:
        runs = {r.id for r in store.project_runs("shop", limit=1000)}
    assert runs == set(acked.values())   # every acknowledged run is there, and no other
