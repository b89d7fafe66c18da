"""pyperf JSON (``python bench.py -o FILE``, ``pyperf.BenchmarkSuite.dump``), format version 1.0.

pyperf's format (``pyperf/_bench.py``): ``{"version": "1.0", "metadata": {...}, "benchmarks":
[{"metadata": {...}, "runs": [{"metadata", "warmups", "values"}]}]}``. Metadata merges from
the suite to the benchmark to the run. Each *run* is one worker process, so run ``i`` becomes
``Sample.worker = i``. ``values`` are per loop iteration already (pyperf divides by ``loops x
inner_loops`` before writing), and since version 1.0 ``warmups`` are ``[loops, value]`` pairs
per loop iteration too: they are stored with ``warmup=True``. Runs without values are pyperf's
calibration runs and are left out (counted in ``extra["calibration_runs"]``).

The benchmark's ``unit`` decides the metric: ``second`` -> ``wall_time``, ``byte`` ->
``peak_rss`` (``--track-memory``, ``--tracemalloc``), ``integer`` -> a custom ``value``. A
timing run's ``mem_max_rss`` (the worker's peak RSS) becomes one ``peak_rss`` sample per worker.
pyperf records no git facts itself; ``commit_id`` and ``commit_branch`` metadata (as
pyperformance adds them, or ``--metadata`` users) are used when present.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..records import BenchmarkResult, ResultStatus, Sample
from .parsed import (IMPORTED_KIND, ImportedRun, InvalidResultsFile, derived_label, finite,
                     imported_environment, text_or_none)

FORMAT = "pyperf"
SUPPORTED_VERSIONS = ("1.0",)
_UNITS = {"second": ("wall_time", "s"), "byte": ("peak_rss", "B"), "integer": ("value", "")}
# Facts that differ from run to run on one machine: kept, but not part of the environment class.
_CONDITIONS = ("load_avg_1min", "boot_time", "cpu_freq", "date", "uptime", "runnable_threads")


def parse(data: dict[str, Any], path: Path) -> ImportedRun:
    version = data.get("version")
    if str(version) not in SUPPORTED_VERSIONS:
        raise InvalidResultsFile(path, f"is pyperf JSON format version {version!r}; perfloop reads "
                                       f"version {', '.join(SUPPORTED_VERSIONS)}",
                                 hint=f"convert it with a recent pyperf: python -m pyperf convert "
                                      f"{path} -o NEW.json")
    suite_meta = data.get("metadata") or {}
    if not isinstance(suite_meta, dict) or not isinstance(data.get("benchmarks"), list):
        raise InvalidResultsFile(path, "has malformed metadata or benchmarks, expected pyperf JSON")
    results = [_result(bench, i, suite_meta) for i, bench in enumerate(data["benchmarks"])]
    names = [r.name for r in results]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidResultsFile(path, f"has several benchmarks named {', '.join(dupes)}")
    first = _merged(suite_meta, data["benchmarks"][0]) if data["benchmarks"] else suite_meta
    return ImportedRun(
        path=str(path), format=FORMAT, label=derived_label(path),
        commit=text_or_none(first.get("commit_id")), branch=text_or_none(first.get("commit_branch")),
        dirty=False, environment=_environment(first), results=tuple(results),
        source={"version": str(version), "perf_version": first.get("perf_version"),
                "date": first.get("date") or first.get("commit_date"),
                "conditions": {k: first[k] for k in _CONDITIONS if k in first}})


def _merged(suite_meta: dict[str, Any], bench: dict[str, Any]) -> dict[str, Any]:
    meta = bench.get("metadata") or {}
    if not isinstance(meta, dict):
        raise ValueError("benchmark metadata must be an object")
    return {**suite_meta, **meta}


def _result(bench: Any, i: int, suite_meta: dict[str, Any]) -> BenchmarkResult:
    if not isinstance(bench, dict) or not isinstance(bench.get("runs"), list):
        raise ValueError(f"benchmark #{i} has no list of runs")
    meta = _merged(suite_meta, bench)
    name = meta.get("name")
    runs = bench["runs"]
    if not name:
        # pyperf also allows the name in each run's metadata
        name = next((r.get("metadata", {}).get("name") for r in runs if isinstance(r, dict)), None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"benchmark #{i} has no name in its metadata")
    unit = meta.get("unit", "second")
    if unit not in _UNITS:
        raise ValueError(f"{name}: unknown unit {unit!r}")
    metric, metric_unit = _UNITS[unit]
    samples: list[Sample] = []
    calibration = 0
    worker = 0
    for j, run in enumerate(runs):
        if not isinstance(run, dict):
            raise ValueError(f"{name}: run #{j} is not an object")
        run_meta = {**meta, **(run.get("metadata") or {})}
        values = run.get("values") or []
        if not values:
            calibration += 1
            continue
        loops = int(run_meta.get("loops", 1)) * int(run_meta.get("inner_loops", 1))
        index = 0
        for pair in run.get("warmups") or []:
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError(f"{name}: run #{j} warmups must be [loops, value] pairs")
            warm_loops = int(pair[0]) * int(run_meta.get("inner_loops", 1))
            samples.append(Sample(metric, finite(pair[1], f"{name}: warmup value"), worker=worker,
                                  index=index, warmup=True, loops=max(warm_loops, 1)))
            index += 1
        for value in values:
            samples.append(Sample(metric, finite(value, f"{name}: value"), worker=worker, index=index,
                                  loops=max(loops, 1)))
            index += 1
        if metric == "wall_time" and "mem_max_rss" in run_meta:
            samples.append(Sample("peak_rss", finite(run_meta["mem_max_rss"], f"{name}: mem_max_rss"),
                                  worker=worker))
        worker += 1
    if worker == 0:
        raise ValueError(f"{name}: no run has values (only calibration runs)")
    extra: dict[str, Any] = {"workers": worker, "calibration_runs": calibration, "unit": unit,
                             "loops": meta.get("loops"), "inner_loops": meta.get("inner_loops")}
    units = {metric: metric_unit} if metric == "value" else {}
    return BenchmarkResult(name=name, kind=IMPORTED_KIND, status=ResultStatus.OK, samples=tuple(samples),
                           units=units, extra={k: v for k, v in extra.items() if v is not None})


def _environment(meta: dict[str, Any]) -> dict[str, Any]:
    python = meta.get("python_version")
    if isinstance(python, str):
        python = re.sub(r"\s*\(.*\)$", "", python)       # "3.11.7 (64-bit)" -> "3.11.7"
    platform = meta.get("platform")
    return imported_environment(FORMAT, {
        "cpu_model": meta.get("cpu_model_name"),
        "cpu_count": meta.get("cpu_count"),
        "cpu_config": meta.get("cpu_config"),
        "platform": platform,
        "os": platform.split("-", 1)[0] if isinstance(platform, str) else None,
        "python": python,
        "python_implementation": meta.get("python_implementation"),
        "python_compiler": meta.get("python_compiler"),
        "python_cflags": meta.get("python_cflags"),
        "aslr": meta.get("aslr"),
        "hostname": meta.get("hostname"),
        "load_avg_1m": meta.get("load_avg_1min"),
        "packages": {"pyperf": meta["perf_version"]} if meta.get("perf_version") else None,
    })
