"""Does each side of the gate run its own checkout's code?

The gate measures the base in a git worktree and the head in the working tree (or a worktree
of its own). Each side's workers import the benchmark's target from the side's directory,
through the benchmark's ``pythonpath``. When the project's package is also importable from
somewhere else, the import may not land where it should: a src-layout project installed in
editable mode puts the head's ``src`` on every interpreter's path (a ``.pth`` file in
site-packages), so a base worktree whose ``src`` is not on the benchmark's ``pythonpath``
silently imports the *head's* package. Base and head then run the same code, and the gate
reports "unchanged" on any change.

Before measuring, :func:`check_side` asks the interpreter the workers use, started the way a
worker starts (same working directory, environment and ``sys.path`` additions), where the
project's own top-level packages and modules, and the module of the target, would be imported
from (``importlib.util.find_spec``: the location, without importing anything). Every one of them
that the side's tree holds must resolve inside that tree; otherwise the gate refuses, naming the
benchmark, the module, where it resolved, and the fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..config import BenchmarkSpec
from ..errors import PerfloopError, UsageError
from ..measure.process import child_env

#: Directory names that never hold the project's importable code.
_NOT_CODE = frozenset({"tests", "test", "testing", "docs", "doc", "benchmarks", "benchmark",
                       "examples", "example", "scripts", "build", "dist", "site-packages",
                       "node_modules", "venv", "env", "tools", ".git", ".perfloop"})

# Runs in the worker's environment: where would each name be imported from? Nothing imported.
_RESOLVER = """
import importlib.util, json, sys
task = json.loads(sys.argv[1])
for path in reversed(task["sys_path"]):
    if path not in sys.path:
        sys.path.insert(0, path)
out = {}
for name in task["names"]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        out[name] = None
    elif spec.origin and spec.origin not in ("built-in", "frozen", "namespace"):
        out[name] = spec.origin
    else:
        locations = list(spec.submodule_search_locations or [])
        out[name] = locations[0] if locations else None
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Misplaced:
    """A module of the project that resolves outside the side's tree."""

    benchmark: str
    module: str
    origin: str


def own_modules(tree: Path, project: Path) -> set[str]:
    """Top-level packages and modules the project holds: in ``project`` and ``project/src``
    (and at the top of ``tree`` when the project is a subdirectory of the repository)."""
    names: set[str] = set()
    for base in dict.fromkeys((project, project / "src", tree, tree / "src")):
        if not base.is_dir():
            continue
        for child in base.iterdir():
            if child.name in _NOT_CODE or child.name.startswith((".", "_")):
                continue
            if child.is_dir() and child.name.isidentifier() and (child / "__init__.py").is_file():
                names.add(child.name)
            elif child.suffix == ".py" and child.stem.isidentifier() \
                    and child.stem not in ("setup", "conftest", "noxfile"):
                names.add(child.stem)
    return names


def target_modules(spec: BenchmarkSpec) -> set[str]:
    """Top-level modules a benchmark names: its callable, setup and teardown, or the module of
    a ``python -m MODULE`` command."""
    names = set()
    for ref in (spec.callable, spec.setup, spec.teardown):
        if ref:
            names.add(ref.split(":", 1)[0].split(".", 1)[0])
    command = spec.command
    if isinstance(command, (tuple, list)) and "-m" in command:
        i = list(command).index("-m")
        if i + 1 < len(command):
            names.add(str(command[i + 1]).split(".", 1)[0])
    return {n for n in names if n.isidentifier()}


def _worker_setting(spec: BenchmarkSpec) -> tuple[str, dict[str, str], list[str]]:
    """Working directory, environment and sys.path additions of the spec's processes (as
    :mod:`perfloop.measure.callable` and :mod:`perfloop.measure.command` start them)."""
    root = Path(spec.root)
    cwd = str(root / spec.cwd) if spec.cwd else str(root)
    if spec.kind == "callable":
        sys_path = [str((root / p).resolve()) for p in spec.pythonpath] + [str(root.resolve())]
        return cwd, {**os.environ, **spec.env}, sys_path
    # ``python -m`` puts the working directory first on sys.path
    return cwd, child_env(dict(spec.env)), [str(Path(cwd).resolve())]


def resolve_modules(spec: BenchmarkSpec, names: Iterable[str], *,
                    python: str = sys.executable) -> dict[str, str | None]:
    """Where each of ``names`` would be imported from by the spec's worker processes."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    cwd, env, sys_path = _worker_setting(spec)
    if not Path(cwd).is_dir():
        return {}      # the measurement reports a missing cwd in its own words
    try:
        out = subprocess.run([python, "-c", _RESOLVER, json.dumps({"names": wanted,
                                                                   "sys_path": sys_path})],
                             cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PerfloopError(f"could not ask {python} where the project's modules are: {exc}") from exc
    if out.returncode != 0:
        raise PerfloopError(f"could not ask {python} where the project's modules are: "
                            f"{out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _inside(path: str, tree: Path) -> bool:
    """Whether ``path`` lies in ``tree``, not counting perfloop's own directory there (the
    gate's worktrees of other commits live in it)."""
    try:
        rel = Path(path).resolve().relative_to(tree.resolve())
    except (OSError, ValueError):
        return False
    return ".perfloop" not in rel.parts


def misplaced(spec: BenchmarkSpec, tree: Path, *, python: str = sys.executable) -> list[Misplaced]:
    """The project's modules that ``spec``'s workers would import from outside ``tree``.

    Only modules the tree holds are checked: a third-party module rightly resolves to
    site-packages, and one that does not resolve at all fails the measurement in its own words.
    """
    if spec.kind not in ("callable", "command"):
        return []
    project = Path(spec.root)
    own = own_modules(tree, project)
    names = (own | target_modules(spec)) & own
    found = resolve_modules(spec, names, python=python)
    return [Misplaced(spec.name, name, origin) for name, origin in sorted(found.items())
            if origin is not None and not _inside(origin, tree)]


def refusal(side: str, tree: Path, found: Sequence[Misplaced], config_path: Path | None) -> UsageError:
    """The error that stops the gate, with the fix."""
    first = found[0]
    where = Path(first.origin)
    inside = tree / "src" / first.module
    fix = ('add "src" to the pythonpath of these benchmarks in '
           f'{config_path.name if config_path else "perfloop.toml"} (pythonpath = ["src"]), or to '
           "[defaults]" if inside.exists() or (tree / "src" / f"{first.module}.py").exists() else
           "add the directory that holds it to the benchmark's pythonpath")
    names = ", ".join(sorted({m.benchmark for m in found}))
    return UsageError(
        f"the {side} side would not run its own code: benchmark(s) {names} would import "
        f"{first.module!r} from {where}, outside the {side} checkout {tree} (an editable install "
        "or PYTHONPATH puts another copy first); base and head would measure the same code",
        hint=fix)


class SideCheck:
    """Checks each (side, spec) once per gate; raises the refusal on the first misplaced module."""

    def __init__(self, config_path: Path | None, *, python: str = sys.executable) -> None:
        self.config_path = config_path
        self.python = python
        self.done: set[tuple[str, str, str]] = set()

    def __call__(self, side: str, spec: BenchmarkSpec, tree: Path) -> None:
        key = (side, spec.base_name, str(tree))
        if key in self.done:
            return
        self.done.add(key)
        found = misplaced(spec, tree, python=self.python)
        if found:
            raise refusal(side, tree, found, self.config_path)


__all__ = ["Misplaced", "SideCheck", "misplaced", "own_modules", "refusal", "resolve_modules",
           "target_modules"]
