"""Git facts about the project a run measures: commit, branch, dirty flag, ref resolution."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .process import ChildTimeout, run_captured


@dataclass(frozen=True)
class GitState:
    commit: str | None
    branch: str | None
    dirty: bool


def _git(root: Path, *args: str) -> str | None:
    try:
        out = run_captured(["git", *args], cwd=root, timeout=30)
    except (OSError, ChildTimeout):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip()


def git_state(root: str | Path) -> GitState:
    """The commit, branch and dirty flag of the repository containing ``root`` (None outside git)."""
    root = Path(root)
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return GitState(None, None, False)
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return GitState(commit, None if branch == "HEAD" else branch, bool(status))


def resolve_commit(root: str | Path, ref: str) -> str | None:
    """The full sha a git ref (branch, tag, HEAD~1, sha prefix) names, or None."""
    if ref.startswith("-"):
        return None  # never let a ref be read as an option
    return _git(Path(root), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
