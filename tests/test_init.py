"""``perfloop init``: files created, never overwritten without --force, and a config that loads
and whose benchmark runs as generated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from perfloop.config import load_config
from perfloop.measure.callable import measure_callable
from perfloop.records import ResultStatus
from perfloop.workflows.scaffold import detect_target, scaffold


def init(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "perfloop", "init", *args, "-C", str(project)],
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "PERFLOOP_STORE"})


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    return path


def runs(config_root: Path) -> None:
    """The generated benchmark loads and runs (one worker, small values)."""
    config = load_config(config_root)
    [spec] = config.benchmarks
    spec = replace(spec, settings=replace(spec.settings, processes=1, values=1, warmup=0, min_time=0.0))
    result = measure_callable(spec)
    assert result.status is ResultStatus.OK, (result.error, result.stderr_tail)
    assert result.values("wall_time")


def test_detects_src_and_flat_packages_and_modules(tmp_path: Path) -> None:
    src = tmp_path / "a"
    (src / "src" / "shop").mkdir(parents=True)
    (src / "src" / "shop" / "__init__.py").write_text("")
    (src / "tests").mkdir()
    (src / "tests" / "__init__.py").write_text("")
    t = detect_target(src)
    assert (t.kind, t.name, t.src_layout) == ("package", "shop", True)

    flat = tmp_path / "b"
    for name in ("alpha", "beta"):
        (flat / name).mkdir(parents=True)
        (flat / name / "__init__.py").write_text("")
    (flat / "pyproject.toml").write_text('[project]\nname = "beta"\n')
    assert detect_target(flat).name == "beta"          # the one named like the project

    single = tmp_path / "c"
    single.mkdir()
    (single / "setup.py").write_text("")
    (single / "tool.py").write_text("")
    t = detect_target(single)
    assert (t.kind, t.name) == ("module", "tool")

    empty = tmp_path / "d"
    empty.mkdir()
    assert detect_target(empty).kind is None


def test_creates_files_that_load_and_run(tmp_path: Path) -> None:
    project = git_repo(tmp_path / "proj")
    (project / "src" / "shop").mkdir(parents=True)
    (project / "src" / "shop" / "__init__.py").write_text("PRICE = 3\n")
    result = scaffold(project)
    names = {p.relative_to(project).as_posix() for p in result.created}
    assert names == {"perfloop.toml", "benchmarks/perfloop_benchmarks.py",
                     ".github/workflows/perfloop.yml"}
    module = (project / "benchmarks" / "perfloop_benchmarks.py").read_text()
    assert "import shop" in module and "PLACEHOLDER" in module
    workflow = (project / ".github" / "workflows" / "perfloop.yml").read_text()
    assert "perfloop gate --base origin/${{ github.base_ref }}" in workflow
    assert "fetch-depth: 0" in workflow and "perfloop run --label nightly" in workflow
    assert "schedule:" in workflow and "secrets.PERFLOOP_STORE" in workflow
    runs(project)


@pytest.mark.slow
def test_cli_skips_existing_files_unless_forced(tmp_path: Path) -> None:
    project = git_repo(tmp_path / "proj")
    (project / "perfloop.toml").write_text("# mine\n")
    proc = init(project)
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stdout and "perfloop.toml" in proc.stdout
    assert (project / "perfloop.toml").read_text() == "# mine\n"
    assert (project / ".github" / "workflows" / "perfloop.yml").exists()
    assert "placeholder" in proc.stdout.lower()

    again = json.loads(init(project, "--json").stdout)
    assert again["created"] == [] and len(again["skipped"]) == 3

    forced = json.loads(init(project, "--force", "--json").stdout)
    assert len(forced["overwritten"]) == 3
    runs(project)   # the placeholder benchmark runs out of the box


def test_pyproject_config_counts_as_existing(tmp_path: Path) -> None:
    project = git_repo(tmp_path / "proj")
    (project / "pyproject.toml").write_text('[tool.perfloop]\nstore = "x.db"\n')
    result = scaffold(project)
    assert [why for p, why in result.skipped if p.name == "perfloop.toml"] == [
        "pyproject.toml already has [tool.perfloop]"]


def test_project_in_a_subdirectory_gets_the_workflow_at_the_top(tmp_path: Path) -> None:
    top = git_repo(tmp_path / "mono")
    project = top / "services" / "api"
    project.mkdir(parents=True)
    (project / "api.py").write_text("def handler():\n    return 1\n")
    scaffold(project)
    workflow = top / ".github" / "workflows" / "perfloop.yml"
    assert workflow.exists() and not (project / ".github").exists()
    text = workflow.read_text()
    assert "working-directory: services/api" in text
    assert "services/api/.perfloop/perfloop.db" in text
    assert "import api" in (project / "benchmarks" / "perfloop_benchmarks.py").read_text()
    runs(project)


def test_workflow_is_valid_yaml(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    project = git_repo(tmp_path / "proj")
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n')
    scaffold(project)
    data = yaml.safe_load((project / ".github" / "workflows" / "perfloop.yml").read_text())
    triggers = data.get("on", data.get(True))     # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"pull_request", "schedule", "workflow_dispatch"}
    gate_steps = data["jobs"]["gate"]["steps"]
    assert gate_steps[0]["with"]["fetch-depth"] == 0
    assert any("perfloop gate --base" in s.get("run", "") for s in gate_steps)
    assert any("pip install perfloop -e ." == s.get("run") for s in gate_steps)
    assert any(s.get("run") == "perfloop run --label nightly" for s in data["jobs"]["nightly"]["steps"])
