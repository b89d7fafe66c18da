"""Environment fingerprints: identity facts define a class, conditions are shown but not hashed."""

from __future__ import annotations

import subprocess

from perfloop.measure.environment import diff_environments, environment_hash, fingerprint
from perfloop.measure.git import git_state, resolve_commit
from perfloop.report.units import format_change, format_value


def test_fingerprint_has_the_documented_facts():
    env = fingerprint()
    for key in ("cpu_model", "cpu_count", "memory_total", "os", "kernel", "python", "python_build",
                "packages", "governor", "load_avg_1m", "ci_runner", "fingerprint"):
        assert key in env
    assert env["fingerprint"] == environment_hash(env)
    assert "numpy" in env["packages"]


def test_load_is_a_condition_but_a_package_upgrade_is_a_new_environment():
    env = fingerprint()
    busier = {**env, "load_avg_1m": 42.0, "hostname": "elsewhere"}
    assert environment_hash(busier) == environment_hash(env)
    upgraded = {**env, "packages": {**env["packages"], "numpy": "0.0.1"}}
    assert environment_hash(upgraded) != environment_hash(env)
    diffs = {d.key: d for d in diff_environments(env, upgraded)}
    assert diffs["package numpy"].identity and diffs["package numpy"].head == "0.0.1"
    conditions = diff_environments(env, busier)
    assert conditions and not any(d.identity for d in conditions)


def test_git_state_outside_and_inside_a_repository(tmp_path):
    assert git_state(tmp_path).commit is None
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)
    run("init", "-q", "-b", "trunk")
    (tmp_path / "f").write_text("1")
    run("add", "f")
    run("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "c")
    state = git_state(tmp_path)
    assert state.branch == "trunk" and not state.dirty and len(state.commit) == 40
    (tmp_path / "f").write_text("2")
    assert git_state(tmp_path).dirty
    assert resolve_commit(tmp_path, "HEAD") == state.commit
    assert resolve_commit(tmp_path, "--all") is None and resolve_commit(tmp_path, "nope") is None


def test_value_formatting():
    assert format_value(0.00123, "s") == "1.23 ms"
    assert format_value(3 * 1024**2, "B") == "3 MiB"
    assert format_value(0.015, "ratio") == "1.50%"
    assert format_value(None, "s") == "-"
    assert format_change(0.1034) == "+10.3%"
