"""Each side of the gate runs its own checkout's code.

A real git repository with a src layout: ``src/shapes`` is the package, the benchmark module in
``benchmarks/`` imports it. The head's ``src`` is importable from anywhere, the way an editable
install makes it (a ``.pth`` file in site-packages, or PYTHONPATH). Without ``src`` on the
benchmark's pythonpath the base worktree would import the head's package: the gate must refuse,
with the fix; with ``src`` on it, each side resolves inside its own tree and the gate runs.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from perfloop.config import load_config
from perfloop.errors import UsageError
from perfloop.records import BenchmarkResult, ResultStatus, Sample
from perfloop.store import Store
from perfloop.workflows.gate import GateOptions, run_gate
from perfloop.workflows.interleave import SamplingPolicy
from perfloop.workflows.own_code import misplaced, own_modules

from gitutil import git

BENCH = "import shapes\n\n\ndef work():\n    return {'cost': shapes.cost()}\n"
CONFIG = '''
[[benchmark]]
name = "area"
callable = "shape_bench:work"
pythonpath = {paths}
metrics = ["cost"]
custom_metrics = {{ cost = {{ unit = "units" }} }}
'''


def make_repo(repo: Path, paths: str) -> None:
    (repo / "src" / "shapes").mkdir(parents=True)
    (repo / "benchmarks").mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "src" / "shapes" / "__init__.py").write_text("def cost():\n    return 1.0\n")
    (repo / "benchmarks" / "shape_bench.py").write_text(BENCH)
    (repo / "perfloop.toml").write_text(CONFIG.format(paths=paths))
    (repo / ".gitignore").write_text(".perfloop/\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "slower")
    (repo / "src" / "shapes" / "__init__.py").write_text("def cost():\n    return 4.3\n")
    git(repo, "commit", "-q", "-am", "slower shapes")


def fake_measure(spec, deadline, on_progress) -> BenchmarkResult:
    return BenchmarkResult(name=spec.name, kind=spec.kind, status=ResultStatus.OK,
                           samples=(Sample("cost", 1.0),), units={"cost": "units"})


OPTIONS = GateOptions(base="main", sampling=SamplingPolicy(blocks=1, max_blocks=1))


@pytest.fixture(params=["pth", "PYTHONPATH"])
def head_importable(request, tmp_path: Path, monkeypatch):
    """A function that makes ``src`` of a repository importable by every interpreter of this
    environment, as an editable install does; undone after the test."""
    made: list[Path] = []

    def install(src: Path) -> None:
        if request.param == "PYTHONPATH":
            monkeypatch.setenv("PYTHONPATH", str(src))
            return
        pth = Path(site.getsitepackages()[0]) / f"_perfloop_test_{uuid.uuid4().hex}.pth"
        pth.write_text(f"{src}\n")
        made.append(pth)

    yield install
    for pth in made:
        pth.unlink(missing_ok=True)


def test_gate_refuses_when_the_base_would_import_the_heads_code(tmp_path: Path, head_importable) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    make_repo(repo, '["benchmarks"]')
    head_importable(repo / "src")
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store, \
            pytest.raises(UsageError) as caught:
        run_gate(load_config(repo), store, OPTIONS, measure=fake_measure)
    text = f"{caught.value} {caught.value.hint}"
    assert "base" in text and "'shapes'" in text and str(repo / "src") in text
    assert '"src"' in text and "pythonpath" in text
    assert not list((repo / ".perfloop" / "worktrees").iterdir())   # cleaned up on the way out


def test_each_side_resolves_inside_its_own_tree_with_src_on_the_path(tmp_path: Path,
                                                                      head_importable) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    make_repo(repo, '["benchmarks", "src"]')
    head_importable(repo / "src")
    seen: list[str] = []

    def measure(spec, deadline, on_progress):
        seen.append(spec.root)
        return fake_measure(spec, deadline, on_progress)

    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        report = run_gate(load_config(repo), store, OPTIONS, measure=measure)
    assert report.passed and {Path(r).resolve() == repo.resolve() for r in seen} == {True, False}


def test_the_resolver_sees_what_a_worker_sees(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    make_repo(repo, '["benchmarks"]')
    other = tmp_path / "elsewhere"
    (other / "shapes").mkdir(parents=True)
    (other / "shapes" / "__init__.py").write_text("")
    spec = load_config(repo).benchmarks[0]
    assert own_modules(repo, repo) == {"shapes"}
    assert misplaced(spec, repo) == []        # not importable at all: the measurement says so
    spec = type(spec)(**{**spec.__dict__, "env": {"PYTHONPATH": str(other)}})
    found = misplaced(spec, repo)
    assert [(m.module, Path(m.origin).parent) for m in found] == [("shapes", other / "shapes")]


@pytest.mark.slow
def test_cli_exits_2_with_the_fix(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    make_repo(repo, '["benchmarks"]')
    env = {k: v for k, v in os.environ.items() if k not in ("PERFLOOP_STORE", "GITHUB_ACTIONS")}
    env["PYTHONPATH"] = str(repo / "src")
    proc = subprocess.run([sys.executable, "-m", "perfloop", "gate", "--base", "main", "-C", str(repo),
                           "--blocks", "1", "--max-blocks", "1"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "would not run its own code" in proc.stderr and "pythonpath" in proc.stderr
