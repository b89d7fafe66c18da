"""Collect the ``[[suite]]`` tables of a configuration into benchmarks perfloop can measure.

:func:`with_suites` runs each suite's tool in a subprocess (:mod:`.collect`) and returns the
configuration with one :class:`~perfloop.config.BenchmarkSpec` per benchmark found, after the
hand-written ones. A suite benchmark has ``kind = "callable"`` and a
:class:`~perfloop.suite_config.SuiteTarget` in ``spec.suite``: the callable worker hands it to
the suite's tool instead of importing a function, so the runner, the gate, interleaving and
instruction counts treat it like any callable. What failed to collect (a module that does not
import, an unsupported asv benchmark) becomes a benchmark that fails with that error when it is
run: it is reported, never skipped silently.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from ...config import BenchmarkSpec, ProjectConfig
from ...errors import ConfigError
from ...suite_config import SuiteSpec, SuiteTarget
from ..process import ChildTimeout, child_env, run_captured

COLLECT_MODULE = "perfloop.measure.suites.collect"
COLLECT_TIMEOUT = 300.0
_CACHE_DIR: str | None = None


def with_suites(config: ProjectConfig, names: Sequence[str] | None = None, *,
                python: str = sys.executable) -> ProjectConfig:
    """``config`` with the benchmarks of its suites collected (no-op without suites).

    When every name in ``names`` is a hand-written benchmark nothing is collected.
    """
    if not config.suites:
        return config
    if names and all(any(n in (b.name, b.base_name) for b in config.benchmarks) for n in names):
        return config
    specs = list(config.benchmarks)
    for index, suite in enumerate(config.suites):
        specs.extend(collect_suite(suite, config.root, python=python,
                                   where=(str(config.path), f"suite.{index}")))
    names_seen: dict[str, int] = {}
    for spec in specs:
        names_seen[spec.name] = names_seen.get(spec.name, 0) + 1
    dupes = sorted(n for n, count in names_seen.items() if count > 1)
    if dupes:
        raise ConfigError(f"benchmark name(s) found twice: {', '.join(dupes[:5])}", path=str(config.path),
                          key="suite", hint="a [[benchmark]] and a suite (or two suites) define the same "
                                            "name; rename the [[benchmark]] or narrow the suite's path")
    return replace(config, benchmarks=tuple(specs), suites=())


def collect_suite(suite: SuiteSpec, root: Path, *, python: str = sys.executable,
                  where: tuple[str, str] = ("perfloop.toml", "suite")) -> list[BenchmarkSpec]:
    """The benchmarks of one suite, collected by its tool in a subprocess."""
    found = _run_collector(suite, root, python, where)
    specs = [_spec(suite, root, entry) for entry in found["benchmarks"]]
    for error in found["errors"]:
        target = SuiteTarget(tool=suite.tool, select=error["name"], directory=suite.path,
                             error=f"{suite.tool} could not collect {error['name']}: {error['error']}")
        specs.append(BenchmarkSpec(name=error["name"], base_name=error["name"], kind="callable",
                                   settings=suite.settings, metrics=suite.metrics, root=str(root),
                                   suite=target))
    return specs


def _run_collector(suite: SuiteSpec, root: Path, python: str, where: tuple[str, str]) -> dict[str, Any]:
    env = child_env(suite.env)
    paths = [str((root / p).resolve()) for p in suite.pythonpath]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join([*paths, *filter(None, [env.get("PYTHONPATH")])])
    with tempfile.TemporaryDirectory(prefix="perfloop-collect-") as tmp:
        out = Path(tmp) / "collected.json"
        argv = [python, "-m", COLLECT_MODULE, suite.tool, suite.path, "--out", str(out),
                *(f"--arg={a}" for a in suite.args)]
        try:
            done = run_captured(argv, cwd=root, env=env, timeout=COLLECT_TIMEOUT)
        except ChildTimeout as exc:
            raise ConfigError(f"collecting the {suite.tool} suite {suite.path!r} took more than "
                              f"{COLLECT_TIMEOUT:g} s", path=where[0], key=where[1],
                              hint="does importing the suite's modules block?") from exc
        if done.returncode != 0 or not out.exists():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise ConfigError(f"collecting the {suite.tool} suite {suite.path!r} failed "
                              f"(exit code {done.returncode}):\n{tail}", path=where[0], key=where[1],
                              hint=f"install {suite.tool} in the environment perfloop runs in "
                                   f"({python}), or fix the error above")
        return json.loads(out.read_text())


def _spec(suite: SuiteSpec, root: Path, entry: dict[str, Any]) -> BenchmarkSpec:
    settings, metrics = suite.settings, suite.metrics
    custom: dict[str, tuple[str, str]] = {}
    mode = entry.get("mode", "time")
    if suite.tool == "asv":
        if entry.get("repeat"):
            settings = replace(settings, values=int(entry["repeat"]))
        if entry.get("timeout"):
            # asv's timeout is per process; perfloop's covers every worker of the benchmark
            settings = replace(settings, timeout=float(entry["timeout"]) * settings.processes)
        if mode == "peakmem":
            settings, metrics = replace(settings, values=1, warmup=0), ("peak_rss",)
        elif mode == "track":
            settings, metrics = replace(settings, values=1, warmup=0), ("track",)
            custom = {"track": (entry.get("unit") or "", "lower")}
    target = SuiteTarget(tool=suite.tool, select=entry["select"], args=suite.args, directory=suite.path,
                         combo=entry.get("combo"), mode=mode, number=entry.get("number"),
                         error=entry.get("error"), cache_dir=_cache_dir() if suite.tool == "asv" else None)
    return BenchmarkSpec(name=entry["name"], base_name=entry["base_name"], kind="callable",
                         settings=settings, metrics=metrics, params=entry.get("params") or {},
                         pythonpath=suite.pythonpath, env=suite.env, custom_metrics=custom,
                         root=str(root), suite=target)


def _cache_dir() -> str:
    """A directory for asv's setup_cache results, shared by this process's workers, removed at exit."""
    global _CACHE_DIR
    if _CACHE_DIR is None:
        _CACHE_DIR = tempfile.mkdtemp(prefix="perfloop-asv-cache-")
        atexit.register(shutil.rmtree, _CACHE_DIR, True)
    return _CACHE_DIR


__all__ = ["collect_suite", "with_suites"]
