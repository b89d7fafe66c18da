"""The parameter registry: every tunable the team has set, where it lives, its value, and why.

Declared in ``perfloop.toml`` (or ``[tool.perfloop]``)::

    [[parameter]]
    name = "product cache size"
    file = "shop/settings.py"        # relative to the project
    key = "DEFAULT_CACHE_SIZE"       # a Python constant here
    value = 128
    why = "the 128 most-sold products cover 90% of lookups"
    change = 12                      # the journal entry that set it (optional)

Where a value lives is told by the file (``kind`` overrides the guess):

- ``toml``, ``yaml``, ``json``: a dotted key, with numbers for list items (``server.pool.size``,
  ``benchmark.3.server.env.SHOP_POOL_SIZE``);
- ``ini`` (``.ini``, ``.cfg``): ``section.option``;
- ``python`` (``.py``): a module-level constant (``NAME = 64``, annotated or not);
- ``env`` (``.env``, shell scripts, Dockerfiles, anything else): ``NAME=value``,
  ``export NAME=value``, ``ENV NAME value``.

:func:`check` reads the real files and reports **drift** (the file says something else),
**unjournaled** changes (a commit changed a registered value and no journal entry or
``Perf-Change`` trailer accounts for it) and **undocumented** tunables (constants named like
sizes, pools, threads, timeouts or limits whose value changed in recent commits and that the
registry does not know).
"""

from __future__ import annotations

import ast
import configparser
import json
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..config import find_config
from ..errors import ConfigError
from ..store import Store
from . import gitlog

KINDS = ("toml", "yaml", "json", "ini", "python", "env")
_BY_SUFFIX = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".ini": "ini",
              ".cfg": "ini", ".py": "python"}
_FIELDS = {"name", "file", "key", "kind", "value", "why", "change", "set_by"}
#: Names that look like a tunable: a size, a pool, a count of threads, a timeout, a limit.
TUNABLE_NAME = re.compile(
    r"(SIZE|POOL|THREADS?|WORKERS?|TIMEOUT|LIMIT|MAX|MIN|CAPACITY|BATCH|TTL|CONCURRENCY|BUFFER"
    r"|RETRIES|INTERVAL|PREFETCH|CHUNK|QUEUE|BACKLOG|CONNECTIONS)", re.IGNORECASE)
# NAME = 12 / NAME: int = 12 / NAME=12 / export NAME=12 / name: 12 / ENV NAME 12
_ASSIGN = re.compile(
    r"^\s*(?:export\s+|ENV\s+|-\s+)?[\"']?(?P<name>[A-Za-z_][A-Za-z0-9_.]*)[\"']?"
    r"\s*(?::\s*[A-Za-z_][\w\[\], ]*)?\s*(?:=|:|\s)\s*[\"']?(?P<value>\d+(?:\.\d+)?)"
    r"\s*(?P<unit>[a-z]{0,3})[\"']?\s*(?:[#;,].*)?$")


@dataclass(frozen=True)
class Parameter:
    """One registered tunable."""

    name: str
    file: str
    key: str
    kind: str
    value: Any
    why: str = ""
    change: int | None = None
    set_by: str | None = None

    @property
    def leaf(self) -> str:
        """The last part of the key: what a line of a diff that changes it mentions."""
        return re.split(r"[.:]", self.key)[-1]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.file, "key": self.key, "kind": self.kind,
                "value": self.value, "why": self.why, "change": self.change, "set_by": self.set_by}


@dataclass(frozen=True)
class Problem:
    """Something ``params check`` found: drift, unjournaled, undocumented or unreadable."""

    kind: str
    subject: str              # the parameter's name, or file:NAME for undocumented ones
    message: str
    file: str
    commit: str | None = None
    date: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "message": self.message,
                "file": self.file, "commit": self.commit,
                "date": self.date.isoformat() if self.date else None, "details": dict(self.details)}


@dataclass(frozen=True)
class ParamReport:
    parameters: tuple[Parameter, ...]
    actual: Mapping[str, Any]        # parameter name -> value read from its file
    problems: tuple[Problem, ...]

    @property
    def failed(self) -> bool:
        return any(p.kind in ("drift", "unjournaled", "undocumented", "unreadable")
                   for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": not self.failed,
                "parameters": [{**p.to_dict(), "actual": self.actual.get(p.name)}
                               for p in self.parameters],
                "problems": [p.to_dict() for p in self.problems]}


# --------------------------------------------------------------------------------------------
# the registry


def raw_config(root: Path) -> tuple[Path | None, dict[str, Any]]:
    """The project's configuration as read from TOML, before validation ({} when none)."""
    path = find_config(root)
    if path is None:
        return None, {}
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from exc
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("perfloop", {})
    return path, data


