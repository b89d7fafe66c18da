"""``perfloop import`` on files the real tools wrote: pytest-benchmark, pyperf and asv.

The pytest-benchmark and pyperf files are written in the tests by the tools themselves (a
pytest subprocess; pyperf's own ``BenchmarkSuite.dump`` and, marked slow, a ``pyperf.Runner``
script). The asv file in ``tests/fixtures/asv`` was written by ``asv run`` (asv 0.6.6) on the
benchmarks in ``tests/fixtures/asv/bench.py.txt``; a slow test writes a fresh one when asv is
installed. Bad files (not JSON, JSON of another tool, truncated) must exit 2 naming the file
and store nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cliutil import invoke

from perfloop.importers import InvalidResultsFile, detect_format, import_files, read_results
from perfloop.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
ASV_FILE = FIXTURES / "asv" / "results" / "vm" / "dbf9588a-existing-py_work_venv_bin_python3.json"


def says(message: str, text: str) -> bool:
    """``text`` is in ``message`` once the console's line wrapping (at 80 columns) is undone."""
    return "".join(text.split()) in "".join(message.split())


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


# -- files written by the tools ----------------------------------------------------------------

@pytest.fixture(scope="module")
def pytest_benchmark_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """pytest-benchmark JSON with per-round data (--benchmark-json) and without it (a file saved
    by --benchmark-save), written by a real pytest run in a git repository on branch feature."""
    pytest.importorskip("pytest_benchmark")
    repo = tmp_path_factory.mktemp("pb")
    (repo / "test_bench.py").write_text(textwrap.dedent("""
        import pytest

        def work(n):
            return sum(i * i for i in range(n))

        @pytest.mark.parametrize("n", [100, 1000])
        def test_work(benchmark, n):
            benchmark.pedantic(work, args=(n,), rounds=7, iterations=3, warmup_rounds=1)
    """))
    _git(repo, "init", "-q", "-b", "feature")
    _git(repo, "add", "test_bench.py")
    _git(repo, "-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-q", "-m", "bench")
    # --benchmark-json always holds every round; a file saved by --benchmark-save holds them only
    # with --benchmark-save-data, otherwise summary statistics alone.
    data = repo / "data.json"
    storage = repo / "storage"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_bench.py",
                    f"--benchmark-json={data}", "--benchmark-save=summary",
                    f"--benchmark-storage=file://{storage}"], cwd=repo, check=True, capture_output=True)
    [summary] = storage.glob("*/0001_summary.json")
    out = {"data": data, "summary": summary}
    out["commit"] = _git(repo, "rev-parse", "HEAD")  # type: ignore[assignment]
    return out


@pytest.fixture
def pyperf_file(tmp_path: Path) -> Path:
    """A pyperf file written by pyperf's own API: two workers, one with a calibration run."""
    pyperf = pytest.importorskip("pyperf")
    meta = {"name": "parse", "loops": 8, "unit": "second", "commit_id": "a" * 40,
            "commit_branch": "main"}
    runs = [pyperf.Run([], warmups=[(1, 2e-5), (2, 1.5e-5), (4, 1.2e-5), (8, 1.1e-5)],
                       metadata={**meta, "calibrate_loops": 8}),
            pyperf.Run([1.0e-5, 1.1e-5, 1.05e-5], warmups=[(8, 1.3e-5)], metadata=meta),
            pyperf.Run([1.2e-5, 1.0e-5, 1.1e-5], warmups=[(8, 1.4e-5)], metadata=meta)]
    suite = pyperf.BenchmarkSuite([pyperf.Benchmark(runs)])
    path = tmp_path / "parse.json"
    suite.dump(str(path))
    return path


# -- pytest-benchmark --------------------------------------------------------------------------

def test_pytest_benchmark_with_data(pytest_benchmark_files: dict[str, Path]) -> None:
    imported = read_results(pytest_benchmark_files["data"])
    assert imported.format == "pytest-benchmark"
    assert imported.commit == pytest_benchmark_files["commit"]
    assert imported.branch == "feature"
    assert imported.label == "data"
    assert imported.environment["imported"] == "pytest-benchmark"
    names = sorted(r.name for r in imported.results)
    assert names == ["test_bench.py::test_work[1000]", "test_bench.py::test_work[100]"]
    result = next(r for r in imported.results if r.name.endswith("[100]"))
    assert result.kind == "imported"
    assert dict(result.params) == {"n": 100}
    # every round, as the time of one call (pytest-benchmark divides by iterations)
    assert len(result.values("wall_time")) == 7
    assert {s.loops for s in result.samples} == {3}
    assert set(result.by_worker("wall_time")) == {0}
    assert "summary" not in result.extra
    assert not imported.notes


