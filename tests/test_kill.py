"""Killing ``perfloop run`` leaves nothing running: workers, command trees and HTTP servers.

Each test starts a real ``perfloop run`` whose benchmark never ends, with a marker in its
environment that every process it starts inherits; once the target's processes are up it sends
SIGTERM or SIGKILL to perfloop alone, then looks for any process still carrying the marker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

MARKER = "PERFLOOP_KILL_TEST"

TARGETS = {
    # a worker that starts a grandchild, then sleeps
    "callable": ('callable = "killmod:hang"', "killmod-grandchild"),
    # a shell with a background child
    "command": ('command = ["sh", "-c", "sleep 3600 & sleep 3601; : killmod-command"]', "3601"),
    # a server (with a child of its own) under load that never ends
    "http": ("", "killmod-server"),
}


def marked(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER) == marker:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project(tmp_path: Path, kind: str) -> Path:
    (tmp_path / "killmod.py").write_text(textwrap.dedent("""
        import subprocess, sys, time

        def hang():
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)",
                              "killmod-grandchild"])
            time.sleep(3600)
        """))
    settings = "processes = 1\nvalues = 1\nwarmup = 0\nmin_time = 0\ntimeout = 3600\n"
    if kind == "http":
        port = free_port()
        (tmp_path / "killserver.py").write_text(textwrap.dedent(f"""
            import http.server, subprocess, sys
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
            http.server.test(http.server.SimpleHTTPRequestHandler, port={port}, bind="127.0.0.1")
            """))
        target = (f'http = {{ url = "http://127.0.0.1:{port}/", rate = 5, duration = 3600 }}\n'
                  f'metrics = ["latency_p50"]\n'
                  f'server = {{ command = ["python", "killserver.py", "killmod-server"], '
                  f'ready_url = "http://127.0.0.1:{port}/" }}')
    else:
        target = TARGETS[kind][0]
    (tmp_path / "perfloop.toml").write_text(
        f'[[benchmark]]\nname = "forever"\n{target}\n{settings}')
    return tmp_path


def wait_for(marker: str, needle: str, perfloop: subprocess.Popen, limit: float = 120.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        assert perfloop.poll() is None, perfloop.stderr.read().decode() if perfloop.stderr else ""
        for proc in marked(marker):
            try:
                if any(needle in arg for arg in proc.cmdline()):
                    return
            except psutil.Error:
                continue
        time.sleep(0.1)
    pytest.fail(f"the target's processes ({needle}) never started")


@pytest.mark.parametrize("kind", list(TARGETS))
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_nothing_survives_a_killed_run(tmp_path, kind, sig):
    root = project(tmp_path, kind)
    marker = uuid.uuid4().hex
    env = {**os.environ, MARKER: marker}
    perfloop = subprocess.Popen([sys.executable, "-m", "perfloop", "run", "-C", str(root), "--json",
                                 "--store", str(tmp_path / "store.db")],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(marker, TARGETS[kind][1], perfloop)
        children = [p for p in marked(marker) if p.pid != perfloop.pid]
        assert children
        perfloop.send_signal(sig)
        code = perfloop.wait(timeout=60)
        assert code == (143 if sig == signal.SIGTERM else -signal.SIGKILL)
        if sig == signal.SIGTERM:
            assert "terminated" in perfloop.stderr.read().decode()
        end = time.monotonic() + 10
        while alive(children) and time.monotonic() < end:
            time.sleep(0.05)
        survivors = alive(children) + alive(marked(marker))
        assert not survivors, [(p.pid, p.cmdline()) for p in survivors if p.is_running()]
    finally:
        for proc in marked(marker):
            try:
                proc.kill()
            except psutil.Error:
                pass
        if perfloop.poll() is None:
            perfloop.kill()
        perfloop.wait()


def test_a_signal_while_a_child_is_being_spawned_waits_until_the_watchdog_knows_it(monkeypatch):
    """Ctrl-C (or SIGTERM) landing between the child's start and its registration with the
    watchdog must not leave a child that nobody kills: it is held until the group is known."""
    from perfloop.measure import process

    told: list[str] = []
    popen = subprocess.Popen

    def popen_then_interrupt(*args, **kwargs):
        proc = popen(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)          # the signal arrives right after the start
        return proc

    monkeypatch.setattr(process.subprocess, "Popen", popen_then_interrupt)
    monkeypatch.setattr(process._watchdog, "tell", told.append)
    with pytest.raises(KeyboardInterrupt):
        process.spawn(["sleep", "30"])
    try:
        [line] = told
        pgid = int(line[1:])
        assert line.startswith("+") and process.group_exists(pgid)   # registered before the stop
    finally:
        for line in told:
            process.kill_group(int(line[1:]))
            os.waitpid(int(line[1:]), 0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
