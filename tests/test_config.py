"""Configuration loading: valid files expand as documented; invalid ones name file, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfloop.config import SETTING_RULES, Settings, check_setting, load_config, setting_problem
from perfloop.errors import ConfigError, UsageError


def write(tmp_path: Path, text: str, name: str = "perfloop.toml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_params_grid_expands_to_one_benchmark_per_combination(tmp_path):
    cfg = load_config(write(tmp_path, """
[defaults]
processes = 3
[[benchmark]]
name = "quote"
callable = "shop.bench:quote"
params = { items = [10, 100], tier = ["gold", "basic"] }
tolerance = 0.02
"""))
    names = [b.name for b in cfg.benchmarks]
    assert names == ["quote[items=10,tier=gold]", "quote[items=10,tier=basic]",
                     "quote[items=100,tier=gold]", "quote[items=100,tier=basic]"]
    first = cfg.benchmarks[0]
    assert first.params == {"items": 10, "tier": "gold"}
    assert first.settings.processes == 3 and first.settings.tolerance == 0.02
    assert first.metrics == ("wall_time", "cpu_time", "peak_rss")
    assert [b.name for b in cfg.select(["quote"])] == names


def test_pyproject_tool_table_is_read(tmp_path):
    cfg = load_config(write(tmp_path, """
[project]
name = "x"
[tool.perfloop]
[[tool.perfloop.benchmark]]
name = "cli"
command = "echo hi"
""", "pyproject.toml"))
    assert cfg.benchmarks[0].kind == "command" and cfg.benchmarks[0].command == "echo hi"


def test_http_benchmark_with_server_and_json_body(tmp_path):
    cfg = load_config(write(tmp_path, """
