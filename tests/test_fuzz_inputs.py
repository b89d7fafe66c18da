"""Fuzzing what users hand perfloop: configuration files and results files to import.

Property: whatever the bytes, loading succeeds or raises perfloop's own error (the CLI turns it
into a message and exit 2), never another exception (a traceback). Inputs are mutations of a
valid seed: values swapped for hostile ones (nan, inf, huge integers, control characters, deep
nesting, wrong types), keys dropped, bytes flipped. Examples are derandomized and few, so the
suite stays fast and CI sees the same cases every time.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfloop.config import load_config
from perfloop.errors import PerfloopError
from perfloop.importers import read_results, store_imported
from perfloop.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
ASV_FILE = FIXTURES / "asv" / "results" / "vm" / "dbf9588a-existing-py_work_venv_bin_python3.json"
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FUZZ_IMPORT = settings(FUZZ, max_examples=30)   # each example parses and stores a whole file

# -- hostile values ----------------------------------------------------------------------------

HOSTILE_TOML = st.sampled_from([
    "nan", "inf", "-inf", "-1", "0", "1e400", "99999999999999999999", "9223372036854775807",
    "-9223372036854775808", "true", '""', '"\\u001b[31mred"', '"a\\nb"', '"::error::x"',
    "[]", "[1, 2]", "{}", '{ a = 1 }', '"<b>x</b>"', "1979-05-27T07:32:00Z", "0.0", "1e-300",
    '"m:f"', '["a"]', "[" * 50 + "]" * 50,
])
CONFIG_KEYS = ["processes", "values", "warmup", "min_time", "timeout", "tolerance", "run_noise",
               "name", "callable", "params", "metrics", "pythonpath", "cwd", "env", "command",
               "http", "custom_metrics", "setup"]
SEED_CONFIG = """\
[defaults]
processes = 2
values = 3

[[benchmark]]
name = "quote"
callable = "shop:quote"
params = { items = [10, 100] }

[[benchmark]]
name = "cli"
command = ["python", "-c", "pass"]

