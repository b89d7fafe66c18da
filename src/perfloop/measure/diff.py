"""What a change touches, read from git: the facts a risk score is made of.

A *diff* is either a commit range (``main..HEAD``: what HEAD adds since it left main) or the
working tree against HEAD (staged, unstaged and untracked files). For each file it gives the
lines added and deleted, and the size of the file before the change; for the whole change the
just-in-time defect-prediction measures of Kamei et al. (2013): files, directories and
subsystems touched, the entropy of the change across files, lines added, deleted and in the
touched files before; and the churn of the touched files (commits in the recent history).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Sequence

from ..errors import UsageError
from .process import ChildTimeout, run_captured

#: Commits of a touched file within this many days count as its recent churn.
CHURN_DAYS = 90
#: git's empty tree: what a root commit is compared with.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass(frozen=True)
class FileChange:
    path: str                 # relative to the repository root, POSIX separators
    added: int
    deleted: int
    lines_before: int         # 0 for a new file
    binary: bool = False

    @property
    def churn(self) -> int:
        return self.added + self.deleted


@dataclass(frozen=True)
class DiffFacts:
    """One change, measured as just-in-time defect prediction measures it."""

    spec: str                             # "main..HEAD" or "working tree"
    base: str | None                      # the commit the change starts from
    files: tuple[FileChange, ...]
    recent_commits: dict[str, int] = field(default_factory=dict)   # path -> commits in CHURN_DAYS

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.files)

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def deleted(self) -> int:
        return sum(f.deleted for f in self.files)

    @property
    def lines_before(self) -> int:
        return sum(f.lines_before for f in self.files)

    @property
    def directories(self) -> int:
        return len({str(PurePosixPath(f.path).parent) for f in self.files})

    @property
    def subsystems(self) -> int:
        """Top-level directories touched (a file at the root is its own subsystem ``.``)."""
        return len({PurePosixPath(f.path).parts[0] if len(PurePosixPath(f.path).parts) > 1 else "."
                    for f in self.files})

    @property
    def entropy(self) -> float:
        """Normalised Shannon entropy of the changed lines across files (0: one file; 1: even)."""
        churns = [f.churn for f in self.files if f.churn > 0]
        total = sum(churns)
        if len(churns) < 2 or total == 0:
            return 0.0
        h = -sum(c / total * math.log2(c / total) for c in churns)
        return h / math.log2(len(churns))

    def to_dict(self) -> dict[str, object]:
        return {"spec": self.spec, "base": self.base, "files": len(self.files),
                "directories": self.directories, "subsystems": self.subsystems,
                "entropy": round(self.entropy, 4), "lines_added": self.added,
                "lines_deleted": self.deleted, "lines_before": self.lines_before,
                "paths": list(self.paths)}


def _git(root: Path, *args: str, check: bool = True) -> str:
    try:
        out = run_captured(["git", *args], cwd=root, timeout=120)
    except (OSError, ChildTimeout) as exc:
        raise UsageError(f"git {' '.join(args[:2])} failed: {exc}",
                         hint="is git installed, and is this a git repository?") from exc
    if check and out.returncode != 0:
        raise UsageError(f"git {' '.join(args)}: {out.stderr.strip() or 'failed'}",
                         hint="name a commit range that exists, e.g. --diff main..HEAD")
    return out.stdout


def _numstat(text: str) -> list[tuple[str, int, int, bool]]:
    rows = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        added, deleted, path = parts
        if " => " in path:           # a rename: keep the new name ("a/{x => y}/z" or "x => y")
            if "{" in path:
                head, _, rest = path.partition("{")
                inner, _, tail = rest.partition("}")
                path = head + inner.split(" => ")[1] + tail
            else:
                path = path.split(" => ")[1]
            path = path.replace("//", "/")
        binary = added == "-"
        rows.append((path, 0 if binary else int(added), 0 if binary else int(deleted), binary))
    return rows


def _lines_at(root: Path, rev: str | None, path: str) -> int:
    if rev is None:
        return 0
    out = run_captured(["git", "cat-file", "-p", f"{rev}:{path}"], cwd=root, timeout=60, text=False)
    if out.returncode != 0:
        return 0                     # a file the change adds
    return out.stdout.count(b"\n")


def read_diff(root: str | Path, spec: str | None = None, *, churn_days: int = CHURN_DAYS) -> DiffFacts:
    """The facts of ``spec`` (``A..B``, ``A...B`` or a single commit) or of the working tree."""
    root = Path(_git(Path(root), "rev-parse", "--show-toplevel").strip())
    if spec and spec.startswith("-"):
        raise UsageError(f"--diff {spec!r}: not a commit range", hint="e.g. --diff main..HEAD")
    base: str | None   # None: the change adds every file (a root commit)
    if spec:
        if ".." in spec:
            left, _, right = spec.partition("...") if "..." in spec else spec.partition("..")
            right = right or "HEAD"
            base = _git(root, "merge-base", left or "HEAD", right).strip()
            rows = _numstat(_git(root, "diff", "--numstat", "-M", base, right))
        else:
            _git(root, "rev-parse", "--verify", f"{spec}^{{commit}}")   # a commit, or the fix
            parent = _git(root, "rev-parse", "--verify", "--quiet", f"{spec}^", check=False).strip()
            base = parent or None        # a root commit adds its files to the empty tree
            rows = _numstat(_git(root, "diff", "--numstat", "-M", parent or EMPTY_TREE, spec))
        label = spec
    else:
        head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD", check=False).strip() or None
        rows = _numstat(_git(root, "diff", "--numstat", "-M", "HEAD") if head else "")
        untracked = _git(root, "ls-files", "--others", "--exclude-standard").splitlines()
        for path in untracked:
            try:
                text = (root / path).read_bytes()
            except OSError:
                continue
            rows.append((path, text.count(b"\n"), 0, b"\0" in text[:8000]))
        base, label = head, "working tree"
    files = tuple(FileChange(path, a, d, _lines_at(root, base, path), binary)
                  for path, a, d, binary in rows)
    return DiffFacts(spec=label, base=base, files=files,
                     recent_commits=recent_commits(root, [f.path for f in files], churn_days))


def recent_commits(root: Path, paths: Sequence[str], days: int = CHURN_DAYS) -> dict[str, int]:
    """How many commits touched each path in the last ``days`` days (one ``git log``)."""
    if not paths:
        return {}
    out = _git(root, "log", f"--since={days}.days", "--name-only", "--format=%x00", "--",
               *paths, check=False)
    counts = {p: 0 for p in paths}
    for line in out.splitlines():
        line = line.strip().strip("\0")
        if line in counts:
            counts[line] += 1
    return counts


__all__ = ["CHURN_DAYS", "DiffFacts", "FileChange", "read_diff", "recent_commits"]
