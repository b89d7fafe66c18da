"""The settings and the values of a configuration file: what each key accepts, checked one way.

:class:`Settings` (how much to measure) and the rules of its keys (``SETTING_RULES``) are held
to the same bounds wherever a value comes from: the file, a CLI option (:func:`check_setting`)
or code that builds ``Settings`` itself. The readers below check one kind of value each (a
table, a list of strings, a number...) and raise :class:`~perfloop.errors.ConfigError` naming
the file, the key and the fix. :mod:`perfloop.config` and :mod:`perfloop.suite_config` read
their tables with them.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, replace
from typing import Any, Mapping

from .errors import ConfigError, UsageError

#: Longest benchmark name (parameters included): names are shown in tables and CI logs.
MAX_NAME = 500
#: Values of the ``decide_on`` setting.
DECIDE_ON = ("auto", "wall_time", "cpu_time", "cpu_norm", "instructions")
DEFAULT_TOLERANCE = 0.05
DEFAULT_RUN_NOISE = 0.05   # see docs/statistics.md, "Separately measured runs"


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
        # the bounds a configuration file is held to (SETTING_RULES) hold for code too
        for name, rule in SETTING_RULES.items():
            problem = rule.problem(name, getattr(self, name))
            if problem:
                raise UsageError(problem[0], hint=problem[1])


# --- the schema: what every key accepts, and the fix a message shows --------------------------

@dataclass(frozen=True)
class Number:
    """What a numeric key accepts: an integer or any number, within a range whose ends are
    open or closed. ``fraction`` marks a share written as 0.05, not 5 (5 gets a hint)."""

    integer: bool
    low: float
    high: float
    example: str
    low_open: bool = False
    high_open: bool = False
    fraction: bool = False

    def describe(self) -> str:
        noun = "an integer" if self.integer else "a fraction" if self.fraction else "a number"
        low = f"greater than {self.low:g}" if self.low_open else f"at least {self.low:g}"
        high = f"less than {self.high:g}" if self.high_open else f"at most {self.high:g}"
        return f"{noun}, {low} and {high}"

    def problem(self, name: str, value: object) -> tuple[str, str] | None:
        """(problem, fix) when ``value`` is unfit for key ``name``; None when it is fit."""
        fix = f"e.g. {name} = {self.example}"
        wrong = f"{name} must be {self.describe()}, got {shown(value)}"
        if isinstance(value, bool) or not isinstance(value, int if self.integer else (int, float)):
            return wrong, fix
        if isinstance(value, float) and not math.isfinite(value):
            return wrong, fix
        above = self.low < value if self.low_open else self.low <= value
        below = value < self.high if self.high_open else value <= self.high
        if above and below:
            return None
        if self.fraction and 1 <= value <= 100:
            fix = f"{name} is a fraction: write {value / 100:g} for {value:g}%"
        return wrong, fix


@dataclass(frozen=True)
class Choice:
    """What a key naming one of a few options accepts."""

    options: tuple[str, ...]

    def problem(self, name: str, value: object) -> tuple[str, str] | None:
        if isinstance(value, str) and value in self.options:
            return None
        return (f"{name} must be one of {', '.join(self.options)}, got {shown(value)}",
                f'e.g. {name} = "{self.options[0]}"')


@dataclass(frozen=True)
class Flag:
    """What an on/off key accepts: true or false."""

    def problem(self, name: str, value: object) -> tuple[str, str] | None:
        if isinstance(value, bool):
            return None
        return f"{name} must be true or false, got {shown(value)}", f"e.g. {name} = false"


#: The settings of [defaults], [[benchmark]] and [[suite]], and what each accepts. The upper
#: bounds stop mistakes that would overflow (a process count, a deadline) far from the file.
SETTING_RULES: dict[str, Number | Choice | Flag] = {
    "processes": Number(integer=True, low=1, high=100_000, example="10"),
    "values": Number(integer=True, low=1, high=1_000_000, example="5"),
    "warmup": Number(integer=True, low=0, high=1_000_000, example="1"),
    "min_time": Number(integer=False, low=0, high=3600, example="0.02"),
    "tolerance": Number(integer=False, low=0, high=1, low_open=True, high_open=True,
                        fraction=True, example="0.05"),
    "run_noise": Number(integer=False, low=0, high=1, high_open=True, fraction=True,
                        example="0.03"),
    "timeout": Number(integer=False, low=0, high=7 * 86400, low_open=True, example="300"),
    "decide_on": Choice(DECIDE_ON),
    "reference": Flag(),
}
#: The confidence of a comparison's interval (an option of the commands that compare, not a
#: key of the file): below one half an interval says less than a coin toss.
CONFIDENCE = Number(integer=False, low=0.5, high=1, low_open=True, high_open=True,
                    fraction=True, example="0.99")


def setting_problem(name: str, value: object) -> tuple[str, str] | None:
    """(problem, fix) when ``value`` is unfit for setting ``name`` (a key of SETTING_RULES, or
    ``confidence``); None when it is fit. The one place the bounds of a setting live: the file,
    the CLI's options and the comparison functions all ask here."""
    rule = CONFIDENCE if name == "confidence" else SETTING_RULES[name]
    return rule.problem(name, value)


