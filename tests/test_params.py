"""The parameter registry: values read where they live, drift, unjournaled and undocumented tuning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from memory_util import cli, commit, new_repo

from perfloop.errors import ConfigError
from perfloop.store import Store
from perfloop.workflows import params as registry

CONFIG = '''
[[benchmark]]
name = "fast"
callable = "app:work"

[[parameter]]
name = "pool size"
file = "app/settings.py"
key = "POOL_SIZE"
value = 16
why = "one connection per worker thread"

[[parameter]]
name = "cache size"
file = "config/app.toml"
key = "cache.size"
value = 4096
why = "the working set of product lookups"

[[parameter]]
name = "workers"
file = ".env"
key = "APP_WORKERS"
value = "8"
why = "two per core"
'''

FILES = {
    "perfloop.toml": CONFIG,
    "app/settings.py": '"""Settings."""\nPOOL_SIZE: int = 16\nTIMEOUT = 30\n',
    "config/app.toml": "[cache]\nsize = 4096\n",
    ".env": "export APP_WORKERS=8\nAPP_NAME=shop\n",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path / "proj")
    commit(repo, "initial settings", FILES, days_ago=20)
    return repo


@pytest.fixture
def db(tmp_path: Path) -> Store:
    with Store.open(str(tmp_path / "s.db")) as store:
        yield store


def test_values_are_read_where_they_live(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("server:\n  pool:\n    - size: 12\n")
    (tmp_path / "c.json").write_text('{"limits": {"max": 5}}')
    (tmp_path / "c.ini").write_text("[db]\npool = 9\n")
    (tmp_path / "run.sh").write_text('#!/bin/sh\nexport THREADS="4"  # per core\nexec app\n')
    (tmp_path / "Dockerfile").write_text("FROM python\nENV BATCH 64\n")
    cases = [("c.yaml", "server.pool.0.size", "yaml", 12), ("c.json", "limits.max", "json", 5),
             ("c.ini", "db.pool", "ini", "9"), ("run.sh", "THREADS", "env", "4"),
             ("Dockerfile", "BATCH", "env", "64")]
    for file, key, kind, value in cases:
        p = registry.Parameter(name=key, file=file, key=key, kind=kind, value=value)
        assert registry.read_value(tmp_path, p) == value, file
    with pytest.raises(registry.Unreadable, match="no key 'limits.min'"):
        registry.read_value(tmp_path, registry.Parameter("x", "c.json", "limits.min", "json", 1))


def test_a_clean_registry_passes(project: Path, db: Store) -> None:
    report = registry.check(project, db)
    assert not report.failed and report.problems == ()
    assert report.actual == {"pool size": 16, "cache size": 4096, "workers": "8"}


def test_drift_in_a_toml_key_a_python_constant_and_an_environment_variable(project: Path, db: Store) -> None:
    (project / "app/settings.py").write_text("POOL_SIZE: int = 32\nTIMEOUT = 30\n")
    (project / "config/app.toml").write_text("[cache]\nsize = 1024\n")
    (project / ".env").write_text("export APP_WORKERS=2\n")
    report = registry.check(project, db)
    drift = {p.subject: p.details for p in report.problems if p.kind == "drift"}
    assert drift == {"pool size": {"registered": 16, "actual": 32},
                     "cache size": {"registered": 4096, "actual": 1024},
                     "workers": {"registered": "8", "actual": "2"}}
    assert report.failed


def test_a_registered_value_changed_in_git_without_a_journal_entry(project: Path, db: Store) -> None:
    sha = commit(project, "bigger pool", {"app/settings.py": "POOL_SIZE: int = 32\nTIMEOUT = 30\n",
                                          "perfloop.toml": CONFIG.replace("value = 16", "value = 32")},
                 days_ago=5)
    [problem] = registry.check(project, db).problems
    assert (problem.kind, problem.subject, problem.commit) == ("unjournaled", "pool size", sha)
    # journaled: the entry names the commit
    db.add_change(title="bigger pool", workflow="manual", hypothesis="waits", commits=[sha])
    assert registry.check(project, db).problems == ()


def test_a_perf_change_trailer_journals_the_commit(project: Path, db: Store) -> None:
    commit(project, "bigger pool\n\nPerf-Change: 4",
           {"app/settings.py": "POOL_SIZE: int = 32\nTIMEOUT = 30\n",
            "perfloop.toml": CONFIG.replace("value = 16", "value = 32")}, days_ago=5)
    assert registry.check(project, db).problems == ()


def test_an_undocumented_tunable_that_changed_recently(project: Path, db: Store) -> None:
    sha = commit(project, "longer timeout", {"app/settings.py": "POOL_SIZE: int = 16\nTIMEOUT = 90\n"},
                 days_ago=3)
    commit(project, "a test's own limit", {"tests/test_x.py": "MAX_ITEMS = 3\n"}, days_ago=2)
    commit(project, "a test's own limit", {"tests/test_x.py": "MAX_ITEMS = 5\n"}, days_ago=1)
    [problem] = registry.check(project, db).problems
    assert (problem.kind, problem.subject, problem.commit) == ("undocumented", "app/settings.py:TIMEOUT", sha)
    assert problem.details == {"name": "TIMEOUT", "old": "30", "new": "90"}
    # outside the period it is not reported
    from datetime import datetime, timedelta, timezone
    assert registry.check(project, db, since=datetime.now(timezone.utc) - timedelta(hours=12)).problems == ()


def test_the_registry_is_checked(tmp_path: Path) -> None:
    (tmp_path / "perfloop.toml").write_text('[[parameter]]\nname = "x"\nfile = "a.py"\nvalue = 1\n')
    with pytest.raises(ConfigError, match="missing 'key'"):
        registry.load_parameters(tmp_path)
    (tmp_path / "perfloop.toml").write_text('[[parameter]]\nname = "x"\nfile = "a.py"\nkey = "A"\nvalue = 1\nwhy = "w"\ncolour = 1\n')
    with pytest.raises(ConfigError, match="unknown key"):
        registry.load_parameters(tmp_path)


def test_params_commands_exit_codes(project: Path, tmp_path: Path, capsys) -> None:
    store = str(tmp_path / "cli.db")
    code, out = cli(capsys, "params", "-C", str(project), "--json")
    assert code == 0 and [p["name"] for p in json.loads(out)["parameters"]] == ["pool size", "cache size", "workers"]
    code, out = cli(capsys, "params", "check", "-C", str(project), "--store", store)
    assert code == 0 and "clean" in out
    (project / ".env").write_text("export APP_WORKERS=2\n")
    code, out = cli(capsys, "params", "check", "-C", str(project), "--store", store, "--json")
    assert code == 1 and json.loads(out)["problems"][0]["kind"] == "drift"
    code, _ = cli(capsys, "params", "check", "-C", str(project), "--store", store, "--since", "soon")
    assert code == 2
    # undocumented tuning alone (no drift) also fails the check, so CI can run it
    (project / ".env").write_text("export APP_WORKERS=8\nAPP_NAME=shop\n")
    commit(project, "longer timeout", {"app/settings.py": "POOL_SIZE: int = 16\nTIMEOUT = 90\n"},
           days_ago=1)
    code, out = cli(capsys, "params", "check", "-C", str(project), "--store", store, "--json")
    assert code == 1 and [p["kind"] for p in json.loads(out)["problems"]] == ["undocumented"]


def test_the_example_shop_registers_its_cache_and_pool_sizes() -> None:
    shop = Path(__file__).resolve().parents[1] / "examples" / "shop"
    found = {p.key: p for p in registry.load_parameters(shop)}
    assert {"DEFAULT_CACHE_SIZE", "DEFAULT_POOL_SIZE"} <= set(found)
    report = registry.check(shop, None, parameters=list(found.values()))
    assert [p for p in report.problems if p.kind in ("drift", "unreadable")] == []
