"""Judging a hypothesis ("the time goes into ``module:function``") against a profile, fairly.

A name is judged by **where the time is spent**, not by whether it is on the stack: a function
that calls the hot helper holds the helper's time in its *total* share, and the function a
benchmark calls holds everything. Three shares of the recorded time are computed for the named
code (every function the ``expect`` items match):

- ``share`` (total): samples with the named code anywhere on the stack;
- ``self_share``: samples charged to the named code under the user hot-spot rule (its own lines,
  and library or native code it calls directly);
- ``own_share``: ``self_share`` plus the self time of the user functions that *only* the named
  code calls (at least 98% of their samples have it on the stack): "the named code and what it
  alone calls". A helper that other code calls too is not the named code's own.

Verdicts (``min_share`` 0.3 by default; ``floor = min_share / 3``):

- ``too-broad``: the named code is on the stack for at least 90% of the time (an entry point,
  the function the benchmark calls) while its self share is below ``min_share`` and it is not
  the first hot spot: naming it says nothing about where the time goes. Not a hit.
- ``confirmed``: ``own_share`` >= ``min_share``, or the named code is the first user hot spot
  (rank 1 by self share) with ``own_share`` >= floor;
- ``refuted``: total share below the floor and not the first hot spot; the reading names the
  first hot spots, where the time is spent;
- ``unclear``: anything else, e.g. a function whose large total share runs through helpers
  that other code calls too.

**Waiting.** When most of the recorded time is threads waiting
(:func:`perfloop.analysis.waiting.waiting`, or, when the stacks cannot tell, the process's
off-CPU share), a hypothesis confirmed by *running* samples is at best ``unclear``: the time is
waiting, and the reading says on what and where. One whose own share is mostly waiting (it names
the code that waits on the lock) stays confirmed, and the reading says it is waiting.

**Names that exist.** An ``expect`` item that matched no frame is looked up in the source
(:func:`locate`): when it is defined, the reading says where and that it did not run while
profiled (or ran in a thread the profiler did not record); only a name found nowhere gets
"check the spelling".
"""

from __future__ import annotations

import ast
import dataclasses
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .hotspots import HotSpot, _user_frame, hot_spots
from .profile_model import OUTSIDE_USER_CODE, Frame, Profile, _module_in
from .waiting import MOSTLY_WAITING, Waiting, stack_kind, waiting as waiting_of

#: Below this share of the total, a hypothesis is refuted (as a fraction of ``min_share``).
REFUTE_FRACTION = 1 / 3
#: On the stack for this share of the time or more: the named code contains nearly everything.
BROAD_SHARE = 0.9
#: A user function whose samples have the named code on the stack this often is its own.
ALONE = 0.98
VERDICTS = ("confirmed", "refuted", "unclear", "too-broad")


@dataclass(frozen=True)
class HypothesisCheck:
    """Whether the code a user suspects is where the time goes, and where it goes instead."""

    verdict: str                       # one of VERDICTS
    expect: tuple[str, ...]
    share: float                       # total share: samples with the named code on the stack
    first_user: bool                   # the named code is the first user hot spot (by self share)
    min_share: float
    matched: tuple[str, ...]           # functions in the profile that the expectation matched
    unmatched: tuple[str, ...]         # expect items that matched no frame at all
    top: tuple[HotSpot, ...]           # the top user hot spots by self share: where time is spent
    reading: str
    self_share: float = 0.0            # charged to the named code itself
    own_share: float = 0.0             # itself and what it alone calls
    waiting_share: float = 0.0         # of own_share, samples where the threads were waiting
    waiting: Waiting | None = field(default=None, compare=False)
    defined: Mapping[str, str] = field(default_factory=dict)   # unmatched names found in source

    def to_dict(self) -> dict[str, object]:
        return {"verdict": self.verdict, "expect": list(self.expect), "share": self.share,
                "self_share": self.self_share, "own_share": self.own_share,
                "waiting_share": self.waiting_share, "first_user": self.first_user,
                "min_share": self.min_share, "matched": list(self.matched),
                "unmatched": list(self.unmatched), "defined": dict(self.defined),
                "top": [dataclasses.asdict(h) for h in self.top], "reading": self.reading,
                "waiting": self.waiting.to_dict() if self.waiting else None}


def _split_expect(item: str) -> tuple[str, str | None]:
    module, sep, function = item.strip().partition(":")
    return module, (function if sep and function else None)


def _function_matches(frame_fn: str, expected: str) -> bool:
    if frame_fn == expected or frame_fn.endswith("." + expected):
        return True
    # profilers that do not record classes (py-spy, cProfile) give "total" for "Cart.total"
    return "." in expected and "." not in frame_fn and expected.rsplit(".", 1)[1] == frame_fn