def load_parameters(root: str | Path) -> list[Parameter]:
    """The ``[[parameter]]`` tables of the project's configuration, checked."""
    path, data = raw_config(Path(root))
    raw = data.get("parameter", [])
    where = str(path)
    if not isinstance(raw, list):
        raise ConfigError("parameter must be an array of tables", path=where, key="parameter",
                          hint="write [[parameter]] for each tunable")
    out: list[Parameter] = []
    for i, item in enumerate(raw):
        key = f"parameter[{i}]"
        if not isinstance(item, dict):
            raise ConfigError("not a table", path=where, key=key)
        unknown = set(item) - _FIELDS
        if unknown:
            raise ConfigError(f"unknown key(s): {', '.join(sorted(unknown))}", path=where, key=key,
                              hint=f"allowed: {', '.join(sorted(_FIELDS))}")
        for required in ("name", "file", "key", "value"):
            if required not in item:
                raise ConfigError(f"missing {required!r}", path=where, key=key,
                                  hint='e.g. name = "pool size", file = "app/settings.py", '
                                       'key = "POOL_SIZE", value = 16, why = "..."')
        kind = item.get("kind") or _BY_SUFFIX.get(Path(item["file"]).suffix.lower(), "env")
        if kind not in KINDS:
            raise ConfigError(f"kind {kind!r} is not known", path=where, key=f"{key}.kind",
                              hint=f"one of: {', '.join(KINDS)}")
        change = item.get("change")
        if change is not None and not isinstance(change, int):
            raise ConfigError("change must be a journal entry number", path=where, key=f"{key}.change")
        out.append(Parameter(name=str(item["name"]), file=str(item["file"]), key=str(item["key"]),
                             kind=kind, value=item["value"], why=str(item.get("why", "")),
                             change=change, set_by=item.get("set_by")))
    names = [p.name for p in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"duplicate parameter name(s): {', '.join(dupes)}", path=where, key="parameter")
    return out


# --------------------------------------------------------------------------------------------
# reading a value where it lives


class Unreadable(Exception):
    """The file or the key is not there."""


def read_value(root: str | Path, param: Parameter) -> Any:
    """The value ``param`` has in its file now (Unreadable when the file or key is missing)."""
    path = Path(root) / param.file
    try:
        text = path.read_text()
    except OSError as exc:
        raise Unreadable(f"cannot read {param.file}: {exc.strerror or exc}") from exc
    if param.kind == "python":
        return _python_constant(text, param.key, param.file)
    if param.kind == "env":
        return _env_value(text, param.key, param.file)
    if param.kind == "ini":
        parser = configparser.ConfigParser()
        try:
            parser.read_string(text)
            section, _, option = param.key.rpartition(".")
            return parser.get(section or "DEFAULT", option)
        except (configparser.Error, ValueError) as exc:
            raise Unreadable(f"{param.file}: no {param.key!r} ({exc})") from exc
    try:
        if param.kind == "toml":
            doc: Any = tomllib.loads(text)
        elif param.kind == "json":
            doc = json.loads(text)
        else:
            import yaml   # PyYAML: only needed when the registry names a YAML file
            doc = yaml.safe_load(text)
    except ImportError as exc:
        raise Unreadable(f"{param.file} is YAML and PyYAML is not installed: pip install pyyaml") from exc
    except Exception as exc:   # each parser has its own error type
        raise Unreadable(f"{param.file} cannot be parsed as {param.kind}: {exc}") from exc
    return _dotted(doc, param.key, param.file)


def _dotted(doc: Any, key: str, file: str) -> Any:
    node = doc
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise Unreadable(f"{file}: no key {key!r} (stopped at {part!r})")
    return node


def _python_constant(text: str, name: str, file: str) -> Any:
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise Unreadable(f"{file} is not valid Python: {exc}") from exc
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            try:
                return ast.literal_eval(value)
            except ValueError as exc:
                raise Unreadable(f"{file}: {name} is not a literal value") from exc
    raise Unreadable(f"{file}: no module-level constant {name}")


def _env_value(text: str, name: str, file: str) -> str:
    pattern = re.compile(rf"^\s*(?:export\s+|ENV\s+)?{re.escape(name)}\s*[=\s]\s*(?P<v>.*?)\s*$")
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            value = match["v"].split(" #", 1)[0].strip()
            return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" else value
    raise Unreadable(f"{file}: no variable {name} is set")


def same(registered: Any, actual: Any) -> bool:
    """Equal as values: ``64`` and ``"64"`` and ``64.0`` are the same setting."""
    if registered == actual:
        return True
    try:
        return float(str(registered).strip()) == float(str(actual).strip())
    except ValueError:
        return str(registered).strip() == str(actual).strip()


