"""asv (airspeed velocity) results files, format version 2 (asv 0.5 and later).

A file is ``results/MACHINE/HASH-ENV.json``: ``{"version": 2, "commit_hash", "env_name", "date",
"params": {machine facts}, "requirements", "result_columns": [...], "results": {name: row}}``
where each row holds the values of ``result_columns`` in order (trailing empty columns are
dropped): ``result`` (one value per parameter combination, ``null`` when it failed), ``params``
(the parameter grid, as lists of ``repr`` strings), ``stats_number`` (calls averaged per
sample), ``samples`` (the raw samples per combination, written only with
``asv run --record-samples``) and more (``asv/results.py``: ``Results.save``).

One benchmark per parameter combination, named ``name[p1=v1,p2=v2]`` as perfloop names its own;
the parameter names come from ``results/benchmarks.json`` when it sits beside the machine
directory, else asv's defaults ``param1, param2...``. The metric follows asv's name prefixes:
``time_``/``timeraw_`` -> ``wall_time``, ``peakmem_`` -> ``peak_rss``, ``mem_`` -> custom
``mem_size`` (bytes), ``track_`` -> custom ``track`` (the unit from benchmarks.json). Without
samples the file holds asv's summary (the median) only: that is stored as one value, with a
warning. asv concatenates the samples of its rounds (processes) without marking which came from
which, so all are filed under worker 0. A combination whose result is ``null`` is stored as a
failed result. asv keeps no branch; the commit hash is the run's commit.
"""

from __future__ import annotations

import ast
import itertools
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..records import BenchmarkResult, ResultStatus, Sample
from .parsed import (IMPORTED_KIND, ImportedRun, InvalidResultsFile, derived_label, finite,
                     imported_environment, text_or_none)

FORMAT = "asv"
SUPPORTED_VERSION = 2
ONE_PROCESS = ("asv does not record which process (round) each sample came from: the values count "
               "as one worker, so a comparison treats them as independent and its interval ignores "
               "the noise between processes (narrower than the truth)")


def parse(data: dict[str, Any], path: Path) -> ImportedRun:
    version = data.get("version")
    if version != SUPPORTED_VERSION:
        raise InvalidResultsFile(path, f"is an asv results file of format version {version!r}; "
                                       f"perfloop reads version {SUPPORTED_VERSION} (asv 0.5 and later)",
                                 hint="rewrite old results with a recent asv: asv update")
    columns = data.get("result_columns")
    rows = data.get("results")
    if not isinstance(columns, list) or not isinstance(rows, dict):
        raise InvalidResultsFile(path, "has no result_columns list or results object, expected an "
                                       "asv results file (results/MACHINE/HASH-ENV.json)")
    if path.name in ("machine.json", "benchmarks.json"):
        raise InvalidResultsFile(path, f"is asv's {path.name}, not a results file",
                                 hint="pass a results/MACHINE/HASH-ENV.json file")
    described = _benchmarks_json(path)
    results: list[BenchmarkResult] = []
    notes: list[str] = []
    summary_only = 0
    for name, row in rows.items():
        if not isinstance(row, list):
            raise ValueError(f"{name}: its row must be a list aligned with result_columns")
        cells = dict(zip(columns, row))
        for result in _results(name, cells, described.get(name) or {}):
            summary_only += "summary_only" in result.extra
            results.append(result)
    if summary_only:
        notes.append(f"{summary_only} result(s) have asv's summary only (run without --record-samples): "
                     "each is stored as one value, the median")
    machine = data.get("params") or {}
    date = data.get("date")
    return ImportedRun(
        path=str(path), format=FORMAT, label=derived_label(path),
        commit=text_or_none(data.get("commit_hash")), branch=None, dirty=False,
        environment=_environment(machine, data), results=tuple(results),
        source={"version": version, "env_name": data.get("env_name"),
                "date": _iso(date) if isinstance(date, (int, float)) else None},
        notes=tuple(notes))


