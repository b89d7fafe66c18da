"""The profile model: call stacks with weights, whatever profiler recorded them.

A :class:`Profile` is a list of :class:`Stack` (frame indices, root first, and a weight in
seconds or in samples) over a table of :class:`Frame`. It is built from a pyinstrument session
(:func:`from_pyinstrument`), from speedscope JSON such as ``py-spy record --format speedscope``
writes (:func:`from_speedscope`) or from cProfile statistics (:func:`from_cprofile`, a fallback:
cProfile records caller edges, not stacks, so its stacks are reconstructed approximately).

On top of the model:

- :func:`hot_spots` ranks functions by self share (or total share);
- :func:`~perfloop.analysis.hypothesis.check_hypothesis` (re-exported here) says whether the
  code a user suspects is where the time goes;
- :func:`diff_profiles` says which functions gained or lost time between two profiles;
- :func:`to_speedscope` writes the model back out for speedscope.app or any viewer.

**Whose code is it.** Every frame has a *kind*: ``user`` (the project's own code), ``stdlib``,
``library`` (site-packages, dist-packages), ``native`` (built-in functions, C code),
``generated`` (code compiled from a string: namedtuple and dataclass methods, ``exec``) or
``perfloop`` (this package, including its profiling worker). The *user hot-spot rule*: each
sample is charged to the innermost frame of user code on its stack; library, stdlib and native
frames below it are folded into it, because the user's function is the thing a patch can change.
A sample with no user frame on its stack is charged to ``(outside user code)``, which is listed
but never counts as the first user hot spot. Modules named in a hypothesis count as user code
even when installed in site-packages.
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
from typing import Any, Iterable, Iterator, Mapping, Sequence

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


# --------------------------------------------------------------------------------------------
# builders


def _pyinstrument_frame(info: str) -> tuple[str, str, int, str]:
    """(function, file, line, class) from a pyinstrument frame identifier with attributes."""
    identifier, _, attrs = info.partition("\x01")
    parts = identifier.split("\x00")
    function = parts[0] if parts else "?"
    file = parts[1] if len(parts) > 1 else ""
    try:
        line = int(parts[2]) if len(parts) > 2 else 0
    except ValueError:
        line = 0
    cls = ""
    for attr in attrs.split("\x01") if attrs else ():
        if attr.startswith("c"):
            cls = attr[1:]
    return function, file, line, cls


def from_pyinstrument(session: Any, *, paths: Sequence[str] | None = None,
                      skip_files: Sequence[str] = (), calls: int | None = None,
                      user_modules: Sequence[str] = ()) -> Profile:
    """Build a profile from a pyinstrument ``Session`` or its ``frame_records`` list.

    ``skip_files``: leading frames from these files (perfloop's worker loop) are dropped so that
    stacks start at the profiled code. Weights are seconds of wall time.
    """
    if hasattr(session, "frame_records"):
        records = session.frame_records
        duration = float(getattr(session, "duration", 0.0) or 0.0)
        if paths is None:
            paths = list(getattr(session, "sys_path", []) or [])
    else:
        records = session
        duration = 0.0
    b = _Builder(paths or (), user_modules)
    skip = set(skip_files)
    for stack, weight in records:
        thread = ""
        frames: list[int] = []
        leading = True
        for info in stack:
            function, file, line, cls = _pyinstrument_frame(info)
            if file == "<thread>":
                thread = function
                continue
            if leading and file in skip:
                continue
            leading = False
            frames.append(b.frame(f"{cls}.{function}" if cls else function, file, line))
        b.add(frames, float(weight), thread)
    profile = b.build(unit="seconds", profiler="pyinstrument", calls=calls)
    if not duration:
        duration = profile.total
    return Profile(frames=profile.frames, stacks=profile.stacks, unit="seconds",
                   profiler="pyinstrument", duration=duration, calls=calls)


_NAME_RE = re.compile(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*):(.+)$")


def from_speedscope(data: Mapping[str, Any], *, paths: Sequence[str] = (), profiler: str | None = None,
                    calls: int | None = None, interval: float | None = None,
                    user_modules: Sequence[str] = (), current_lines: bool | None = None) -> Profile:
    """Build a profile from a speedscope document (a parsed JSON dict).

    ``current_lines``: the document's frame lines are the lines each frame was at when sampled
    (py-spy without ``--function``; the default for a document py-spy exported). Each stack then
    keeps its innermost line (:attr:`Stack.line`, which tells a thread waiting at ``with lock:``
    from one computing), and frames are merged per function at its ``def`` line, read from the
    source.

    Reads ``sampled`` profiles (py-spy, and perfloop's own :func:`to_speedscope`) and ``evented``
    ones (pyinstrument's speedscope renderer). Each speedscope profile becomes one thread. A
    frame named ``module:function`` (as perfloop writes them) keeps that module; otherwise the
    module is resolved from the file path against ``paths``. Weights without a time unit are
    samples; ``interval`` says how many seconds one stands for, when known.
    """
    if not isinstance(data, Mapping) or "profiles" not in data:
        raise ValueError("not a speedscope document: no 'profiles' key")
    shared = data.get("shared", {}).get("frames", [])
    if current_lines is None:
        current_lines = str(data.get("exporter", "")).startswith("py-spy")
    b = _Builder(paths, user_modules)
    table: list[int] = []
    sampled: list[int] = []
    for fr in shared:
        name = str(fr.get("name", "?"))
        file = str(fr.get("file") or "")
        line = int(fr.get("line") or 0)
        module: str | None = None
        m = _NAME_RE.match(name)
        if m and not file.startswith("<built-in"):
            module, name = m.group(1), m.group(2)
        if not file and name.startswith("thread ("):
            file = "<thread>"
        sampled.append(line if current_lines else 0)
        if current_lines and line:
            line = def_line(file, name, line)
        table.append(b.frame(name, file, line, module))
    units = {"seconds": 1.0, "milliseconds": 1e-3, "microseconds": 1e-6, "nanoseconds": 1e-9}
    unit = "seconds"
    for prof in data["profiles"]:
        factor = units.get(prof.get("unit", "none"))
        if factor is None:
            unit = "samples"
            factor = 1.0
        thread = str(prof.get("name", ""))
        thread = re.sub(r'^Thread (\d+) "(.*)"$', lambda m: m.group(2) or m.group(1), thread)
        if prof.get("type") == "evented":
            for frames, weight in _evented_stacks(prof.get("events", []), table):
                b.add(frames, weight * factor, thread)
            continue
        samples = prof.get("samples", [])
        weights = prof.get("weights") or [1.0] * len(samples)
        for sample, weight in zip(samples, weights):
            kept = [i for i in sample if b.frames[table[i]].file != "<thread>"]
            b.add([table[i] for i in kept], float(weight) * factor, thread,
                  sampled[kept[-1]] if kept else 0)
    meta: dict[str, Any] = {}
    if data.get("exporter"):
        meta["exporter"] = data["exporter"]
    exporter = str(data.get("exporter", ""))
    m = re.match(r"^perfloop \((.+)\)$", exporter)   # what to_speedscope writes
    found = profiler or (m.group(1) if m else exporter.split("@")[0]) or "speedscope"
    profile = b.build(unit=unit, profiler=found, calls=calls, interval=interval, meta=meta)
    duration = 0.0
    for prof in data["profiles"]:
        span = float(prof.get("endValue", 0) or 0) - float(prof.get("startValue", 0) or 0)
        duration = max(duration, span * units.get(prof.get("unit", "none"), 0.0))
    return Profile(frames=profile.frames, stacks=profile.stacks, unit=profile.unit, profiler=found,
                   duration=duration or (profile.total if unit == "seconds" else 0.0),
                   calls=calls, interval=interval, meta=meta)


_DEF_RE = re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)")


def def_line(file: str, function: str, line: int, *, reach: int = 2000) -> int:
    """The line where ``function`` (``name`` or ``Class.name``) is defined, searching upwards
    from ``line``, a line inside it; ``line`` itself when the source cannot say."""
    if function == "<module>":
        return 0
    if file.startswith("<"):
        return line
    import linecache
    name = function.rsplit(".", 1)[-1]
    for n in range(line, max(0, line - reach), -1):
        m = _DEF_RE.match(linecache.getline(file, n))
        if m and m.group(1) == name:
            return n
    return line


def _evented_stacks(events: Sequence[Mapping[str, Any]], table: Sequence[int]
                    ) -> Iterator[tuple[list[int], float]]:
    stack: list[int] = []
    last = None
    for ev in events:
        at = float(ev.get("at", 0))
        if last is not None and stack and at > last:
            yield list(stack), at - last
        last = at
        if ev.get("type") == "O":
            stack.append(table[int(ev["frame"])])
        elif ev.get("type") == "C" and stack:
            stack.pop()


_BUILTIN_RE = re.compile(r"^<(?:built-in method|built-in function) ([\w.]+)>$")
_METHOD_RE = re.compile(r"^<method '(\w+)' of '([\w.]+)' objects>$")


def _cprofile_name(key: tuple[str, int, str]) -> tuple[str, str, int, str | None]:
    """(function, file, line, module) of a cProfile key; built-ins get a readable name."""
    file, line, name = key
    if file == "~":
        m = _BUILTIN_RE.match(name)
        if m:
            module, _, fn = m.group(1).rpartition(".")
            return fn, "<built-in>", 0, module
        m = _METHOD_RE.match(name)
        if m:
            module, _, cls = m.group(2).rpartition(".")
            return f"{cls}.{m.group(1)}", "<built-in>", 0, module
        return name, "<built-in>", 0, ""
    return name, file, line, None


def from_cprofile(stats: Any, *, paths: Sequence[str] = (), skip_files: Sequence[str] = (),
                  calls: int | None = None, duration: float = 0.0, max_depth: int = 64,
                  user_modules: Sequence[str] = ()) -> Profile:
    """Build a profile from cProfile statistics: a ``pstats.Stats`` or its ``.stats`` dict.

    cProfile keeps, per function, its self time and its callers, not whole stacks. Stacks are
    reconstructed by walking callers upward and splitting each function's self time across its
    callers in proportion to the time each caller spent in it. That is exact for a call tree
    and an approximation when a function is reached by several paths; ``meta["approximate"]``
    says so. Functions from ``skip_files`` (perfloop's worker) end the walk, and the profiler's
    own ``disable`` call is dropped.
    """
    raw = getattr(stats, "stats", stats)
    skip = set(skip_files)
    entries: dict[tuple[str, int, str], tuple[float, float, dict]] = {}
    for key, value in raw.items():
        key = tuple(key)  # JSON round trips turn tuples into lists
        if key[0] in skip or "_lsprof.Profiler" in key[2]:
            continue
        _cc, _nc, tt, ct, callers = value
        clean = {}
        for ckey, edge in (callers.items() if isinstance(callers, Mapping) else callers):
            ckey = tuple(ckey)
            if ckey[0] in skip or "_lsprof.Profiler" in ckey[2]:
                continue
            clean[ckey] = edge if isinstance(edge, (tuple, list)) else (edge, edge, 0.0, 0.0)
        entries[key] = (float(tt), float(ct), clean)
    grand = sum(tt for tt, _ct, _c in entries.values()) or 1.0
    # paths lighter than this end where they are: it bounds the number of stacks on large call
    # graphs (about the number of callers per function x 10,000) at a cost below 0.01% of time
    eps = grand * 1e-4
    b = _Builder(paths, user_modules)
    ids: dict[tuple[str, int, str], int] = {}
    for key in entries:
        fn, file, line, module = _cprofile_name(key)
        ids[key] = b.frame(fn, file, line, module)

    def paths_up(key: tuple, weight: float, seen: tuple) -> Iterator[tuple[list[int], float]]:
        callers = {c: e for c, e in entries[key][2].items() if c in entries and c not in seen}
        incoming = sum(float(e[3]) for e in callers.values())
        if not callers or incoming <= 0 or len(seen) >= max_depth or weight < eps:
            yield [ids[key]], weight
            return
        for ckey, edge in callers.items():
            share = float(edge[3]) / incoming
            for up, w in paths_up(ckey, weight * share, seen + (ckey,)):
                yield up + [ids[key]], w

    for key, (tt, _ct, callers) in entries.items():
        if tt <= 0:
            continue
        live = {c: e for c, e in callers.items() if c in entries and c != key}
        edge_self = sum(float(e[2]) for e in live.values())
        if not live:
            b.add([ids[key]], tt)
            continue
        for ckey, edge in live.items():
            # the self time this caller's calls account for; spread evenly if cProfile gave none
            part = tt * (float(edge[2]) / edge_self if edge_self > 0 else 1 / len(live))
            for up, w in paths_up(ckey, part, (key, ckey)):
                b.add(up + [ids[key]], w)
    profile = b.build(unit="seconds", profiler="cprofile", calls=calls)
    return Profile(frames=profile.frames, stacks=profile.stacks, unit="seconds", profiler="cprofile",
                   duration=duration or profile.total, calls=calls, meta={"approximate": True})


# --------------------------------------------------------------------------------------------
# hot spots


@dataclass(frozen=True)
class HotSpot:
    """A function's share of a profile. ``self`` excludes callees, ``total`` includes them.

    Seconds are per call of the profiled callable when the profile knows its call count, else
    for the whole profile; ``None`` when the profile's weights are samples of unknown length.
    """

    rank: int
    function: str            # "module:function"
    location: str            # "file:line"
    kind: str
    self_share: float
    total_share: float
    self_seconds: float | None
    total_seconds: float | None

    @property
    def user(self) -> bool:
        return self.kind == "user"


def _seconds(profile: Profile, weight: float) -> float | None:
    unit = profile.seconds_per_unit
    if unit is None:
        return None
    value = weight * unit
    return value / profile.calls if profile.calls else value


def _user_frame(profile: Profile, stack: Stack, user_modules: Sequence[str]) -> int | None:
    for i in reversed(stack.frames):
        fr = profile.frames[i]
        if fr.kind == "user" or (user_modules and _module_in(fr.module, user_modules)):
            return i
    return None


def _aggregate(profile: Profile, scope: str, user_modules: Sequence[str] = ()
               ) -> tuple[dict[str, float], dict[str, float], dict[str, Frame]]:
    """Self and total weight per function name (``module:function``) under a scope."""
    self_w: dict[str, float] = defaultdict(float)
    total_w: dict[str, float] = defaultdict(float)
    frames: dict[str, Frame] = {}
    for stack in profile.stacks:
        if not stack.frames:
            continue
        seen: set[str] = set()
        for i in stack.frames:
            fr = profile.frames[i]
            frames.setdefault(fr.name, fr)
            if fr.name not in seen:        # recursion: count a function once per sample
                seen.add(fr.name)
                total_w[fr.name] += stack.weight
        if scope == "user":
            owner = _user_frame(profile, stack, user_modules)
            key = profile.frames[owner].name if owner is not None else OUTSIDE_USER_CODE
        else:
            key = profile.frames[stack.frames[-1]].name
        self_w[key] += stack.weight
    return self_w, total_w, frames


def hot_spots(profile: Profile, *, limit: int = 15, by: str = "self", scope: str = "all",
              user_modules: Sequence[str] = ()) -> list[HotSpot]:
    """The functions holding the most time, ranked by self share (``by="total"``: total share).

    ``scope="all"``: self time is the leaf frame's, whoever's code it is. ``scope="user"``: the
    user hot-spot rule (module docstring), where each sample is charged to its innermost user
    frame and samples without one go to ``(outside user code)``.
    """
    if by not in ("self", "total"):
        raise ValueError("by must be 'self' or 'total'")
    if scope not in ("all", "user"):
        raise ValueError("scope must be 'all' or 'user'")
    total = profile.total
    if total <= 0:
        return []
    self_w, total_w, frames = _aggregate(profile, scope, user_modules)
    names = set(self_w) | (set(total_w) if by == "total" else set())
    if scope == "user" and by == "total":
        names = {n for n in names if n == OUTSIDE_USER_CODE or frames[n].kind == "user"
                 or _module_in(frames[n].module, user_modules)}

    def key(name: str) -> tuple[float, float, str]:
        primary = self_w.get(name, 0.0) if by == "self" else total_w.get(name, self_w.get(name, 0.0))
        secondary = total_w.get(name, 0.0) if by == "self" else self_w.get(name, 0.0)
        return (-primary, -secondary, name)

    out = []
    for rank, name in enumerate(sorted(names, key=key)[:limit], start=1):
        fr = frames.get(name)
        sw = self_w.get(name, 0.0)
        tw = total_w.get(name, sw)
        out.append(HotSpot(rank=rank, function=name,
                           location=fr.location if fr else "",
                           kind=(fr.kind if fr else "native") if name != OUTSIDE_USER_CODE else "native",
                           self_share=sw / total, total_share=tw / total,
                           self_seconds=_seconds(profile, sw), total_seconds=_seconds(profile, tw)))
    return out


def top_user_hot_spot(profile: Profile, *, user_modules: Sequence[str] = ()) -> HotSpot | None:
    """The first hot spot of user code under the user hot-spot rule, or None."""
    for spot in hot_spots(profile, limit=10_000, scope="user", user_modules=user_modules):
        if spot.function != OUTSIDE_USER_CODE:
            return spot
    return None


# --------------------------------------------------------------------------------------------
# diffs


@dataclass(frozen=True)
class FrameDelta:
    """How one function's time changed between two profiles.

    Functions are matched by ``module:function``, not by file, so a baseline profiled in another
    checkout (a git worktree) still lines up. Seconds are per call when both profiles know
    their call counts, else for each whole profile (then compare shares, not seconds).
    """

    function: str
    kind: str
    before_self_share: float
    after_self_share: float
    before_total_share: float
    after_total_share: float
    before_seconds: float | None     # total (inclusive) seconds
    after_seconds: float | None
    per_call: bool

    @property
    def share_change(self) -> float:
        return self.after_total_share - self.before_total_share

    @property
    def seconds_change(self) -> float | None:
        if self.before_seconds is None or self.after_seconds is None:
            return None
        return self.after_seconds - self.before_seconds


def diff_profiles(before: Profile, after: Profile, *, limit: int | None = None) -> list[FrameDelta]:
    """Which functions gained or lost time from ``before`` to ``after``, largest change first.

    Ordered by the change in total seconds per call when both profiles know their call counts
    (a patch that halves a function shows as lost seconds even if its share barely moves), else
    by the change in total share.
    """
    tb, ta = before.total, after.total
    sb, wb, fb = _aggregate(before, "all")
    sa, wa, fa = _aggregate(after, "all")
    per_call = bool(before.calls and after.calls)
    out = []
    for name in set(wb) | set(wa):
        fr = fb.get(name) or fa[name]
        bs = _seconds(before, wb.get(name, 0.0)) if per_call or before.seconds_per_unit else None
        as_ = _seconds(after, wa.get(name, 0.0)) if per_call or after.seconds_per_unit else None
        out.append(FrameDelta(function=name, kind=fr.kind,
                              before_self_share=sb.get(name, 0.0) / tb if tb else 0.0,
                              after_self_share=sa.get(name, 0.0) / ta if ta else 0.0,
                              before_total_share=wb.get(name, 0.0) / tb if tb else 0.0,
                              after_total_share=wa.get(name, 0.0) / ta if ta else 0.0,
                              before_seconds=bs, after_seconds=as_, per_call=per_call))

    def key(d: FrameDelta) -> tuple[float, str]:
        if per_call and d.seconds_change is not None:
            return (-abs(d.seconds_change), d.function)
        return (-abs(d.share_change), d.function)

    out.sort(key=key)
    return out[:limit] if limit else out


# --------------------------------------------------------------------------------------------
# speedscope


def to_speedscope(profile: Profile, *, name: str | None = None) -> dict[str, Any]:
    """The profile as a speedscope document (one sampled profile per thread).

    Frames are named ``module:function`` so that the module survives a round trip through
    :func:`from_speedscope` and shows in the viewer.
    """
    frames = [{"name": fr.name, "file": fr.file, "line": fr.line} if fr.line
              else {"name": fr.name, "file": fr.file} for fr in profile.frames]
    unit = "seconds" if profile.unit == "seconds" else "none"
    profiles = []
    for thread in profile.threads or [""]:
        stacks = [s for s in profile.stacks if s.thread == thread]
        weights = [s.weight for s in stacks]
        end = sum(weights)
        profiles.append({"type": "sampled", "name": thread or "main", "unit": unit,
                         "startValue": 0, "endValue": end,
                         "samples": [list(s.frames) for s in stacks], "weights": weights})
    return {"$schema": "https://www.speedscope.app/file-format-schema.json",
            "shared": {"frames": frames}, "profiles": profiles,
            "name": name or f"{profile.profiler or 'perfloop'} profile",
            "activeProfileIndex": 0, "exporter": f"perfloop ({profile.profiler or 'unknown'})"}


# the hypothesis check lives in its own module; these names are kept importable from here
# (lazily: that module imports this one)
def __getattr__(name: str) -> Any:
    if name in ("REFUTE_FRACTION", "HypothesisCheck", "check_hypothesis"):
        from . import hypothesis
        return getattr(hypothesis, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["KINDS", "OUTSIDE_USER_CODE", "REFUTE_FRACTION", "Frame", "FrameDelta", "HotSpot",
           "HypothesisCheck", "Profile", "Stack", "check_hypothesis", "classify_file",
           "def_line", "diff_profiles", "from_cprofile", "from_pyinstrument", "from_speedscope",
           "hot_spots", "module_for_file", "to_speedscope", "top_user_hot_spot"]
