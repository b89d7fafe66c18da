"""The git history the journal, the parameter registry and the audit read: one ``git log`` each.

A few thousand commits are read in one subprocess (no per-commit calls): messages, dates,
files touched, and, when asked, the changed lines (``-U0`` patches) of some paths.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Sequence

from ..errors import UsageError

#: Words by which a commit claims a performance change (in its subject): an optimisation, a
#: speed-up, less latency or memory. Words that only *describe* performance ("latency",
#: "slow", "benchmark") are not enough: a commit about a benchmark is not a tuning change.
PERF_WORDS = re.compile(
    r"(^perf(\(.*?\))?!?:|\boptimi[sz](e|ed|es|ing|ation)\b|\bspeed(s|ing)?[ -]?up\b|\bfaster\b"
    r"|\b(improve|boost|increase)[sd]? (the )?(performance|throughput)\b"
    r"|\b(reduce|cut|lower)[sd]? (the )?(latency|allocations?|memory use|copies|overhead)\b"
    r"|\bmemoi[sz]e[sd]?\b|\bvectori[sz]e[sd]?\b|\btun(e|ed|ing) (the )?\w+ (size|pool|cache|limit))",
    re.IGNORECASE)
#: Files that are not the system's code: a commit touching only these changes no performance.
NOT_CODE = re.compile(r"(^|/)(docs?|tests?|benchmarks?|examples?)/|\.(md|rst|txt|json|csv|svg|png)$",
                      re.IGNORECASE)

_SEP, _END = "\x1f", "\x1e"


@dataclass(frozen=True)
class Commit:
    """One commit as the audit reads it."""

    sha: str
    date: datetime
    author: str
    subject: str
    body: str
    parents: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    # file -> changed lines, each "+text" or "-text" (only with patches)
    changes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def perf(self) -> bool:
        """A performance change by its message, that touches code (not only docs or tests)."""
        if not PERF_WORDS.search(self.subject):
            return False
        return not self.files or any(not NOT_CODE.search(f) for f in self.files)

    def trailer(self, name: str) -> list[str]:
        """Values of ``Name: value`` trailer lines in the message."""
        pattern = re.compile(rf"^\s*{re.escape(name)}\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
        return pattern.findall(self.body)


def is_repository(root: str | Path) -> bool:
    out = _run(root, ["rev-parse", "--is-inside-work-tree"], check=False)
    return out is not None and out.strip() == "true"


def _run(root: str | Path, args: Sequence[str], *, check: bool = True) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                             timeout=300, errors="replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        if check:
            raise UsageError(f"git failed in {root}: {exc}", hint="is git installed?") from exc
        return None
    if out.returncode != 0:
        if check:
            raise UsageError(f"git log failed in {root}: {out.stderr.strip()[:200]}",
                             hint="run perfloop in a git repository, or pass -C DIR")
        return None
    return out.stdout


def read_log(root: str | Path, *, since: datetime | None = None, paths: Sequence[str] = (),
             patch: bool = False, ref: str = "HEAD") -> list[Commit]:
    """Commits reachable from ``ref`` (newest first), optionally only those touching ``paths``,
    with the files each touched and, with ``patch``, their changed lines."""
    args = ["log", ref, "--no-color", "--no-renames",
            f"--format={_END}%H{_SEP}%P{_SEP}%aI{_SEP}%an{_SEP}%s{_SEP}%b{_SEP}"]
    if since is not None:
        args.append(f"--since={since.isoformat()}")
    # --relative: paths relative to the project directory, and only the commits inside it
    args += ["-p", "-U0", "--no-ext-diff", "--relative"] if patch else ["--name-only", "--relative"]
    args += ["--", *(paths or ["."])]     # "." : only the project's directory
    text = _run(root, args) or ""
    commits = []
    for record in text.split(_END)[1:]:
        parts = record.split(_SEP, 6)
        if len(parts) < 7:
            continue
        sha, parents, date, author, subject, body, rest = parts
        files, changes = (_patch(rest) if patch else
                          ([line for line in rest.splitlines() if line.strip()], {}))
        commits.append(Commit(sha=sha, date=datetime.fromisoformat(date), author=author,
                              subject=subject, body=body, parents=tuple(parents.split()),
                              files=tuple(files), changes=changes))
    return commits


def _patch(text: str) -> tuple[list[str], dict[str, list[str]]]:
    files: list[str] = []
    changes: dict[str, list[str]] = {}
    current: str | None = None
    header = False
    for line in text.splitlines():
        if line.startswith("diff --git "):
            # "diff --git a/PATH b/PATH": the new path (renames are off, so both are the same)
            _, _, new = line[len("diff --git "):].partition(" b/")
            current, header = new, True
            files.append(current)
            changes.setdefault(current, [])
        elif line.startswith("@@"):
            header = False
        elif current is not None and not header and line[:1] in "+-":
            changes[current].append(line)
    return files, changes


def tags(root: str | Path) -> dict[str, str]:
    """Commit sha -> tag name, for the tags reachable from HEAD (deploys, releases)."""
    out = _run(root, ["tag", "--merged", "HEAD", "--format=%(objectname) %(*objectname) %(refname:short)"],
               check=False) or ""
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            found[parts[1]] = parts[2]          # annotated: the commit it points to
        elif len(parts) == 2:
            found[parts[0]] = parts[1]
    return found


__all__ = ["Commit", "PERF_WORDS", "is_repository", "read_log", "tags"]
