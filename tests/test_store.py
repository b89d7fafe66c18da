"""Tests of the results store: round trips, resolution, run lifecycle, crashes, concurrency,
migrations and errors. Backend-neutral tests run on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import perfloop.store as store_pkg
from perfloop.errors import RefNotFound, StoreError
from perfloop.records import BenchmarkResult, ResultStatus, RunStatus, Sample
from perfloop.store import Store, resolve_store_url
from perfloop.store.db import HEAD_REVISION, VERSION_TABLE, alembic_config

ENV = {"cpu_model": "Test CPU", "cpu_count": 2, "memory_total": 8 << 30, "os": "Linux",
       "kernel": "6.1", "python": "3.11.7", "packages": {"numpy": "1.26.4"},
       "governor": "performance", "load_avg_1m": 0.25, "ci_runner": None}
SHA_A = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
SHA_B = "a1b2ffff00000000000000000000000000000000"
SHA_C = "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c"


def make_result(name: str = "quote[items=10]", *, n: int = 12, status: str = "ok",
                kind: str = "callable") -> BenchmarkResult:
    """A result with samples of two metrics from three workers, one warmup value each."""
    samples = []
    for i in range(n):
        worker, index = divmod(i, 4)
        samples.append(Sample("wall_time", 0.001 * (i + 1), worker=worker, index=index,
                              warmup=index == 0, loops=1000))
        samples.append(Sample("peak_rss", 1e6 + i, worker=worker, index=index, warmup=index == 0))
    return BenchmarkResult(
        name=name, kind=kind, status=ResultStatus(status), samples=tuple(samples),
        params={"items": 10, "mode": "fast"}, units={"custom": "ms"},
        directions={"custom": "higher"}, warnings=("too fast: looped 1000x",),
        error=None if status == "ok" else f"{name} {status}",
        stderr_tail=None if status == "ok" else "Traceback ...", duration=1.5,
        extra={"histogram": [1, 2, 3], "nested": {"a": 1}})


def begin(store: Store, *, label: str | None = "base", commit: str | None = SHA_A,
          environment: dict | None = None) -> int:
    return store.begin_run(label=label, commit=commit, branch="main", dirty=False,
                           environment=environment or ENV,
                           settings={"processes": 3, "values": 4}, project="/work/shop")


# -- round trip ------------------------------------------------------------------------------


def test_round_trip(any_store: Store) -> None:
    run_id = begin(any_store, label="baseline")
    ok = make_result()
    failed = make_result("crash", n=0, status="failed", kind="command")
    any_store.add_result(run_id, ok)
    any_store.add_result(run_id, failed)
    any_store.finish_run(run_id, RunStatus.COMPLETE)

    stored = any_store.get_run(run_id)
    assert stored.id == run_id and stored.label == "baseline"
    assert (stored.commit, stored.branch, stored.dirty) == (SHA_A, "main", False)
    assert stored.status is RunStatus.COMPLETE
    assert stored.finished_at is not None and stored.finished_at >= stored.started_at
    assert stored.started_at.tzinfo is not None
    assert stored.environment == ENV
    assert stored.settings == {"processes": 3, "values": 4}
    assert stored.project == "/work/shop" and stored.pid == os.getpid()
    assert (stored.n_results, stored.n_failed) == (2, 1)
    assert stored.results == [ok, failed]     # every field, every sample, in order
    got = stored.result("quote[items=10]")
    assert got.by_worker("wall_time") == ok.by_worker("wall_time")
    assert [s.warmup for s in got.samples] == [s.warmup for s in ok.samples]
    assert dict(got.params) == {"items": 10, "mode": "fast"}
    assert dict(got.extra) == {"histogram": [1, 2, 3], "nested": {"a": 1}}
    assert stored.result("crash").error == "crash failed"


def test_large_result_round_trips(any_store: Store) -> None:
    run_id = begin(any_store)
    samples = tuple(Sample("wall_time", 1.0 + i / 10_000, worker=i % 20, index=i // 20)
                    for i in range(10_000))
    any_store.add_result(run_id, BenchmarkResult("big", "callable", ResultStatus.OK, samples))
    assert any_store.get_run(run_id).result("big").samples == samples


def test_environments_are_shared_by_fingerprint(any_store: Store) -> None:
    first, second = begin(any_store), begin(any_store)
    other = begin(any_store, environment={**ENV, "cpu_count": 16})
    pinned = begin(any_store, environment={**ENV, "fingerprint": "class-1"})
    runs = {r.id: r for r in any_store.list_runs()}
    assert runs[first].environment_id == runs[second].environment_id
    assert runs[first].environment_hash == runs[second].environment_hash
    assert runs[other].environment_id != runs[first].environment_id
    assert runs[pinned].environment_hash == "class-1"


def test_values_that_are_not_json_are_refused_by_name(store: Store) -> None:
    run_id = store.begin_run(label=None, commit=None, branch=None, dirty=True, environment=ENV,
                             settings={"root": Path("/x"), "axes": ("a", "b")}, project=".")
    assert store.get_run(run_id).settings == {"root": "/x", "axes": ["a", "b"]}
    bad = BenchmarkResult("b", "callable", ResultStatus.OK, extra={"when": object()})
    with pytest.raises(StoreError, match="extra data of 'b'"):
        store.add_result(run_id, bad)
    with pytest.raises(StoreError, match="NaN|JSON"):
        store.add_result(run_id, BenchmarkResult("n", "callable", ResultStatus.OK,
                                                 extra={"x": float("nan")}))
    assert store.get_run(run_id).results == []


# -- run lifecycle ---------------------------------------------------------------------------


def test_status_transitions(any_store: Store) -> None:
    run_id = begin(any_store)
    assert any_store.get_run(run_id).status is RunStatus.RUNNING
    assert any_store.get_run(run_id).finished_at is None
    with pytest.raises(ValueError):
        any_store.finish_run(run_id, RunStatus.RUNNING)
    any_store.finish_run(run_id, RunStatus.COMPLETE)
    any_store.finish_run(run_id, RunStatus.COMPLETE)        # again: no-op
    with pytest.raises(StoreError, match="already complete"):
        any_store.finish_run(run_id, RunStatus.INTERRUPTED)
    with pytest.raises(StoreError, match="running run"):
        any_store.add_result(run_id, make_result())

    interrupted = begin(any_store)
    any_store.finish_run(interrupted, RunStatus.INTERRUPTED)
    assert any_store.get_run(interrupted).status is RunStatus.INTERRUPTED


def test_delete_run_removes_its_results_and_samples(any_store: Store) -> None:
    keep, gone = begin(any_store, label="keep"), begin(any_store, label="gone")
    for run_id in (keep, gone):
        any_store.add_result(run_id, make_result())
    any_store.delete_run(gone)
    with pytest.raises(RefNotFound):
        any_store.get_run(gone)
    with pytest.raises(RefNotFound):
        any_store.delete_run(gone)
    assert [r.id for r in any_store.list_runs()] == [keep]
    assert len(any_store.get_run(keep).results[0].samples) == len(make_result().samples)
    with any_store._read("counting samples") as session:   # the cascade left no orphans
        from sqlalchemy import func, select

        from perfloop.store.models import ResultRow, SampleRow
        assert session.scalar(select(func.count()).select_from(ResultRow)) == 1
        assert session.scalar(select(func.count()).select_from(SampleRow)) == len(make_result().samples)


def test_unknown_run_ids(any_store: Store) -> None:
    with pytest.raises(RefNotFound):
        any_store.get_run(999)
    with pytest.raises(RefNotFound):
        any_store.finish_run(999, RunStatus.COMPLETE)
    with pytest.raises(RefNotFound):
        any_store.add_result(999, make_result())


def test_list_runs_newest_first_with_counts_and_filters(any_store: Store) -> None:
    ids = []
    for label, names in (("one", ["quote[items=10]"]), ("two", ["parse"]),
                         ("three", ["quote[items=100]", "parse"])):
        run_id = begin(any_store, label=label)
        for name in names:
            any_store.add_result(run_id, make_result(name, n=4))
        ids.append(run_id)
    any_store.add_result(ids[1], make_result("slow", n=0, status="timeout"))

    runs = any_store.list_runs()
    assert [r.id for r in runs] == ids[::-1]
    assert [(r.n_results, r.n_failed) for r in runs] == [(2, 0), (2, 1), (1, 0)]
    assert [r.id for r in any_store.list_runs(limit=2)] == ids[:0:-1]
    assert [r.id for r in any_store.list_runs(benchmark="quote")] == [ids[2], ids[0]]
    assert [r.id for r in any_store.list_runs(benchmark="quote[items=10]")] == [ids[0]]
    assert any_store.list_runs(benchmark="nothing") == []


# -- resolving references --------------------------------------------------------------------


def test_resolve_by_id_label_and_commit(any_store: Store) -> None:
    first = begin(any_store, label="baseline", commit=SHA_A)
    any_store.finish_run(first, RunStatus.COMPLETE)
    second = begin(any_store, label="baseline", commit=SHA_B)   # newer, but only interrupted
    any_store.finish_run(second, RunStatus.INTERRUPTED)
    third = begin(any_store, label="head", commit=SHA_C.upper())

    assert any_store.resolve(str(third)) == third
    assert any_store.resolve(f"#{first}") == first
    assert any_store.resolve("baseline") == first               # complete beats interrupted
    assert any_store.resolve("head") == third
    assert any_store.resolve(SHA_B) == second
    assert any_store.resolve("a1b2c3") == first                 # unique prefix
    assert any_store.resolve("0C0C") == third                   # case does not matter
    with pytest.raises(RefNotFound, match="several stored commits"):
        any_store.resolve("a1b2")
    with pytest.raises(RefNotFound):
        any_store.resolve("0c0")                                 # too short to be a sha prefix
    with pytest.raises(RefNotFound, match="no stored run with id 999"):
        any_store.resolve("#999")


def test_resolve_prefers_the_latest_complete_run(any_store: Store) -> None:
    older = begin(any_store, label="nightly")
    any_store.finish_run(older, RunStatus.COMPLETE)
    newer = begin(any_store, label="nightly")
    any_store.finish_run(newer, RunStatus.COMPLETE)
    begin(any_store, label="nightly")                            # still running
    assert any_store.resolve("nightly") == newer


def test_resolve_with_a_git_resolver(any_store: Store) -> None:
    run_id = begin(any_store, label=None, commit=SHA_C)
    git = {"main": SHA_C, "HEAD~1": SHA_A}
    asked: list[str] = []

    def commit_of(ref: str) -> str | None:
        asked.append(ref)
        return git.get(ref)

    assert any_store.resolve("main", commit_of=commit_of) == run_id
    assert asked == ["main"]
    with pytest.raises(RefNotFound, match="no stored run was made at that commit"):
        any_store.resolve("HEAD~1", commit_of=commit_of)


def test_resolve_not_found_says_what_was_tried(any_store: Store) -> None:
    begin(any_store)
    with pytest.raises(RefNotFound) as caught:
        any_store.resolve("feature-x", commit_of=lambda ref: None)
    message = str(caught.value)
    assert "feature-x" in message and "label" in message and "git ref" in message
    assert "perfloop run --label NAME" in message


# -- crashes, stale runs and concurrent writers ----------------------------------------------

_CHILD_PRELUDE = """
import os, sys
from perfloop.records import BenchmarkResult, ResultStatus, RunStatus, Sample
from perfloop.store import Store

