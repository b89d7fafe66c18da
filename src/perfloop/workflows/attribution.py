"""Attribution: can the effect measured after a patch be credited to one change?

A verification compares "before" with "now". If what changed in between is one change (one
function rewritten, one configuration key moved), the measured effect is that change's. If it
is several (a fix and an unrelated refactoring, a pool size *and* a cache size, code and
configuration together, a mixed commit), nobody can tell which part did what, and a team that
ships it learns nothing it can reuse. This module says which case it is.

How "before" is pinned down: :func:`snapshot_tree` records the commit *and* the whole working
tree (tracked changes and untracked, non-ignored files) as a git tree object, written with a
temporary index so that the user's own index is never touched. The change since then is a
``git diff`` between that tree and a snapshot of the working tree now, so it is exact whether
the patch was committed (once or several times), left uncommitted, or both. A tree object that
nobody references is removed by ``git gc`` after two weeks; the commit is then used instead,
and the report says so.

The heuristics (:func:`attribute`, pure, tested on made-up changes):

- documentation and test files do not change what is measured: listed, never counted;
- code and configuration both changed: not attributable;
- more than one configuration key changed (in ``*.toml``, ``*.ini``, ``*.cfg``, ``*.json``,
  ``.env`` files, and upper-case constants in ``settings.py``/``config.py``): not attributable;
- code changed in more than one directory (package): not attributable; several files in one
  package are accepted as one change, with a note;
- dependency files (requirements, lock files) changed together with anything else: not
  attributable;
- ``perfloop.toml`` itself changed: a warning of its own, since the benchmarks may now measure
  something else than the baseline did.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping, Sequence

CODE = "code"
CONFIG = "config"
DEPENDENCY = "dependency"
TEST = "test"
DOCS = "docs"

_DOC_SUFFIXES = {".md", ".rst", ".txt", ".adoc", ".png", ".svg", ".jpg"}
_CONFIG_SUFFIXES = {".toml", ".ini", ".cfg", ".conf", ".json", ".yaml", ".yml", ".env"}
_CONFIG_MODULES = {"settings.py", "config.py", "conf.py", "configuration.py"}
_DEPENDENCY_NAMES = re.compile(r"^(requirements.*\.(txt|in)|.*\.lock|poetry\.lock|uv\.lock|Pipfile(\.lock)?"
                               r"|package-lock\.json|constraints.*\.txt)$")
_CONSTANT_RE = re.compile(r"^([A-Z][A-Z0-9_]*)\s*(?::[^=]+)?=\s*(.+?)\s*(?:#.*)?$")
_ENV_RE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_HUNK_RE = re.compile(r"^@@ [^@]+ @@ ?(.*)$")
_DEF_RE = re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+([A-Za-z_][A-Za-z0-9_]*)")


# --------------------------------------------------------------------------------------------
# git


def _git(root: Path, *args: str, env: Mapping[str, str] | None = None) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60,
                             env={**os.environ, **(env or {})})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


@dataclass(frozen=True)
class TreeSnapshot:
    """The code a measurement describes: the commit, and the working tree as a git tree object."""

    commit: str | None
    tree: str | None          # tree of the working tree (tracked + untracked, not ignored)
    dirty: bool
    dirty_files: tuple[str, ...] = ()
    toplevel: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "dirty_files": list(self.dirty_files)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TreeSnapshot | None:
        if not data:
            return None
        return cls(commit=data.get("commit"), tree=data.get("tree"), dirty=bool(data.get("dirty")),
                   dirty_files=tuple(data.get("dirty_files") or ()), toplevel=data.get("toplevel"))


def snapshot_tree(root: str | Path) -> TreeSnapshot | None:
    """Snapshot the working tree of the repository holding ``root``; None outside git.

    Uses a copy of the index (``GIT_INDEX_FILE``) so that the user's staging area is left as it
    was; the tree object is written to the repository's object store.
    """
    root = Path(root)
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None:
        return None
    toplevel = Path(top.strip())
    commit = (_git(toplevel, "rev-parse", "--verify", "--quiet", "HEAD") or "").strip() or None
    status = _git(toplevel, "status", "--porcelain", "--untracked-files=all") or ""
    dirty_files = tuple(sorted({line[3:].split(" -> ")[-1].strip('"') for line in status.splitlines()
                                if len(line) > 3}))
    index = (_git(toplevel, "rev-parse", "--git-path", "index") or "").strip()
    tree = None
    with tempfile.TemporaryDirectory(prefix="perfloop-index-") as tmp:
        temp_index = Path(tmp) / "index"
        source = toplevel / index if index and not os.path.isabs(index) else Path(index or "")
        if index and source.is_file():
            shutil.copyfile(source, temp_index)
        env = {"GIT_INDEX_FILE": str(temp_index)}
        if _git(toplevel, "add", "-A", "--", ".", env=env) is not None:
            tree = (_git(toplevel, "write-tree", env=env) or "").strip() or None
    return TreeSnapshot(commit=commit, tree=tree, dirty=bool(dirty_files), dirty_files=dirty_files,
                        toplevel=str(toplevel))


# --------------------------------------------------------------------------------------------
# what changed


@dataclass(frozen=True)
class FileChange:
    """One file changed between two snapshots, what kind of file it is and what moved in it."""

    path: str
    status: str                       # A, M, D, R (git's letters)
    kind: str                         # code | config | dependency | test | docs
    added: int = 0
    deleted: int = 0
    keys: tuple[str, ...] = ()        # configuration keys whose value changed
    functions: tuple[str, ...] = ()   # functions or classes whose body changed (code)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "keys": list(self.keys), "functions": list(self.functions)}


def classify_path(path: str) -> str:
    """The kind of a file, from its path: code, config, dependency, test or docs."""
    p = PurePosixPath(path)
    name, suffix = p.name, p.suffix.lower()
    parts = [part.lower() for part in p.parts[:-1]]
    if _DEPENDENCY_NAMES.match(name):
        return DEPENDENCY
    if name == "pyproject.toml":
        return CONFIG
    if any(part in ("tests", "test", "testing") for part in parts) or name.startswith("test_") \
            or name.endswith("_test.py") or name == "conftest.py":
        return TEST
    if suffix in _DOC_SUFFIXES or "docs" in parts or name.upper().startswith(("LICENSE", "CHANGELOG")):
        return DOCS
    if suffix in _CONFIG_SUFFIXES or name in _CONFIG_MODULES or name.startswith(".env") \
            or "settings" in parts:
        return CONFIG
    return CODE


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        out = {}
        for i, v in enumerate(value):
            label = v.get("name", i) if isinstance(v, Mapping) else i
            out.update(_flatten(v, f"{prefix}[{label}]"))
        return out
    return {prefix: value}


def config_values(path: str, text: str | None) -> dict[str, Any] | None:
    """The flattened key -> value pairs of a configuration file, None when it cannot be read."""
    if text is None:
        return {}
    name = PurePosixPath(path).name
    suffix = PurePosixPath(path).suffix.lower()
    try:
        if suffix == ".toml":
            return _flatten(tomllib.loads(text))
        if suffix == ".json":
            return _flatten(json.loads(text))
        if suffix in (".ini", ".cfg", ".conf"):
            parser = configparser.ConfigParser(interpolation=None)
            parser.read_string(text)
            return {f"{s}.{k}": v for s in parser.sections() for k, v in parser[s].items()}
        if suffix == ".py":
            return {m.group(1): m.group(2) for m in map(_CONSTANT_RE.match, text.splitlines()) if m}
        if name.startswith(".env") or suffix == ".env":
            return {m.group(1): m.group(2) for m in map(_ENV_RE.match, text.splitlines()) if m}
    except (ValueError, configparser.Error):
        return None
    return None          # YAML and others: counted by file, not by key


def changed_keys(path: str, before: str | None, after: str | None) -> tuple[str, ...]:
    """Configuration keys added, removed or changed between two versions of a file."""
    a, b = config_values(path, before), config_values(path, after)
    if a is None or b is None:
        return ()
    return tuple(sorted(k for k in set(a) | set(b) if a.get(k, _MISSING) != b.get(k, _MISSING)))


_MISSING = object()


def changed_functions(diff: str) -> tuple[str, ...]:
    """Functions or classes a unified diff (``-U0``) of one Python file touched, in order.

    From git's hunk headers (the enclosing definition) and definitions on the changed lines.
    """
    found: list[str] = []
    for line in diff.splitlines():
        m = _HUNK_RE.match(line)
        text = m.group(1) if m else (line[1:] if line[:1] in "+-" and not line.startswith(("+++", "---"))
                                     else None)
        if text is None:
            continue
        d = _DEF_RE.match(text)
        if d:
            found.append(d.group(1))
    return tuple(dict.fromkeys(found))


def _tree_text(top: Path, tree: str, path: str) -> str | None:
    return _git(top, "show", f"{tree}:{path}")


def changes_between(top: str | Path, before: str, after: str) -> list[FileChange]:
    """Every file changed from tree-ish ``before`` to tree-ish ``after``, classified."""
    top = Path(top)
    status = _git(top, "diff", "--name-status", "-M", before, after)
    if status is None:
        return []
    numstat = _git(top, "diff", "--numstat", "-M", before, after) or ""
    counts: dict[str, tuple[int, int]] = {}
    for line in numstat.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            added, deleted = (int(x) if x.isdigit() else 0 for x in parts[:2])
            counts[parts[-1].split(" => ")[-1].rstrip("}")] = (added, deleted)
    out: list[FileChange] = []
    for line in status.splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        letter, old, path = parts[0][:1], parts[1], parts[-1]
        kind = classify_path(path)
        keys: tuple[str, ...] = ()
        functions: tuple[str, ...] = ()
        if kind == CONFIG:
            keys = changed_keys(path, _tree_text(top, before, old) if letter != "A" else None,
                                _tree_text(top, after, path) if letter != "D" else None)
        elif kind == CODE and path.endswith(".py") and letter == "M":
            functions = changed_functions(_git(top, "diff", "-U0", before, after, "--", path) or "")
        added, deleted = counts.get(path, (0, 0))
        out.append(FileChange(path, letter, kind, added, deleted, keys, functions))
    return out


def commits_between(top: str | Path, before: str | None, after: str = "HEAD") -> list[tuple[str, str]] | None:
    """(sha, subject) of the commits from ``before`` to ``after``; None when ``before`` is no
    ancestor of ``after`` (a rebase or a branch switch since)."""
    if not before:
        return []
    top = Path(top)
    if _git(top, "merge-base", "--is-ancestor", before, after) is None:
        return None
    log = _git(top, "log", "--reverse", "--format=%H%x09%s", f"{before}..{after}") or ""
    return [tuple(line.split("\t", 1)) for line in log.splitlines() if "\t" in line]  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# the judgement


@dataclass(frozen=True)
class Attribution:
    """Whether the measured effect can be credited to one change, and how to split it if not."""

    attributable: bool
    changes: tuple[FileChange, ...]
    reasons: tuple[str, ...] = ()              # why not attributable
    notes: tuple[str, ...] = ()                # worth knowing, not blocking
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (what, paths) of the separate changes
    commits: tuple[tuple[str, str], ...] = ()
    summary: str = ""
    suggestion: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"attributable": self.attributable, "summary": self.summary,
                "reasons": list(self.reasons), "notes": list(self.notes),
                "suggestion": self.suggestion,
                "groups": [{"what": w, "paths": list(p)} for w, p in self.groups],
                "commits": [{"sha": s, "subject": t} for s, t in self.commits],
                "changes": [c.to_dict() for c in self.changes]}


def _area(path: str) -> str:
    parent = str(PurePosixPath(path).parent)
    return "." if parent in ("", ".") else parent


def attribute(changes: Sequence[FileChange], commits: Sequence[tuple[str, str]] = (),
              notes: Iterable[str] = ()) -> Attribution:
    """Judge whether ``changes`` are one change (see the module docstring for the rules)."""
    notes = list(notes)
    counted = [c for c in changes if c.kind not in (TEST, DOCS)]
    ignored = [c for c in changes if c.kind in (TEST, DOCS)]
    if ignored:
        notes.append(f"{len(ignored)} test or documentation file(s) changed too "
                     f"({', '.join(c.path for c in ignored[:5])}); they do not change what is measured")
    if any(PurePosixPath(c.path).name == "perfloop.toml" for c in changes):
        notes.append("perfloop.toml changed since the baseline: the benchmarks may measure something "
                     "else than the baseline did; compare like with like")
    if not counted:
        summary = ("nothing that is measured changed since the baseline: a difference now is noise "
                   "or the environment, not a change")
        return Attribution(True, tuple(changes), (), tuple(notes), (), tuple(commits), summary)

    code = [c for c in counted if c.kind == CODE]
    config = [c for c in counted if c.kind == CONFIG]
    deps = [c for c in counted if c.kind == DEPENDENCY]
    groups: list[tuple[str, tuple[str, ...]]] = []
    areas: dict[str, list[str]] = {}
    for c in code:
        areas.setdefault(_area(c.path), []).append(c.path)
    for area, paths in areas.items():
        fns = [f for c in code if c.path in paths for f in c.functions]
        what = f"code in {area}/" + (f" ({', '.join(dict.fromkeys(fns))})" if fns else "")
        groups.append((what, tuple(paths)))
    keys = [(c.path, k) for c in config for k in c.keys]
    unkeyed = [c for c in config if not c.keys]
    for path, key in keys:
        groups.append((f"config {key} in {path}", (path,)))
    for c in unkeyed:
        groups.append((f"config file {c.path}", (c.path,)))
    if deps:
        groups.append(("dependencies", tuple(c.path for c in deps)))

    reasons: list[str] = []
    if code and config:
        reasons.append(f"both code ({', '.join(c.path for c in code)}) and configuration "
                       f"({', '.join(c.path for c in config)}) changed")
    n_config = len(keys) + len(unkeyed)
    if n_config > 1:
        shown = ", ".join(k for _, k in keys[:6]) + (", ..." if len(keys) > 6 else "")
        reasons.append(f"{n_config} configuration settings changed ({shown or 'several files'})")
    if len(areas) > 1:
        reasons.append(f"code changed in {len(areas)} unrelated places ({', '.join(sorted(areas))})")
    if deps and len(groups) > 1:
        reasons.append(f"dependencies changed ({', '.join(c.path for c in deps)}) together with other changes")
    for area, paths in areas.items():
        if len(paths) > 1 and len(areas) == 1:
            notes.append(f"{len(paths)} files changed in {area}/; if they are separate changes, "
                         f"verify them one at a time")
    if len(commits) > 1:
        notes.append(f"{len(commits)} commits since the baseline")

    if reasons:
        parts = "; ".join(f"({i}) {what}" for i, (what, _) in enumerate(groups, start=1))
        suggestion = (f"split into {len(groups)} changes: {parts}. Keep one (commit it alone, or "
                      f"`git stash push -- PATHS` the others), run `perfloop verify`, then bring "
                      f"back the next and verify again.")
        summary = "cannot attribute the effect to one change: " + "; ".join(reasons)
        return Attribution(False, tuple(changes), tuple(reasons), tuple(notes), tuple(groups),
                           tuple(commits), summary, suggestion)
    what = groups[0][0] if groups else "one change"
    return Attribution(True, tuple(changes), (), tuple(notes), tuple(groups), tuple(commits),
                       f"one change since the baseline: {what}")


def attribution_since(snapshot: TreeSnapshot | None, root: str | Path) -> Attribution:
    """What changed from ``snapshot`` (taken at the baseline) to the working tree now, judged."""
    if snapshot is None or not snapshot.commit:
        return Attribution(True, (), (), ("the baseline was not taken in a git repository: what "
                                          "changed since cannot be checked",), summary="unknown")
    now = snapshot_tree(root)
    if now is None or now.toplevel is None:
        return Attribution(True, (), (), ("the project is no longer in a git repository",),
                           summary="unknown")
    top = Path(now.toplevel)
    notes: list[str] = []
    before = snapshot.tree
    if before and _git(top, "cat-file", "-e", f"{before}^{{tree}}") is None:
        notes.append(f"the baseline's working-tree snapshot {before[:10]} is gone (git gc?); "
                     f"compared with its commit {snapshot.commit[:10]} instead, so uncommitted "
                     f"changes made before the baseline count as changes")
        before = None
    before = before or snapshot.commit
    after = now.tree or now.commit or "HEAD"
    commits = commits_between(top, snapshot.commit, now.commit or "HEAD")
    if commits is None:
        notes.append(f"the baseline's commit {snapshot.commit[:10]} is not an ancestor of HEAD "
                     f"(rebased, or another branch): the diff is taken between the two trees")
        commits = []
    return attribute(changes_between(top, before, after), commits, notes)


__all__ = ["Attribution", "FileChange", "TreeSnapshot", "attribute", "attribution_since",
           "changed_functions", "changed_keys", "changes_between", "classify_path",
           "commits_between", "config_values", "snapshot_tree"]
