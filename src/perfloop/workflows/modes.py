"""The hybrid mode: incident or development, and the loops still open in either.

A team works in *development* mode (changes go through the gate) until something breaks; an
open incident switches the project into *incident* mode (profile-and-patch: hypothesis,
baseline, profile, patch, verify). Both leave loops that someone must close: an incident closed
without ``verify`` left a hotfix whose effect nobody measured; a journal entry with no actual
effect is a change nobody checked; a running drill slows every benchmark run until it stops.
:func:`project_mode` gathers them, each with the command that closes it, so that ``perfloop
mode`` answers "where are we, and what is unfinished" in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..store import Store
from ..store.models import ChangeRow
from . import drills
from .incident import current_incident, next_step

DEVELOPMENT = "development"
INCIDENT = "incident"

#: Journal statuses that mean the change's effect is known (or no longer matters).
SETTLED = frozenset({"verified", "regressed", "approved", "closed", "rolled-back", "rejected",
                     "solved", "stopped"})


@dataclass(frozen=True)
class OpenLoop:
    """Something started and not finished, and the command that finishes it."""

    kind: str           # incident | hotfix | change | drill
    ref: str            # "incident #3", "change #12", "drill #2"
    title: str
    closes_with: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unsettled_changes(store: Store, project: str) -> list[OpenLoop]:
    loops = []
    with store._read("reading the journal") as session:  # noqa: SLF001
        rows = session.scalars(select(ChangeRow).where(ChangeRow.workflow != drills.WORKFLOW)
                               .order_by(ChangeRow.id)).all()
        for row in rows:
            data = row.data or {}
            journal = data.get("journal") or {}
            if journal.get("project", data.get("project", project)) != project:
                continue
            if row.status in SETTLED and row.actual:
                continue
            if row.status == "unverified" and row.incident_id is not None:
                baseline = f" against run #{row.baseline_run_id}" if row.baseline_run_id else ""
                loops.append(OpenLoop(
                    "hotfix", f"change #{row.id}", row.title,
                    f"measure it{baseline}: perfloop run --label after-fix, then perfloop compare "
                    f"{row.baseline_run_id or 'BASE'} after-fix"))
            else:
                loops.append(OpenLoop("change", f"change #{row.id}", row.title,
                                      "measure its effect and record it in the journal"))
    return loops


def project_mode(store: Store, root: str | Path) -> dict[str, Any]:
    """The mode (incident or development), the running drill, and every open loop."""
    root = Path(root).resolve()
    incident = current_incident(store, root)
    loops: list[OpenLoop] = []
    if incident is not None:
        loops.append(OpenLoop("incident", f"incident #{incident.id}", incident.title,
                              next_step(incident)))
    loops.extend(_unsettled_changes(store, str(root)))
    state = drills.active(root)
    drill = None
    if state is not None:
        drill = {"id": state["id"], "difficulty": state.get("difficulty"),
                 "benchmark": state.get("benchmark")}
        loops.append(OpenLoop("drill", f"drill #{state['id']}", "a hidden slowdown is injected",
                              "perfloop drill answer MODULE:FUNCTION, or perfloop drill stop"))
    return {
        "mode": INCIDENT if incident is not None else DEVELOPMENT,
        "incident": incident.to_dict() if incident else None,
        "next": next_step(incident) if incident else None,
        "gate": ("profile-and-patch rules: hypothesis, baseline, verify" if incident else
                 "changes go through perfloop gate"),
        "drill": drill,
        "open_loops": [loop.to_dict() for loop in loops],
    }


__all__ = ["DEVELOPMENT", "INCIDENT", "OpenLoop", "project_mode"]
