"""Importers: result files of other benchmark tools become stored perfloop runs.

A team adopts perfloop with the suite it already has: ``perfloop import`` reads the JSON that
pytest-benchmark, pyperf or asv wrote, detects which tool wrote it, and stores one run per file
with the file's commit, branch and machine facts::

    imported = read_results("0001_abc.json")          # parse and validate, store nothing
    with Store.open(url) as store:
        run_id = store_imported(store, imported)

Every file is read and checked whole before anything is written, and :func:`import_files`
checks *all* the files before it writes the first run: a bad file is an
:class:`InvalidResultsFile` (exit 2) naming the file and what was expected, and nothing is
stored. One format per module (:mod:`.pytest_benchmark`, :mod:`.pyperf`, :mod:`.asv`), each a
``parse(data, path) -> ImportedRun``.

Imported results have ``kind = "imported"`` and an environment marked ``"imported": <tool>``, so
they form their own environment class and are never compared silently with perfloop's own runs
of the same machine. Samples are tagged with the worker process they came from where the file
says so (pyperf); pytest-benchmark and asv do not record it, and their values are all filed
under worker 0 with a warning: perfloop's statistics take the worker as the unit, and rounds of
one process must not pass for separate processes.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..config import name_problem
from ..errors import UsageError
from ..records import RunStatus
from ..store import Store
from .parsed import IMPORTED_KIND, ImportedRun, InvalidResultsFile, derived_label

FORMATS = ("pytest-benchmark", "pyperf", "asv")


def load_json(path: Path) -> Any:
    """The JSON document in ``path`` (gzip-compressed too, as pyperf writes ``.json.gz``)."""
    if path.is_dir():
        raise InvalidResultsFile(path, "is a directory, expected a results file",
                                 hint=f"pass the files themselves, e.g. {path}/*.json (asv: "
                                      "results/MACHINE/*.json; machine.json is not a results file)")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InvalidResultsFile(path, "no such file", hint="check the path") from None
    except OSError as exc:
        raise InvalidResultsFile(path, f"cannot be read: {exc.strerror or exc}",
                                 hint="check the path and its permissions") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InvalidResultsFile(path, f"is a damaged gzip file: {exc}") from exc
    if not raw.strip():
        raise InvalidResultsFile(path, "is empty, expected a JSON results file")
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise InvalidResultsFile(path, "is not JSON (not even text), expected a JSON results file") from exc
    except json.JSONDecodeError as exc:
        if exc.pos == 0 or not raw.lstrip()[:1] in (b"{", b"["):
            what = "is not JSON"
        elif exc.pos >= len(raw.rstrip()) - 1:
            what = "ends before its JSON document does (truncated?)"
        else:
            what = "is not valid JSON"
        raise InvalidResultsFile(path, f"{what}: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise InvalidResultsFile(path, "nests arrays or objects too deeply to be a results file",
                                 hint="results files of pytest-benchmark, pyperf and asv nest a few "
                                      "levels; check what wrote this one") from exc
    except ValueError as exc:   # an integer of more than sys.get_int_max_str_digits() digits
        raise InvalidResultsFile(path, f"holds a number perfloop cannot read: {exc}",
                                 hint="numbers in a results file are times and counts") from exc


def detect_format(data: Any) -> str | None:
    """Which tool wrote this JSON document: ``"pytest-benchmark"``, ``"pyperf"``, ``"asv"``."""
    if not isinstance(data, dict):
        return None
    if "machine_info" in data and "benchmarks" in data:
        return "pytest-benchmark"
    if "benchmarks" in data and "version" in data and isinstance(data.get("benchmarks"), list):
        return "pyperf"
    if "result_columns" in data or ("commit_hash" in data and "results" in data):
        return "asv"
    return None


def _parser(fmt: str) -> Callable[[Any, Path], ImportedRun]:
    if fmt == "pytest-benchmark":
        from .pytest_benchmark import parse
    elif fmt == "pyperf":
        from .pyperf import parse
    elif fmt == "asv":
        from .asv import parse
    else:
        raise UsageError(f"unknown format {fmt!r}", hint=f"formats: {', '.join(FORMATS)}")
    return parse


def read_results(path: str | Path, *, fmt: str | None = None, label: str | None = None) -> ImportedRun:
    """Parse and validate one results file; nothing is stored.

    ``fmt`` forces a format instead of detecting it; ``label`` replaces the label derived from
    the file. Raises :class:`InvalidResultsFile` naming the file and what was expected.
    """
    path = Path(path)
    data = load_json(path)
    found = detect_format(data)
    if fmt is None:
        if found is None:
            raise InvalidResultsFile(path, "is JSON, but not the results of pytest-benchmark, pyperf "
                                           "or asv (no machine_info/benchmarks, version/benchmarks or "
                                           "result_columns keys)")
        fmt = found
    elif found is not None and found != fmt:
        raise InvalidResultsFile(path, f"looks like a {found} file, not {fmt}",
                                 hint=f"drop --format, or pass --format {found}")
    try:
        imported = _parser(fmt)(data, path)
    except InvalidResultsFile:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError,
            RecursionError) as exc:
        # Records check their values on construction; a malformed file surfaces here.
        raise InvalidResultsFile(path, f"is not a valid {fmt} file: {type(exc).__name__}: {exc}",
                                 hint=f"expected the JSON {fmt} writes; was it edited or cut short?") from exc
    if not imported.results:
        raise InvalidResultsFile(path, f"is a {fmt} file without any benchmark results")
    for result in imported.results:
        problem = name_problem(result.name)
        if problem:
            raise InvalidResultsFile(path, problem[0], hint=problem[1])
    _check_storable(imported)
    if label:
        from dataclasses import replace
        imported = replace(imported, label=label)
    return imported


def _check_storable(imported: ImportedRun) -> None:
    """Refuse what the store would refuse (NaN, non-JSON values) before the first write, so a
    file cannot fail half-way through being stored."""
    def check(value: Any, what: str) -> None:
        try:
            json.dumps(value, allow_nan=False, default=_plain_default)
        except (TypeError, ValueError) as exc:
            raise InvalidResultsFile(imported.path, f"{what} cannot be stored: {exc}") from exc

    check(dict(imported.environment), "the machine facts")
    check(dict(imported.source), "the file's facts")
    for r in imported.results:
        for part in ("params", "units", "directions", "extra"):
            check(dict(getattr(r, part)), f"the {part} of {r.name!r}")
        for s in r.samples:
            if not math.isfinite(s.value):
                raise InvalidResultsFile(imported.path, f"{r.name!r} has a non-finite value")
            for what in ("loops", "worker", "index"):
                if not -INT64 <= getattr(s, what) < INT64:   # a store column is a 64-bit integer
                    raise InvalidResultsFile(imported.path, f"{r.name!r} has a {what} count of "
                                             f"{getattr(s, what):.3g}, too large to be real",
                                             hint="check what wrote the file")


INT64 = 2 ** 63


def _plain_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def store_imported(store: Store, imported: ImportedRun) -> int:
    """Write one parsed file as a complete run; its id.

    The run is begun only after the whole file was validated. Should the store itself fail
    part-way (disk full, locked), the partial run is deleted (or, if even that fails, marked
    ``interrupted`` so that it is never taken for a complete import), and the error propagates.
    """
    from .. import __version__
    run_id = store.begin_run(
        label=imported.label, commit=imported.commit, branch=imported.branch, dirty=imported.dirty,
        environment=imported.environment,
        settings={"perfloop": __version__,
                  "imported": {"format": imported.format, "file": imported.path,
                               **dict(imported.source), "notes": list(imported.notes)}},
        project=str(Path(imported.path).resolve().parent))
    try:
        for result in imported.results:
            store.add_result(run_id, result)
    except BaseException:
        try:
            store.delete_run(run_id)
        except Exception:
            store.finish_run(run_id, RunStatus.INTERRUPTED)
        raise
    store.finish_run(run_id, RunStatus.COMPLETE)
    return run_id


def read_all(paths: Sequence[str | Path], *, fmt: str | None = None,
             label: str | None = None, branch: str | None = None) -> list[ImportedRun]:
    """Parse and validate every file (nothing is stored); the first bad file raises.

    With ``label`` and several files, each run is labelled ``LABEL/STEM`` so that each stays
    addressable by its label. ``branch`` files the runs whose file records no branch (asv's
    never do) under that branch, so that their history joins the runs perfloop measures there.
    """
    if not paths:
        raise UsageError("no files to import", hint="perfloop import FILE [FILE...]")
    if len(paths) > 1:
        # A shell glob such as results/MACHINE/*.json brings asv's machine.json along.
        paths = [p for p in paths if not is_asv_companion(p)] or list(paths)
    parsed: list[ImportedRun] = []
    for path in paths:
        own = label if len(paths) == 1 else (f"{label}/{derived_label(Path(path))}" if label else None)
        imported = read_results(path, fmt=fmt, label=own)
        parsed.append(replace(imported, branch=imported.branch or branch))
    return parsed


def is_asv_companion(path: str | Path) -> bool:
    """asv's ``machine.json`` or ``benchmarks.json``: read beside results files, not results."""
    path = Path(path)
    return path.name in ("machine.json", "benchmarks.json") and (
        (path.parent / "machine.json").is_file() or (path.parent / "benchmarks.json").is_file())


def import_files(store: Store, paths: Sequence[str | Path], *, fmt: str | None = None,
                 label: str | None = None, branch: str | None = None) -> list[tuple[ImportedRun, int]]:
    """Validate every file, then store one run per file; ``[(imported, run_id), ...]``.

    Nothing is stored unless every file is valid.
    """
    parsed = read_all(paths, fmt=fmt, label=label, branch=branch)
    return [(imported, store_imported(store, imported)) for imported in parsed]


__all__ = ["FORMATS", "IMPORTED_KIND", "ImportedRun", "InvalidResultsFile", "detect_format",
           "import_files", "read_all", "read_results", "store_imported"]
