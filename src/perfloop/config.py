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
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError
from .metrics import BUILTIN, DEFAULT_METRICS, SUPPORTED_METRICS

CONFIG_FILES = ("perfloop.toml", "pyproject.toml")
#: Benchmarks one ``params`` grid may expand to: far beyond any suite anyone runs, and a bound
#: on a typo (a list of 400 values times another of 400) that would take minutes to expand.
MAX_GRID = 10_000
#: Longest benchmark name (parameters included): names are shown in tables and CI logs.
MAX_NAME = 500
#: Upper bounds of the numeric settings: larger values are mistakes, and some would overflow
#: (a process count, a deadline) far from the file that set them.
_SETTING_LIMITS: dict[str, float] = {
    "processes": 100_000, "values": 1_000_000, "warmup": 1_000_000, "min_time": 3600.0,
    "timeout": 7 * 86400.0, "tolerance": 1e12, "run_noise": 1e12,   # range checked below
}
#: Values of the ``decide_on`` setting.
DECIDE_ON = ("auto", "wall_time", "cpu_time", "cpu_norm", "instructions")
DEFAULT_TOLERANCE = 0.05
DEFAULT_RUN_NOISE = 0.03   # see docs/statistics.md, "Separately measured runs"


@dataclass(frozen=True)
class Settings:
    """How much to measure. Defaults apply to every benchmark unless it overrides them."""

    processes: int = 10         # fresh worker processes (the statistical unit); commands: measured runs;
                                # http: load periods
    values: int = 5             # measured values per worker process (callables only)
    warmup: int = 1             # values discarded (and recorded as warmup) at the start of each worker
    min_time: float = 0.02      # seconds one value should last at least; fast callables are looped
    tolerance: float = DEFAULT_TOLERANCE  # relative change that matters
    # Run-to-run drift of time metrics on this machine (relative sd of a run's location) that no
    # interval inside one run can see; added when two separately measured runs are compared.
    run_noise: float = DEFAULT_RUN_NOISE
    timeout: float = 300.0      # seconds for the whole benchmark before it is killed
    # The time metric that decides: "auto" (CPU time for CPU-bound code, wall time for code
    # that waits; see docs/statistics.md), or "wall_time", "cpu_time", "cpu_norm", "instructions".
    decide_on: str = "auto"
    # Time a fixed reference workload beside every value of a callable (cpu_norm: CPU time in
    # units of it, which a change of the host's speed does not move); costs about half of
    # min_time per value.
    reference: bool = True

    def __post_init__(self) -> None:
        for name in ("processes", "values"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.warmup < 0:
            raise ValueError("warmup must be >= 0")
        if self.min_time < 0 or self.timeout <= 0:
            raise ValueError("min_time must be >= 0 and timeout > 0")
        if not 0 < self.tolerance < 1:
            raise ValueError("tolerance must be a fraction between 0 and 1, e.g. 0.05 for 5%")
        if not 0 <= self.run_noise < 1:
            raise ValueError("run_noise must be a fraction between 0 and 1, e.g. 0.02 for 2%")
        if self.decide_on not in DECIDE_ON:
            raise ValueError(f"decide_on must be one of {', '.join(DECIDE_ON)}, "
                             f"got {self.decide_on!r}")


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
    # a benchmark of a [[suite]] (perfloop.suite_config.SuiteTarget): kind "callable", no callable
    suite: Any = None

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
    # [[suite]] tables (perfloop.suite_config.SuiteSpec) whose benchmarks are not collected yet:
    # perfloop.measure.suites.with_suites collects them into ``benchmarks``
    suites: tuple[Any, ...] = ()
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


_SETTING_TYPES: dict[str, type | tuple[type, ...]] = {
    "processes": int, "values": int, "warmup": int,
    "min_time": (int, float), "tolerance": (int, float), "timeout": (int, float),
    "run_noise": (int, float), "decide_on": str, "reference": bool,
}
_HTTP_LIMITS: dict[str, float] = {"rate": 1e6, "duration": 86400.0, "request_timeout": 3600.0,
                                   "connections": 100_000}
_TARGET_KEYS = ("callable", "command", "http")
_BENCH_KEYS = {"name", "params", "metrics", "setup", "teardown", "pythonpath", "cwd", "env",
               "server", "custom_metrics", *_TARGET_KEYS, *_SETTING_TYPES}
_HTTP_KEYS = {"url", "method", "headers", "body", "json", "rate", "duration", "connections",
              "request_timeout"}
_SERVER_KEYS = {"command", "ready_url", "ready_timeout", "cwd", "env"}


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
    raw_defaults = data.get("defaults", {})
    if not isinstance(raw_defaults, Mapping):
        raise ConfigError("must be a table", path=where, key="defaults")
    # [defaults] holds settings, and benchmark keys that every benchmark inherits
    shared = {k: v for k, v in raw_defaults.items() if k in INHERITED_KEYS}
    defaults = _settings({k: v for k, v in raw_defaults.items() if k not in INHERITED_KEYS},
                         Settings(), where, "defaults")
    from .suite_config import parse_suites   # [[suite]]: its own module (imports this one)
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
        raise ConfigError("store must be a SQLAlchemy URL string", path=where, key="store")
    risk = data.get("risk", {})
    if not isinstance(risk, Mapping):
        raise ConfigError("[risk] must be a table", path=where, key="risk",
                          hint="e.g. [risk.boundaries] storage = [\"app/db.py\"]")
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


def _settings(raw: Any, base: Settings, where: str, key: str) -> Settings:
    if not isinstance(raw, Mapping):
        raise ConfigError("must be a table", path=where, key=key)
    values: dict[str, Any] = {}
    for name, typ in _SETTING_TYPES.items():
        if name not in raw:
            continue
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, typ):
            expected = "an integer" if typ is int else "a string" if typ is str else "a number"
            raise ConfigError(f"{name} must be {expected}, got {_shown(value)}", path=where,
                              key=f"{key}.{name}")
        values[name] = (value if typ is str else
                        _bounded(value, name, _SETTING_LIMITS[name], where, f"{key}.{name}"))
    if key == "defaults":
        extra = set(raw) - set(_SETTING_TYPES)
        if extra:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(extra))}", path=where, key=key,
                              hint=f"allowed: {', '.join([*_SETTING_TYPES, *INHERITED_KEYS])}")
    if "tolerance" in values and values["tolerance"] >= 1:
        raise ConfigError(f"tolerance is a fraction, got {values['tolerance']}", path=where,
                          key=f"{key}.tolerance", hint=f"write {values['tolerance'] / 100:g} for "
                                                        f"{values['tolerance']:g}%")
    try:
        return replace(base, **values)
    except ValueError as exc:
        raise ConfigError(str(exc), path=where, key=key) from exc


