"""pytest-benchmark JSON (``pytest --benchmark-json=FILE`` or a saved ``.benchmarks/`` file).

The file holds ``machine_info``, ``commit_info`` and one entry per benchmark with ``stats``.
``stats.data``, the per-round times, is always in a ``--benchmark-json`` file, but in a file
saved by ``--benchmark-save``/``--benchmark-autosave`` only with ``--benchmark-save-data``
(pytest-benchmark's ``session.py``). pytest-benchmark stores each round's time already divided by the
round's ``iterations`` (``stats.iterations``), so a value is the time of one call. Without it
the file has summary statistics only: the median is stored as the benchmark's single
``wall_time`` value, the summary goes to ``extra["summary"]`` and a warning says so.

pytest-benchmark runs every round in the one pytest process and does not record warmup rounds,
so all values are filed under worker 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..records import BenchmarkResult, ResultStatus, Sample
from .parsed import (IMPORTED_KIND, ImportedRun, InvalidResultsFile, derived_label, finite,
                     imported_environment, text_or_none)

FORMAT = "pytest-benchmark"
_SUMMARY_KEYS = ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "rounds", "iterations",
                 "ops", "total", "outliers")
ONE_PROCESS = ("pytest-benchmark measures every round in one process: the values count as one "
               "worker, so a comparison treats them as independent and its interval ignores the "
               "noise between processes (narrower than the truth)")


def parse(data: dict[str, Any], path: Path) -> ImportedRun:
    benchmarks = data.get("benchmarks")
    if not isinstance(benchmarks, list):
        raise InvalidResultsFile(path, "has no list of benchmarks, expected pytest-benchmark JSON")
    results: list[BenchmarkResult] = []
    summary_only: list[str] = []
    for i, bench in enumerate(benchmarks):
        if not isinstance(bench, dict) or not isinstance(bench.get("stats"), dict):
            raise InvalidResultsFile(path, f"benchmark #{i} has no stats, expected pytest-benchmark JSON")
        result = _result(bench, i)
        if "summary" in result.extra:
            summary_only.append(result.name)
        results.append(result)
    notes = []
    if summary_only:
        notes.append(f"{len(summary_only)} benchmark(s) have summary statistics only (saved without "
                     "--benchmark-save-data): each is stored as one value, its median")
    commit = data.get("commit_info") or {}
    return ImportedRun(
        path=str(path), format=FORMAT, label=derived_label(path),
        commit=text_or_none(commit.get("id"), unknown=("unversioned", "unknown")),
        branch=text_or_none(commit.get("branch"), unknown=("(unknown)", "(detached head)")),
        dirty=bool(commit.get("dirty", False)),
        environment=_environment(data.get("machine_info") or {}),
        results=tuple(results),
        source={"date": data.get("datetime"), "version": data.get("version"),
                "commit_time": commit.get("time"), "project": commit.get("project")},
        notes=tuple(notes))


def _result(bench: dict[str, Any], i: int) -> BenchmarkResult:
    name = bench.get("fullname") or bench.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"benchmark #{i} has no name")
    stats = bench["stats"]
    iterations = int(stats.get("iterations") or 1)
    params = bench.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError(f"{name}: params must be an object")
    extra: dict[str, Any] = {"loops": iterations, "group": bench.get("group"),
                             "options": bench.get("options") or {},
                             "extra_info": bench.get("extra_info") or {}}
    warnings = [ONE_PROCESS]
    data = stats.get("data")
    if data is not None:
        if not isinstance(data, list) or not data:
            raise ValueError(f"{name}: stats.data must be a non-empty list of round times")
        samples = [Sample("wall_time", finite(v, f"{name}: round {j}"), worker=0, index=j, loops=iterations)
                   for j, v in enumerate(data)]
    else:
        median = finite(stats.get("median"), f"{name}: stats.median")
        samples = [Sample("wall_time", median, worker=0, index=0, loops=iterations)]
        extra["summary"] = {k: stats[k] for k in _SUMMARY_KEYS if k in stats}
        warnings.insert(0, f"only summary statistics in the file: the median of {stats.get('rounds', '?')} "
                           "rounds is stored as one value; write the file with --benchmark-json=FILE, or "
                           "save with --benchmark-save-data, to import every round")
    return BenchmarkResult(name=name, kind=IMPORTED_KIND, status=ResultStatus.OK,
                           samples=tuple(samples), params=params, warnings=tuple(warnings),
                           duration=float(stats.get("total") or 0.0), extra=extra)


def _environment(info: dict[str, Any]) -> dict[str, Any]:
    cpu = info.get("cpu") or {}
    build = info.get("python_build")
    return imported_environment(FORMAT, {
        "cpu_model": cpu.get("brand_raw") or info.get("processor"),
        "cpu_count": cpu.get("count"),
        "os": info.get("system"),
        "kernel": info.get("release"),
        "machine": info.get("machine"),
        "python": info.get("python_version"),
        "python_implementation": info.get("python_implementation"),
        "python_build": " ".join(build) if isinstance(build, list) else build,
        "python_compiler": info.get("python_compiler"),
        "hostname": info.get("node"),
    })