def _benchmarks_json(path: Path) -> dict[str, Any]:
    """asv's benchmarks.json (parameter names, units) from ``results/``, or {} when absent."""
    candidate = path.resolve().parent.parent / "benchmarks.json"
    try:
        data = json.loads(candidate.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _metric(name: str, described: dict[str, Any]) -> tuple[str, str]:
    leaf = name.rsplit(".", 1)[-1]
    kind = described.get("type")
    if kind == "time" or leaf.startswith(("time_", "timeraw_")):
        return "wall_time", "s"
    if kind == "peakmemory" or leaf.startswith("peakmem_"):
        return "peak_rss", "B"
    if kind == "memory" or leaf.startswith("mem_"):
        return "mem_size", "B"
    return "track", str(described.get("unit") or "")


def _value(text: Any) -> Any:
    """A parameter value from asv's ``repr`` string: ``"'a'"`` -> ``"a"``, ``"10"`` -> 10."""
    if not isinstance(text, str):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if isinstance(value, (str, int, float, bool)) or value is None else text


def _results(name: str, cells: dict[str, Any], described: dict[str, Any]) -> list[BenchmarkResult]:
    grid = cells.get("params") or []
    if not isinstance(grid, list) or not all(isinstance(axis, list) for axis in grid):
        raise ValueError(f"{name}: params must be a list of lists")
    names = described.get("param_names") or [f"param{i + 1}" for i in range(len(grid))]
    if len(names) != len(grid):
        names = [f"param{i + 1}" for i in range(len(grid))]
    combos = list(itertools.product(*grid)) if grid else [()]
    values = cells.get("result")
    if not isinstance(values, list) or len(values) != len(combos):
        raise ValueError(f"{name}: result must be a list of {len(combos)} value(s), one per "
                         "parameter combination")
    samples_by_combo = cells.get("samples") or [None] * len(combos)
    numbers = cells.get("stats_number") or [None] * len(combos)
    if len(samples_by_combo) != len(combos) or len(numbers) != len(combos):
        raise ValueError(f"{name}: samples and stats_number must have one entry per combination")
    metric, unit = _metric(name, described)
    out = []
    for combo, value, raw, number in zip(combos, values, samples_by_combo, numbers):
        params = {k: _value(v) for k, v in zip(names, combo)}
        full = name if not params else f"{name}[{','.join(f'{k}={v}' for k, v in params.items())}]"
        loops = max(int(number), 1) if isinstance(number, (int, float)) and number == number else 1
        extra: dict[str, Any] = {"loops": loops, "asv_version": cells.get("version"),
                                 "asv_duration": cells.get("duration")}
        units = {metric: unit} if metric not in ("wall_time", "peak_rss") else {}
        if value is None or (isinstance(value, float) and value != value):
            # asv writes null for a failed combination and NaN for a skipped one.
            out.append(BenchmarkResult(name=full, kind=IMPORTED_KIND, status=ResultStatus.FAILED,
                                       params=params, units=units, extra=extra,
                                       error="asv recorded no value: the benchmark failed or was skipped "
                                             "for these parameters"))
            continue
        warnings = []
        if raw:
            samples = [Sample(metric, finite(v, f"{full}: sample"), worker=0, index=j, loops=loops)
                       for j, v in enumerate(raw)]
            warnings.append(ONE_PROCESS)
        else:
            samples = [Sample(metric, finite(value, f"{full}: result"), worker=0, loops=loops)]
            if metric == "wall_time":
                extra["summary_only"] = True
                warnings.append("only asv's summary in the file: its median is stored as one value; "
                                "run asv with --record-samples to import every sample")
        out.append(BenchmarkResult(name=full, kind=IMPORTED_KIND, status=ResultStatus.OK,
                                   samples=tuple(samples), params=params, units=units,
                                   warnings=tuple(warnings), extra=extra))
    return out


def _environment(machine: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    def number(value: Any) -> int | None:
        try:
            return int(value)
        except (TypeError, ValueError):
            return None

    requirements = data.get("requirements") or {}
    return imported_environment(FORMAT, {
        "cpu_model": machine.get("cpu"),
        "cpu_count": number(machine.get("num_cpu")),
        "memory_total": number(machine.get("ram")),
        "os": machine.get("os"),
        "machine": machine.get("arch"),
        "asv_machine": machine.get("machine"),   # the name asv files results under: an identity
        "python": machine.get("python") or data.get("python"),
        "asv_env": data.get("env_name"),
        "packages": requirements if isinstance(requirements, dict) else None,
    })


def _iso(millis: float) -> str:
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).isoformat()