def _shown(value: Any, limit: int = 60) -> str:
    """A value as an error message may quote it: repr, shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _bounded(value: int | float, name: str, limit: float, where: str, key: str) -> int | float:
    """``value`` when finite and at most ``limit``; nan, inf and huge numbers are refused here,
    where the file and key can be named, not later where they overflow."""
    if not math.isfinite(value) or abs(value) > limit:
        raise ConfigError(f"{name} must be a finite number of at most {limit:g}, got {_shown(value)}",
                          path=where, key=key, hint=f"set {name} to a value between 0 and {limit:g}")
    return value


def name_problem(name: str) -> tuple[str, str] | None:
    """What makes ``name`` unfit to be a benchmark name, as (problem, fix); None if it is fit.

    Names are shown in terminals, CI logs, Markdown, HTML and XML: no control or format
    characters (newlines, ANSI escapes, bidirectional overrides), at most MAX_NAME characters.
    """
    bad = sorted({f"U+{ord(c):04X}" for c in name if unicodedata.category(c) in ("Cc", "Cf")})
    if bad:
        return (f"the benchmark name {_shown(name)} contains control characters ({', '.join(bad[:5])})",
                "use printable characters only in names and parameter values")
    if len(name) > MAX_NAME:
        return (f"the benchmark name {_shown(name)} is {len(name)} characters long",
                f"names (with their parameters) are at most {MAX_NAME} characters")
    return None


def check_name(name: str, where: str, key: str) -> str:
    """``name``, or ConfigError naming the file and key when :func:`name_problem` finds one."""
    problem = name_problem(name)
    if problem:
        raise ConfigError(problem[0], path=where, key=key, hint=problem[1])
    return name


def _str_map(raw: Any, where: str, key: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, (str, int, float)) for v in raw.values()):
        raise ConfigError("must be a table of strings", path=where, key=key)
    return {str(k): str(v) for k, v in raw.items()}


def _command(raw: Any, where: str, key: str) -> tuple[str, ...] | str:
    if isinstance(raw, str) and raw.strip():
        return raw
    if isinstance(raw, list) and raw and all(isinstance(a, str) for a in raw):
        return tuple(raw)
    raise ConfigError("must be an argv list of strings or a shell string", path=where, key=key,
                      hint='e.g. command = ["python", "-m", "shop.cli"] or command = "make bench"')


def _benchmark(item: Any, index: int, defaults: Settings, root: Path, where: str) -> list[BenchmarkSpec]:
    key = f"benchmark.{index}"
    if not isinstance(item, Mapping):
        raise ConfigError("must be a table", path=where, key=key)
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("every benchmark needs a name", path=where, key=key, hint='add name = "..."')
    check_name(name, where, key)
    key = f"benchmark.{name}"
    unknown = set(item) - _BENCH_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s): {', '.join(sorted(unknown))}", path=where, key=key,
                          hint=f"allowed: {', '.join(sorted(_BENCH_KEYS))}")
    targets = [k for k in _TARGET_KEYS if k in item]
    if len(targets) != 1:
        raise ConfigError("needs exactly one target: callable, command or http"
                          + (f" (found {', '.join(targets)})" if targets else ""), path=where, key=key,
                          hint='e.g. callable = "mymodule:myfunction"')
    kind = targets[0]
    settings = _settings(item, defaults, where, key)
    fields: dict[str, Any] = {}
    if kind == "callable":
        target = item["callable"]
        if not isinstance(target, str) or ":" not in target:
            raise ConfigError(f"callable must be 'module:function', got {target!r}", path=where,
                              key=f"{key}.callable", hint='e.g. callable = "shop.pricing:quote"')
        fields["callable"] = target
        for hook in ("setup", "teardown"):
            if hook in item:
                if not isinstance(item[hook], str) or ":" not in item[hook]:
                    raise ConfigError(f"{hook} must be 'module:function'", path=where, key=f"{key}.{hook}")
                fields[hook] = item[hook]
        paths = item.get("pythonpath", [])
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ConfigError("pythonpath must be a list of directories", path=where, key=f"{key}.pythonpath")
        fields["pythonpath"] = tuple(paths)
    elif kind == "command":
        fields["command"] = _command(item["command"], where, f"{key}.command")
    else:
        fields["http"] = _http(item["http"], where, f"{key}.http")
    if "server" in item:
        if kind != "http":
            raise ConfigError("server only applies to http benchmarks", path=where, key=f"{key}.server")
        fields["server"] = _server(item["server"], where, f"{key}.server")
    if "cwd" in item:
        if not isinstance(item["cwd"], str):
            raise ConfigError("cwd must be a directory path", path=where, key=f"{key}.cwd")
        fields["cwd"] = item["cwd"]
    fields["env"] = _str_map(item.get("env"), where, f"{key}.env")

    custom = item.get("custom_metrics", {})
    if not isinstance(custom, Mapping):
        raise ConfigError("custom_metrics must be a table: name = { unit = \"...\", direction = \"lower\" }",
                          path=where, key=f"{key}.custom_metrics")
    custom_metrics: dict[str, tuple[str, str]] = {}
    for mname, decl in custom.items():
        decl = decl if isinstance(decl, Mapping) else {}
        direction = decl.get("direction", "lower")
        if direction not in ("lower", "higher"):
            raise ConfigError(f"direction must be 'lower' or 'higher', got {direction!r}", path=where,
                              key=f"{key}.custom_metrics.{mname}")
        custom_metrics[mname] = (str(decl.get("unit", "")), direction)

    metrics = item.get("metrics", list(DEFAULT_METRICS[kind]))
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise ConfigError("metrics must be a non-empty list of metric names", path=where, key=f"{key}.metrics")
    for m in metrics:
        if m not in SUPPORTED_METRICS[kind] and m not in custom_metrics:
            supported = ", ".join(sorted(SUPPORTED_METRICS[kind]))
            hint = f"{kind} benchmarks measure: {supported}"
            if m not in BUILTIN:
                hint += "; declare a custom metric under custom_metrics"
            raise ConfigError(f"metric {m!r} is not available for a {kind} benchmark", path=where,
                              key=f"{key}.metrics", hint=hint)

    grid = item.get("params", {})
    if not isinstance(grid, Mapping):
        raise ConfigError("params must be a table of lists", path=where, key=f"{key}.params",
                          hint="e.g. params = { items = [10, 100] }")
    if kind != "callable" and grid:
        raise ConfigError("params only apply to callable benchmarks", path=where, key=f"{key}.params")
    axes = {k: (v if isinstance(v, list) else [v]) for k, v in grid.items()}
    if any(len(v) == 0 for v in axes.values()):
        raise ConfigError("each parameter needs at least one value", path=where, key=f"{key}.params")
    size = math.prod(len(v) for v in axes.values())
    if size > MAX_GRID:
        shape = " x ".join(f"{len(v)} {k}" for k, v in axes.items())
        raise ConfigError(f"params expand to {size:,} benchmarks ({shape}), more than {MAX_GRID:,}",
                          path=where, key=f"{key}.params",
                          hint="measure fewer values per parameter, or split the grid into "
                               "benchmarks that each vary what matters")
    combos = [dict(zip(axes, values)) for values in itertools.product(*axes.values())] if axes else [{}]
    specs = []
    for params in combos:
        full = name if not params else f"{name}[{','.join(f'{k}={v}' for k, v in params.items())}]"
        check_name(full, where, f"{key}.params")
        specs.append(BenchmarkSpec(name=full, base_name=name, kind=kind, settings=settings,
                                   metrics=tuple(dict.fromkeys(metrics)), params=params,
                                   custom_metrics=custom_metrics, root=str(root), **fields))
    return specs


def _http(raw: Any, where: str, key: str) -> HttpSpec:
    if isinstance(raw, str):
        raw = {"url": raw}
    if not isinstance(raw, Mapping) or not isinstance(raw.get("url"), str):
        raise ConfigError("http needs a url", path=where, key=key,
                          hint='e.g. http = { url = "http://127.0.0.1:8000/health", rate = 100 }')
    unknown = set(raw) - _HTTP_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s): {', '.join(sorted(unknown))}", path=where, key=key,
                          hint=f"allowed: {', '.join(sorted(_HTTP_KEYS))}")
    url = raw["url"]
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"url must start with http:// or https://, got {url!r}", path=where, key=f"{key}.url")
    headers = _str_map(raw.get("headers"), where, f"{key}.headers")
    body = raw.get("body")
    if "json" in raw:
        import json
        body = json.dumps(raw["json"])
        headers.setdefault("content-type", "application/json")
    if body is not None and not isinstance(body, str):
        raise ConfigError("body must be a string (or use json = {...})", path=where, key=f"{key}.body")
    numbers = {}
    for name in ("rate", "duration", "request_timeout"):
        if name in raw:
            v = raw[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"{name} must be a positive number", path=where, key=f"{key}.{name}")
            numbers[name] = float(_bounded(v, name, _HTTP_LIMITS[name], where, f"{key}.{name}"))
    if "connections" in raw:
        v = raw["connections"]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError("connections must be a positive integer", path=where, key=f"{key}.connections")
        numbers["connections"] = _bounded(v, "connections", _HTTP_LIMITS["connections"], where,
                                          f"{key}.connections")
    method = raw.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}:
        raise ConfigError(f"unsupported method {method!r}", path=where, key=f"{key}.method")
    return HttpSpec(url=url, method=method.upper(), headers=headers, body=body, **numbers)


def _server(raw: Any, where: str, key: str) -> ServerSpec:
    if not isinstance(raw, Mapping) or "command" not in raw or not isinstance(raw.get("ready_url"), str):
        raise ConfigError("server needs command and ready_url", path=where, key=key,
                          hint='e.g. server = { command = ["uvicorn", "app:app"], '
                               'ready_url = "http://127.0.0.1:8000/health" }')
    unknown = set(raw) - _SERVER_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s): {', '.join(sorted(unknown))}", path=where, key=key)
    timeout = raw.get("ready_timeout", 30.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError("ready_timeout must be a positive number of seconds", path=where,
                          key=f"{key}.ready_timeout")
    _bounded(timeout, "ready_timeout", _SETTING_LIMITS["timeout"], where, f"{key}.ready_timeout")
    return ServerSpec(command=_command(raw["command"], where, f"{key}.command"), ready_url=raw["ready_url"],
                      ready_timeout=float(timeout), cwd=raw.get("cwd"),
                      env=_str_map(raw.get("env"), where, f"{key}.env"))
