"""``perfloop init``: the files a project needs to start the data-driven workflow.

- ``perfloop.toml`` measuring the project's existing pytest-benchmark or asv suite when it has
  one (``[[suite]]`` tables, :mod:`perfloop.workflows.suite_detect`); otherwise one benchmark: a callable in a generated benchmarks module. When the
  project has a package (``src/NAME`` or ``NAME/``) or a single top-level module, the module
  imports it and says where to call into it; either way the generated function is a clearly
  marked placeholder that runs as it is, so ``perfloop run`` works at once.
- ``benchmarks/perfloop_benchmarks.py``, that module (not when a suite was found).
- ``.perfloop/`` added to the repository's ``.gitignore`` (the store and the gate's worktrees
  must not be committed).
- ``.github/workflows/perfloop.yml`` at the top of the git repository: the regression gate on
  every pull request (``perfloop gate --base origin/<base branch>``, with the full history
  fetched so the base commit is there), and a nightly ``perfloop run --label nightly`` whose
  store is kept between runs in the Actions cache and as an artifact, or in a team database
  named by a ``PERFLOOP_STORE`` secret. Its install step installs the same perfloop that runs
  ``init`` (:mod:`perfloop.workflows.install_line`).

Nothing that exists is overwritten unless ``force`` is given; skipped files are reported. An
existing ``[tool.perfloop]`` table in ``pyproject.toml`` counts as an existing configuration.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .install_line import install_command

BENCH_DIR = "benchmarks"
BENCH_MODULE = "perfloop_benchmarks"
WORKFLOW_PATH = Path(".github") / "workflows" / "perfloop.yml"
#: Directory names that are never the project's code.
_NOT_CODE = {"tests", "test", "testing", "docs", "doc", "benchmarks", "benchmark", "examples",
             "example", "scripts", "build", "dist", "site-packages", "node_modules", "venv", "env",
             "migrations", "tools"}
_NOT_MODULES = {"setup", "conftest", "noxfile", "tasks", "fabfile", "manage", "__main__",
                "__init__", "docs_conf", "conf"}


@dataclass(frozen=True)
class Target:
    """What the generated benchmark points at."""

    kind: str | None          # "package", "module" or None (nothing found: a pure placeholder)
    name: str | None = None
    src_layout: bool = False


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    content: str
    purpose: str


@dataclass(frozen=True)
class ScaffoldResult:
    root: Path
    target: Target
    created: tuple[Path, ...] = ()
    overwritten: tuple[Path, ...] = ()
    skipped: tuple[tuple[Path, str], ...] = ()      # (path, why)
    files: tuple[PlannedFile, ...] = field(default_factory=tuple)
    ignored: Path | None = None                     # the .gitignore that got .perfloop/
    notes: tuple[str, ...] = ()

    @property
    def suites(self) -> list[str]:
        """What the configuration measures when it measures existing suites (else [])."""
        config = next((f for f in self.files if f.path.name == "perfloop.toml"), None)
        prefix = "configuration measuring "
        return [config.purpose[len(prefix):]] if config and config.purpose.startswith(prefix) else []

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "suites": self.suites,
                "target": {"kind": self.target.kind, "name": self.target.name,
                           "src_layout": self.target.src_layout},
                "created": [str(p) for p in self.created],
                "overwritten": [str(p) for p in self.overwritten],
                "skipped": [{"path": str(p), "why": why} for p, why in self.skipped],
                "gitignore": str(self.ignored) if self.ignored else None, "notes": list(self.notes)}


def _identifier(name: str) -> bool:
    return name.isidentifier() and not name.startswith("_")


def _project_name(root: Path) -> str | None:
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    name = data.get("project", {}).get("name")
    return re.sub(r"[-.]+", "_", name).lower() if isinstance(name, str) else None


def detect_target(root: Path) -> Target:
    """The project's package or module: the one named like the project first, src layout
    before flat layout, then the first by name."""
    wanted = _project_name(root)
    found: list[Target] = []
    for base, src in ((root / "src", True), (root, False)):
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            if child.is_dir() and _identifier(child.name) and child.name not in _NOT_CODE \
                    and (child / "__init__.py").is_file():
                found.append(Target("package", child.name, src))
    if not found:
        for base, src in ((root / "src", True), (root, False)):
            if not base.is_dir():
                continue
            modules = [p for p in sorted(base.glob("*.py"))
                       if _identifier(p.stem) and p.stem not in _NOT_MODULES
                       and not p.stem.startswith("test")]
            found += [Target("module", p.stem, src) for p in modules]
    if not found:
        return Target(None)
    for t in found:
        if t.name == wanted:
            return t
    return found[0]


def git_toplevel(root: Path) -> Path | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(out.stdout.strip()).resolve() if out.returncode == 0 else None


def _has_config(root: Path) -> str | None:
    if (root / "perfloop.toml").exists():
        return "perfloop.toml exists"
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    if "perfloop" in data.get("tool", {}):
        return "pyproject.toml already has [tool.perfloop]"
    return None


def _package_file(root: Path, target: Target) -> Path | None:
    base = root / "src" if target.src_layout else root
    if target.kind == "package":
        return base / str(target.name) / "__init__.py"
    if target.kind == "module":
        return base / f"{target.name}.py"
    return None


def public_functions(root: Path, target: Target) -> list[str]:
    """Public functions defined (or re-exported through ``__all__``) at the top of the target,
    read with ``ast`` (importing the project could be slow or have side effects)."""
    path = _package_file(root, target)
    try:
        tree = ast.parse(path.read_text()) if path else None
    except (OSError, SyntaxError, ValueError):
        return []
    if tree is None:
        return []
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            try:
                exported = ast.literal_eval(node.value)
            except ValueError:
                continue
            names += [n for n in exported if isinstance(n, str) and n not in names]
    return names


def has_main(root: Path, target: Target) -> bool:
    """Whether ``python -m TARGET`` runs (a package's ``__main__.py``)."""
    path = _package_file(root, target)
    return target.kind == "package" and path is not None and (path.parent / "__main__.py").is_file()


def benchmarks_module(target: Target, functions: list[str] | None = None) -> str:
    if target.kind is None:
        where = ("perfloop found no package or module to point at, so the function below is a "
                 "placeholder\nthat runs as it is.")
        imports = ""
        hint = "a call into your code"
    else:
        where = f"They measure the {target.kind} {target.name!r} found in this project."
        imports = f"import {target.name}  # the {target.kind} perfloop found in this project\n\n"
        hint = (f"a call into {target.name} that matters to your users, e.g. "
                f"{target.name}.{functions[0]}(...)" if functions else
                f"a call into {target.name} that matters to your users")
    return f'''"""perfloop benchmarks: each function is a benchmark target.

{where}

perfloop calls a target many times, in fresh worker processes, and measures each call (wall
time, CPU time, peak memory). Keep one call between a millisecond and a second, deterministic,
and free of network and disk waits you do not mean to measure. A target may return a dict of
numbers: custom metrics (declare them under custom_metrics in perfloop.toml). Parameters from
`params` in perfloop.toml arrive as keyword arguments.
"""

{imports}
def workload() -> None:
    # PLACEHOLDER: replace this body with {hint},
    # then rename the benchmark in perfloop.toml. It sorts a list so that it runs as it is.
    data = list(range(20_000, 0, -1))
    sorted(data)
'''


def config_text(target: Target, *, runnable: bool = False) -> str:
    name = f"{target.name}_workload" if target.name else "workload"
    paths = [f'"{BENCH_DIR}"'] + (['"src"'] if target.src_layout else [])
    example = target.name or "yourpackage"
    # a command that exists: `python -m PKG --help` only when the package has a __main__
    command = (f'["python", "-m", "{example}", "--help"]' if runnable else
               f'["python", "-c", "import {example}"]')
    command_name = "cli_start" if runnable else "import_time"
    return f'''# perfloop configuration (generated by `perfloop init`).
# Each [[benchmark]] is a named target with its metrics and tolerance. Run them with
# `perfloop run`; gate a change with `perfloop gate --base main` (perfloop docs: gate.md).

[defaults]
processes = 10     # fresh worker processes per run: the statistical unit
values = 5         # measured values per worker process (callables)
warmup = 1         # values discarded at the start of each worker
min_time = 0.02    # seconds one value lasts at least; fast calls are looped
tolerance = 0.05   # a change smaller than 5% does not fail the gate
pythonpath = [{", ".join(paths)}]   # every benchmark imports from here (this checkout's code)

decide_on = "auto" # time verdicts: CPU time for CPU-bound code, wall time for code that waits

[[benchmark]]
name = "{name}"
callable = "{BENCH_MODULE}:workload"   # PLACEHOLDER in {BENCH_DIR}/{BENCH_MODULE}.py
metrics = ["wall_time", "cpu_time", "peak_rss"]

# More kinds of benchmark:
#
# [[benchmark]]
# name = "{command_name}"
# command = {command}
#
# [[benchmark]]
# name = "health"
# http = {{ url = "http://127.0.0.1:8000/health", rate = 50, duration = 2 }}
# server = {{ command = ["uvicorn", "app:app"], ready_url = "http://127.0.0.1:8000/health" }}
'''


def workflow_text(project_rel: str, *, install: str, python: str, note: str | None = None) -> str:
    """The GitHub Actions workflow; ``install`` is the shell command of the install steps."""
    prefix = "" if project_rel in ("", ".") else f"{project_rel}/"
    defaults = ("" if not prefix else
                f"\ndefaults:\n  run:\n    working-directory: {project_rel}\n")
    caution = "".join(f"      # NOTE: {line}\n" for line in textwrap.wrap(note or "", 86))
    store = f"{prefix}.perfloop/perfloop.db"
    return f'''# perfloop: a regression gate on pull requests, and nightly history runs.
# Generated by `perfloop init`; how the gate decides: perfloop docs, gate.md.
name: perfloop

on:
  pull_request:
  schedule:
    - cron: "23 3 * * *"     # nightly history run
  workflow_dispatch:

permissions:
  contents: read
{defaults}
jobs:
  gate:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0      # the gate checks the base commit out in a git worktree
      - uses: actions/setup-python@v5
        with:
          python-version: "{python}"
{caution}      - name: Install
        run: {install}
      # Measures base and head interleaved on this runner and exits 1 on an unapproved,
      # confirmed regression. Annotations and the job summary are written automatically.
      # CPU-bound benchmarks are decided on CPU time (decide_on = "auto" in perfloop.toml):
      # on a busy shared runner it still sees a 5% change where wall time cannot.
      - name: Regression gate
        run: perfloop gate --base origin/${{{{ github.base_ref }}}} --markdown perfloop-gate.md --junit perfloop-gate.xml
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: perfloop-gate
          path: |
            {prefix}perfloop-gate.md
            {prefix}perfloop-gate.xml
''' + _nightly_job(install=install, python=python, caution=caution, store=store)


def _nightly_job(*, install: str, python: str, caution: str, store: str) -> str:
    """The workflow's nightly job: a history run whose store is kept from night to night."""
    return f'''
  nightly:
    if: github.event_name != 'pull_request'
    runs-on: ubuntu-latest
    env:
      # A team database (e.g. postgresql+psycopg://...) as a secret keeps one history for
      # everyone; without it the SQLite store is carried from night to night in the cache.
      PERFLOOP_STORE: ${{{{ secrets.PERFLOOP_STORE }}}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "{python}"
{caution}      - name: Install
        run: {install}
      - name: Restore the history
        uses: actions/cache/restore@v4
        with:
          path: {store}
          key: perfloop-store-${{{{ github.run_id }}}}
          restore-keys: perfloop-store-
      - name: Nightly run
        run: perfloop run --label nightly
      - name: Keep the history
        if: always() && hashFiles('{store}') != ''
        uses: actions/cache/save@v4
        with:
          path: {store}
          key: perfloop-store-${{{{ github.run_id }}}}
      - uses: actions/upload-artifact@v4
        if: always() && hashFiles('{store}') != ''
        with:
          name: perfloop-store
          path: {store}
          retention-days: 90
'''


def plan(root: Path) -> tuple[Target, list[PlannedFile]]:
    """The files ``perfloop init`` would write for the project at ``root``."""
    root = root.resolve()
    target = detect_target(root)
    top = git_toplevel(root) or root
    rel = root.relative_to(top).as_posix() if root.is_relative_to(top) else "."
    project = (root / "pyproject.toml").is_file() or (root / "setup.py").is_file()
    # the perfloop installed here, installed the same way on the runner
    install, note = install_command(project, repository=top, workdir=root)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    workflow = PlannedFile(top / WORKFLOW_PATH,
                           workflow_text(rel, install=install, python=python, note=note),
                           "GitHub Actions: gate pull requests, nightly history runs")
    from .suite_detect import detect_suites, suites_config_text
    suites = detect_suites(root)
    if suites:   # the project's own pytest-benchmark or asv suite, instead of a placeholder
        return target, [PlannedFile(root / "perfloop.toml", suites_config_text(suites),
                                    "configuration measuring " + ", ".join(
                                        f"the {s.tool} suite in {s.path} ({s.evidence})" for s in suites)),
                        workflow]
    files = [
        PlannedFile(root / "perfloop.toml", config_text(target, runnable=has_main(root, target)),
                    "configuration with one benchmark"),
        PlannedFile(root / BENCH_DIR / f"{BENCH_MODULE}.py",
                    benchmarks_module(target, public_functions(root, target)),
                    "the benchmark's target (a placeholder to replace)"),
        workflow,
    ]
    return target, files


def ignore_store(root: Path) -> Path | None:
    """Add ``.perfloop/`` (the store and the gate's worktrees) to the ``.gitignore`` of the
    repository, or of the project outside git; the file changed, or None when already there."""
    top = git_toplevel(root) or root
    path = top / ".gitignore"
    rel = root.relative_to(top).as_posix() if root.is_relative_to(top) else "."
    entry = ".perfloop/" if rel == "." else f"/{rel}/.perfloop/"
    try:
        lines = path.read_text().splitlines() if path.exists() else []
    except OSError:
        return None
    if any(line.strip() in (entry, ".perfloop", ".perfloop/", "/.perfloop/", f"/{rel}/.perfloop")
           for line in lines):
        return None
    text = "\n".join(lines)
    prefix = text + ("\n" if text else "")
    path.write_text(f"{prefix}# perfloop's results store and the gate's temporary worktrees\n{entry}\n")
    return path


def scaffold(root: str | Path, *, force: bool = False) -> ScaffoldResult:
    """Write the planned files; existing ones only with ``force``."""
    root = Path(root).resolve()
    target, files = plan(root)
    created: list[Path] = []
    overwritten: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for f in files:
        if f.path.name == "perfloop.toml":
            reason = _has_config(root)
        else:
            reason = f"{f.path.name} exists" if f.path.exists() else None
        if reason and not force:
            skipped.append((f.path, reason))
            continue
        existed = f.path.exists()
        f.path.parent.mkdir(parents=True, exist_ok=True)
        f.path.write_text(f.content)
        (overwritten if existed else created).append(f.path)
    ignored = ignore_store(root)
    workflow = next(f.content for f in files if f.path.name == WORKFLOW_PATH.name)
    note = workflow.split("# NOTE: ", 1)[1].split("\n      - name:", 1)[0] if "# NOTE: " in workflow else ""
    note = " ".join(part.strip().removeprefix("# NOTE: ") for part in note.splitlines())
    return ScaffoldResult(root=root, target=target, created=tuple(created),
                          overwritten=tuple(overwritten), skipped=tuple(skipped), files=tuple(files),
                          ignored=ignored, notes=(note,) if note else ())


__all__ = ["PlannedFile", "ScaffoldResult", "Target", "benchmarks_module", "config_text",
           "detect_target", "plan", "scaffold", "workflow_text"]