# --------------------------------------------------------------------------------------------
# the check


def check(root: str | Path, store: Store | None, *, since: datetime | None = None,
          parameters: Sequence[Parameter] | None = None) -> ParamReport:
    """Drift, unjournaled changes in git, and undocumented tunables (``since``: how far back)."""
    root = Path(root)
    params = list(parameters) if parameters is not None else load_parameters(root)
    actual: dict[str, Any] = {}
    problems: list[Problem] = []
    for p in params:
        try:
            value = read_value(root, p)
        except Unreadable as exc:
            problems.append(Problem("unreadable", p.name, str(exc), p.file))
            continue
        actual[p.name] = value
        if not same(p.value, value):
            problems.append(Problem(
                "drift", p.name, f"{p.name}: the registry says {p.value!r}, {p.file} says "
                f"{value!r} ({p.key})", p.file, details={"registered": p.value, "actual": value}))
    if gitlog.is_repository(root):
        known = _journaled_commits(store)
        problems += _unjournaled(root, params, known, since)
        problems += undocumented(root, params, since)
    return ParamReport(tuple(params), actual, tuple(problems))


def _journaled_commits(store: Store | None) -> set[str]:
    if store is None:
        return set()
    return {str(c) for change in store.changes() for c in change.commits}


def _touches(lines: Sequence[str], leaf: str) -> bool:
    word = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(leaf)}(?![A-Za-z0-9_])")
    return any(word.search(line) for line in lines)


def _unjournaled(root: Path, params: Sequence[Parameter], known: set[str],
                 since: datetime | None) -> list[Problem]:
    files = sorted({p.file for p in params})
    if not files:
        return []
    out = []
    for commit in gitlog.read_log(root, since=since, paths=files, patch=True):
        if commit.sha in known or commit.trailer("Perf-Change"):
            continue
        for p in params:
            lines = commit.changes.get(p.file, [])
            # a change of the value removes a line that sets it and adds one; a commit that
            # only adds it introduced the parameter (its first value is the registry's job)
            if len(commit.parents) <= 1 and _touches([x for x in lines if x[:1] == "-"], p.leaf) \
                    and _touches([x for x in lines if x[:1] == "+"], p.leaf):
                out.append(Problem(
                    "unjournaled", p.name, f"{p.name}: {p.file} ({p.leaf}) changed in "
                    f"{commit.sha[:12]} {commit.subject!r} with no journal entry",
                    p.file, commit=commit.sha, date=commit.date))
    return out


def undocumented(root: Path, params: Sequence[Parameter], since: datetime | None) -> list[Problem]:
    """Tunable-looking names whose numeric value changed in a commit since ``since``."""
    registered = {(p.file, p.leaf) for p in params} | {("*", p.leaf) for p in params}
    out: dict[tuple[str, str], Problem] = {}
    for commit in gitlog.read_log(root, since=since, patch=True):
        if len(commit.parents) > 1:
            continue       # a merge repeats what its branch did
        for file, lines in commit.changes.items():
            if _is_test(file):
                continue       # a test's constants tune the test, not the system
            old = _assignments(line[1:] for line in lines if line.startswith("-"))
            new = _assignments(line[1:] for line in lines if line.startswith("+"))
            for name, value in new.items():
                if name not in old or same(old[name], value) or not TUNABLE_NAME.search(name):
                    continue
                if (file, name) in registered or ("*", name) in registered or (file, name) in out:
                    continue       # newest first: the latest change of a name is reported
                out[(file, name)] = Problem(
                    "undocumented", f"{file}:{name}", f"{file}: {name} changed "
                    f"{old[name]} -> {value} in {commit.sha[:12]} {commit.subject!r}; it is "
                    "not in the registry", file, commit=commit.sha, date=commit.date,
                    details={"name": name, "old": old[name], "new": value})
    return list(out.values())


def _is_test(file: str) -> bool:
    parts = Path(file).parts
    return any(p in ("tests", "test", "testing") for p in parts[:-1]) or \
        Path(file).name.startswith("test_") or Path(file).stem.endswith("_test")


def _assignments(lines: Any) -> dict[str, str]:
    found = {}
    for line in lines:
        match = _ASSIGN.match(line)
        if match:
            found[match["name"].rsplit(".", 1)[-1]] = match["value"] + match["unit"]
    return found


__all__ = ["KINDS", "ParamReport", "Parameter", "Problem", "TUNABLE_NAME", "Unreadable", "check",
           "load_parameters", "raw_config", "read_value", "same", "undocumented"]