def test_pytest_benchmark_summary_only(pytest_benchmark_files: dict[str, Path]) -> None:
    imported = read_results(pytest_benchmark_files["summary"])
    result = imported.results[0]
    assert len(result.values("wall_time")) == 1
    assert result.values("wall_time")[0] == result.extra["summary"]["median"]
    assert result.extra["summary"]["rounds"] == 7
    assert "--benchmark-save-data" in result.warnings[0] and "--benchmark-json" in result.warnings[0]
    assert imported.notes and "summary statistics only" in imported.notes[0]
    assert imported.label == "0001_summary"


def test_pytest_benchmark_stored_as_a_run(pytest_benchmark_files: dict[str, Path], store: Store) -> None:
    [(imported, run_id)] = import_files(store, [pytest_benchmark_files["data"]], label="baseline")
    run = store.get_run(run_id)
    assert run.label == "baseline"
    assert run.status.value == "complete"
    assert run.commit == pytest_benchmark_files["commit"] and run.branch == "feature"
    assert run.environment["imported"] == "pytest-benchmark"
    assert run.settings["imported"]["format"] == "pytest-benchmark"
    assert [r.name for r in run.results] == [r.name for r in imported.results]
    assert run.results[0].values("wall_time") == imported.results[0].values("wall_time")
    assert store.resolve("baseline") == run_id


# -- pyperf ------------------------------------------------------------------------------------

def test_pyperf_runs_are_workers(pyperf_file: Path) -> None:
    imported = read_results(pyperf_file)
    assert imported.format == "pyperf"
    assert imported.commit == "a" * 40 and imported.branch == "main"
    [result] = imported.results
    assert result.name == "parse"
    assert result.extra["calibration_runs"] == 1
    assert result.by_worker("wall_time") == {0: [1.0e-5, 1.1e-5, 1.05e-5], 1: [1.2e-5, 1.0e-5, 1.1e-5]}
    warm = [s for s in result.samples if s.warmup]
    assert [(s.worker, s.value, s.loops) for s in warm] == [(0, 1.3e-5, 8), (1, 1.4e-5, 8)]
    assert {s.loops for s in result.samples if s.metric == "wall_time"} == {8}
    # pyperf's collected metadata becomes the machine facts
    assert imported.environment["imported"] == "pyperf"
    assert imported.environment["cpu_count"] >= 1


def test_pyperf_gzip(pyperf_file: Path, tmp_path: Path) -> None:
    import gzip
    packed = tmp_path / "parse.json.gz"
    packed.write_bytes(gzip.compress(pyperf_file.read_bytes()))
    imported = read_results(packed)
    assert imported.label == "parse"
    assert imported.results[0].by_worker("wall_time") == read_results(pyperf_file).results[0].by_worker("wall_time")


@pytest.mark.slow
def test_pyperf_runner_file(tmp_path: Path) -> None:
    pytest.importorskip("pyperf")
    script = tmp_path / "bench.py"
    script.write_text(textwrap.dedent("""
        import pyperf
        runner = pyperf.Runner()
        runner.bench_func("sum", sum, range(100))
    """))
    out = tmp_path / "out.json"
    subprocess.run([sys.executable, str(script), "-p", "3", "-n", "2", "-w", "1", "--min-time", "0.001",
                    "-q", "-o", str(out)], check=True, capture_output=True, cwd=tmp_path)
    [result] = read_results(out).results
    workers = result.by_worker("wall_time")
    assert len(workers) == 3 and all(len(v) == 2 for v in workers.values())
    assert sum(1 for s in result.samples if s.warmup) == 3
    assert len(result.values("peak_rss")) == 3       # pyperf's mem_max_rss, one per worker


# -- asv ---------------------------------------------------------------------------------------

def test_asv_results_file() -> None:
    imported = read_results(ASV_FILE)
    assert imported.format == "asv"
    assert imported.commit == "dbf9588a88ad427998b2967436c7399957fac161"
    assert imported.branch is None
    assert imported.environment["imported"] == "asv"
    assert imported.environment["cpu_count"] == 2
    by_name = {r.name: r for r in imported.results}
    # a parameter grid (2 x 2) gives one benchmark per combination, named by benchmarks.json
    joins = sorted(n for n in by_name if n.startswith("bench.Suite.time_join"))
    assert joins == sorted(f"bench.Suite.time_join[n={n},s={s}]" for n in (10, 100) for s in "ab")
    join = by_name["bench.Suite.time_join[n=10,s=a]"]
    assert dict(join.params) == {"n": 10, "s": "a"}
    assert len(join.values("wall_time")) == 6      # --record-samples: 2 rounds x 3 repeats
    assert join.samples[0].loops > 1                # stats_number
    assert by_name["bench.Suite.peakmem_list[n=100,s=a]"].metrics == ["peak_rss"]
    assert by_name["bench.Suite.track_n[n=100,s=b]"].values("track") == [200]
    assert by_name["bench.mem_list"].units == {"mem_size": "B"}


