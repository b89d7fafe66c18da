"""pytest-benchmark and asv suites measured by perfloop's own workers.

Each test writes a small suite into a temporary project, collects it with the suite's own tool
and measures every benchmark in real worker processes (2 workers x 2 values, min_time 1 ms).
Nothing here asserts on how long anything took: the checks are on names, statuses, errors,
which metrics were measured and how often fixtures and setups ran.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from perfloop.config import load_config
from perfloop.errors import ConfigError
from perfloop.measure.callable import measure_callable
from perfloop.measure.suites import with_suites
from perfloop.records import ResultStatus

SETTINGS = "[defaults]\nprocesses = 2\nvalues = 2\nwarmup = 1\nmin_time = 0.001\n"

CONFTEST = '''
import os
import pytest

@pytest.fixture
def data():
    # one line per set-up: perfloop must set fixtures up once per worker, not once per value
    with open(os.environ["FIXTURE_LOG"], "a") as f:
        f.write("setup\\n")
    return list(range(2000))
'''

TESTS = '''
import os
import pytest

def test_sum(benchmark, data):
    assert benchmark(sum, data) == sum(data)

@pytest.mark.parametrize("n", [10, 1000])
def test_sorted(benchmark, n):
    result = benchmark(sorted, list(range(n, 0, -1)))
    assert result[0] == 1

def _fresh():
    with open(os.environ["FIXTURE_LOG"], "a") as f:
        f.write("pedantic\\n")
    return (list(range(300, 0, -1)),), {}

def test_pedantic(benchmark):
    benchmark.pedantic(lambda xs: xs.sort(), setup=_fresh, rounds=5, iterations=1)

@pytest.mark.benchmark(group="broken")
def test_raises(benchmark):
    benchmark(lambda: {}["missing"])

def test_never_calls(benchmark, data):
    assert data

def test_not_a_benchmark():
    assert True
'''


def write_pytest_suite(root: Path) -> Path:
    suite = root / "tests" / "benchmarks"
    suite.mkdir(parents=True)
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "test_bench.py").write_text(TESTS)
    (root / "perfloop.toml").write_text(SETTINGS + '\n[[suite]]\npytest = "tests/benchmarks"\n')
    return root


ASV = '''
import os

DATA = None

def setup():
    global DATA
    DATA = list(range(1000))

def time_module_sum():
    sum(DATA)

class Sorting:
    params = ([10, 1000], ["asc", "desc"])
    param_names = ["n", "order"]

    def setup_cache(self):
        with open(os.environ["CACHE_LOG"], "a") as f:
            f.write("cache\\n")
        return {"base": list(range(1000))}

    def setup(self, cache, n, order):
        xs = cache["base"][:n]
        self.xs = xs if order == "asc" else xs[::-1]

    def teardown(self, cache, n, order):
        with open(os.environ["CACHE_LOG"], "a") as f:
            f.write(f"teardown-{n}-{order}-{len(cache['base'])}\\n")

    def time_sorted(self, cache, n, order):
        sorted(self.xs)

    def peakmem_copy(self, cache, n, order):
        self.big = bytearray(n * 20_000)

    def track_length(self, cache, n, order):
        return len(self.xs)
    track_length.unit = "items"

class Fixed:
    number = 3
    repeat = 4
    timeout = 50

    def time_fixed(self):
        sum(range(50))

    def time_fails(self):
        raise ValueError("asv benchmark broke")

def mem_unsupported():
    return [0] * 10
'''


def write_asv_suite(root: Path) -> Path:
    suite = root / "benchmarks"
    suite.mkdir(parents=True)
    (suite / "__init__.py").write_text("")
    (suite / "bench_core.py").write_text(ASV)
    (root / "perfloop.toml").write_text(SETTINGS + '\n[[suite]]\nasv = "benchmarks"\n')
    return root


def measure_all(root: Path) -> dict:
    config = with_suites(load_config(root))
    return {spec.name: (spec, measure_callable(spec)) for spec in config.benchmarks}


@pytest.fixture(scope="module")
def pytest_suite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = write_pytest_suite(tmp_path_factory.mktemp("pytest-suite"))
    log = root / "fixture.log"
    mp = pytest.MonkeyPatch()
    mp.setenv("FIXTURE_LOG", str(log))
    try:
        measured = measure_all(root)
    finally:
        mp.undo()
    return log, measured


@pytest.fixture(scope="module")
def asv_suite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = write_asv_suite(tmp_path_factory.mktemp("asv-suite"))
    log = root / "cache.log"
    mp = pytest.MonkeyPatch()
    mp.setenv("CACHE_LOG", str(log))
    try:
        measured = measure_all(root)
    finally:
        mp.undo()
    return log, measured


# --------------------------------------------------------------------------------------------
# pytest-benchmark suites


PYTEST_NAMES = {f"tests/benchmarks/test_bench.py::{n}" for n in (
    "test_sum", "test_sorted[10]", "test_sorted[1000]", "test_pedantic", "test_raises",
    "test_never_calls")}


@pytest.mark.slow
def test_every_pytest_benchmark_is_found_and_named_by_its_node_id(pytest_suite):
    _, measured = pytest_suite
    assert set(measured) == PYTEST_NAMES          # the test without the fixture is no benchmark
    spec, _ = measured["tests/benchmarks/test_bench.py::test_sorted[1000]"]
    assert spec.base_name == "tests/benchmarks/test_bench.py::test_sorted"
    assert dict(spec.params) == {"n": 1000}


@pytest.mark.slow
def test_pytest_benchmarks_are_measured_in_fresh_workers_with_fixtures_set_up_once_each(pytest_suite):
    log, measured = pytest_suite
    for name in ("test_sum", "test_sorted[10]", "test_sorted[1000]", "test_pedantic"):
        spec, result = measured[f"tests/benchmarks/test_bench.py::{name}"]
        assert result.status is ResultStatus.OK, (name, result.error, result.stderr_tail)
        assert set(result.by_worker("wall_time")) == {0, 1}
        assert len(result.values("wall_time")) == 4 and len(result.values("peak_rss")) == 2
        assert all(v > 0 for v in result.values("cpu_time"))
    lines = log.read_text().split()
    # `data`, requested by test_sum (2 workers) and test_never_calls (whose first worker fails,
    # which ends that benchmark): once per worker, whatever the loop count
    assert lines.count("setup") == 3
    # pedantic's setup runs before every call (each value is `loops` calls, each with its setup)
    _, pedantic = measured["tests/benchmarks/test_bench.py::test_pedantic"]
    loops = pedantic.extra["loops"]
    assert lines.count("pedantic") >= 2 * 3 * loops


@pytest.mark.slow
def test_a_raising_test_and_one_that_never_calls_benchmark_are_failed_with_their_errors(pytest_suite):
    _, measured = pytest_suite
    _, raised = measured["tests/benchmarks/test_bench.py::test_raises"]
    assert raised.status is ResultStatus.FAILED
    assert "KeyError" in raised.error and "missing" in raised.error
    assert "test_bench.py" in (raised.stderr_tail or "")     # pytest's own report of the failure
    _, never = measured["tests/benchmarks/test_bench.py::test_never_calls"]
    assert never.status is ResultStatus.FAILED
    assert "never called benchmark" in never.error


def test_a_module_that_does_not_import_is_a_failed_benchmark(tmp_path):
    root = write_pytest_suite(tmp_path)
    (root / "tests" / "benchmarks" / "test_broken.py").write_text("import no_such_module_here\n")
    config = with_suites(load_config(root))
    broken = [s for s in config.benchmarks if s.suite.error]
    assert [s.name for s in broken] == ["tests/benchmarks/test_broken.py"]
    result = measure_callable(broken[0])
    assert result.status is ResultStatus.FAILED and "no_such_module_here" in result.error


# --------------------------------------------------------------------------------------------
# asv suites


def _asv(measured: dict, name: str):
    return measured[f"bench_core.{name}"]


@pytest.mark.slow
def test_every_asv_benchmark_is_found_with_its_parameters_and_named_as_asv_does(asv_suite):
    _, measured = asv_suite
    grid = [f"[n={n},order={o}]" for n in (10, 1000) for o in ("asc", "desc")]
    expected = ({"bench_core.time_module_sum", "bench_core.Fixed.time_fixed",
                 "bench_core.Fixed.time_fails", "bench_core.mem_unsupported"}
                | {f"bench_core.Sorting.{b}{g}" for b in ("time_sorted", "peakmem_copy", "track_length")
                   for g in grid})
    assert set(measured) == expected
    spec, _ = _asv(measured, "Sorting.time_sorted[n=1000,order=desc]")
    assert spec.base_name == "bench_core.Sorting.time_sorted"
    assert dict(spec.params) == {"n": 1000, "order": "desc"}


@pytest.mark.slow
def test_asv_time_peakmem_and_track_map_to_perfloop_metrics(asv_suite):
    log, measured = asv_suite
    for name, (spec, result) in measured.items():
        if "fails" in name or "mem_unsupported" in name:
            continue
        assert result.status is ResultStatus.OK, (name, result.error, result.stderr_tail)
    spec, timed = _asv(measured, "Sorting.time_sorted[n=10,order=asc]")
    assert len(timed.values("wall_time")) == 4 and timed.extra["loops"] >= 1
    small = _asv(measured, "Sorting.peakmem_copy[n=10,order=asc]")[1].values("peak_rss")
    large = _asv(measured, "Sorting.peakmem_copy[n=1000,order=asc]")[1].values("peak_rss")
    assert len(small) == len(large) == 2
    assert min(large) > max(small) + 10_000_000      # 20 MB allocated vs 0.2 MB
    spec, tracked = _asv(measured, "Sorting.track_length[n=1000,order=desc]")
    assert spec.metrics == ("track",) and tracked.values("track") == [1000.0, 1000.0]
    assert tracked.units == {"track": "items"}
    lines = log.read_text().split()
    # setup_cache ran once for the whole suite run, not per worker or per parameter
    assert lines.count("cache") == 1
    # teardown ran once per worker (3 benchmarks x 2 workers per combination), with the cache
    # and the combination's parameters, as setup got them
    assert sorted(set(lines) - {"cache"}) == [f"teardown-{n}-{o}-1000" for n in (10, 1000)
                                              for o in ("asc", "desc")]
    assert all(lines.count(f"teardown-{n}-{o}-1000") == 6 for n in (10, 1000) for o in ("asc", "desc"))


@pytest.mark.slow
def test_asv_number_repeat_and_timeout_are_respected_and_failures_reported(asv_suite):
    _, measured = asv_suite
    spec, fixed = _asv(measured, "Fixed.time_fixed")
    assert {s.loops for s in fixed.samples if s.metric == "wall_time"} == {3}     # number
    assert spec.settings.values == 4 and len(fixed.values("wall_time")) == 2 * 4  # repeat
    assert spec.settings.timeout == 50 * spec.settings.processes                  # timeout
    _, failed = _asv(measured, "Fixed.time_fails")
    assert failed.status is ResultStatus.FAILED and "asv benchmark broke" in failed.error
    _, mem = _asv(measured, "mem_unsupported")
    assert mem.status is ResultStatus.FAILED and "not measured by perfloop" in mem.error


# --------------------------------------------------------------------------------------------
# configuration


def test_suite_tables_are_validated_with_the_key_and_the_fix(tmp_path):
    (tmp_path / "benchmarks").mkdir()

    def load(text: str):
        (tmp_path / "perfloop.toml").write_text(text)
        return load_config(tmp_path)

    config = load('[[suite]]\nasv = "benchmarks"\nprocesses = 3\n')
    assert config.benchmarks == () and config.suites[0].settings.processes == 3
    for text, words in [
        ('[[suite]]\npytest = "nowhere"\n', "does not exist"),
        ('[[suite]]\nasv = "benchmarks"\npytest = "benchmarks"\n', "exactly one of pytest or asv"),
        ('[[suite]]\nasv = "benchmarks"\nargs = ["-x"]\n', "args only apply to pytest"),
        ('[[suite]]\npytest = "benchmarks"\nmetrics = ["latency_p99"]\n', "not available for a suite"),
        ('[[suite]]\npytest = "benchmarks"\nfoo = 1\n', "unknown key"),
    ]:
        with pytest.raises(ConfigError, match=words) as info:
            load(text)
        assert "suite.0" in str(info.value)


def test_hand_written_benchmarks_and_suites_live_side_by_side(tmp_path):
    root = write_pytest_suite(tmp_path)
    (root / "mod.py").write_text("def f():\n    return sum(range(100))\n")
    (root / "perfloop.toml").write_text(
        SETTINGS + '\n[[benchmark]]\nname = "handmade"\ncallable = "mod:f"\n'
                   '\n[[suite]]\npytest = "tests/benchmarks"\n')
    config = load_config(root)
    assert [b.name for b in config.benchmarks] == ["handmade"]
    # naming only hand-written benchmarks does not collect the suite
    assert with_suites(config, ["handmade"]) is config
    full = with_suites(config)
    assert full.benchmarks[0].name == "handmade" and set(b.name for b in full.benchmarks[1:]) == PYTEST_NAMES
    assert full.select(["tests/benchmarks/test_bench.py::test_sorted"])[0].name.endswith("[10]")


def test_collection_that_cannot_run_is_a_config_error_naming_the_suite(tmp_path):
    root = write_pytest_suite(tmp_path)
    (root / "tests" / "benchmarks" / "conftest.py").write_text("raise SystemExit(7)\n")
    with pytest.raises(ConfigError, match="collecting the pytest suite") as info:
        with_suites(load_config(root))
    assert "suite.0" in str(info.value)


@pytest.mark.slow
def test_perfloop_run_measures_a_suite_from_the_command_line(tmp_path):
    root = write_pytest_suite(tmp_path)
    (root / "tests" / "benchmarks" / "test_bench.py").write_text(
        "def test_sum(benchmark):\n    benchmark(sum, range(100))\n")
    out = subprocess.run([sys.executable, "-m", "perfloop", "run", "--json", "-C", str(root),
                          "--store", f"sqlite:///{tmp_path / 'p.db'}"],
                         capture_output=True, text=True, timeout=300, env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    [result] = json.loads(out.stdout)["results"]
    assert result["name"] == "tests/benchmarks/test_bench.py::test_sum" and result["status"] == "ok"


def _env(tmp_path: Path) -> dict:
    import os
    return {**{k: v for k, v in os.environ.items() if k != "PERFLOOP_STORE"},
            "FIXTURE_LOG": str(tmp_path / "fixture.log")}


def test_the_worker_gets_the_suite_target_in_its_task(tmp_path):
    from perfloop.measure.protocol import worker_task
    root = write_asv_suite(tmp_path)
    config = with_suites(load_config(root), None)
    spec = next(s for s in config.benchmarks if s.name == "bench_core.Sorting.time_sorted[n=10,order=desc]")
    task = worker_task(spec, None)
    assert task["suite"]["tool"] == "asv" and task["suite"]["combo"] == 1
    assert task["suite"]["select"] == "benchmarks.bench_core:Sorting.time_sorted"
    assert task["suite"]["root"] == str(root.resolve())



def test_init_writes_a_suite_table_for_an_existing_suite(tmp_path):
    from perfloop.workflows.scaffold import scaffold
    root = write_pytest_suite(tmp_path / "pb")
    (root / "perfloop.toml").unlink()
    result = scaffold(root)
    assert not (root / "benchmarks" / "perfloop_benchmarks.py").exists()
    config = load_config(root)
    [suite] = config.suites
    assert (suite.tool, suite.path) == ("pytest", "tests/benchmarks")
    assert "pytest suite in tests/benchmarks" in result.suites[0]

    asv_root = write_asv_suite(tmp_path / "asv")
    (asv_root / "perfloop.toml").unlink()
    (asv_root / "asv.conf.json").write_text('{\n  // asv allows comments\n  "version": 1,\n'
                                            '  "benchmark_dir": "benchmarks"\n}\n')
    scaffold(asv_root)
    assert [(s.tool, s.path) for s in load_config(asv_root).suites] == [("asv", "benchmarks")]

    plain = tmp_path / "plain"
    (plain / "tests").mkdir(parents=True)
    (plain / "tests" / "test_x.py").write_text("def test_x():\n    assert 'benchmark'\n")
    scaffold(plain)
    assert load_config(plain).suites == () and (plain / "benchmarks" / "perfloop_benchmarks.py").exists()


# --------------------------------------------------------------------------------------------
# imported history joins measured history


ASV_FIXTURES = Path(__file__).parent / "fixtures" / "asv"


def _git_project(root: Path) -> str:
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "suite"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=root, check=True,
                          capture_output=True, text=True).stdout.strip()


def _joined(store, name: str, metric: str):
    from perfloop.workflows.history import benchmark_history
    [history] = benchmark_history(store, name, metrics=[metric], all_environments=True)
    return history


@pytest.mark.slow
def test_an_imported_asv_series_and_a_measured_one_join_with_an_environment_change(tmp_path, store):
    from perfloop.importers import import_files
    from perfloop.workflows.run import run_project
    root = tmp_path / "project"
    (root / "benchmarks").mkdir(parents=True)
    (root / "benchmarks" / "__init__.py").write_text("")
    (root / "benchmarks" / "bench.py").write_text((ASV_FIXTURES / "bench.py.txt").read_text())
    (root / "perfloop.toml").write_text(SETTINGS + '\n[[suite]]\nasv = "benchmarks"\n')
    branch = _git_project(root)
    # the results file asv itself wrote for these benchmarks; asv records no branch
    [(imported, _)] = import_files(store, [next((ASV_FIXTURES / "results" / "vm").glob("*.json"))],
                                   branch=branch)
    assert imported.branch == branch
    names = ["bench.Suite.time_join[n=10,s=a]", "bench.Suite.peakmem_list[n=100,s=b]",
             "bench.Suite.track_n[n=100,s=a]"]
    outcome = run_project(load_config(root), store, names=names)
    assert [r.status for r in outcome.results] == [ResultStatus.OK] * 3
    for name, metric in zip(names, ("wall_time", "peak_rss", "track")):
        history = _joined(store, name, metric)
        assert len(history.series.points) == 2, name        # the imported point, then the measured one
        [change] = history.environment_changes
        assert change.index == 1
        assert any(d.key == "imported" for d in change.differences)
    assert _joined(store, "bench.Suite.track_n[n=100,s=a]", "track").series.values.tolist() == [200.0, 200.0]


@pytest.mark.slow
def test_an_imported_pytest_benchmark_series_and_a_measured_one_join(tmp_path, store):
    from perfloop.importers import import_files
    from perfloop.workflows.run import run_project
    root = write_pytest_suite(tmp_path / "project")
    (root / "tests" / "benchmarks" / "test_bench.py").write_text(
        "def test_sum(benchmark):\n    assert benchmark(sum, range(1000)) == 499500\n")
    _git_project(root)
    out = tmp_path / "pb.json"
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/benchmarks", "-q", "-p", "no:cacheprovider",
                           f"--benchmark-json={out}", "--benchmark-min-rounds=3",
                           "--benchmark-max-time=0.01"], cwd=root, capture_output=True, text=True,
                          timeout=300, env=_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    import_files(store, [out])                   # pytest-benchmark records the git branch itself
    run_project(load_config(root), store)
    history = _joined(store, "tests/benchmarks/test_bench.py::test_sum", "wall_time")
    assert len(history.series.points) == 2
    assert [c.index for c in history.environment_changes] == [1]


# --------------------------------------------------------------------------------------------
# the gate on suites


GATE_PYTEST = '''
def work(n):
    total = 0
    for i in range(n):
        total += i * i
    return total

def test_steady(benchmark):
    benchmark(work, 20_000)

def test_slowed(benchmark):
    benchmark(work, {n})
'''

GATE_ASV = '''
def track_steady():
    return 1000

def track_slowed():
    return {cost}
'''


@pytest.mark.slow
def test_the_gate_fails_the_planted_slowdown_of_a_suite_benchmark_only(tmp_path):
    root = tmp_path / "repo"
    (root / "tests" / "benchmarks").mkdir(parents=True)
    (root / "benchmarks").mkdir()
    (root / "benchmarks" / "__init__.py").write_text("")
    (root / ".gitignore").write_text(".perfloop/\n")
    (root / "perfloop.toml").write_text(
        "[defaults]\nvalues = 2\nwarmup = 1\nmin_time = 0.002\ntolerance = 0.05\n"
        '\n[[suite]]\npytest = "tests/benchmarks"\nmetrics = ["cpu_time"]\n'
        '\n[[suite]]\nasv = "benchmarks"\n')

    def plant(n: int, cost: int) -> None:
        (root / "tests" / "benchmarks" / "test_work.py").write_text(GATE_PYTEST.format(n=n))
        (root / "benchmarks" / "bench_cost.py").write_text(GATE_ASV.format(cost=cost))

    plant(20_000, 1000)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    for args in (["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    subprocess.run(["git", "checkout", "-q", "-b", "slower"], cwd=root, check=True)
    plant(100_000, 2000)         # 5x the work in one pytest test, 2x in one asv track
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "slower"],
                   cwd=root, check=True, capture_output=True)
    env = {k: v for k, v in _env(tmp_path).items() if k not in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    proc = subprocess.run([sys.executable, "-m", "perfloop", "gate", "--base", "main", "--head", "HEAD",
                           "--blocks", "3", "--max-blocks", "3", "--confirm-blocks", "3", "--json",
                           "-C", str(root), "--store", f"sqlite:///{tmp_path / 'g.db'}"],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    status = {b["name"]: b["status"] for b in report["benchmarks"]}
    failed = sorted(name for name, s in status.items() if s == "fail")
    assert failed == ["bench_cost.track_slowed", "tests/benchmarks/test_work.py::test_slowed"], status
    assert set(status) == {"bench_cost.track_steady", "bench_cost.track_slowed",
                           "tests/benchmarks/test_work.py::test_steady",
                           "tests/benchmarks/test_work.py::test_slowed"}


# --------------------------------------------------------------------------------------------
# the value loop, without processes


def test_pedantic_setup_runs_before_every_call_and_may_supply_the_arguments():
    from perfloop.measure.suites.timing import call_timer
    calls: list[tuple] = []
    made = iter(range(100))

    def setup():
        return (next(made),), {"k": "v"}

    timer = call_timer(lambda x, k: calls.append((x, k)) or x, setup=setup)
    wall, cpu, last = timer(3)
    assert calls == [(0, "v"), (1, "v"), (2, "v")] and last == 2
    assert wall >= 0 and cpu >= 0
    with pytest.raises(TypeError, match="cannot be combined"):
        call_timer(lambda x: x, args=(1,), setup=lambda: ((2,), {}))(1)
    with pytest.raises(TypeError, match="must return None or"):
        call_timer(lambda: None, setup=lambda: 5)(1)
    plain: list[int] = []
    call_timer(plain.append, args=(7,))(4)
    assert plain == [7, 7, 7, 7]


def test_the_benchmark_fixture_hands_its_callable_over_once():
    from perfloop.measure.suites.fixture_state import BenchmarkFixture
    from perfloop.measure.suites.fixture_state import FixtureState as _State

    class Node:
        name, nodeid = "test_x", "t.py::test_x"

    handed: list = []
    state = _State(lambda fn, args, kwargs, setup: handed.append((fn, args, kwargs, setup)) or "ret")
    fixture = BenchmarkFixture(state, Node())
    assert fixture(len, [1, 2], key=None) == "ret"
    assert handed == [(len, ([1, 2],), {"key": None}, None)] and state.measured
    with pytest.raises(RuntimeError, match="once per test"):
        fixture.pedantic(len, args=([1],))
    with pytest.raises(ValueError, match="iterations"):
        BenchmarkFixture(_State(lambda *a: None), Node()).pedantic(len, setup=lambda: None, iterations=2)


@pytest.mark.slow
def test_profile_b_profiles_a_pytest_benchmark_by_its_node_id(tmp_path):
    from perfloop.analysis.profilers import profile_callable
    root = write_pytest_suite(tmp_path)
    (root / "tests" / "benchmarks" / "test_bench.py").write_text(
        "def spin(n):\n    return sum(i * i for i in range(n))\n\n"
        "def test_spin(benchmark):\n    assert benchmark(spin, 20_000) > 0\n")
    [spec] = with_suites(load_config(root)).select(["tests/benchmarks/test_bench.py::test_spin"])
    result = profile_callable(spec, duration=0.3, memory_check=False)
    assert result.calls and result.calls > 1
    assert result.target == "tests/benchmarks/test_bench.py::test_spin"
    assert "spin" in {f.function for f in result.profile.frames}     # the test's own function
