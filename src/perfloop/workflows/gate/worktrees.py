"""The base (or a committed head) checked out beside the project, in a temporary git worktree.

Worktrees live under ``.perfloop/worktrees`` and are removed on the way out, on error and
Ctrl-C too; one left behind by a killed gate (its owner's pid is in the name) is removed by
the next gate.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from ...errors import PerfloopError, UsageError

if TYPE_CHECKING:   # the gate command's --help loads this module: start-up stays fast
    from ...config import BenchmarkSpec

WORKTREES = Path(".perfloop") / "worktrees"


def git_toplevel(root: Path) -> Path:
    """The top of the git repository holding ``root``; UsageError outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run git in {root}: {exc}", hint="install git") from exc
    if out.returncode != 0:
        raise UsageError(f"{root} is not in a git repository: the gate compares two commits",
                         hint="run it in a git checkout, or compare stored runs with "
                              "perfloop compare BASE HEAD")
    return Path(out.stdout.strip()).resolve()


@contextlib.contextmanager
def worktree(root: Path, commit: str) -> Iterator[Path]:
    """The project at ``root`` as it was at ``commit``, in a temporary git worktree.

    Yields the project directory inside the worktree (the project may be a subdirectory of the
    repository). The worktree lives under ``.perfloop/worktrees`` and is removed on the way out,
    whatever the way out is.
    """
    root = root.resolve()
    top = git_toplevel(root)
    parent = root / WORKTREES
    parent.mkdir(parents=True, exist_ok=True)
    ignore = root / ".perfloop" / ".gitignore"
    if not ignore.exists():
        # A worktree inside the checkout would otherwise show up as untracked files.
        ignore.write_text("# perfloop's store and temporary worktrees\n*\n")
    prune_worktrees(parent, top)
    # The owner's pid in the name: a later gate removes what a killed one left behind.
    path = Path(tempfile.mkdtemp(prefix=f"{commit[:10]}-{os.getpid()}-", dir=parent))
    out = subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=top,
                         capture_output=True, text=True)
    if out.returncode != 0:
        shutil.rmtree(path, ignore_errors=True)
        raise PerfloopError(f"git worktree add for {commit[:12]} failed: {out.stderr.strip()}",
                            hint="check that the commit exists locally (git fetch) and that "
                                 f"{parent} is writable")
    try:
        yield path / root.relative_to(top)
    finally:
        done = subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=top,
                              capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            subprocess.run(["git", "worktree", "prune"], cwd=top, capture_output=True)


def prune_worktrees(parent: Path, top: Path) -> list[Path]:
    """Remove the worktrees under ``parent`` whose gate is gone (killed, so it could not clean
    up), then let git forget them (``git worktree prune``). Returns the directories removed."""
    stale = []
    for path in parent.iterdir() if parent.is_dir() else []:
        parts = path.name.split("-")
        owner = int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None
        if path.is_dir() and (owner is None or not _process_exists(owner)):
            shutil.rmtree(path, ignore_errors=True)
            stale.append(path)
    if stale:
        subprocess.run(["git", "worktree", "prune"], cwd=top, capture_output=True)
    return stale


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def rooted(spec: BenchmarkSpec, root: Path) -> BenchmarkSpec:
    """``spec`` with its project directory moved to ``root`` (relative paths follow)."""
    return replace(spec, root=str(root))


class Checkouts:
    """The code one gate measures: the project as it is, and commits checked out in worktrees
    when first needed, all removed when ``stack`` closes."""

    def __init__(self, root: Path, stack: contextlib.ExitStack,
                 on_event: Callable[[str], None]) -> None:
        self.root = root
        self.stack = stack
        self.on_event = on_event
        self._made: dict[str, Path] = {}

    def of(self, commit: str | None) -> Path:
        """The project directory at ``commit``; None: the working tree, as it is."""
        if commit is None:
            return self.root
        if commit not in self._made:
            self.on_event(f"checking out {commit[:12]} in a worktree")
            self._made[commit] = self.stack.enter_context(worktree(self.root, commit))
        return self._made[commit]


__all__ = ["Checkouts", "WORKTREES", "git_toplevel", "prune_worktrees", "rooted", "worktree"]
