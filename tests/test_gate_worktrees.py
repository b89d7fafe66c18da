"""A gate killed mid-way leaves its worktree; the next gate removes it, and git forgets it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