def check_setting(name: str, value: object, *, option: str | None = None) -> None:
    """UsageError when :func:`setting_problem` finds one; ``option`` (a CLI flag such as
    ``--tolerance``) is named in the message when the value came from one."""
    problem = setting_problem(name, value)
    if problem:
        message, fix = problem
        if option:
            message = f"{option}: {message}"
            fix = fix.replace(f"{name} = ", f"{option} ")
        raise UsageError(message, hint=fix)


# --- readers of one kind of value each: a table, a string list, a number... ----------------

def read_table(raw: object, where: str, key: str, fix: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"must be a table, got {shown(raw)}", path=where, key=key, hint=fix)
    return raw


def check_rule(rule: Number | Choice | Flag, name: str, value: object, where: str, key: str) -> None:
    problem = rule.problem(name, value)
    if problem:
        raise ConfigError(problem[0], path=where, key=key, hint=problem[1])


def read_number(rule: Number, name: str, value: object, where: str, key: str) -> float:
    check_rule(rule, name, value, where, key)
    assert isinstance(value, (int, float))
    return float(value)


def settings_from(raw: Mapping[str, Any], base: Settings, where: str, key: str) -> Settings:
    """``base`` with the settings ``raw`` (a table of the file at ``where``) sets; other keys of
    ``raw`` are the caller's to check."""
    values: dict[str, Any] = {}
    for name, rule in SETTING_RULES.items():
        if name in raw:
            check_rule(rule, name, raw[name], where, f"{key}.{name}")
            values[name] = raw[name]
    return replace(base, **values)


def str_map(raw: object, where: str, key: str) -> dict[str, str]:
    """A table of strings (numbers are taken as their text), such as ``env``."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                               for v in raw.values()):
        raise ConfigError(f"must be a table of strings, got {shown(raw)}", path=where, key=key,
                          hint=f'e.g. {key.rsplit(".", 1)[-1]} = {{ NAME = "value" }}')
    return {str(k): str(v) for k, v in raw.items()}


def str_list(raw: object, where: str, key: str, fix: str, *, one: bool = False,
             empty: bool = True) -> tuple[str, ...]:
    """A list of strings; a lone string too when ``one``; an empty list only when ``empty``."""
    if one and isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw) or (not raw and not empty):
        noun = "a non-empty list of strings" if not empty else "a list of strings"
        raise ConfigError(f"{key.rsplit('.', 1)[-1]} must be {noun}, got {shown(raw)}", path=where,
                          key=key, hint=fix)
    return tuple(raw)


def read_string(raw: object, where: str, key: str, fix: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{key.rsplit('.', 1)[-1]} must be a non-empty string, got {shown(raw)}",
                          path=where, key=key, hint=fix)
    return raw


def shown(value: Any, limit: int = 60) -> str:
    """A value as an error message may quote it: repr, shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def name_problem(name: str) -> tuple[str, str] | None:
    """What makes ``name`` unfit to be a benchmark name, as (problem, fix); None if it is fit.

    Names are shown in terminals, CI logs, Markdown, HTML and XML: no control or format
    characters (newlines, ANSI escapes, bidirectional overrides), at most MAX_NAME characters.
    """
    bad = sorted({f"U+{ord(c):04X}" for c in name if unicodedata.category(c) in ("Cc", "Cf")})
    if bad:
        return (f"the benchmark name {shown(name)} contains control characters ({', '.join(bad[:5])})",
                "use printable characters only in names and parameter values")
    if len(name) > MAX_NAME:
        return (f"the benchmark name {shown(name)} is {len(name)} characters long",
                f"names (with their parameters) are at most {MAX_NAME} characters")
    return None


def check_name(name: str, where: str, key: str) -> str:
    """``name``, or ConfigError naming the file and key when :func:`name_problem` finds one."""
    problem = name_problem(name)
    if problem:
        raise ConfigError(problem[0], path=where, key=key, hint=problem[1])
    return name

