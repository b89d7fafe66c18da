"""A gate killed mid-way leaves its worktree; the next gate removes it, and git forgets it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gitutil import git

from perfloop.workflows.gate import WORKTREES, worktree


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_next_gate_prunes_worktrees_of_gates_that_were_killed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "-m", "a")
    commit = git(repo, "rev-parse", "HEAD")
    parent = repo / WORKTREES
    parent.mkdir(parents=True)
    stale = parent / f"{commit[:10]}-{dead_pid()}-abc"        # as a killed gate leaves it
    git(repo, "worktree", "add", "--detach", str(stale), commit)
    old_style = parent / f"{commit[:10]}-xyz"                   # no owner recorded
    old_style.mkdir()
    live = parent / f"{commit[:10]}-{os.getpid()}-def"          # a gate still running
    git(repo, "worktree", "add", "--detach", str(live), commit)

    with worktree(repo, commit) as checkout:
        assert (checkout / "a.txt").read_text() == "a\n"
        assert not stale.exists() and not old_style.exists() and live.exists()
        listed = git(repo, "worktree", "list")
        assert str(stale) not in listed and str(live) in listed
    assert not checkout.exists()


def test_a_gate_interrupted_by_ctrl_c_removes_its_worktree(tmp_path: Path) -> None:
    # README: the gate cleans up on Ctrl-C. The interrupt arrives while the base side is being
    # measured inside its worktree; it must reach the caller, and the worktree must be gone.
    from perfloop.config import load_config
    from perfloop.store import Store
    from perfloop.workflows.gate import run_gate
    from test_own_code import OPTIONS, make_repo

    repo = tmp_path / "repo"
    repo.mkdir()
    make_repo(repo, '["benchmarks", "src"]')
    roots: list[Path] = []

    def interrupted(spec, deadline, on_progress):
        roots.append(Path(spec.root))
        raise KeyboardInterrupt

    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store, pytest.raises(KeyboardInterrupt):
        run_gate(load_config(repo), store, OPTIONS, measure=interrupted)
    assert roots and roots[0].resolve() != repo.resolve()      # it was inside a worktree
    assert not roots[0].exists()
    assert list((repo / WORKTREES).iterdir()) == []
    assert str(roots[0]) not in git(repo, "worktree", "list")
