"""The ``[[suite]]`` table: a benchmark suite a team already has, measured by perfloop as it is.

Two tools are read (see ``docs/suites.md``)::

    [[suite]]
    pytest = "tests/benchmarks"    # every test that requests pytest-benchmark's `benchmark` fixture
    args = ["-m", "not slow"]      # extra pytest arguments, for collection and for every worker

    [[suite]]
    asv = "benchmarks"             # every time_* / peakmem_* / track_* of an asv suite
    pythonpath = ["src"]           # directories the suite needs on sys.path

A suite takes the settings of ``[defaults]`` (processes, values, warmup, min_time, tolerance,
timeout, run_noise), which it may override, ``metrics`` for its timed benchmarks and ``env``.
The suite's benchmarks are found only when something is about to measure them (collection
runs the tool in a subprocess), by :func:`perfloop.measure.suites.with_suites`; this module
only validates the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .config_schema import SETTING_RULES, Settings, settings_from, shown, str_list, str_map
from .errors import ConfigError
from .metrics import DEFAULT_METRICS

TOOLS = ("pytest", "asv")
#: What a suite's timed benchmarks can measure (asv's peakmem_ and track_ have their own metric).
SUITE_METRICS = ("wall_time", "cpu_time", "peak_rss")
_SUITE_KEYS = {*TOOLS, "args", "pythonpath", "env", "metrics", *SETTING_RULES}


@dataclass(frozen=True)
class SuiteSpec:
    """One ``[[suite]]`` entry, validated: the tool, where the suite is, how to measure it."""

    tool: str                              # "pytest" | "asv"
    path: str                              # relative to the project root
    settings: Settings
    metrics: tuple[str, ...]               # for timed benchmarks (asv's peakmem_/track_ have their own)
    args: tuple[str, ...] = ()             # extra pytest arguments
    pythonpath: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteTarget:
    """What a worker needs to find and run one benchmark of a suite (``BenchmarkSpec.suite``).

    ``select`` is what the tool is handed: a pytest argument (``path::Class::test[id]``,
    relative to the project root) or asv's ``module:Class.method`` inside the suite directory.
    ``error`` is set when collection already failed for it: the benchmark is then reported as
    failed with that error, without starting a worker.
    """

    tool: str
    select: str
    args: tuple[str, ...] = ()             # pytest: extra arguments
    directory: str = ""                    # asv: the suite directory, relative to the root
    combo: int | None = None               # asv: index of the parameter combination
    mode: str = "time"                     # asv: "time" | "peakmem" | "track"
    number: int | None = None              # asv: calls per value, fixed by the benchmark
    error: str | None = None
    cache_dir: str | None = None           # asv: where setup_cache results are kept for this process

    def to_task(self, root: str) -> dict[str, Any]:
        """The JSON the worker receives (``task["suite"]``)."""
        return {"tool": self.tool, "select": self.select, "args": list(self.args),
                "directory": self.directory, "combo": self.combo, "mode": self.mode,
                "root": root, "cache_dir": self.cache_dir}


def parse_suites(raw: Any, defaults: Settings, root: Path, where: str) -> tuple[SuiteSpec, ...]:
    """Validate the ``[[suite]]`` tables of a configuration."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"suite must be an array of tables: [[suite]], got {shown(raw)}",
                          path=where, key="suite",
                          hint='e.g.\n[[suite]]\npytest = "tests/benchmarks"')
    return tuple(_suite(item, i, defaults, root, where) for i, item in enumerate(raw))


def _suite(item: Any, index: int, defaults: Settings, root: Path, where: str) -> SuiteSpec:
    key = f"suite.{index}"
    if not isinstance(item, Mapping):
        raise ConfigError(f"must be a table, got {shown(item)}", path=where, key=key,
                          hint='e.g.\n[[suite]]\npytest = "tests/benchmarks"')
    tools = [t for t in TOOLS if t in item]
    if len(tools) != 1:
        raise ConfigError("needs exactly one of pytest or asv" + (f" (found {', '.join(tools)})"
                                                                 if tools else ""),
                          path=where, key=key, hint='e.g. pytest = "tests/benchmarks" or asv = "benchmarks"')
    tool = tools[0]
    unknown = set(item) - _SUITE_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s): {', '.join(sorted(unknown))}", path=where, key=key,
                          hint=f"allowed: {', '.join(sorted(_SUITE_KEYS))}")
    path = item[tool]
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(f"{tool} must be a path relative to the project, got {shown(path)}",
                          path=where, key=f"{key}.{tool}", hint=f'e.g. {tool} = "benchmarks"')
    if not (root / path).exists():
        raise ConfigError(f"{tool} suite {path!r} does not exist in {root}", path=where,
                          key=f"{key}.{tool}", hint="the path is relative to the directory of perfloop.toml")
    if tool == "asv" and not (root / path).is_dir():
        raise ConfigError(f"asv suite {path!r} must be a directory (asv's benchmark_dir)", path=where,
                          key=f"{key}.asv", hint="point asv at the directory that holds the benchmarks")
    if tool != "pytest" and "args" in item:
        raise ConfigError("args only apply to pytest suites", path=where, key=f"{key}.args",
                          hint="remove args from this asv suite")
    args = str_list(item.get("args", []), where, f"{key}.args", 'e.g. args = ["-m", "not slow"]')
    paths = str_list(item.get("pythonpath", []), where, f"{key}.pythonpath",
                     'e.g. pythonpath = ["src"]', one=True)
    metrics = str_list(item.get("metrics", list(DEFAULT_METRICS["callable"])), where,
                       f"{key}.metrics", f'e.g. metrics = ["{SUITE_METRICS[0]}"]', empty=False)
    bad = [m for m in metrics if m not in SUITE_METRICS]
    if bad:
        raise ConfigError(f"metric(s) {', '.join(bad)} not available for a suite", path=where,
                          key=f"{key}.metrics", hint=f"suites measure: {', '.join(SUITE_METRICS)}")
    return SuiteSpec(tool=tool, path=path, settings=settings_from(item, defaults, where, key),
                     metrics=tuple(dict.fromkeys(metrics)), args=args, pythonpath=paths,
                     env=str_map(item.get("env"), where, f"{key}.env"))


__all__ = ["SuiteSpec", "SuiteTarget", "TOOLS", "parse_suites"]