def _frame_matches(fr: Frame, expect: Sequence[tuple[str, str | None]]) -> bool:
    for module, function in expect:
        if module and not _module_in(fr.module, [module]):
            continue
        if function is None or _function_matches(fr.function, function):
            return True
    return False


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


# --------------------------------------------------------------------------------------------
# names in the source


def _defines(tree: ast.Module, path: Sequence[str]) -> int | None:
    """The line where ``path`` (``["f"]`` or ``["Class", "method"]``) is defined in ``tree``."""
    body: Sequence[ast.stmt] = tree.body
    node: ast.stmt | None = None
    for part in path:
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                       ast.ClassDef)) and n.name == part), None)
        if node is None:
            # a method named without its class ("module:method"): any class's
            for cls in (n for n in body if isinstance(n, ast.ClassDef)):
                if len(path) == 1 and (line := _defines(ast.Module(cls.body, []), path)):
                    return line
            return None
        body = getattr(node, "body", [])
    return node.lineno if node is not None else None


def locate(item: str, paths: Sequence[str]) -> str | None:
    """Where ``module:function`` (or a module) is defined under the import roots ``paths``, as
    ``file:line``, by reading the source (nothing is imported, so nothing runs). None when absent."""
    module, function = _split_expect(item)
    parts = module.split(".")
    for root in paths:
        for candidate in (os.path.join(root, *parts) + ".py", os.path.join(root, *parts, "__init__.py")):
            if not os.path.isfile(candidate):
                continue
            if function is None:
                return candidate
            try:
                with open(candidate, encoding="utf-8") as f:
                    tree = ast.parse(f.read())
            except (OSError, SyntaxError, ValueError):
                continue
            line = _defines(tree, function.split("."))
            if line:
                return f"{candidate}:{line}"
    return None


# --------------------------------------------------------------------------------------------
# the shares


@dataclass(frozen=True)
class _Shares:
    total: float
    self: float
    own: float
    own_waiting: float


def _shares(profile: Profile, hit: set[int], modules: Sequence[str], kinds: Sequence[str]) -> _Shares:
    """Total, self and own shares of the frames ``hit`` (see the module docstring)."""
    owner_all: dict[str, float] = defaultdict(float)
    owner_under: dict[str, float] = defaultdict(float)
    rows = []
    for stack, kind in zip(profile.stacks, kinds):
        owner = _user_frame(profile, stack, modules)
        name = profile.frames[owner].name if owner is not None else OUTSIDE_USER_CODE
        on_stack = bool(hit.intersection(stack.frames))
        mine = owner is not None and owner in hit
        owner_all[name] += stack.weight
        if on_stack:
            owner_under[name] += stack.weight
        rows.append((stack.weight, name, on_stack, mine, kind))
    alone = {n for n, w in owner_all.items()
             if n != OUTSIDE_USER_CODE and w > 0 and owner_under.get(n, 0.0) >= ALONE * w}
    grand = profile.total
    total = sum(w for w, _, on, _, _ in rows if on)
    own_rows = [(w, k) for w, n, on, mine, k in rows if on and (mine or n in alone)]
    return _Shares(total=total / grand, self=sum(w for w, _, _, mine, _ in rows if mine) / grand,
                   own=sum(w for w, _ in own_rows) / grand,
                   own_waiting=sum(w for w, k in own_rows if k != "cpu") / grand)


# --------------------------------------------------------------------------------------------
# the check