[[benchmark]]
name = "api"
http = { url = "http://127.0.0.1:8765/checkout", method = "post", json = { items = 3 }, rate = 20 }
server = { command = ["python", "-m", "uvicorn", "app:app"], ready_url = "http://127.0.0.1:8765/health" }
"""))
    b = cfg.benchmarks[0]
    assert b.http.method == "POST" and b.http.body == '{"items": 3}'
    assert b.http.headers["content-type"] == "application/json"
    assert b.server.command == ("python", "-m", "uvicorn", "app:app")
    assert "latency_p99" in b.metrics and "throughput" in b.metrics


@pytest.mark.parametrize("text, key, words", [
    ('[[benchmark]]\nname = "a"\n', "benchmark.a", "exactly one target"),
    ('[[benchmark]]\nname = "a"\ncallable = "nocolon"\n', "benchmark.a.callable", "module:function"),
    ('[[benchmark]]\nname = "a"\ncallable = "m:f"\ncommand = "x"\n', "benchmark.a", "found callable, command"),
    ('[[benchmark]]\nname = "a"\ncallable = "m:f"\ntolerance = 5\n', "benchmark.a.tolerance", "write 0.05"),
    ('[[benchmark]]\nname = "a"\ncallable = "m:f"\nprocesses = "many"\n', "benchmark.a.processes", "integer"),
    ('[[benchmark]]\nname = "a"\ncallable = "m:f"\nmetrics = ["latency_p99"]\n', "benchmark.a.metrics",
     "not available"),
    ('[[benchmark]]\nname = "a"\ncallable = "m:f"\nspeed = 1\n', "benchmark.a", "unknown key"),
    ('[[benchmark]]\nname = "a"\ncommand = "x"\nserver = { command = "y", ready_url = "http://h" }\n',
     "benchmark.a.server", "only applies to http"),
    ('[[benchmark]]\nname = "a"\nhttp = { url = "ftp://x" }\n', "benchmark.a.http.url", "http://"),
    ('[defaults]\nprocesses = 0\n[[benchmark]]\nname = "a"\ncallable = "m:f"\n', "defaults.processes", "at least 1"),
    ('[[benchmark]]\nname = "a"\ncallable = "m:f"\n[[benchmark]]\nname = "a"\ncommand = "x"\n',
     "benchmark", "duplicate"),
    ('colour = "red"\n', None, "unknown top-level"),
    ('[defaults]\n', "benchmark", "no benchmarks"),
])
def test_invalid_config_names_file_key_and_problem(tmp_path, text, key, words):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "perfloop.toml") in message
    if key:
        assert f"[{key}]" in message
    assert words in message


def test_broken_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no perfloop.toml"):
        load_config(tmp_path)
    write(tmp_path, "[[benchmark]\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path)


def test_unknown_benchmark_selection_lists_known_ones(tmp_path):
    cfg = load_config(write(tmp_path, '[[benchmark]]\nname = "a"\ncallable = "m:f"\n'))
    with pytest.raises(ConfigError, match="known benchmarks: a"):
        cfg.select(["b"])


# --- every key refused names the file, the key and the fix -----------------------------------

BENCH = '[[benchmark]]\nname = "a"\n'
HTTP = BENCH + 'http = { url = "http://h/" }\n'
SERVER = HTTP + 'server = { command = "run", ready_url = "http://h/"'


@pytest.mark.parametrize("text, key, words", [
    # the two that used to pass without a word: a custom metric written as a plain string, a
    # server whose cwd is not a path
    (BENCH + 'command = "x"\ncustom_metrics = { score = "points" }\n',
     "benchmark.a.custom_metrics.score", "must be a table"),
    (SERVER + ', cwd = 5 }\n', "benchmark.a.server.cwd", "non-empty string"),
    (BENCH + 'command = "x"\ncustom_metrics = { score = { unit = 3 } }\n',
     "benchmark.a.custom_metrics.score.unit", "unit must be a string"),
    (BENCH + 'command = "x"\ncustom_metrics = { score = { direction = "up" } }\n',
     "benchmark.a.custom_metrics.score.direction", "lower, higher"),
    (BENCH + 'command = "x"\ncustom_metrics = { score = { units = "ms" } }\n',
     "benchmark.a.custom_metrics.score", "unknown key(s): units"),
    (BENCH + 'command = "x"\ncustom_metrics = 3\n', "benchmark.a.custom_metrics", "must be a table"),
    (BENCH + 'command = "x"\nsetup = "m:f"\n', "benchmark.a.setup", "only applies to callable"),
    (BENCH + 'command = "x"\nparams = { n = [1] }\n', "benchmark.a.params", "only apply to callable"),
    (BENCH + 'callable = "m:f"\nsetup = "nocolon"\n', "benchmark.a.setup", "module:function"),
    (BENCH + 'callable = "m:f"\npythonpath = [1]\n', "benchmark.a.pythonpath", "list of strings"),
    (BENCH + 'callable = "m:f"\nparams = { n = [] }\n', "benchmark.a.params", "at least one value"),
    (BENCH + 'callable = "m:f"\nparams = 3\n', "benchmark.a.params", "must be a table"),
    (BENCH + 'callable = "m:f"\nmetrics = []\n', "benchmark.a.metrics", "non-empty list"),
    (BENCH + 'callable = "m:f"\nenv = { A = [1] }\n', "benchmark.a.env", "table of strings"),
    (BENCH + 'callable = "m:f"\ncwd = 7\n', "benchmark.a.cwd", "non-empty string"),
    (BENCH + 'callable = "m:f"\ntolerance = -0.1\n', "benchmark.a.tolerance", "greater than 0"),
    (BENCH + 'callable = "m:f"\nrun_noise = 3\n', "benchmark.a.run_noise", "write 0.03 for 3%"),
    (BENCH + 'callable = "m:f"\ntimeout = 0\n', "benchmark.a.timeout", "greater than 0"),
    (BENCH + 'callable = "m:f"\nmin_time = inf\n', "benchmark.a.min_time", "at most 3600"),
    (BENCH + 'callable = "m:f"\nwarmup = true\n', "benchmark.a.warmup", "an integer"),
    (BENCH + 'callable = "m:f"\nvalues = 1.5\n', "benchmark.a.values", "an integer"),
    (BENCH + 'callable = "m:f"\ndecide_on = "speed"\n', "benchmark.a.decide_on", "one of auto"),
    (BENCH + 'command = ["python", 3]\n', "benchmark.a.command", "argv list"),
    (BENCH + 'http = { url = "http://h/", rate = 0 }\n', "benchmark.a.http.rate", "greater than 0"),
    (BENCH + 'http = { url = "http://h/", connections = 2.5 }\n', "benchmark.a.http.connections",
     "an integer"),
    (BENCH + 'http = { url = "http://h/", method = "BREW" }\n', "benchmark.a.http.method",
     "unsupported method"),
    (BENCH + 'http = { url = "http://h/", body = 3 }\n', "benchmark.a.http.body", "must be a string"),
    (BENCH + 'http = { url = "http://h/", headers = "x" }\n', "benchmark.a.http.headers",
     "table of strings"),
    (BENCH + 'http = { url = "http://h/", port = 1 }\n', "benchmark.a.http", "unknown key(s): port"),
    (SERVER + ', ready_timeout = -1 }\n', "benchmark.a.server.ready_timeout", "greater than 0"),
    (SERVER + ', env = 3 }\n', "benchmark.a.server.env", "table of strings"),
    (SERVER + ', port = 1 }\n', "benchmark.a.server", "unknown key(s): port"),
    (HTTP + 'server = "run"\n', "benchmark.a.server", "must be a table"),
    ('defaults = 3\n' + BENCH + 'callable = "m:f"\n', "defaults", "must be a table"),
    ('[defaults]\nspeed = 1\n' + BENCH + 'callable = "m:f"\n', "defaults", "unknown setting(s): speed"),
    ('[defaults]\ntolerance = 0\n' + BENCH + 'callable = "m:f"\n', "defaults.tolerance",
     "greater than 0"),
    ('store = 3\n' + BENCH + 'callable = "m:f"\n', "store", "SQLAlchemy URL"),
    ('risk = 3\n' + BENCH + 'callable = "m:f"\n', "risk", "must be a table"),
    ('benchmark = [3]\n', "benchmark.0", "must be a table"),
    ('[[suite]]\nasv = "."\nargs = ["-x"]\n', "suite.0.args", "only apply to pytest"),
    ('[[suite]]\npytest = "."\nargs = "-x"\n', "suite.0.args", "list of strings"),
    ('[[suite]]\npytest = "."\nmetrics = ["peak_alloc"]\n', "suite.0.metrics", "not available"),
    ('[[suite]]\npytest = "."\nprocesses = 0\n', "suite.0.processes", "at least 1"),
    ('[[suite]]\npytest = "nowhere"\n', "suite.0.pytest", "does not exist"),
    ('suite = 3\n', "suite", "array of tables"),
])
def test_every_refused_key_names_file_key_and_fix(tmp_path, text, key, words):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    error = info.value
    assert error.path == str(tmp_path / "perfloop.toml")
    assert error.key == key, str(error)
    assert words in str(error)   # the problem or its fix
    assert error.hint, f"no fix given for [{key}]"


def test_a_declared_custom_metric_and_server_cwd_are_kept(tmp_path):
    cfg = load_config(write(tmp_path, BENCH + 'command = "x"\nmetrics = ["score"]\n'
                            'custom_metrics = { score = { unit = "points", direction = "higher" } }\n'
                            '[[benchmark]]\nname = "b"\nhttp = { url = "http://h/" }\n'
                            'server = { command = "run", ready_url = "http://h/", cwd = "app" }\n'))
    a, b = cfg.benchmarks
    assert a.custom_metrics == {"score": ("points", "higher")} and a.metrics == ("score",)
    assert b.server is not None and b.server.cwd == "app"


# --- one set of bounds: the file, Settings, the comparison and the CLI agree ---------------------

@pytest.mark.parametrize("value", [-0.5, 0.0, 1e-9, 0.05, 0.5, 0.999, 1.0, 5.0, float("nan")])
def test_tolerance_bounds_are_the_same_in_the_file_settings_and_comparison(tmp_path, value):
    from perfloop.analysis.compare import compare_groups
    from perfloop.metrics import get_metric
    fit = setting_problem("tolerance", value) is None
    write(tmp_path, BENCH + f'callable = "m:f"\ntolerance = {value!r}\n')
    outcomes = []
    for attempt in (lambda: load_config(tmp_path), lambda: Settings(tolerance=value),
                    lambda: compare_groups([[1.0, 1.1]] * 3, [[1.0, 1.1]] * 3,
                                           metric=get_metric("wall_time"), tolerance=value)):
        try:
            attempt()
            outcomes.append(True)
        except UsageError:
            outcomes.append(False)
    assert outcomes == [fit] * 3
    assert fit == (0 < value < 1)


@pytest.mark.parametrize("value, fit", [(0.3, False), (0.5, False), (0.9, True), (0.99, True),
                                        (1.0, False), (99, False)])
def test_confidence_has_one_range_for_comparisons_and_options(value, fit):
    from perfloop.analysis.compare import compare_groups
    from perfloop.metrics import get_metric
    assert (setting_problem("confidence", value) is None) == fit
    try:
        compare_groups([[1.0, 1.1]] * 3, [[1.0, 1.1]] * 3, metric=get_metric("wall_time"),
                       confidence=value)
        accepted = True
    except UsageError as exc:
        accepted = False
        assert "confidence" in str(exc)
    assert accepted == fit
    if not fit:
        with pytest.raises(UsageError, match="--confidence: confidence must be"):
            check_setting("confidence", value, option="--confidence")


@pytest.mark.parametrize("name", sorted(SETTING_RULES))
def test_settings_built_in_code_are_held_to_the_file_rules(name):
    with pytest.raises(UsageError, match=name):
        Settings(**{name: -1 if name != "decide_on" else "fastest"})
