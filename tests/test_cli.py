"""The CLI end to end, in real processes: run, runs, show, compare, errors and interruption.

Verdicts here are tested on a custom metric whose values the benchmark computes
deterministically (known answers), never on wall time.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitutil import git

from perfloop.store import Store

MODULE = '''
import os, time

FACTOR = 1.0 + float(os.environ.get("TOY_SLOWDOWN", "0"))
_calls = 0

def work():
    """Deterministic 'cost' that varies a little from call to call, scaled by TOY_SLOWDOWN."""
    global _calls
    _calls += 1
    sum(i * i for i in range(200))
    return {"cost": FACTOR * (100.0 + (_calls % 5))}

def hang():
    time.sleep(3600)
'''

CONFIG = '''
[defaults]
processes = 3
values = 3
warmup = 1
min_time = 0.001

[[benchmark]]
name = "toy"
callable = "toymod:work"
metrics = ["wall_time", "cost"]
custom_metrics = { cost = { unit = "units", direction = "lower" } }
'''


def perfloop(project: Path, *args: str, env: dict | None = None, check: bool = False,
             timeout: float = 240) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "PERFLOOP_STORE"}
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "perfloop", *args, "-C", str(project)],
                          capture_output=True, text=True, env=full_env, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "toymod.py").write_text(MODULE)
    (tmp_path / "perfloop.toml").write_text(CONFIG)
    return tmp_path




@pytest.mark.slow
def test_run_show_compare_with_known_verdicts(project: Path):
    base = json.loads(perfloop(project, "run", "--label", "base", "--json", check=True).stdout)
    assert base["status"] == "complete"
    [result] = base["results"]
    cost = next(m for m in result["metrics"] if m["metric"] == "cost")
    assert cost["n"] == 9 and cost["workers"] == 3 and cost["unit"] == "units"
    assert (project / ".perfloop" / "perfloop.db").is_file()

    perfloop(project, "run", "--label", "same", "--json", check=True)
    perfloop(project, "run", "--label", "slow", "--json", env={"TOY_SLOWDOWN": "0.10"}, check=True)
    perfloop(project, "run", "--label", "fast", "--json", env={"TOY_SLOWDOWN": "-0.10"}, check=True)

    def verdict(a: str, b: str) -> dict:
        out = json.loads(perfloop(project, "compare", a, b, "--metric", "cost", "--json", check=True).stdout)
        [v] = out["verdicts"]
        return v

    assert verdict("base", "same")["verdict"] == "unchanged"
    slow = verdict("base", "slow")
    assert slow["verdict"] == "regressed" and slow["change"] == pytest.approx(0.10, abs=0.02)
    assert verdict("base", "fast")["verdict"] == "improved"

    listed = json.loads(perfloop(project, "runs", "--json", check=True).stdout)
    assert [r["label"] for r in listed] == ["fast", "slow", "same", "base"]
    assert all(r["status"] == "complete" for r in listed)

    # show: n, median, IQR and p99 of the stored values (quantiles by linear interpolation)
    shown = " ".join(perfloop(project, "show", "slow", check=True).stdout.split())
    with Store.open(f"sqlite:///{project / '.perfloop' / 'perfloop.db'}") as db:
        [slow_run] = [r for r in db.list_runs() if r.label == "slow"]
        [stored] = db.get_run(slow_run.id).results
    values = stored.values("cost")
    q = statistics.quantiles(values, n=100, method="inclusive")
    numbers = [f"{len(values)}", f"{statistics.median(values):.4g} units", f"{q[74] - q[24]:.4g} units",
               f"{q[98]:.4g} units"]
    assert len(values) == 9 and statistics.median(values) == pytest.approx(1.1 * 102, rel=0.01)
    # a table row on a wide terminal, "metric: cost n: 9 median: ..." in 80 columns
    row = shown[shown.index("cost"):] if "cost" in shown else ""
    labelled = " ".join(f"{k}: {v}" for k, v in zip(("n", "median", "IQR", "p99"), numbers))
    assert "toy" in shown and (row.startswith(f"cost {' '.join(numbers)}")
                               or row.startswith(f"cost {labelled}")), (numbers, shown)

    gated = perfloop(project, "compare", "base", "slow", "--metric", "cost", "--check")
    assert gated.returncode == 1 and "regressed" in gated.stdout


@pytest.mark.slow
def test_git_refs_and_store_option(project: Path, tmp_path_factory):
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "first")
    first = git(project, "rev-parse", "HEAD")
    other_store = tmp_path_factory.mktemp("store") / "runs.db"
    perfloop(project, "run", "--store", str(other_store), "--json", check=True)
    (project / "note.txt").write_text("x")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "second")
    perfloop(project, "run", "--json", env={"PERFLOOP_STORE": str(other_store)}, check=True)

    shown = json.loads(perfloop(project, "show", "HEAD~1", "--store", str(other_store), "--json",
                                check=True).stdout)
    assert shown["commit"] == first and shown["dirty"] is False
    out = json.loads(perfloop(project, "compare", "HEAD~1", "HEAD", "--store", str(other_store),
                              "--json", check=True).stdout)
    assert out["base"]["commit"] == first and out["comparable"] is True
    # the default store in the project was never written
    assert not (project / ".perfloop" / "perfloop.db").exists()
    missing = perfloop(project, "show", "no-such-label", "--store", str(other_store))
    assert missing.returncode == 2 and "perfloop runs" in missing.stderr


def test_bad_config_is_an_error_not_a_traceback(project: Path):
    (project / "perfloop.toml").write_text('[[benchmark]]\nname = "x"\ncallable = "oops"\n')
    proc = perfloop(project, "run")
    assert proc.returncode == 2
    assert "perfloop.toml" in proc.stderr and "benchmark.x.callable" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_usage_errors_exit_2(project: Path):
    assert perfloop(project, "compare", "1").returncode == 2
    proc = perfloop(project, "compare", "1", "2", "--tolerance", "5")
    assert proc.returncode == 2 and "fraction" in proc.stderr


def _leaf_commands(group, path=()):
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from _leaf_commands(command, (*path, name))
        else:
            yield (*path, name)


def test_every_command_has_help_with_an_example_and_json():
    import typer
    from typer.testing import CliRunner

    from perfloop.cli.app import app

    commands = list(_leaf_commands(typer.main.get_command(app)))
    assert {("run",), ("compare",), ("gate",), ("incident", "open"), ("history",)} <= set(commands)
    runner = CliRunner()
    for path in commands:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "Example" in result.output, path
        if path != ("init",):  # init writes files; it has nothing to print as JSON
            assert "--json" in result.output, path


@pytest.mark.slow
def test_ctrl_c_keeps_what_was_measured(project: Path):
    (project / "perfloop.toml").write_text(CONFIG + '''
[[benchmark]]
name = "stuck"
callable = "toymod:hang"
processes = 1
timeout = 600
''')
    proc = subprocess.Popen([sys.executable, "-m", "perfloop", "run", "-C", str(project)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait until the first benchmark is stored, then interrupt during the hanging one
    deadline = time.monotonic() + 180
    db = project / ".perfloop" / "perfloop.db"
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if db.exists():
            runs = perfloop(project, "show", "1", "--json")
            if runs.returncode == 0 and json.loads(runs.stdout)["results"]:
                break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    shown = json.loads(perfloop(project, "show", "1", "--json", check=True).stdout)
    assert shown["status"] == "interrupted"
    assert [r["name"] for r in shown["results"]] == ["toy"]
    assert shown["results"][0]["status"] == "ok"
