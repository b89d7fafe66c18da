"""Run-level comparison: base run against head run, a verdict per benchmark and metric.

Reads stored runs and the per-metric statistics of :mod:`perfloop.analysis.compare`; adds
what a reader must see before trusting the verdicts: environment differences between the two
runs, benchmarks present on one side only, and benchmarks that failed on either side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..measure.environment import EnvDifference, diff_environments
from ..records import ResultStatus
from ..store import StoredRun
from .compare import Verdict, VerdictKind, compare_results


@dataclass(frozen=True)
class Comparison:
    base: StoredRun
    head: StoredRun
    verdicts: tuple[Verdict, ...]
    env_differences: tuple[EnvDifference, ...] = ()
    only_in_base: tuple[str, ...] = ()
    only_in_head: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()          # "name (base: timeout)" etc.
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def comparable(self) -> bool:
        """False when the environments differ in identity (machine, Python, packages...)."""
        return not any(d.identity for d in self.env_differences)

    def count(self, kind: VerdictKind) -> int:
        return sum(1 for v in self.verdicts if v.verdict is kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": _run_summary(self.base),
            "head": _run_summary(self.head),
            "comparable": self.comparable,
            "environment_differences": [
                {"key": d.key, "base": d.base, "head": d.head, "identity": d.identity}
                for d in self.env_differences],
            "verdicts": [v.to_dict() for v in self.verdicts],
            "only_in_base": list(self.only_in_base),
            "only_in_head": list(self.only_in_head),
            "failed": list(self.failed),
            "notes": list(self.notes),
            "counts": {k.value: self.count(k) for k in VerdictKind},
        }


def _run_summary(run: StoredRun) -> dict[str, Any]:
    return {"id": run.id, "label": run.label, "commit": run.commit, "branch": run.branch,
            "dirty": run.dirty, "status": getattr(run.status, "value", run.status),
            "started_at": run.started_at.isoformat() if run.started_at else None}


def _environment_of(run: StoredRun) -> dict[str, Any]:
    """The run's environment with its own conditions (load, host) over the shared identity."""
    conditions = (run.settings or {}).get("conditions") or {}
    return {**(run.environment or {}), **conditions}


def compare_runs(base: StoredRun, head: StoredRun, *, tolerance: float | None = None,
                 confidence: float = 0.99, benchmarks: Sequence[str] | None = None,
                 metrics: Sequence[str] | None = None) -> Comparison:
    """Compare every benchmark the two runs share. ``tolerance`` overrides each benchmark's own."""
    base_results = {r.name: r for r in base.results}
    head_results = {r.name: r for r in head.results}
    names = [n for n in head_results if n in base_results]
    if benchmarks:
        wanted = set(benchmarks)
        names = [n for n in names if n in wanted or n.split("[", 1)[0] in wanted]
    verdicts: list[Verdict] = []
    failed: list[str] = []
    notes: list[str] = []
    for name in names:
        b, h = base_results[name], head_results[name]
        bad = [f"{side}: {r.status.value}" for side, r in (("base", b), ("head", h))
               if r.status is not ResultStatus.OK]
        if bad:
            failed.append(f"{name} ({', '.join(bad)})")
        if not b.samples or not h.samples:
            continue
        tol = tolerance if tolerance is not None else float(h.extra.get("tolerance", 0.05))
        verdicts.extend(compare_results(b, h, tolerance=tol, confidence=confidence, metrics=metrics))
    env_diffs = diff_environments(_environment_of(base), _environment_of(head))
    if base.dirty or head.dirty:
        notes.append("a run was taken with uncommitted changes (dirty): its commit does not "
                     "fully describe the code measured")
    base_load = _environment_of(base).get("load_avg_1m")
    head_load = _environment_of(head).get("load_avg_1m")
    cpus = (_environment_of(head).get("cpu_count") or 1)
    if base_load is not None and head_load is not None and abs(head_load - base_load) > 0.5 * cpus:
        notes.append(f"the machine's load differed between the runs ({base_load:g} -> {head_load:g} "
                     f"on {cpus} CPUs): time metrics may have moved with it; re-measure both "
                     "interleaved with perfloop gate")
    for run in (base, head):
        status = getattr(run.status, "value", run.status)
        if status != "complete":
            notes.append(f"run #{run.id} is {status}: some benchmarks may be missing")
    return Comparison(
        base=base, head=head, verdicts=tuple(verdicts), env_differences=tuple(env_diffs),
        only_in_base=tuple(n for n in base_results if n not in head_results),
        only_in_head=tuple(n for n in head_results if n not in base_results),
        failed=tuple(failed), notes=tuple(notes))
