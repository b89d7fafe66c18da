"""The profile model: call stacks with weights, and whose code each frame is.

A :class:`Profile` is a list of :class:`Stack` (frame indices, root first, and a weight in
seconds or in samples) over a table of :class:`Frame`. Profiles are read and written by
:mod:`perfloop.analysis.profile_formats` and ranked by :mod:`perfloop.analysis.hotspots`;
:mod:`perfloop.analysis.profiles` gathers the three.

**Whose code is it.** Every frame has a *kind*: ``user`` (the project's own code), ``stdlib``,
``library`` (site-packages, dist-packages), ``native`` (built-in functions, C code),
``generated`` (code compiled from a string: namedtuple and dataclass methods, ``exec``) or
``perfloop`` (this package, including its profiling worker). Modules named in a hypothesis
count as user code even when installed in site-packages.
"""

from __future__ import annotations

import math
import os
import re
import sysconfig
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

KINDS = ("user", "stdlib", "library", "native", "generated", "perfloop")
UNITS = ("seconds", "samples")
OUTSIDE_USER_CODE = "(outside user code)"


# --------------------------------------------------------------------------------------------
# the model


@dataclass(frozen=True)
class Frame:
    """One function: where it is defined, which module it belongs to and whose code it is."""

    function: str          # name within its module, "apply_discounts" or "Cart.total"
    file: str              # absolute path, or a pseudo file such as "<built-in>"
    line: int = 0          # first line of the function (0 when unknown)
    module: str = ""       # dotted module name, "" when unknown (built-ins)
    kind: str = "user"

    def __post_init__(self) -> None:
        if not self.function:
            raise ValueError("a frame needs a function name")
        if self.kind not in KINDS:
            raise ValueError(f"frame kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.line < 0:
            raise ValueError(f"frame line must be >= 0, got {self.line}")

    @property
    def name(self) -> str:
        """``module:function``, the spelling a hypothesis uses."""
        return f"{self.module}:{self.function}" if self.module else self.function

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Stack:
    """One call stack (indices into :attr:`Profile.frames`, root first) and its weight."""

    frames: tuple[int, ...]
    weight: float
    thread: str = ""
    line: int = 0          # the line the innermost frame was at, when the profiler says (py-spy)


@dataclass(frozen=True)
class Profile:
    """Stacks with weights. Immutable; checked on construction.

    ``unit`` is ``"seconds"`` (weights are time) or ``"samples"`` (weights are counts; with
    ``interval`` set, one sample stands for that many seconds). ``calls`` is how many times the
    profiled callable ran, when known, so that profiles of different lengths compare per call.
    """

    frames: tuple[Frame, ...]
    stacks: tuple[Stack, ...]
    unit: str = "seconds"
    profiler: str = ""
    duration: float = 0.0
    calls: int | None = None
    interval: float | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "frames", tuple(self.frames))
        object.__setattr__(self, "stacks", tuple(self.stacks))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))
        if self.unit not in UNITS:
            raise ValueError(f"profile unit must be one of {', '.join(UNITS)}, got {self.unit!r}")
        n = len(self.frames)
        for stack in self.stacks:
            w = stack.weight
            if not isinstance(w, (int, float)) or math.isnan(w) or math.isinf(w) or w < 0:
                raise ValueError(f"stack weight must be a finite number >= 0, got {w!r}")
            if any(not 0 <= i < n for i in stack.frames):
                raise ValueError("stack refers to a frame index outside the frame table")
        if self.calls is not None and self.calls < 0:
            raise ValueError("calls must be >= 0")

    @property
    def total(self) -> float:
        return sum(s.weight for s in self.stacks)

    @property
    def seconds_per_unit(self) -> float | None:
        """Seconds one unit of weight stands for, or None when samples have no known interval."""
        if self.unit == "seconds":
            return 1.0
        return self.interval

    @property
    def threads(self) -> list[str]:
        return list(dict.fromkeys(s.thread for s in self.stacks))

    def is_empty(self) -> bool:
        return not self.stacks or self.total <= 0