def result(name, n):
    return BenchmarkResult(name, "callable", ResultStatus.OK,
                           tuple(Sample("wall_time", 1.0 + i, worker=i % 5, index=i // 5)
                                 for i in range(n)))

store = Store.open(sys.argv[1])
run_id = store.begin_run(label=sys.argv[2], commit=None, branch=None, dirty=False,
                         environment={"host": "child"}, settings={}, project=".")
"""

_CRASHING_CHILD = _CHILD_PRELUDE + """
store.add_result(run_id, result("kept", 100))
original = Store._insert_samples

def insert_then_die(self, session, result_id, samples):
    original(self, session, result_id, samples)
    os._exit(1)       # the process dies with the result and its samples written, not committed

Store._insert_samples = insert_then_die
store.add_result(run_id, result("lost", 100))
"""

_WRITER_CHILD = _CHILD_PRELUDE + """
print("ready", flush=True)
sys.stdin.readline()          # both writers start together
for i in range(20):
    store.add_result(run_id, result(f"bench{i}", 50))
store.finish_run(run_id, RunStatus.COMPLETE)
store.close()
"""


def _python(script: str, *args: str, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], text=True,
                            **popen)  # type: ignore[call-overload]


@pytest.mark.slow
def test_a_crash_keeps_stored_results_and_never_half_a_result(any_store_url: str) -> None:
    store_url = any_store_url
    child = _python(_CRASHING_CHILD, store_url, "crashed", stderr=subprocess.PIPE)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 1, stderr

    with Store.open(store_url, reap=False) as store:
        (run,) = store.list_runs()
        assert run.status is RunStatus.RUNNING and run.n_results == 1
        assert store.reap_stale_runs() == 1
        assert store.reap_stale_runs() == 0
        stored = store.get_run(run.id)
        assert stored.status is RunStatus.INTERRUPTED
        assert stored.finished_at is not None
        assert [r.name for r in stored.results] == ["kept"]
        assert len(stored.results[0].samples) == 100
    engine = create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM samples")).scalar() == 100
        assert conn.execute(text("SELECT count(*) FROM results")).scalar() == 1
    engine.dispose()


@pytest.mark.slow
def test_two_processes_write_to_one_store_at_once(any_store_url: str) -> None:
    # Neither process finds the schema created: their first opens race, too.
    store_url = any_store_url
    children = [_python(_WRITER_CHILD, store_url, label, stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for label in ("left", "right")]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    outputs = [child.communicate("go\n", timeout=120) for child in children]
    assert [c.returncode for c in children] == [0, 0], [err for _, err in outputs]

    with Store.open(store_url) as store:
        runs = store.list_runs()
        assert sorted(r.label for r in runs) == ["left", "right"]
        for run in runs:
            assert run.status is RunStatus.COMPLETE and run.n_results == 20
            assert all(len(r.samples) == 50 for r in store.get_run(run.id).results)


def test_reaping_leaves_live_and_foreign_runs_alone(store: Store) -> None:
    mine = begin(store)
    foreign = begin(store)
    reused = begin(store)
    with store._engine.begin() as conn:
        conn.execute(text("UPDATE runs SET hostname = 'elsewhere', pid = 1 WHERE id = :id"),
                     {"id": foreign})
        # pid 1 is alive but was born long after this run "started": the pid was reused.
        conn.execute(text("UPDATE runs SET pid = 1, started_at = :t WHERE id = :id"),
                     {"id": reused, "t": datetime(2000, 1, 1)})
    assert store.reap_stale_runs() == 1
    statuses = {r.id: r.status for r in store.list_runs()}
    assert statuses == {mine: RunStatus.RUNNING, foreign: RunStatus.RUNNING,
                        reused: RunStatus.INTERRUPTED}


# -- opening, migrations, URLs and errors ----------------------------------------------------


def test_migrations_create_the_schema_and_a_second_open_is_a_no_op(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    Store.open(store_url).close()
    engine = create_engine(store_url)
    with engine.connect() as conn:
        tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
        version = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    assert {"environments", "runs", "results", "samples", VERSION_TABLE} <= tables
    assert version == HEAD_REVISION

    def no_upgrade(*args: object, **kwargs: object) -> None:
        raise AssertionError("an up-to-date store must not be migrated again")

    monkeypatch.setattr("alembic.command.upgrade", no_upgrade)
    with Store.open(store_url) as store:
        assert store.list_runs() == []
    engine.dispose()


def test_head_revision_constant_matches_the_migrations() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD_REVISION]


def test_a_newer_schema_is_refused(store_url: str) -> None:
    Store.open(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999_from_the_future'"))
    engine.dispose()
    with pytest.raises(StoreError, match="newer perfloop") as caught:
        Store.open(store_url)
    assert "upgrade perfloop" in str(caught.value)


def test_sqlite_is_set_up_for_several_processes(store: Store) -> None:
    with store._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


def test_a_bare_path_opens_a_sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Store.open("results.db") as store:
        begin(store)
        assert store.url == f"sqlite:///{tmp_path / 'results.db'}"
    assert (tmp_path / "results.db").exists()


@pytest.mark.parametrize("url, match", [
    ("nosuchdialect://host/db", "unsupported store URL"),
    ("://nowhere", "not a valid store URL"),
    ("postgresql+psycopg://u@127.0.0.1:notaport/db", "not a valid store URL"),
    ("sqlite:////nonexistent/dir/perfloop.db", "does not exist"),
])
def test_bad_urls_raise_store_errors(url: str, match: str) -> None:
    with pytest.raises(StoreError, match=match):
        Store.open(url)


def test_an_unreachable_postgres_names_the_url_without_its_password() -> None:
    # Port 1 on the loopback refuses at once: no server, no waiting.
    with pytest.raises(StoreError) as caught:
        Store.open("postgresql://perf:s3cret@127.0.0.1:1/perf")
    message = str(caught.value)
    assert "cannot reach the store at postgresql+psycopg://perf:***@127.0.0.1:1/perf" in message
    assert "s3cret" not in message and "PERFLOOP_STORE" in message


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are not the tables you are looking for\n" * 100)
    with pytest.raises(StoreError, match="not a SQLite database"):
        Store.open(str(path))


def test_store_url_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERFLOOP_STORE", raising=False)

    default = resolve_store_url(None, root=root)
    assert default == f"sqlite:///{root / '.perfloop' / 'perfloop.db'}"
    assert (root / ".perfloop").is_dir()
    # a relative path in the configuration file is relative to the project
    assert resolve_store_url(None, root=root, config_store="data/p.db") == \
        f"sqlite:///{root / 'data' / 'p.db'}"
    assert resolve_store_url(None, root=root, config_store="sqlite:///rel.db") == \
        f"sqlite:///{root / 'rel.db'}"
    monkeypatch.setenv("PERFLOOP_STORE", "postgresql+psycopg://u@db/perf")
    assert resolve_store_url(None, root=root, config_store="data/p.db") == \
        "postgresql+psycopg://u@db/perf"
    # typed paths are relative to where they were typed
    assert resolve_store_url("mine.db", root=root) == f"sqlite:///{tmp_path / 'mine.db'}"
    assert resolve_store_url("sqlite://", root=root) == "sqlite://"


def test_in_memory_store(monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open("sqlite://") as store:
        run_id = begin(store)
        store.add_result(run_id, make_result())
        assert store.get_run(run_id).n_results == 1


def test_public_api() -> None:
    assert store_pkg.__all__ == ["ENV_VAR", "ApprovalRecord", "ChangeRecord", "CycleRecord",
                                 "HypothesisRecord", "IncidentRecord", "ProfileRecord", "ResultSummary", "RunInfo",
                                 "Store", "StoredRun", "json_ready", "resolve_store_url"]
