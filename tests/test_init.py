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
from perfloop.workflows.install_line import requirement
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
    install = [s["run"] for s in gate_steps if s.get("name") == "Install"]
    assert len(install) == 1 and install[0].startswith("pip install ") and install[0].endswith(" -e .")
    assert "pip install perfloop -e ." not in install     # no index has that release
    assert any(s.get("run") == "perfloop run --label nightly" for s in data["jobs"]["nightly"]["steps"])


# --------------------------------------------------------------------------------------------
# what a first try meets


def test_install_line_follows_how_perfloop_was_installed(tmp_path: Path) -> None:
    assert requirement(None, "1.2.0").argument == "perfloop==1.2.0"
    vcs = {"url": "https://github.com/acme/perfloop.git",
           "vcs_info": {"vcs": "git", "commit_id": "a" * 40, "requested_revision": "main"}}
    assert requirement(vcs, "1.2.0").argument == f"git+https://github.com/acme/perfloop.git@{'a' * 40}"
    wheel = {"url": "https://example.com/perfloop-1.2.0-py3-none-any.whl", "archive_info": {}}
    assert requirement(wheel, "1.2.0").argument == "perfloop @ " + wheel["url"]
    # a local checkout with a remote: that commit from the remote, and a note to push it
    checkout = tmp_path / "perfloop-src"
    checkout.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=checkout, check=True)
    subprocess.run(["git", "remote", "add", "origin", "git@github.com:acme/perfloop.git"],
                   cwd=checkout, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q",
                    "--allow-empty", "-m", "x"], cwd=checkout, check=True)
    local = requirement({"url": checkout.as_uri(), "dir_info": {"editable": True}}, "1.2.0")
    assert local.argument.startswith("git+ssh://git@github.com/acme/perfloop.git@")
    assert local.note and "push" in local.note
    # a remote that is a local path becomes a file URL pip can read (with a note)
    subprocess.run(["git", "remote", "set-url", "origin", str(tmp_path / "upstream")], cwd=checkout,
                   check=True)
    (tmp_path / "upstream").mkdir()
    local = requirement({"url": checkout.as_uri(), "dir_info": {}}, "1.2.0")
    assert local.argument.startswith(f"git+{(tmp_path / 'upstream').as_uri()}@")
    assert "runner does not have" in (local.note or "")
    # inside the repository being set up: relative to where the step runs
    vendored = requirement({"url": (tmp_path / "tools" / "perfloop").as_uri(), "dir_info": {}},
                           "1.2.0", repository=tmp_path, workdir=tmp_path / "app")
    assert vendored.argument == "../tools/perfloop"


def test_init_ignores_the_store_and_names_functions_that_exist(tmp_path: Path) -> None:
    project = git_repo(tmp_path / "proj")
    (project / "src" / "parsers").mkdir(parents=True)
    (project / "src" / "parsers" / "__init__.py").write_text(
        "def _private():\n    pass\n\n\ndef parse(text):\n    return text.split()\n")
    (project / ".gitignore").write_text("*.pyc")
    result = scaffold(project)
    assert (project / ".gitignore").read_text().splitlines()[0] == "*.pyc"
    assert ".perfloop/" in (project / ".gitignore").read_text().splitlines()
    assert result.ignored == project / ".gitignore"
    assert scaffold(project, force=True).ignored is None          # once
    status = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
                            cwd=project, capture_output=True, text=True, check=True).stdout
    (project / ".perfloop").mkdir()
    (project / ".perfloop" / "perfloop.db").write_text("")
    added = subprocess.run(["git", "add", "-A", "--dry-run"], cwd=project, capture_output=True,
                           text=True, check=True).stdout
    assert ".perfloop" not in added and "perfloop.toml" in added, status
    module = (project / "benchmarks" / "perfloop_benchmarks.py").read_text()
    assert "parsers.parse(...)" in module and "parsers.main" not in module
    config = (project / "perfloop.toml").read_text()
    assert '-m", "parsers"' not in config         # no __main__.py: python -m parsers fails
    assert 'import parsers' in config


def install_step(project: Path) -> str:
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load((project / ".github" / "workflows" / "perfloop.yml").read_text())
    [run] = [s["run"] for s in data["jobs"]["gate"]["steps"] if s.get("name") == "Install"]
    return run


@pytest.mark.slow
def test_the_generated_install_step_resolves(tmp_path: Path) -> None:
    """The workflow's install command, as the runner's shell runs it, with --dry-run: pip must
    find perfloop the way it is installed here, and the project."""
    project = git_repo(tmp_path / "proj")
    (project / "pyproject.toml").write_text('[project]\nname = "proj"\nversion = "0.1"\n')
    (project / "proj").mkdir()
    (project / "proj" / "__init__.py").write_text("")
    scaffold(project)
    run = install_step(project)
    assert run.startswith("pip install ")
    command = run.replace("pip install ", f"{sys.executable} -m pip install --dry-run --quiet "
                                          f"--report {tmp_path / 'report.json'} ", 1)
    proc = subprocess.run(command, shell=True, cwd=project, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (run, proc.stderr[-2000:])
    names = {item["metadata"]["name"] for item in json.loads((tmp_path / "report.json").read_text())["install"]}
    assert {"perfloop", "proj"} <= names
