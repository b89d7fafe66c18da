"""asv suites: discovery of ``time_*``, ``peakmem_*`` and ``track_*``, and running one in a worker.

Discovery (:func:`collect`, in a subprocess) imports the suite directory as asv does (its
parent on ``sys.path``, the directory a package) and walks its modules. A benchmark is a
function or a method of a class whose name starts with ``time_``, ``peakmem_`` or ``track_``;
its attributes are looked up on the function, then the class, then the module, as asv does:
``params``/``param_names``, ``setup``/``teardown``, ``setup_cache``, ``number``, ``repeat``,
``timeout`` and ``unit``.

Names are asv's (``module.Class.time_x``, the suite's package left out) and a parameter
combination is written ``module.Class.time_x[n=10,kind=a]``, perfloop's own convention, which
is also what ``perfloop import`` makes of an asv results file: a measured series and an
imported one of the same benchmark carry the same name.

In a worker (:func:`run`) the class is instantiated, ``setup(*args)`` called once, and then:
``time_`` is timed by perfloop's loop (with the benchmark's ``number`` as the fixed loop count
when it sets one), ``peakmem_`` is called once and the process's peak RSS is its value,
``track_`` is called once and its return value is the ``track`` metric. ``setup_cache`` runs
once per suite directory and benchmark run, its result pickled beside the task's other files
and handed to setup, the benchmark and teardown as asv does. ``mem_`` and ``timeraw_``
benchmarks are not measured: discovery reports them as failed with the reason.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import inspect
import itertools
import os
import time
import pickle
import pkgutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from ..channel import ResultChannel, peak_rss_bytes
from .pytest_side import SuiteError
from .timing import call_timer, timed_values

MODES = {"time_": "time", "peakmem_": "peakmem", "track_": "track"}
UNSUPPORTED = ("mem_", "timeraw_")
ATTRIBUTES = ("params", "param_names", "setup", "teardown", "setup_cache", "number", "repeat",
              "timeout", "unit")


def _import_suite(directory: Path) -> str:
    """Put the suite's parent on sys.path; the package name the suite imports under."""
    parent = str(directory.resolve().parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    return directory.resolve().name


def _attr(sources: list[Any], name: str, default: Any = None) -> Any:
    for source in sources:
        if hasattr(source, name):
            return getattr(source, name)
    return default


def _grid(params: Any, names: Any) -> tuple[list[list[Any]], list[str]]:
    """asv's parameter grid: a list of lists (one per axis), or one list for a single axis."""
    if not params:
        return [], []
    grid = [list(p) for p in params] if all(isinstance(p, (list, tuple)) for p in params) and \
        isinstance(names, (list, tuple)) and len(names) == len(params) else [list(params)]
    if not isinstance(names, (list, tuple)) or len(names) != len(grid):
        names = [f"param{i + 1}" for i in range(len(grid))]
    return grid, [str(n) for n in names]


def _shown(value: Any) -> Any:
    """A parameter value as asv's results show it: its repr, read back when it is a literal."""
    text = repr(value)
    try:
        read = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return read if isinstance(read, (str, int, float, bool)) or read is None else text


def _benchmarks(module: Any, prefix: str) -> list[tuple[str, list[Any], str]]:
    """(name, attribute sources, target) of each benchmark function and method in ``module``."""
    found = []
    short = module.__name__[len(prefix):]
    for name, obj in sorted(vars(module).items()):
        if inspect.isclass(obj) and obj.__module__ == module.__name__:
            for attr in sorted(dir(obj)):
                if attr.startswith((*MODES, *UNSUPPORTED)) and callable(getattr(obj, attr)):
                    found.append((f"{short}.{name}.{attr}", [getattr(obj, attr), obj, module],
                                  f"{module.__name__}:{name}.{attr}"))
        elif inspect.isfunction(obj) and obj.__module__ == module.__name__ and \
                name.startswith((*MODES, *UNSUPPORTED)):
            found.append((f"{short}.{name}", [obj, module], f"{module.__name__}:{name}"))
    return found


def collect(path: str) -> dict[str, Any]:
    """Discover the benchmarks of the asv suite in directory ``path`` (run in a subprocess)."""
    directory = Path(path)
    package = _import_suite(directory)
    benchmarks: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    names = [package] + [m.name for m in pkgutil.walk_packages([str(directory)], prefix=package + ".")]
    for module_name in names:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            errors.append({"name": module_name[len(package) + 1:] or module_name,
                           "error": f"importing {module_name} failed: {type(exc).__name__}: {exc}"})
            continue
        for name, sources, target in _benchmarks(module, package + "."):
            benchmarks.extend(_entries(name, sources, target))
    return {"benchmarks": benchmarks, "errors": errors, "others": 0}


def _entries(name: str, sources: list[Any], target: str) -> list[dict[str, Any]]:
    leaf = name.rsplit(".", 1)[-1]
    if leaf.startswith(UNSUPPORTED):
        return [{"name": name, "base_name": name, "select": target, "params": {},
                 "error": f"asv {leaf.split('_')[0]}_ benchmarks are not measured by perfloop "
                          "(only time_, peakmem_ and track_)"}]
    mode = next(m for p, m in MODES.items() if leaf.startswith(p))
    grid, axis_names = _grid(_attr(sources, "params", []), _attr(sources, "param_names", []))
    number = _attr(sources, "number", 0)
    repeat = _attr(sources, "repeat", 0)
    timeout = _attr(sources, "timeout", None)
    entry = {"base_name": name, "select": target, "mode": mode,
             "number": int(number) if isinstance(number, int) and number > 0 else None,
             "repeat": repeat if isinstance(repeat, int) and repeat > 0 else None,
             "timeout": float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else None,
             "unit": str(_attr(sources, "unit", "unit")) if mode == "track" else None}
    out = []
    combos = list(itertools.product(*grid)) if grid else [()]
    for index, combo in enumerate(combos):
        params = {k: _shown(v) for k, v in zip(axis_names, combo)}
        full = name if not params else f"{name}[{','.join(f'{k}={v}' for k, v in params.items())}]"
        out.append({**entry, "name": full, "params": params, "combo": index if grid else None})
    return out


# --------------------------------------------------------------------------------------------
# measurement inside a worker


def _resolve(target: str) -> tuple[Any, list[Any], Callable[..., Any]]:
    """(instance or None, attribute sources, bound benchmark) for ``module:Class.method``."""
    module_name, _, path = target.partition(":")
    module = importlib.import_module(module_name)
    cls_name, _, method = path.rpartition(".")
    if cls_name:
        cls = getattr(module, cls_name)
        instance = cls()
        return instance, [getattr(instance, method), instance, module], getattr(instance, method)
    fn = getattr(module, method)
    return None, [fn, module], fn


def _cached(sources: list[Any], suite: dict[str, Any]) -> list[Any]:
    """``[setup_cache()]`` when the benchmark has one (computed once, then read back), else []."""
    setup_cache = _attr(sources, "setup_cache")
    if setup_cache is None:
        return []
    owner = getattr(setup_cache, "__qualname__", "setup_cache")
    # One file per project root (the gate's base and head differ), module and owner of setup_cache,
    # in the directory the parent made for this perfloop process and removes when it exits.
    key = hashlib.sha1(f"{suite['root']}\0{suite['select'].partition(':')[0]}\0{owner}".encode())
    path = Path(suite.get("cache_dir") or tempfile.gettempdir()) / f"{key.hexdigest()[:20]}.pickle"
    if path.exists():
        with open(path, "rb") as f:
            return [pickle.load(f)]
    value = setup_cache()
    scratch = path.with_suffix(f".{os.getpid()}.tmp")
    with open(scratch, "wb") as f:
        pickle.dump(value, f)
    os.replace(scratch, path)
    return [value]


@contextlib.contextmanager
def prepared(suite: dict[str, Any]) -> Iterator[tuple[Callable[..., Any], list[Any], list[Any]]]:
    """The benchmark of ``suite`` set up: yields (bound benchmark, its arguments, attribute sources)
    and tears it down after. Raises :class:`SuiteError` with the phase that failed."""
    _import_suite(Path(suite["root"]) / suite["directory"])
    try:
        _, sources, fn = _resolve(suite["select"])
    except Exception as exc:
        raise SuiteError("import", f"{type(exc).__name__}: {exc}") from exc
    grid, _ = _grid(_attr(sources, "params", []), _attr(sources, "param_names", []))
    args: list[Any] = list(list(itertools.product(*grid))[suite["combo"]]) if grid else []
    try:
        args = _cached(sources, suite) + args
        setup = _attr(sources, "setup")
        if setup is not None:
            setup(*args)
    except NotImplementedError as exc:
        raise SuiteError("setup", "setup raised NotImplementedError: asv skips this benchmark "
                                  f"for these parameters {exc}".rstrip()) from exc
    except Exception as exc:
        raise SuiteError("setup", f"{type(exc).__name__}: {exc}") from exc
    yield fn, args, sources
    teardown = _attr(sources, "teardown")
    try:
        if teardown is not None:
            teardown(*args)
    except Exception as exc:
        raise SuiteError("teardown", f"{type(exc).__name__}: {exc}") from exc


def run(task: dict[str, Any], channel: ResultChannel) -> None:
    """Run one asv benchmark (one parameter combination) in this worker."""
    suite = task["suite"]
    with prepared(suite) as (fn, args, sources):
        try:
            if suite["mode"] == "time":
                number = _attr(sources, "number", 0)
                loops = number if isinstance(number, int) and number > 0 else None
                timed_values(task, channel, call_timer(fn, tuple(args)), loops=loops)
            elif suite["mode"] == "track":
                value = fn(*args)
                channel.send("value", index=0, warmup=False, loops=1, wall_time=0.0, cpu_time=0.0,
                             custom={"track": float(value)})
            else:
                # peakmem_: one call, whose process peak RSS is the value (sent with ``end``);
                # the one value the parent asked for carries the call's own times
                wall, cpu = time.perf_counter(), time.process_time()
                fn(*args)
                channel.send("value", index=0, warmup=False, loops=1,
                             wall_time=time.perf_counter() - wall, cpu_time=time.process_time() - cpu)
        except Exception as exc:
            raise SuiteError("call", f"{type(exc).__name__}: {exc}") from exc
        peak = peak_rss_bytes()
    channel.send("end", peak_rss=peak)