def check_hypothesis(profile: Profile, expect: Sequence[str], *, min_share: float = 0.3,
                     off_cpu: float | None = None, paths: Sequence[str] = ()) -> HypothesisCheck:
    """Confirm, refute, call too broad or leave unclear "the time goes into ``expect``".

    ``expect`` items are ``"module:function"`` (``"module:Class.method"`` works too) or
    ``"module"``. ``off_cpu``: the process's off-CPU share of wall time, used when the stacks
    cannot tell waiting from running. ``paths``: import roots where unmatched names are looked
    up in the source. Thresholds and rules are in the module docstring.
    """
    if not expect:
        raise ValueError("a hypothesis needs at least one 'module:function' or 'module' to expect")
    if not 0 < min_share <= 1:
        raise ValueError("min_share must be a fraction in (0, 1]")
    parsed = [_split_expect(e) for e in expect]
    modules = [m for m, _ in parsed if m]
    floor = min_share * REFUTE_FRACTION
    top = tuple(s for s in hot_spots(profile, limit=6, scope="user", user_modules=modules)
                if s.function != OUTSIDE_USER_CODE)[:5]
    if profile.total <= 0:
        return HypothesisCheck("unclear", tuple(expect), 0.0, False, min_share, (), tuple(expect), top,
                               "The profile holds no samples: the target ran too briefly to be "
                               "sampled. Profile for longer.")
    hits = [i for i, fr in enumerate(profile.frames) if _frame_matches(fr, parsed)]
    matched = tuple(dict.fromkeys(profile.frames[i].name for i in hits))
    unmatched = tuple(e for e, p in zip(expect, parsed)
                      if not any(_frame_matches(profile.frames[i], [p]) for i in hits))
    kinds = [stack_kind(profile, s) for s in profile.stacks]
    shares = _shares(profile, set(hits), modules, kinds)
    wait = waiting_of(profile)
    first_user = bool(top) and top[0].function in matched
    others = [s for s in top if s.function not in matched]
    where = ", ".join(f"{s.function} ({_pct(s.self_share)} self)" for s in others[:3]) \
        or "no other user code stands out"
    named = ", ".join(expect)

    if shares.total >= BROAD_SHARE and shares.self < min_share and not first_user:
        verdict = "too-broad"
        reading = (f"Too broad: {named} is on the stack for {_pct(shares.total)} of the time: it "
                   f"contains nearly everything (an entry point), so naming it does not say where "
                   f"the time goes; its own code holds {_pct(shares.self)}. The time is spent in: "
                   f"{where}. Name the function that does the work.")
    elif shares.own >= min_share or (first_user and shares.own >= floor):
        verdict = "confirmed"
        why = (f"holds {_pct(shares.own)} of the time in its own code and what it alone calls "
               f"(threshold {_pct(min_share)})" if shares.own >= min_share
               else f"is the first hot spot in user code and holds {_pct(shares.own)} of the time")
        reading = f"Confirmed: {named} {why}."
    elif shares.total < floor and not first_user:
        verdict = "refuted"
        reading = (f"Refuted: {named} holds only {_pct(shares.total)} of the time (below "
                   f"{_pct(floor)}). The time is spent in: {where}.")
    else:
        verdict = "unclear"
        through = (f" {_pct(shares.total)} of the time passes through it, but only "
                   f"{_pct(shares.own)} is its own: the rest is in code that other callers share."
                   if shares.total >= min_share else "")
        reading = (f"Unclear: {named} holds {_pct(shares.own)} of the time, between the refutation "
                   f"floor {_pct(floor)} and the confirmation threshold {_pct(min_share)}, and is "
                   f"not the first user hot spot.{through} The time is spent in: {where}.")
    verdict, reading = _judge_waiting(verdict, reading, named, shares, wait, off_cpu, min_share)
    defined: dict[str, str] = {}
    if unmatched:
        for item in unmatched:
            found = locate(item, paths) if paths else None
            if found:
                defined[item] = found
        missing = [e for e in unmatched if e not in defined]
        for item, where_defined in defined.items():
            reading += (f" {item} is defined ({where_defined}) but no sample ran it: it did not "
                        f"run while profiled, or it ran in a thread this profiler did not record.")
        if missing:
            reading += (f" No frame matched {', '.join(missing)}, and it was not found in the "
                        f"source: check the spelling; names are as imported, e.g. "
                        f"'shop.pricing:apply_discounts' or 'shop.pricing'.")
    return HypothesisCheck(verdict, tuple(expect), shares.total, first_user, min_share, matched,
                           unmatched, top, reading, self_share=shares.self, own_share=shares.own,
                           waiting_share=shares.own_waiting, waiting=wait, defined=defined)


def _judge_waiting(verdict: str, reading: str, named: str, shares: _Shares, wait: Waiting,
                   off_cpu: float | None, min_share: float) -> tuple[str, str]:
    """A CPU hypothesis is at best unclear when most of the time is waiting (module docstring)."""
    if wait.mostly:
        said = wait.reading()
        if verdict == "confirmed" and shares.own_waiting >= min_share:
            return verdict, (f"{reading} Its time is waiting, not computing: {said} A faster CPU "
                             f"path will not help; the waiting will.")
        if verdict == "confirmed":
            return "unclear", (f"Unclear: {named} holds {_pct(shares.own)} of the time, but "
                               f"{_pct(wait.share)} of the recorded thread time is waiting, not "
                               f"running: {said} A CPU fix in {named} cannot remove the waiting.")
        return verdict, f"{reading} Most of the time is waiting: {said}"
    if off_cpu is not None and off_cpu >= MOSTLY_WAITING and wait.share < 0.1 and verdict == "confirmed":
        return "unclear", (f"Unclear: {named} holds {_pct(shares.own)} of the recorded samples, but "
                           f"the process was off-CPU (waiting) for {_pct(off_cpu)} of wall time and "
                           f"these stacks do not show where it waited: profile with py-spy "
                           f"(--idle, every thread) to see the waiting.")
    return verdict, reading


__all__ = ["ALONE", "BROAD_SHARE", "HypothesisCheck", "REFUTE_FRACTION", "VERDICTS", "check_hypothesis",
           "locate"]