def test_asv_failed_combination_is_a_failed_result(tmp_path: Path) -> None:
    # asv writes null for a combination that failed; take the real file and fail one.
    data = json.loads(ASV_FILE.read_text())
    data["results"]["bench.Suite.track_n"][0][1] = None
    path = tmp_path / "failed.json"       # away from benchmarks.json: asv's default names
    path.write_text(json.dumps(data))
    by_name = {r.name: r for r in read_results(path).results}
    failed = by_name["bench.Suite.track_n[param1=10,param2=b]"]
    assert failed.status.value == "failed" and "asv recorded no value" in failed.error
    assert by_name["bench.Suite.track_n[param1=10,param2=a]"].status.value == "ok"


@pytest.mark.slow
def test_asv_run_writes_an_importable_file(tmp_path: Path) -> None:
    asv = shutil.which("asv", path=str(Path(sys.executable).parent)) or shutil.which("asv")
    if asv is None:
        pytest.skip("asv is not installed")
    project = tmp_path / "proj"
    (project / "benchmarks").mkdir(parents=True)
    (project / "benchmarks" / "__init__.py").write_text("")
    (project / "benchmarks" / "bench.py").write_text(
        "class P:\n    params = [1, 2]\n    def time_p(self, n):\n        sum(range(100 * n))\n")
    (project / "asv.conf.json").write_text(json.dumps({
        "version": 1, "project": "p", "repo": ".", "environment_type": "existing",
        "benchmark_dir": "benchmarks", "results_dir": "results", "html_dir": "html"}))
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-q", "-m", "b")
    env = {"HOME": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    subprocess.run([asv, "machine", "--yes", "--machine", "ci"], cwd=project, env=env, check=True,
                   capture_output=True)
    subprocess.run([asv, "run", "--python=same", "--quick", "--record-samples", "--machine", "ci",
                    "--set-commit-hash", _git(project, "rev-parse", "HEAD")],
                   cwd=project, env=env, check=True, capture_output=True)
    [path] = [p for p in (project / "results" / "ci").glob("*.json") if p.name != "machine.json"]
    imported = read_results(path)
    assert sorted(r.name for r in imported.results) == ["bench.P.time_p[param1=1]", "bench.P.time_p[param1=2]"] \
        or sorted(r.name for r in imported.results) == ["bench.P.time_p[n=1]", "bench.P.time_p[n=2]"]
    assert imported.commit == _git(project, "rev-parse", "HEAD")


# -- the command -------------------------------------------------------------------------------

def test_cli_imports_several_files_as_runs(pyperf_file: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    code, out, _err = invoke(capsys, "import", str(pyperf_file), str(ASV_FILE), "--store", str(db), "--json",
                       "--label", "ci")
    assert code == 0, out
    rows = json.loads(out)
    assert [r["format"] for r in rows] == ["pyperf", "asv"]
    assert [r["label"] for r in rows] == ["ci/parse", "ci/dbf9588a-existing-py_work_venv_bin_python3"]
    with Store.open(f"sqlite:///{db}") as store:
        runs = store.list_runs()
        assert sorted(r.id for r in runs) == sorted(r["run_id"] for r in rows)
        assert all(r.status.value == "complete" for r in runs)
        # imported environments form classes of their own, one per tool and machine
        assert len({r.environment_hash for r in runs}) == 2


def test_cli_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = invoke(capsys, "import", "--help")
    assert code == 0
    assert "Example:" in out


def test_cli_dry_run_stores_nothing(pyperf_file: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    code, out, _err = invoke(capsys, "import", str(pyperf_file), "--store", str(db), "--dry-run")
    assert code == 0, out
    assert "nothing stored" in out
    assert not db.exists()


# -- bad files: exit 2, the file and what was expected named, nothing stored --------------------

def _bad_files(tmp_path: Path, pyperf_file: Path) -> dict[str, tuple[Path, str]]:
    not_json = tmp_path / "results.bin"
    not_json.write_bytes(bytes(range(256)) * 4)
    other = tmp_path / "package.json"
    other.write_text(json.dumps({"name": "web", "version": "1.0.0", "dependencies": {}}))
    text = pyperf_file.read_text()
    truncated = tmp_path / "truncated.json"
    truncated.write_text(text[: len(text) // 2])
    empty = tmp_path / "empty.json"
    empty.write_text("")
    wrong_shape = tmp_path / "wrong.json"
    data = json.loads(text)
    data["benchmarks"][0]["runs"][1]["values"] = ["fast"]
    wrong_shape.write_text(json.dumps(data))
    return {"not json": (not_json, "not JSON"),
            "another format": (other, "not the results of pytest-benchmark, pyperf or asv"),
            "truncated": (truncated, "truncated"),
            "empty": (empty, "empty"),
            "bad value": (wrong_shape, "not a valid pyperf file")}


def test_bad_files_exit_2_and_store_nothing(pyperf_file: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    for case, (path, expected) in _bad_files(tmp_path, pyperf_file).items():
        code, out, message = invoke(capsys, "import", str(path), "--store", str(db))
        assert code == 2 and out == "", case
        assert message.startswith("Error:") and says(message, str(path)), (case, message)
        assert says(message, expected), (case, message)
        # the hint says what was expected: the formats, or the one the file claims to be
        assert says(message, "pytest-benchmark JSON") or says(message, "expected the JSON pyperf writes"), case
        assert not db.exists(), case


def test_one_bad_file_among_good_ones_stores_nothing(pyperf_file: Path, tmp_path: Path, store: Store) -> None:
    bad, _ = _bad_files(tmp_path, pyperf_file)["truncated"]
    with pytest.raises(InvalidResultsFile) as caught:
        import_files(store, [pyperf_file, ASV_FILE, bad])
    assert caught.value.path == str(bad)
    assert store.list_runs() == []


def test_unsupported_format_versions_are_named(pyperf_file: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**json.loads(pyperf_file.read_text()), "version": 5}))
    with pytest.raises(InvalidResultsFile, match="format version 5"):
        read_results(old)
    asv_v1 = tmp_path / "asv1.json"
    asv_v1.write_text(json.dumps({**json.loads(ASV_FILE.read_text()), "version": 1}))
    with pytest.raises(InvalidResultsFile, match="asv update"):
        read_results(asv_v1)


def test_forced_format_must_match(pyperf_file: Path) -> None:
    with pytest.raises(InvalidResultsFile, match="looks like a pyperf file"):
        read_results(pyperf_file, fmt="asv")


def test_detect_format() -> None:
    assert detect_format({"machine_info": {}, "benchmarks": []}) == "pytest-benchmark"
    assert detect_format({"version": "1.0", "benchmarks": []}) == "pyperf"
    assert detect_format({"version": 2, "result_columns": [], "results": {}}) == "asv"
    assert detect_format([1, 2]) is None
    assert detect_format({"benchmarks": {}}) is None


def test_entry_point_exits_2_on_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through ``perfloop.cli.app.main``, as a shell runs it: the command is registered there."""
    app = pytest.importorskip("perfloop.cli.app")
    bad = tmp_path / "bench.json"
    bad.write_text('{"benchmarks": [')
    with pytest.raises(SystemExit) as caught:
        app.main(["import", str(bad), "--store", str(tmp_path / "s.db")])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "Error:" in err and "bench.json" in err and "truncated" in err
    assert not (tmp_path / "s.db").exists()


def test_a_store_failure_part_way_leaves_no_run(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from perfloop.errors import StoreError
    calls = {"n": 0}
    real_add = store.add_result

    def flaky_add(run_id: int, result) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise StoreError("disk full")
        real_add(run_id, result)

    monkeypatch.setattr(store, "add_result", flaky_add)
    with pytest.raises(StoreError, match="disk full"):
        import_files(store, [ASV_FILE])
    assert calls["n"] == 3 and store.list_runs() == []


def test_when_even_the_cleanup_fails_the_run_is_marked_interrupted(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from perfloop.errors import StoreError
    imported = read_results(ASV_FILE)
    calls = {"n": 0}
    real_add = store.add_result

    def flaky_add(run_id: int, result) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise StoreError("disk full")
        real_add(run_id, result)

    def no_delete(run_id: int) -> None:
        raise StoreError("database is locked")

    monkeypatch.setattr(store, "add_result", flaky_add)
    monkeypatch.setattr(store, "delete_run", no_delete)
    with pytest.raises(StoreError, match="disk full"):
        import_files(store, [ASV_FILE])
    [run] = store.list_runs()
    assert run.status.value == "interrupted"
    assert run.n_results == 2 < len(imported.results)


def test_asv_glob_skips_machine_json_and_directories_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = ASV_FILE.parent
    code, out, _err = invoke(capsys, "import", *map(str, sorted(results.glob("*.json"))), "--store",
                       str(tmp_path / "s.db"), "--json", "--label", "nightly")
    assert code == 0, out
    [row] = json.loads(out)
    assert row["format"] == "asv" and row["label"] == "nightly"
    code, _out, message = invoke(capsys, "import", str(results), "--store", str(tmp_path / "s.db"))
    assert code == 2 and says(message, "is a directory"), message
