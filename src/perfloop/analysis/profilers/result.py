"""The result of profiling: a profile, the signals read around it, and how it was obtained."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..profiles import Profile, hot_spots
from ..signals import ProcessTrace, RuntimeStats, Signal

DEFAULT_DURATION = 3.0          # seconds a callable is profiled for when no duration is given
DEFAULT_RATE = 100              # py-spy samples per second
PROFILERS = ("auto", "pyinstrument", "cprofile", "py-spy")

CPROFILE_CAVEAT = ("profiled with cProfile: it traces every call, so code making many small calls "
                   "looks slower than it is, and stacks are rebuilt from caller edges (approximate)")


@dataclass(frozen=True)
class ProfileResult:
    """A profile, the signals read around it, and what was actually done to get them.

    ``profiler`` is the profiler that recorded the profile; ``requested`` the one asked for.
    When they differ it was a fallback, and ``notes`` says why.
    """

    profile: Profile
    signals: tuple[Signal, ...]
    profiler: str
    requested: str
    target: str
    duration: float                       # wall seconds of the profiled window
    calls: int | None = None              # calls of the callable in that window
    notes: tuple[str, ...] = ()
    exit_code: int | None = None          # commands: the program's exit status
    trace: ProcessTrace | None = None
    runtime: RuntimeStats | None = None
    stderr_tail: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "signals", tuple(self.signals))
        object.__setattr__(self, "notes", tuple(self.notes))

    @property
    def fallback(self) -> bool:
        """The profiler asked for could not be used ("auto" chooses, it never falls back)."""
        return self.requested != "auto" and self.profiler != self.requested

    def signal(self, name: str) -> Signal | None:
        return next((s for s in self.signals if s.name == name), None)

    @property
    def warnings(self) -> list[Signal]:
        return [s for s in self.signals if s.severity == "warn"]

    def to_dict(self, *, limit: int = 15) -> dict[str, Any]:
        """A JSON-ready summary: what ran, the signals, and the hot spots (user code and all)."""
        def spots(scope: str) -> list[dict[str, Any]]:
            return [dataclasses.asdict(s) for s in hot_spots(self.profile, limit=limit, scope=scope)]
        return {"target": self.target, "profiler": self.profiler, "requested": self.requested,
                "duration": self.duration, "calls": self.calls, "exit_code": self.exit_code,
                "unit": self.profile.unit, "notes": list(self.notes),
                "signals": [s.to_dict() for s in self.signals],
                "hot_spots_user": spots("user"), "hot_spots": spots("all")}

