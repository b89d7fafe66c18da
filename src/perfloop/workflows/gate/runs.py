"""What the gate measured, stored as runs: ``gate-base`` and ``gate-head`` (and
``gate-confirm-base`` / ``gate-confirm-head`` for confirmations), so the history grows with
every gate; and stored runs of the base that may stand in for measuring it again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

from ... import __version__
from ...config import BenchmarkSpec, ProjectConfig
from ...records import BenchmarkResult, ResultStatus, RunStatus
from ...store import Store
from ..interleave import BASE, HEAD
from ..run import settings_dict
from .options import GateOptions

LABEL_BASE, LABEL_HEAD = "gate-base", "gate-head"
LABEL_CONFIRM_BASE, LABEL_CONFIRM_HEAD = "gate-confirm-base", "gate-confirm-head"


@dataclass(frozen=True)
class Revision:
    """One side of the change as its runs are labelled: a commit (None: unknown), its branch,
    and whether uncommitted changes were measured with it."""

    label: str
    commit: str | None
    branch: str | None = None
    dirty: bool = False

    def relabelled(self, label: str) -> Revision:
        return replace(self, label=label)


class GateRuns:
    """The gate's stored runs, begun when first needed and finished at the end."""

    def __init__(self, store: Store, config: ProjectConfig, environment: Mapping[str, Any],
                 options: GateOptions, specs: Sequence[BenchmarkSpec]) -> None:
        self.store = store
        self.config = config
        self.environment = environment
        self.options = options
        self.specs = {s.name: s for s in specs}
        self.ids: dict[str, int] = {}
        # Base and head runs of one measurement share a pairing key: compare finds them
        # measured interleaved and analyses them as the gate did.
        self.token = uuid.uuid4().hex[:16]

    def add(self, side: Revision, result: BenchmarkResult, measured: Mapping[str, Any]) -> int:
        """Store ``result`` in the run of ``side`` (begun now if it is the first)."""
        if side.label not in self.ids:
            self.ids[side.label] = self.store.begin_run(
                label=side.label, commit=side.commit, branch=side.branch, dirty=side.dirty,
                environment=self.environment,
                settings={"perfloop": __version__, "gate": self.options.to_dict(),
                          "benchmarks": {n: settings_dict(s) for n, s in self.specs.items()},
                          "interleaved": interleaved_pair(self.token, side.label)},
                project=str(self.config.root))
        spec = self.specs.get(result.name)
        extra = {**result.extra, "gate": dict(measured)}
        if spec is not None:
            extra.update(tolerance=spec.settings.tolerance, settings=settings_dict(spec))
        self.store.add_result(self.ids[side.label], replace(result, extra=extra))
        return self.ids[side.label]

    def finish(self, status: RunStatus) -> None:
        for run_id in self.ids.values():
            self.store.finish_run(run_id, status)


def interleaved_pair(token: str, label: str) -> dict[str, str]:
    """How a gate run records that it was measured interleaved with its partner run."""
    stage = "confirm" if label in (LABEL_CONFIRM_BASE, LABEL_CONFIRM_HEAD) else "first"
    side = BASE if label in (LABEL_BASE, LABEL_CONFIRM_BASE) else HEAD
    return {"pair": f"{token}:{stage}", "side": side, "order": "ABBA"}


@dataclass(frozen=True)
class StoredBase:
    """A stored result of the base commit that may clear a benchmark without measuring it."""

    run_id: int
    result: BenchmarkResult


def stored_base(store: Store, commit: str, environment_hash: str, *, max_age: float,
                now: datetime | None = None) -> dict[str, StoredBase]:
    """Results of complete, clean runs of ``commit`` in the same environment class, not older
    than ``max_age`` seconds, by benchmark name, newest run first."""
    now = now or datetime.now(timezone.utc)
    found: dict[str, StoredBase] = {}
    for info in store.list_runs(limit=500):
        if (info.commit != commit or info.dirty or info.status is not RunStatus.COMPLETE
                or info.environment_hash != environment_hash
                or now - info.started_at > timedelta(seconds=max_age)):
            continue
        for result in store.get_run(info.id).results:
            if result.status is ResultStatus.OK and result.samples:
                found.setdefault(result.name, StoredBase(info.id, result))
    return found


__all__ = ["GateRuns", "LABEL_BASE", "LABEL_CONFIRM_BASE", "LABEL_CONFIRM_HEAD", "LABEL_HEAD",
           "Revision", "StoredBase", "interleaved_pair", "stored_base"]
