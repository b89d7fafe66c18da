"""The hybrid mode: incident or development, and the loops still open in either.

A team works in *development* mode (changes go through the gate) until something breaks; an
open incident switches the project into *incident* mode (profile-and-patch: hypothesis,
baseline, profile, patch, verify). Both leave loops that someone must close: an incident closed
without ``verify`` left a hotfix whose effect nobody measured; a journal entry with no actual
effect is a change nobody checked; a running drill slows every benchmark run until it stops.
Over both lies the *risk overlay*: the open release cycle of the risk-budgeted workflow, its
budget spent and left, and whether it is stagnating or in chaos.
:func:`project_mode` gathers them, each with the command that closes it, so that ``perfloop
mode`` answers "where are we, and what is unfinished" in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..store import Store
from . import cycles, drills
from .incident import current_incident, next_step
from .journal import Entry, entries, open_loops

DEVELOPMENT = "development"
INCIDENT = "incident"


@dataclass(frozen=True)
class OpenLoop:
    """Something started and not finished, and the command that finishes it."""

    kind: str           # incident | hotfix | change | drill
    ref: str            # "incident #3", "change #12", "drill #2"
    title: str
    closes_with: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _loop(entry: Entry) -> OpenLoop | None:
    """The open loop of a journal entry; None for what the mode reports itself."""
    if entry.source == "incident" or entry.workflow == drills.WORKFLOW:
        return None            # the open incident and a running drill are listed on their own
    if entry.workflow == cycles.WORKFLOW:
        step = {"proposed": f"perfloop change apply {entry.id}",
                "applied": f"perfloop change verify {entry.id}"}.get(entry.status)
        return OpenLoop("change", f"change #{entry.id}", entry.title, step) if step else None
    if entry.actual.get("verdict") == "not verified":
        baseline = entry.baseline_run_id
        return OpenLoop("hotfix", f"change #{entry.id}", entry.title,
                        f"measure it against the baseline: perfloop run --label after-fix, then "
                        f"perfloop compare {baseline or 'BASE'} after-fix, and record it: "
                        f'perfloop journal actual {entry.id} "BENCH METRIC -N%"')
    return OpenLoop("change", f"change #{entry.id}", entry.title,
                    f'measure its effect and record it: perfloop journal actual {entry.id} '
                    '"BENCH METRIC -N%"')


def project_mode(store: Store, root: str | Path) -> dict[str, Any]:
    """The mode (incident or development), the running drill, and every open loop."""
    root = Path(root).resolve()
    incident = current_incident(store, root)
    loops: list[OpenLoop] = []
    if incident is not None:
        loops.append(OpenLoop("incident", f"incident #{incident.id}", incident.title,
                              next_step(incident)))
    loops.extend(loop for e in open_loops(entries(store, root=root)) if (loop := _loop(e)))
    state = drills.active(root)
    drill = None
    if state is not None:
        drill = {"id": state["id"], "difficulty": state.get("difficulty"),
                 "benchmark": state.get("benchmark")}
        loops.append(OpenLoop("drill", f"drill #{state['id']}", "a hidden slowdown is injected",
                              "perfloop drill answer MODULE:FUNCTION, or perfloop drill stop"))
    for change in cycles.list_changes(store, root):
        if change.status == "breaks-floor":      # verified, so not in the journal's open loops
            loops.append(OpenLoop("rollback", f"change #{change.id}", change.title,
                                  f"it broke the floor: perfloop change rollback {change.id}"))
    cycle = cycles.current_cycle(store, root)
    overlay = None
    if cycle is not None:
        queue = [c for c in cycles.list_changes(store, root) if c.status == "proposed"]
        overlay = {"cycle": cycle.name, "budget": cycle.budget, "spent": round(cycle.spent, 2),
                   "left": round(cycle.left, 2), **cycles.health(cycle, queue)}
    return {
        "mode": INCIDENT if incident is not None else DEVELOPMENT,
        "risk": overlay,
        "incident": incident.to_dict() if incident else None,
        "next": next_step(incident) if incident else None,
        "gate": ("profile-and-patch rules: hypothesis, baseline, verify" if incident else
                 "changes go through perfloop gate"),
        "drill": drill,
        "open_loops": [loop.to_dict() for loop in loops],
    }


__all__ = ["DEVELOPMENT", "INCIDENT", "OpenLoop", "project_mode"]
