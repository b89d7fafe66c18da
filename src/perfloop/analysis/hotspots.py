"""Where the time goes in a profile: hot spots ranked by self share, and diffs of two profiles.

**The user hot-spot rule.** Each sample is charged to the innermost frame of user code on its
stack; library, stdlib and native frames below it are folded into it, because the user's
function is the thing a patch can change. A sample with no user frame on its stack is charged
to ``(outside user code)``, which is listed but never counts as the first user hot spot.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from .profile_model import OUTSIDE_USER_CODE, Frame, Profile, Stack, _module_in


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


__all__ = ["FrameDelta", "HotSpot", "diff_profiles", "hot_spots", "top_user_hot_spot"]
