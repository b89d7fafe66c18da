"""Configuration loading: valid files expand as documented; invalid ones name file, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfloop.config import load_config
from perfloop.errors import ConfigError


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
