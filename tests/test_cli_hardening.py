"""Bad input exits 2 with a message naming the file, key or argument; failures never exit 0.

Through ``perfloop.cli.app.main``, the console-script entry point, so what is checked is what a
user sees: the exit code and the message on stderr, never a traceback.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc

from perfloop.cli.app import main
from perfloop.config import BenchmarkSpec, Settings, load_config
from perfloop.errors import ConfigError
from perfloop.measure.command import measure_command
from perfloop.records import BenchmarkResult, ResultStatus, RunStatus, Sample
from perfloop.store import Store
from perfloop.store.repository import _store_error

FIXTURES = Path(__file__).parent / "fixtures"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, " ".join((captured.err + captured.out).split())   # unwrapped


def stored_run(store: Store, names: list[str]) -> int:
    run_id = store.begin_run(label=None, commit=None, branch=None, dirty=False,
                             environment={"cpu": "x"}, settings={}, project="p")
    for name in names:
        store.add_result(run_id, BenchmarkResult(
            name=name, kind="callable", status=ResultStatus.OK,
            samples=tuple(Sample("wall_time", 1.0 + i / 100, worker=i) for i in range(6))))
    store.finish_run(run_id, RunStatus.COMPLETE)
    return run_id


# -- item: tracebacks instead of errors ----------------------------------------------------------

def test_a_config_that_is_not_utf8_exits_2_and_does_not_stop_reading_commands(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "perfloop.toml").write_bytes('[[benchmark]]\nname = "caf\u00e9"\ncallable = "m:f"\n'
                                             .encode("latin-1"))
    code, out = cli(capsys, "run", "-C", str(tmp_path), "--store", str(tmp_path / "s.db"))
    assert code == 2
    assert "perfloop.toml" in out and "not UTF-8" in out and "line 2" in out
    code, out = cli(capsys, "runs", "-C", str(tmp_path), "--store", str(tmp_path / "s.db"))
    assert code == 0, out


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "99999999999999999999"])
@pytest.mark.parametrize("key", ["timeout", "min_time", "processes"])
def test_non_finite_or_huge_settings_name_the_file_and_key(tmp_path: Path, key: str, value: str) -> None:
    (tmp_path / "perfloop.toml").write_text(f'[[benchmark]]\nname = "a"\ncallable = "m:f"\n{key} = {value}\n')
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path)
    assert f"[benchmark.a.{key}]" in str(raised.value) and "perfloop.toml" in str(raised.value)


def test_http_and_server_numbers_must_be_finite(tmp_path: Path) -> None:
    for table, key in [('http = { url = "http://x/", rate = nan }', "http.rate"),
                       ('http = "http://x/"\nserver = { command = "s", ready_url = "http://x/", '
                        'ready_timeout = inf }', "server.ready_timeout")]:
        (tmp_path / "perfloop.toml").write_text(f'[[benchmark]]\nname = "a"\n{table}\n')
        with pytest.raises(ConfigError, match=f"benchmark.a.{key}"):
            load_config(tmp_path)


def test_a_run_id_too_large_for_any_store_is_not_found(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    Store.open(str(db)).close()
    code, out = cli(capsys, "show", "99999999999999999999999", "--store", str(db), "-C", str(tmp_path))
    assert code == 2 and "no stored run matches '99999999999999999999999'" in out


def test_import_of_a_file_with_huge_counts_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "results.json"
    file.write_text(json.dumps({"machine_info": {}, "commit_info": {}, "benchmarks": [
        {"name": "x", "fullname": "t.py::x", "params": None,
         "stats": {"data": [1e-6, 2e-6], "iterations": 10 ** 30}}]}))
    code, out = cli(capsys, "import", str(file), "--store", str(tmp_path / "s.db"), "-C", str(tmp_path))
    assert code == 2 and str(file) in out and "too large" in out


# -- item: a parameter grid nobody means ------------------------------------------------------

def test_a_huge_parameter_grid_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    axis = ", ".join(str(i) for i in range(400))
    (tmp_path / "perfloop.toml").write_text(
        f'[[benchmark]]\nname = "g"\ncallable = "m:f"\nparams = {{ a = [{axis}], b = [{axis}] }}\n')
    with pytest.raises(ConfigError, match="160,000 benchmarks") as raised:
        load_config(tmp_path)
    assert "benchmark.g.params" in str(raised.value)


def test_a_large_allowed_grid_loads_with_unique_names(tmp_path: Path) -> None:
    axis = ", ".join(str(i) for i in range(100))
    (tmp_path / "perfloop.toml").write_text(
        f'[[benchmark]]\nname = "g"\ncallable = "m:f"\nparams = {{ a = [{axis}], b = [{axis}] }}\n'
        f'[[benchmark]]\nname = "h"\ncallable = "m:f"\n')
    config = load_config(tmp_path)
    assert len(config.benchmarks) == 10_001
    (tmp_path / "perfloop.toml").write_text(
        f'[[benchmark]]\nname = "g"\ncallable = "m:f"\nparams = {{ a = [1, 1] }}\n')
    with pytest.raises(ConfigError, match=r"duplicate benchmark name\(s\): g\[a=1\]"):
        load_config(tmp_path)


# -- item: exit codes that hide failure ----------------------------------------------------------

@pytest.mark.slow
def test_run_exits_1_when_every_benchmark_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "perfloop.toml").write_text(
        '[[benchmark]]\nname = "boom"\ncommand = ["sh", "-c", "exit 3"]\nprocesses = 1\nwarmup = 0\n')
    code, out = cli(capsys, "run", "-C", str(tmp_path), "--store", str(tmp_path / "s.db"))
    assert code == 1 and "every benchmark of run #1 failed" in out


def test_compare_check_fails_when_the_runs_share_no_benchmark(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    with Store.open(str(db)) as store:
        base, head = stored_run(store, ["a"]), stored_run(store, ["b"])
    code, out = cli(capsys, "compare", str(base), str(head), "--check", "--store", str(db), "-C", str(tmp_path))
    assert code == 1 and "share no measured benchmark" in out
    code, _ = cli(capsys, "compare", str(base), str(head), "--store", str(db), "-C", str(tmp_path))
    assert code == 0


# -- item: messages ----------------------------------------------------------------------------

def test_a_silent_failing_command_does_not_point_at_missing_stderr_lines(tmp_path: Path) -> None:
    spec = BenchmarkSpec(name="c", base_name="c", kind="command", metrics=("wall_time",),
                         settings=Settings(processes=1, warmup=0), command=("sh", "-c", "exit 3"),
                         root=str(tmp_path))
    result = measure_command(spec)
    assert result.status == ResultStatus.FAILED
    assert "exited with code 3" in result.error and "it wrote nothing on stderr" in result.error
    assert "lines shown" not in result.error


@pytest.mark.parametrize("command", [["import", "x.json"], ["detect"], ["report"]])
def test_ctrl_c_says_interrupted(command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    from perfloop.store import Store
    monkeypatch.setattr(Store, "open", classmethod(lambda cls, *a, **k: interrupted()))
    monkeypatch.setattr("perfloop.importers.read_all", interrupted)   # imported where used
    (tmp_path / "x.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    code, out = cli(capsys, *command, "--store", str(tmp_path / "s.db"))
    assert code == 130 and "interrupted" in out


def test_a_damaged_store_is_called_damaged_not_foreign() -> None:
    damaged = _store_error(sa_exc.DatabaseError("SELECT", {}, Exception("database disk image is malformed")),
                           "sqlite:///s.db", "reading runs")
    assert "damaged" in str(damaged) and "not a perfloop" not in str(damaged)
    foreign = _store_error(sa_exc.DatabaseError("SELECT", {}, Exception("file is not a database")),
                           "sqlite:///s.db", "reading runs")
    assert "not a SQLite database" in str(foreign)


def test_show_labels_a_run_still_being_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    with Store.open(str(db)) as store:
        run_id = store.begin_run(label="wip", commit=None, branch=None, dirty=False,
                                 environment={"cpu": "x"}, settings={}, project="p")
        store.add_result(run_id, BenchmarkResult(name="a", kind="callable", status=ResultStatus.OK,
                                                 samples=(Sample("wall_time", 1.0),)))
    code, out = cli(capsys, "show", str(run_id), "--store", str(db), "-C", str(tmp_path))
    assert code == 0 and "in flight (still being written)" in out