[[benchmark]]
name = "web"
http = { url = "http://127.0.0.1:8000/", rate = 10, duration = 1 }
server = { command = ["python", "-m", "http.server"], ready_url = "http://127.0.0.1:8000/" }
"""


def json_values(depth: int = 3) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
        st.sampled_from([10 ** 400, -(10 ** 400), 2 ** 63, 2 ** 64, 0, -1]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12), st.sampled_from(["\x1b[2J", "a\nb", "::error::x", "<script>", "a]b"]))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
        max_leaves=8)


def paths_of(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            found.extend(paths_of(v, prefix + (k,)))
    elif isinstance(node, list):
        for i, v in enumerate(node[:4]):
            found.extend(paths_of(v, prefix + (i,)))
    return found


def mutate(doc: Any, path: tuple, value: Any, drop: bool) -> Any:
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if drop and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def deeply_nested(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


# -- configuration -------------------------------------------------------------------------------

def load_or_refuse(root: Path) -> None:
    try:
        load_config(root)
    except PerfloopError as exc:
        assert exc.exit_code == 2
        assert str(root / "perfloop.toml") in str(exc)


@FUZZ
@given(key=st.sampled_from(CONFIG_KEYS), value=HOSTILE_TOML, where=st.integers(0, 3))
def test_config_with_hostile_values_loads_or_exits_2(tmp_path: Path, key: str, value: str,
                                                     where: int) -> None:
    tables = SEED_CONFIG.split("\n\n")
    table = tables[where].rstrip("\n")
    lines = [line for line in table.splitlines() if not line.startswith(f"{key} =")]
    tables[where] = "\n".join([*lines, f"{key} = {value}"]) + "\n"
    (tmp_path / "perfloop.toml").write_text("\n".join(tables))
    load_or_refuse(tmp_path)


@FUZZ
@given(data=st.data())
def test_config_with_damaged_bytes_loads_or_exits_2(tmp_path: Path, data: st.DataObject) -> None:
    raw = bytearray(SEED_CONFIG.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    (tmp_path / "perfloop.toml").write_bytes(bytes(raw))
    load_or_refuse(tmp_path)


# -- importers ---------------------------------------------------------------------------------

def pyperf_seed() -> dict[str, Any]:
    pyperf = pytest.importorskip("pyperf")
    meta = {"name": "parse", "loops": 8, "unit": "second"}
    runs = [pyperf.Run([1.0e-5, 1.1e-5], warmups=[(8, 1.3e-5)], metadata=meta),
            pyperf.Run([1.2e-5, 1.0e-5], warmups=[(8, 1.4e-5)], metadata=meta)]
    with tempfile.TemporaryDirectory() as tmp:
        pyperf.BenchmarkSuite([pyperf.Benchmark(runs)]).dump(f"{tmp}/seed.json")
        return json.loads(Path(f"{tmp}/seed.json").read_text())


def pytest_benchmark_seed() -> dict[str, Any]:
    # The shape pytest-benchmark 4 writes with --benchmark-json (fields this importer reads).
    return {"machine_info": {"node": "h", "processor": "x86_64", "machine": "x86_64",
                             "python_version": "3.11.7", "system": "Linux", "release": "6.1",
                             "cpu": {"brand_raw": "CPU", "count": 2}},
            "commit_info": {"id": "a" * 40, "branch": "main", "dirty": False},
            "benchmarks": [{"group": None, "name": "test_work[10]", "fullname": "t.py::test_work[10]",
                            "params": {"n": 10}, "options": {"min_rounds": 5},
                            "stats": {"min": 1e-6, "max": 2e-6, "mean": 1.5e-6, "stddev": 1e-7,
                                      "rounds": 3, "median": 1.5e-6, "iterations": 4,
                                      "total": 4.5e-6, "data": [1e-6, 1.5e-6, 2e-6]},
                            "extra_info": {}}],
            "datetime": "2026-01-01T00:00:00", "version": "4.0.0"}


_SEED_MAKERS = {"pyperf": pyperf_seed, "pytest-benchmark": pytest_benchmark_seed,
                "asv": lambda: json.loads(ASV_FILE.read_text())}
_SEED_TEXT: dict[str, str] = {}


def seed(fmt: str) -> Any:
    """A fresh copy of the format's seed, the same document every time (hypothesis replays)."""
    if fmt not in _SEED_TEXT:
        _SEED_TEXT[fmt] = json.dumps(_SEED_MAKERS[fmt]())
    return json.loads(_SEED_TEXT[fmt])


SEEDS = list(_SEED_MAKERS)


@pytest.fixture(scope="module")
def memory_store():
    with Store.open("sqlite://") as store:
        yield store


def import_or_refuse(path: Path, store: Store) -> None:
    try:
        imported = read_results(path)
    except PerfloopError as exc:
        assert exc.exit_code == 2
        assert str(path) in str(exc)
        return
    for result in imported.results:   # names that reach reports are printable
        assert not any(ord(c) < 32 or c == "\x7f" for c in result.name), result.name
    store_imported(store, imported)


@pytest.mark.parametrize("fmt", SEEDS)
def test_importers_accept_their_seed(tmp_path: Path, fmt: str, memory_store: Store) -> None:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed(fmt)))
    assert read_results(path).format == fmt


@pytest.mark.parametrize("fmt", SEEDS)
@FUZZ_IMPORT
@given(data=st.data())
def test_importers_on_mutated_files_import_or_exit_2(tmp_path: Path, fmt: str, data: st.DataObject,
                                                     memory_store: Store) -> None:
    doc = seed(fmt)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths_of(doc)[1:] or [()]))
        doc = mutate(doc, path, data.draw(json_values()), data.draw(st.booleans()))
    file = tmp_path / "results.json"
    # allow_nan: Python's json writes NaN and Infinity, as some tools do
    file.write_text(json.dumps(doc))
    import_or_refuse(file, memory_store)


@pytest.mark.parametrize("text", [deeply_nested(), '{"benchmarks": ' + deeply_nested() + "}",
                                  '{"version": "1.0", "benchmarks": [' + "9" * 5000 + "]}"],
                         ids=["nested", "nested-value", "huge-int"])
def test_pathological_json_exits_2(tmp_path: Path, text: str, memory_store: Store) -> None:
    file = tmp_path / "results.json"
    file.write_text(text)
    with pytest.raises(PerfloopError) as raised:
        read_results(file)
    assert str(file) in str(raised.value)
