"""Profiles in and out: pyinstrument sessions, speedscope documents, cProfile statistics.

:func:`from_pyinstrument` reads a pyinstrument session, :func:`from_speedscope` a speedscope
document such as ``py-spy record --format speedscope`` writes, and :func:`from_cprofile` cProfile
statistics (a fallback: cProfile records caller edges, not stacks, so its stacks are
reconstructed approximately). :func:`to_speedscope` writes a profile back out for
speedscope.app or any viewer.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Mapping, Sequence

from .profile_model import Profile, _Builder


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
# writing


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


__all__ = ["def_line", "from_cprofile", "from_pyinstrument", "from_speedscope", "to_speedscope"]