class _Builder:
    """Interns frames and merges identical stacks while a profile is being read."""

    def __init__(self, paths: Sequence[str] = (), user_modules: Sequence[str] = ()) -> None:
        self.paths = _norm_paths(paths)
        self.user_modules = tuple(user_modules)
        self.frames: list[Frame] = []
        self.index: dict[tuple[str, str, int], int] = {}
        self.weights: dict[tuple[tuple[int, ...], str, int], float] = defaultdict(float)

    def frame(self, function: str, file: str, line: int = 0, module: str | None = None) -> int:
        key = (function, file, line)
        found = self.index.get(key)
        if found is not None:
            return found
        if module is None:
            module = module_for_file(file, self.paths)
        kind = classify_file(file)
        if kind != "user" and self.user_modules and _module_in(module, self.user_modules):
            kind = "user"
        self.frames.append(Frame(function=function or "?", file=file, line=max(0, int(line or 0)),
                                 module=module, kind=kind))
        self.index[key] = len(self.frames) - 1
        return self.index[key]

    def add(self, frames: Sequence[int], weight: float, thread: str = "", line: int = 0) -> None:
        if weight > 0 and frames:
            self.weights[(tuple(frames), thread, line)] += weight

    def build(self, **kwargs: Any) -> Profile:
        stacks = [Stack(frames=f, weight=w, thread=t, line=n) for (f, t, n), w in self.weights.items()]
        return Profile(frames=tuple(self.frames), stacks=tuple(stacks), **kwargs)


# --------------------------------------------------------------------------------------------
# whose code is a file


def _dir(path: str) -> str:
    path = os.path.normpath(path)
    return path if path.endswith(os.sep) else path + os.sep


_STDLIB_DIRS = tuple(dict.fromkeys(_dir(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")))
_PERFLOOP_DIR = _dir(str(Path(__file__).resolve().parent.parent))
_SITE_RE = re.compile(r"[/\\](?:site|dist)-packages[/\\]")
_STDLIB_RE = re.compile(r"[/\\]lib[/\\]python3\.\d+t?[/\\]", re.IGNORECASE)
_PERFLOOP_RE = re.compile(r"[/\\](?:site|dist)-packages[/\\]perfloop[/\\]")


def classify_file(file: str) -> str:
    """The kind of code a file holds: user, stdlib, library, native or perfloop.

    Order matters: perfloop's own files first (it may be installed in site-packages), then
    site-packages (which sits inside the stdlib directory on some layouts), then the stdlib.
    """
    if not file or file == "~" or file.startswith("<built-in"):
        return "native"
    if file.startswith("<frozen "):
        return "stdlib"
    if file.startswith("<"):
        # <string>: namedtuple and dataclass methods, exec'd code. Charged to the user code that
        # called it, which is what a patch would change.
        return "generated"
    if file.startswith(_PERFLOOP_DIR) or _PERFLOOP_RE.search(file):
        return "perfloop"
    if _SITE_RE.search(file):
        return "library"
    if file.startswith(_STDLIB_DIRS) or _STDLIB_RE.search(file):
        return "stdlib"
    return "user"


def _norm_paths(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_dir(os.path.abspath(p)) for p in paths if p))


def module_for_file(file: str, paths: Sequence[str] = ()) -> str:
    """The dotted module name of ``file``: relative to the longest import root that holds it.

    Import roots are ``paths`` (the profiled process's ``sys.path``, best), site-packages
    directories and the stdlib. Without a root, the file's stem is the module name.
    """
    if not file or file == "~" or file.startswith("<built-in"):
        return ""
    if file.startswith("<frozen ") and file.endswith(">"):
        return file[len("<frozen "):-1]
    if file.startswith("<"):
        return ""
    roots = list(_norm_paths(paths))
    site = _SITE_RE.search(file)
    if site:
        roots.append(file[:site.end()])
    std = _STDLIB_RE.search(file)
    if std:
        roots.append(file[:std.end()])
    roots.extend(_STDLIB_DIRS)
    best = ""
    for root in roots:
        if file.startswith(root) and len(root) > len(best):
            best = root
    rel = file[len(best):] if best else os.path.basename(file)
    rel = re.sub(r"\.(py|pyc|pyw|pyx|so|pyd)$", "", rel)
    rel = re.sub(r"\.cpython-[^.]*$", "", rel)
    parts = [p for p in re.split(r"[/\\]", rel) if p]
    if parts and parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _module_in(module: str, names: Sequence[str]) -> bool:
    """True when ``module`` is one of ``names`` or inside one (dotted), or ends with one.

    The suffix match lets ``shop.pricing`` match a frame resolved as ``examples.shop.pricing``
    when the profiled process had a different import root.
    """
    for name in names:
        if not name:
            continue
        if module == name or module.startswith(name + ".") or module.endswith("." + name) \
                or ("." + name + ".") in ("." + module + "."):
            return True
    return False


__all__ = ["KINDS", "OUTSIDE_USER_CODE", "UNITS", "Frame", "Profile", "Stack", "classify_file",
           "module_for_file"]
