"""Project configuration: ``perfloop.toml`` or ``[tool.perfloop]`` in ``pyproject.toml``.

The file is validated on load. Every problem raises :class:`~perfloop.errors.ConfigError`
naming the file, the key and the fix; the CLI prints it and exits 2, never a traceback.

A benchmark has exactly one target key: ``callable`` (``"module:function"``), ``command``
(an argv list or a shell string) or ``http`` (a table with ``url``). A ``params`` table of
lists expands into one benchmark per combination, named ``name[key=value,...]``.

Example::

    [defaults]
    processes = 6          # fresh worker processes (commands: measured runs; http: load periods)
    values = 5             # measured values per worker process (callables only)
    pythonpath = ["src"]   # benchmark keys every benchmark inherits: pythonpath, metrics, env,
    metrics = ["wall_time", "peak_rss"]   # cwd, custom_metrics

    [[benchmark]]
    name = "quote"
    callable = "shop.bench:quote"
    params = { items = [10, 100] }
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, TypedDict

# The settings and the readers of values live in config_schema, which suite_config shares;
# they are named here too, as part of what this module offers.
from .config_schema import (CONFIDENCE, DECIDE_ON, DEFAULT_RUN_NOISE, DEFAULT_TOLERANCE, MAX_NAME,
                            SETTING_RULES, Choice, Flag, Number, Settings, check_name, check_rule,
                            check_setting, name_problem, read_number, read_string, read_table,
                            setting_problem, settings_from, shown, str_list, str_map)
from .errors import ConfigError
from .metrics import BUILTIN, DEFAULT_METRICS, SUPPORTED_METRICS
from .suite_config import SuiteSpec, SuiteTarget, parse_suites

__all__ = [
    "CONFIDENCE", "CONFIG_FILES", "DECIDE_ON", "DEFAULT_RUN_NOISE", "DEFAULT_TOLERANCE",
    "INHERITED_KEYS", "MAX_GRID", "MAX_NAME", "SETTING_RULES", "BenchmarkSpec", "Choice",
    "DeclaredMetrics", "Flag", "HttpSpec", "Number", "ProjectConfig", "ServerSpec", "Settings",
    "SuiteSpec", "SuiteTarget", "check_name", "check_setting", "find_config", "load_config",
    "name_problem", "parse_config", "setting_problem", "settings_from", "shown", "str_list",
    "str_map",
]

CONFIG_FILES = ("perfloop.toml", "pyproject.toml")
#: Benchmarks one ``params`` grid may expand to: far beyond any suite anyone runs, and a bound
#: on a typo (a list of 400 values times another of 400) that would take minutes to expand.
MAX_GRID = 10_000


@dataclass(frozen=True)
class ServerSpec:
    """A server perfloop starts before an HTTP benchmark and stops after it."""

    command: tuple[str, ...] | str
    ready_url: str
    ready_timeout: float = 30.0
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpSpec:
    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    rate: float = 50.0          # requests per second, fixed (open loop)
    duration: float = 5.0       # seconds of load per repetition
    connections: int = 32       # upper bound on concurrent requests in flight
    request_timeout: float = 10.0


class DeclaredMetrics(TypedDict):
    """A benchmark's custom metrics as its results record them: unit and direction by name."""

    units: dict[str, str]
    directions: dict[str, str]


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark after parameter expansion: a named target, its metrics and settings."""

    name: str
    base_name: str
    kind: str                                   # "callable" | "command" | "http"
    settings: Settings
    metrics: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    # callable
    callable: str | None = None
    setup: str | None = None
    teardown: str | None = None
    pythonpath: tuple[str, ...] = ()
    # command
    command: tuple[str, ...] | str | None = None
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    # http
    http: HttpSpec | None = None
    server: ServerSpec | None = None
    # custom metric declarations: name -> (unit, direction)
    custom_metrics: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    root: str = "."                             # project directory, for relative paths
    # a benchmark of a [[suite]]: kind "callable", no callable
    suite: SuiteTarget | None = None

    @property
    def tracemalloc(self) -> bool:
        return "peak_alloc" in self.metrics


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    path: Path | None
    defaults: Settings
    benchmarks: tuple[BenchmarkSpec, ...]
    store: str | None = None
    # [[suite]] tables whose benchmarks are not collected yet:
    # perfloop.measure.suites.with_suites collects them into ``benchmarks``
    suites: tuple[SuiteSpec, ...] = ()
    risk: Mapping[str, Any] = field(default_factory=dict)   # [risk], checked by workflows.risk

    def select(self, names: list[str] | None) -> list[BenchmarkSpec]:
        """Benchmarks whose name or base name is in ``names`` (all when ``names`` is empty)."""
        if not names:
            return list(self.benchmarks)
        chosen = [b for b in self.benchmarks if b.name in names or b.base_name in names]
        unknown = [n for n in names if not any(n in (b.name, b.base_name) for b in self.benchmarks)]
        if unknown:
            known = ", ".join(sorted({b.base_name for b in self.benchmarks})) or "none"
            raise ConfigError(f"no benchmark named {', '.join(unknown)}", path=str(self.path),
                              hint=f"known benchmarks: {known}")
        return chosen


_HTTP_RULES: dict[str, Number] = {
    "rate": Number(integer=False, low=0, high=1e6, low_open=True, example="100"),
    "duration": Number(integer=False, low=0, high=86400, low_open=True, example="5"),
    "request_timeout": Number(integer=False, low=0, high=3600, low_open=True, example="10"),
    "connections": Number(integer=True, low=1, high=100_000, example="32"),
}
_READY_TIMEOUT = Number(integer=False, low=0, high=7 * 86400, low_open=True, example="30")
_TARGET_KEYS = ("callable", "command", "http")
_BENCH_KEYS = {"name", "params", "metrics", "setup", "teardown", "pythonpath", "cwd", "env",
               "server", "custom_metrics", *_TARGET_KEYS, *SETTING_RULES}
_HTTP_KEYS = {"url", "method", *_HTTP_RULES, "headers", "body", "json"}
_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
_SERVER_KEYS = {"command", "ready_url", "ready_timeout", "cwd", "env"}
_CUSTOM_METRIC_KEYS = {"unit", "direction"}
_DIRECTIONS = ("lower", "higher")
_CUSTOM_METRIC_EXAMPLE = 'e.g. custom_metrics = { score = { unit = "points", direction = "higher" } }'



def find_config(root: Path) -> Path | None:
    """The configuration file of the project at ``root``: perfloop.toml first, then pyproject."""
    toml = root / "perfloop.toml"
    if toml.is_file():
        return toml
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_bytes().decode("utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            return None
        if "perfloop" in data.get("tool", {}):
            return pyproject
    return None


def load_config(root: str | Path = ".") -> ProjectConfig:
    """Load and validate the configuration of the project at ``root``."""
    root = Path(root).resolve()
    path = find_config(root)
    if path is None:
        raise ConfigError(f"no perfloop.toml (or [tool.perfloop] in pyproject.toml) in {root}",
                          hint="create perfloop.toml with a [[benchmark]] table, or pass -C DIR "
                               "to point at the project")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise ConfigError(f"is not UTF-8 text (byte {exc.start}, line {line})", path=str(path),
                          hint="TOML files are UTF-8: save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)") \
            from exc
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror or exc}", path=str(path),
                          hint="check its permissions") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path),
                          hint="fix the syntax at the line and column shown") from exc
    except RecursionError as exc:
        raise ConfigError("nests tables or arrays too deeply", path=str(path),
                          hint="flatten the nested values") from exc
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("perfloop", {})
    return parse_config(data, root=root, path=path)


def parse_config(data: Mapping[str, Any], *, root: Path, path: Path | None = None) -> ProjectConfig:
    """Validate a configuration already read from TOML (a dict)."""
    where = str(path) if path else "<config>"
    # [[parameter]] (the tuning registry) and [audit] are read by their own workflows
    unknown = set(data) - {"defaults", "benchmark", "store", "suite", "parameter", "audit", "risk"}
    if unknown:
        raise ConfigError(f"unknown top-level key(s): {', '.join(sorted(unknown))}", path=where,
                          hint="allowed: [defaults], [[benchmark]], [[suite]], store, "
                               "[[parameter]], [audit], [risk]")
    raw_defaults = read_table(data.get("defaults", {}), where, "defaults",
                          "e.g. [defaults]\nprocesses = 10")
    # [defaults] holds settings, and benchmark keys that every benchmark inherits
    extra = set(raw_defaults) - set(SETTING_RULES) - set(INHERITED_KEYS)
    if extra:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(extra))}", path=where,
                          key="defaults",
                          hint=f"allowed: {', '.join([*SETTING_RULES, *INHERITED_KEYS])}")
    shared = {k: v for k, v in raw_defaults.items() if k in INHERITED_KEYS}
    defaults = settings_from(raw_defaults, Settings(), where, "defaults")
    suites = parse_suites(data.get("suite"), defaults, root, where)
    raw = data.get("benchmark", [])
    if suites and "benchmark" not in data:
        raw = []
    elif not isinstance(raw, list) or not raw:
        raise ConfigError("no benchmarks defined", path=where, key="benchmark",
                          hint='add a table like:\n[[benchmark]]\nname = "fast"\ncallable = "mymod:func"')
    specs: list[BenchmarkSpec] = []
    for i, item in enumerate(raw):
        specs.extend(_benchmark(_inherit(item, shared), i, defaults, root, where))
    dupes = sorted(n for n, count in Counter(s.name for s in specs).items() if count > 1)
    if dupes:
        raise ConfigError(f"duplicate benchmark name(s): {', '.join(dupes)}", path=where,
                          key="benchmark", hint="give each [[benchmark]] a unique name")
    store = data.get("store")
    if store is not None and not isinstance(store, str):
        raise ConfigError(f"store must be a SQLAlchemy URL string, got {shown(store)}", path=where,
                          key="store", hint='e.g. store = "sqlite:///.perfloop/perfloop.db"')
    risk = read_table(data.get("risk", {}), where, "risk", 'e.g. [risk.boundaries] storage = ["app/db.py"]')
    return ProjectConfig(root=root, path=path, defaults=defaults, benchmarks=tuple(specs), store=store,
                         suites=suites, risk=dict(risk))


#: Benchmark keys ``[defaults]`` may hold too: lists and tables add to each benchmark's own
#: (its entries win), ``cwd`` is replaced by a benchmark's own, and ``metrics`` applies to each
#: benchmark that can measure them (an HTTP benchmark has no ``peak_alloc``).
INHERITED_KEYS = ("pythonpath", "metrics", "env", "cwd", "custom_metrics")


def _inherit(item: Any, shared: Mapping[str, Any]) -> Any:
    """``item`` (a [[benchmark]] table) with what it inherits from ``[defaults]``."""
    if not isinstance(item, Mapping) or not shared:
        return item
    merged = dict(item)
    for key, value in shared.items():
        own = item.get(key)
        if key == "pythonpath":
            first = [own] if isinstance(own, str) else list(own or [])
            inherited = [value] if isinstance(value, str) else value
            merged[key] = first + [p for p in inherited if p not in first] \
                if isinstance(inherited, list) else inherited
        elif key in ("env", "custom_metrics") and isinstance(value, Mapping):
            merged[key] = {**value, **own} if isinstance(own, Mapping) else (own or dict(value))
        elif key == "metrics" and own is None and isinstance(value, list):
            kind = next((k for k in _TARGET_KEYS if k in item), None)
            declared = set(merged.get("custom_metrics") or {})
            usable = [m for m in value if kind is None or m in SUPPORTED_METRICS[kind] or m in declared]
            if usable:
                merged[key] = usable
        elif own is None:
            merged[key] = value
    return merged



def _command(raw: object, where: str, key: str) -> tuple[str, ...] | str:
    if isinstance(raw, str) and raw.strip():
        return raw
    if isinstance(raw, list) and raw and all(isinstance(a, str) for a in raw):
        return tuple(raw)
    raise ConfigError(f"must be an argv list of strings or a shell string, got {shown(raw)}",
                      path=where, key=key,
                      hint='e.g. command = ["python", "-m", "shop.cli"] or command = "make bench"')


def _function(raw: object, where: str, key: str) -> str:
    """A ``module:function`` reference (callable, setup, teardown)."""
    name = key.rsplit(".", 1)[-1]
    if not isinstance(raw, str) or ":" not in raw:
        raise ConfigError(f"{name} must be 'module:function', got {shown(raw)}", path=where,
                          key=key, hint=f'e.g. {name} = "shop.pricing:quote"')
    return raw


# --- [[benchmark]] -----------------------------------------------------------------------------

def _benchmark(item: object, index: int, defaults: Settings, root: Path,
               where: str) -> list[BenchmarkSpec]:
    table = read_table(item, where, f"benchmark.{index}", 'e.g. [[benchmark]]\nname = "fast"')
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("every benchmark needs a name", path=where, key=f"benchmark.{index}",
                          hint='add name = "..."')
    key = f"benchmark.{check_name(name, where, f'benchmark.{index}')}"
    unknown = set(table) - _BENCH_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s): {', '.join(sorted(unknown))}", path=where, key=key,
                          hint=f"allowed: {', '.join(sorted(_BENCH_KEYS))}")
    targets = [k for k in _TARGET_KEYS if k in table]
    if len(targets) != 1:
        raise ConfigError("needs exactly one target: callable, command or http"
                          + (f" (found {', '.join(targets)})" if targets else ""), path=where, key=key,
                          hint='e.g. callable = "mymodule:myfunction"')
    kind = targets[0]
    for only, kinds in (("setup", "callable"), ("teardown", "callable"), ("params", "callable"),
                        ("server", "http")):
        if only in table and kind != kinds and (only != "params" or table[only]):
            verb = "apply" if only == "params" else "applies"
            raise ConfigError(f"{only} only {verb} to {kinds} benchmarks", path=where,
                              key=f"{key}.{only}", hint=f"remove {only} from this {kind} benchmark")
    custom = _custom_metrics(table.get("custom_metrics", {}), where, f"{key}.custom_metrics")
    spec = BenchmarkSpec(
        name=name, base_name=name, kind=kind, root=str(root),
        settings=settings_from(table, defaults, where, key),
        metrics=_metrics(table.get("metrics", list(DEFAULT_METRICS[kind])), kind, custom, where,
                         f"{key}.metrics"),
        custom_metrics=custom,
        callable=_function(table["callable"], where, f"{key}.callable") if kind == "callable" else None,
        setup=_function(table["setup"], where, f"{key}.setup") if "setup" in table else None,
        teardown=_function(table["teardown"], where, f"{key}.teardown") if "teardown" in table else None,
        pythonpath=str_list(table.get("pythonpath", []), where, f"{key}.pythonpath",
                            'e.g. pythonpath = ["src"]', one=True) if kind == "callable" else (),
        command=_command(table["command"], where, f"{key}.command") if kind == "command" else None,
        http=_http(table["http"], where, f"{key}.http") if kind == "http" else None,
        server=_server(table["server"], where, f"{key}.server") if "server" in table else None,
        cwd=read_string(table["cwd"], where, f"{key}.cwd", 'e.g. cwd = "app" (relative to the project)')
        if "cwd" in table else None,
        env=str_map(table.get("env"), where, f"{key}.env"))
    return [replace(spec, name=check_name(_full_name(name, params), where, f"{key}.params"),
                    params=params)
            for params in _grid(table.get("params", {}), where, f"{key}.params")]


def _full_name(name: str, params: Mapping[str, Any]) -> str:
    return name if not params else f"{name}[{','.join(f'{k}={v}' for k, v in params.items())}]"


def _custom_metrics(raw: object, where: str, key: str) -> dict[str, tuple[str, str]]:
    """``custom_metrics``: name -> (unit, direction)."""
    declared: dict[str, tuple[str, str]] = {}
    for name, decl in read_table(raw, where, key, _CUSTOM_METRIC_EXAMPLE).items():
        here = f"{key}.{name}"
        decl = read_table(decl, where, here,
                      f'write {name} = {{ unit = "...", direction = "lower" }} (direction: '
                      f'lower or higher is better)')
        unknown = set(decl) - _CUSTOM_METRIC_KEYS
        if unknown:
            raise ConfigError(f"unknown key(s): {', '.join(sorted(unknown))}", path=where, key=here,
                              hint="allowed: unit, direction")
        unit = decl.get("unit", "")
        if not isinstance(unit, str):
            raise ConfigError(f"unit must be a string, got {shown(unit)}", path=where,
                              key=f"{here}.unit", hint='e.g. unit = "ms" (or "" for a count)')
        check_rule(Choice(_DIRECTIONS), "direction", decl.get("direction", "lower"), where,
               f"{here}.direction")
        declared[str(name)] = (unit, decl.get("direction", "lower"))
    return declared


def _metrics(raw: object, kind: str, custom: Mapping[str, Any], where: str,
             key: str) -> tuple[str, ...]:
    metrics = str_list(raw, where, key, 'e.g. metrics = ["wall_time", "peak_rss"]', empty=False)
    for m in metrics:
        if m not in SUPPORTED_METRICS[kind] and m not in custom:
            hint = f"{kind} benchmarks measure: {', '.join(sorted(SUPPORTED_METRICS[kind]))}"
            if m not in BUILTIN:
                hint += "; declare a custom metric under custom_metrics"
            raise ConfigError(f"metric {m!r} is not available for a {kind} benchmark", path=where,
                              key=key, hint=hint)
    return tuple(dict.fromkeys(metrics))


def _grid(raw: object, where: str, key: str) -> list[dict[str, Any]]:
    """The combinations of a ``params`` table of lists ([{}] without one)."""
    grid = read_table(raw, where, key, "e.g. params = { items = [10, 100] }")
    axes = {str(k): (v if isinstance(v, list) else [v]) for k, v in grid.items()}
    if any(len(v) == 0 for v in axes.values()):
        raise ConfigError("each parameter needs at least one value", path=where, key=key,
                          hint="e.g. params = { items = [10, 100] }")
    size = math.prod(len(v) for v in axes.values())
    if size > MAX_GRID:
        shape = " x ".join(f"{len(v)} {k}" for k, v in axes.items())
        raise ConfigError(f"params expand to {size:,} benchmarks ({shape}), more than {MAX_GRID:,}",
                          path=where, key=key,
                          hint="measure fewer values per parameter, or split the grid into "
                               "benchmarks that each vary what matters")
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def _http(raw: object, where: str, key: str) -> HttpSpec:
    if isinstance(raw, str):
        raw = {"url": raw}
    fix = 'e.g. http = { url = "http://127.0.0.1:8000/health", rate = 100 }'
    table = read_table(raw, where, key, fix)
    unknown = set(table) - _HTTP_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s): {', '.join(sorted(unknown))}", path=where, key=key,
                          hint=f"allowed: {', '.join(sorted(_HTTP_KEYS))}")
    url = table.get("url")
    if not isinstance(url, str):
        raise ConfigError("http needs a url", path=where, key=key, hint=fix)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"url must start with http:// or https://, got {shown(url)}", path=where,
                          key=f"{key}.url", hint='e.g. url = "http://127.0.0.1:8000/health"')
    headers = str_map(table.get("headers"), where, f"{key}.headers")
    body = table.get("body")
    if "json" in table:
        import json
        body = json.dumps(table["json"])
        headers.setdefault("content-type", "application/json")
    if body is not None and not isinstance(body, str):
        raise ConfigError(f"body must be a string, got {shown(body)}", path=where, key=f"{key}.body",
                          hint='e.g. body = "a=1", or json = { a = 1 } for a JSON body')
    method = table.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in _HTTP_METHODS:
        raise ConfigError(f"unsupported method {shown(method)}", path=where, key=f"{key}.method",
                          hint=f"one of {', '.join(_HTTP_METHODS)}")
    given = {name: read_number(rule, name, table[name], where, f"{key}.{name}")
             for name, rule in _HTTP_RULES.items() if name in table}
    spec = HttpSpec(url=url, method=method.upper(), headers=headers, body=body)
    return replace(spec, rate=given.get("rate", spec.rate),
                   duration=given.get("duration", spec.duration),
                   request_timeout=given.get("request_timeout", spec.request_timeout),
                   connections=int(given.get("connections", spec.connections)))


def _server(raw: object, where: str, key: str) -> ServerSpec:
    fix = ('e.g. server = { command = ["uvicorn", "app:app"], '
           'ready_url = "http://127.0.0.1:8000/health" }')
    table = read_table(raw, where, key, fix)
    if "command" not in table or not isinstance(table.get("ready_url"), str):
        raise ConfigError("server needs command and ready_url", path=where, key=key, hint=fix)
    unknown = set(table) - _SERVER_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s): {', '.join(sorted(unknown))}", path=where, key=key,
                          hint=f"allowed: {', '.join(sorted(_SERVER_KEYS))}")
    cwd = table.get("cwd")
    return ServerSpec(
        command=_command(table["command"], where, f"{key}.command"), ready_url=table["ready_url"],
        ready_timeout=read_number(_READY_TIMEOUT, "ready_timeout", table.get("ready_timeout", 30.0),
                              where, f"{key}.ready_timeout"),
        cwd=None if cwd is None else read_string(cwd, where, f"{key}.cwd",
                                             'e.g. cwd = "app" (relative to the project)'),
        env=str_map(table.get("env"), where, f"{key}.env"))
