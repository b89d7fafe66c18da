"""``[defaults]`` holds benchmark keys every benchmark inherits: pythonpath, metrics, env, cwd,
custom_metrics (not only numbers)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from perfloop.config import parse_config
from perfloop.errors import ConfigError

TOML = '''
[defaults]
processes = 4
pythonpath = ["src", "benchmarks"]
metrics = ["wall_time", "peak_alloc"]
env = { MODE = "fast", LEVEL = "1" }

[[benchmark]]
name = "parse"
callable = "bench:parse"

[[benchmark]]
name = "render"
callable = "bench:render"
pythonpath = ["vendor"]
metrics = ["cpu_time"]
env = { LEVEL = "2" }

[[benchmark]]
name = "cli"
command = ["python", "-c", "pass"]
'''


def test_defaults_carry_benchmark_keys(tmp_path: Path) -> None:
    config = parse_config(tomllib.loads(TOML), root=tmp_path)
    parse, render, cli = config.benchmarks
    assert parse.settings.processes == 4
    assert parse.pythonpath == ("src", "benchmarks") and parse.metrics == ("wall_time", "peak_alloc")
    assert dict(parse.env) == {"MODE": "fast", "LEVEL": "1"}
    # a benchmark's own entries come first and win
    assert render.pythonpath == ("vendor", "src", "benchmarks") and render.metrics == ("cpu_time",)
    assert dict(render.env) == {"MODE": "fast", "LEVEL": "2"}
    # a command cannot measure peak_alloc: it keeps the defaults it can measure
    assert cli.metrics == ("wall_time",)


def test_a_bad_inherited_value_names_the_key(tmp_path: Path) -> None:
    data = tomllib.loads('[defaults]\npythonpath = 3\n[[benchmark]]\nname = "a"\ncallable = "m:f"\n')
    with pytest.raises(ConfigError, match="pythonpath"):
        parse_config(data, root=tmp_path)
    data = tomllib.loads('[defaults]\ncolour = "red"\n[[benchmark]]\nname = "a"\ncallable = "m:f"\n')
    with pytest.raises(ConfigError, match="colour") as caught:
        parse_config(data, root=tmp_path)
    assert "pythonpath" in str(caught.value.hint if hasattr(caught.value, "hint") else caught.value)
