"""A drill's slowdown, injected into every Python process perfloop starts while a drill runs.

perfloop puts this directory first on ``PYTHONPATH`` and names a JSON file in
``PERFLOOP_DRILL``; Python imports ``sitecustomize`` at start-up, so this module runs before the
program. It installs an import hook that, right after the drill's target module has executed,
replaces the target function with a wrapper that calls it and then does ``factor`` times the
call's own work again: it spins on the CPU for ``factor`` times the call's CPU time (the calling
thread's, so the extra work is the same on a busy host, where a wall-clock spin would stretch
with every wait for a core), and when the call mostly waited (I/O, locks, sleep) it also waits
``factor`` times the call's waiting time. The busy frame carries the target's name, file and line,
so a profiler charges the extra time to the target itself, as a real slowdown would be. No
source file is edited: when the drill stops, perfloop no longer sets the variables and the
code runs as it is.

It must import nothing of perfloop (it runs inside the code under test) and must never break
the program: any failure leaves the target alone. A ``sitecustomize`` that this one shadows
(earlier on ``sys.path`` than the site-packages one) is run afterwards.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import sys
import threading
import time
from typing import Any, Callable


def _disguise(fn: Callable[..., Any], target: Callable[..., Any]) -> None:
    """Give ``fn``'s code object the target's name, file and first line."""
    code = getattr(target, "__code__", None)
    if code is not None:
        fn.__code__ = fn.__code__.replace(
            co_name=code.co_name, co_qualname=getattr(code, "co_qualname", code.co_name),
            co_filename=code.co_filename, co_firstlineno=code.co_firstlineno)


def _wrap(target: Callable[..., Any], factor: float) -> Callable[..., Any]:
    import functools

    def spin(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    depth = threading.local()

    @functools.wraps(target)
    def slowed(*args: Any, **kwargs: Any) -> Any:
        # only the outermost call spins: a recursive target would otherwise compound it
        outer = not getattr(depth, "n", 0)
        depth.n = getattr(depth, "n", 0) + 1
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            return target(*args, **kwargs)
        finally:
            depth.n -= 1
            if outer:
                cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
                spin(cpu * factor)
                if wall > 2.0 * cpu:          # a call that mostly waited waits longer too
                    time.sleep((wall - cpu) * factor)

    # A profile shows the wrapper and the busy loop as the target itself: where a real
    # slowdown of that function would show, and with no name that gives the drill away.
    _disguise(spin, target)
    _disguise(slowed, target)
    slowed.__perfloop_drill__ = True  # type: ignore[attr-defined]
    return slowed


def _patch(module: Any, qualname: str, factor: float) -> bool:
    owner, _, name = qualname.rpartition(".")
    holder = module
    for part in owner.split(".") if owner else ():
        holder = getattr(holder, part, None)
        if holder is None:
            return False
    original = holder.__dict__.get(name) if hasattr(holder, "__dict__") else None
    if original is None or getattr(original, "__perfloop_drill__", False):
        return False
    if isinstance(original, (staticmethod, classmethod)):
        setattr(holder, name, type(original)(_wrap(original.__func__, factor)))
    elif callable(original):
        setattr(holder, name, _wrap(original, factor))
    else:
        return False
    return True


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader, qualname: str, factor: float) -> None:
        self.inner, self.qualname, self.factor = inner, qualname, factor

    def create_module(self, spec: Any) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.inner.exec_module(module)
        try:
            _patch(module, self.qualname, self.factor)
        except Exception:  # never break the program under test
            pass

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, ... for tools that ask
        return getattr(self.inner, name)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, module: str, qualname: str, factor: float) -> None:
        self.module, self.qualname, self.factor = module, qualname, factor

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.module:
            return None
        sys.meta_path.remove(self)          # find the real spec without finding ourselves
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, self.qualname, self.factor)
        return spec


def _install() -> None:
    path = os.environ.get("PERFLOOP_DRILL")
    if not path:
        return
    try:
        with open(path, encoding="utf-8") as fh:
            drill = json.load(fh)
        module, _, qualname = str(drill["target"]).partition(":")
        factor = float(drill["factor"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if not module or not qualname or not factor > 0:
        return
    if module in sys.modules:
        _patch(sys.modules[module], qualname, factor)
    else:
        sys.meta_path.insert(0, _Finder(module, qualname, factor))


def _chain() -> None:
    """Run the ``sitecustomize`` this one shadows, if there is one further down ``sys.path``."""
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if os.path.abspath(entry or ".") == here:
            continue
        candidate = os.path.join(entry or ".", "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_perfloop_shadowed_sitecustomize", candidate)
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                try:
                    spec.loader.exec_module(module)
                except Exception:
                    pass
            return


_install()
_chain()
