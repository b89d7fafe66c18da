"""The server end to end: `perfloop serve` in its own process, `perfloop token create`, and
`perfloop run --upload` from a project, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from perfloop.store import Store
from test_cli import CONFIG, MODULE, perfloop

pytest.importorskip("uvicorn")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("PERFLOOP_STORE", "PERFLOOP_SERVER", "PERFLOOP_TOKEN")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "perfloop", *args], capture_output=True,
                          text=True, env=full_env, timeout=120)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A running server on a new SQLite store: (its URL, the store's URL)."""
    store_url = f"sqlite:///{tmp_path / 'server.db'}"
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "perfloop", "serve", "--store", store_url,
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):   # start-up on a loaded machine: poll, no fixed sleep
            if proc.poll() is not None:
                pytest.fail(f"the server exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                if httpx.get(f"{url}/openapi.json", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not start within 60 s")
        yield url, store_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_run_uploads_to_the_server_and_a_failed_upload_keeps_the_run(
        tmp_path: Path, server: tuple[str, str]) -> None:
    url, store_url = server
    made = _cli("token", "create", "--project", "toy", "--scope", "write", "--store", store_url,
                "--json")
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    assert token.startswith("plt_")

    project = tmp_path / "proj"
    project.mkdir()
    (project / "toymod.py").write_text(MODULE)
    (project / "perfloop.toml").write_text(CONFIG)

    done = perfloop(project, "run", "--label", "one", "--upload", url, "--project", "toy",
                    "--json", env={"PERFLOOP_TOKEN": token})
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout)
    assert out["upload"]["created"] is True and out["upload"]["error"] is None
    with Store.open(store_url) as store:
        runs = store.project_runs("toy")
        assert [r.label for r in runs] == ["one"]
        uploaded = store.get_run(runs[0].id)
    assert uploaded.result("toy").values("cost")    # the samples came along
    # uploading the same run again stores nothing new
    again = perfloop(project, "upload", str(out["run_id"]), "--server", url, "--project", "toy",
                     "--json", env={"PERFLOOP_TOKEN": token})
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["created"] is False

    # a read token cannot upload: the run is stored locally, the command says so and fails
    read = json.loads(_cli("token", "create", "--project", "toy", "--scope", "read",
                           "--store", store_url, "--json").stdout)["token"]
    refused = perfloop(project, "run", "--label", "two", "--upload", url, "--project", "toy",
                       "--token", read)
    assert refused.returncode == 2
    assert "refused the upload (403)" in refused.stderr
    local = perfloop(project, "runs", "--json")
    assert [r["label"] for r in json.loads(local.stdout)] == ["two", "one"]
    with Store.open(store_url) as store:
        assert len(store.project_runs("toy")) == 1


@pytest.mark.slow   # a real process for seconds: out of the fast loop
def test_token_revoke_refuses_the_token_and_keeps_it_listed(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'server.db'}"
    made = json.loads(_cli("token", "create", "--project", "toy", "--name", "ci-1",
                           "--store", store_url, "--json").stdout)
    token_id = json.loads(_cli("token", "list", "--store", store_url, "--json").stdout)[0]["id"]
    revoked = _cli("token", "revoke", str(token_id), "--store", store_url)
    assert revoked.returncode == 0, revoked.stderr
    assert f"Revoked token #{token_id} (write, project toy)." in revoked.stdout
    listed = json.loads(_cli("token", "list", "--store", store_url, "--json").stdout)
    assert listed[0]["revoked_at"] is not None
    assert "revoked" in _cli("token", "list", "--store", store_url).stdout
    with Store.open(store_url) as store:
        assert store.check_token(made["token"], project="toy", scope="write") is None
    missing = _cli("token", "revoke", "999", "--store", store_url)
    assert missing.returncode == 2 and "no token #999" in missing.stderr


@pytest.mark.slow
def test_upload_journal_sends_the_journal_once(tmp_path: Path, server: tuple[str, str]) -> None:
    url, store_url = server
    with Store.open(store_url) as store:
        token = store.create_token(project="toy", scope="write")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "toymod.py").write_text(MODULE)
    (project / "perfloop.toml").write_text(CONFIG)
    perfloop(project, "journal", "add", "raise the cache to 4096", "--why", "lookups miss",
             "--expect", "toy wall_time -20%", check=True)
    env = {"PERFLOOP_TOKEN": token, "PERFLOOP_SERVER": url}
    sent = perfloop(project, "upload", "--journal", "--project", "toy", "--json", env=env)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    answer = json.loads(sent.stdout)["journal"]
    assert (answer["entries"], answer["created"]) == (1, 1)
    again = perfloop(project, "upload", "--journal", "--project", "toy", env=env)
    assert again.returncode == 0, again.stderr
    assert "0 new, 0 updated, 0 removed, 1 unchanged" in " ".join(again.stdout.split())
    with Store.open(store_url) as store:
        (entry,) = store.project_journal("toy")
    assert entry["title"] == "raise the cache to 4096" and entry["open_loop"] is True
    page = httpx.get(f"{url}/projects/toy/journal", cookies={"perfloop_token": token})
    assert page.status_code == 200 and "raise the cache to 4096" in page.text
    nothing = perfloop(project, "upload", env=env)
    assert nothing.returncode == 2 and "nothing to upload" in nothing.stderr
