"""The risk-budgeted, iterative workflow: changes scored, low risk now, high risk in a cycle.

    propose (scored) ──low──> apply ──> verify ──(breaks the floor)──> rollback
                     └─medium/high─> cycle (budget, rollback plan, tail test) ──> apply ──> ...

Every change is proposed first, with its hypothesis, expectation and rollback plan, and gets
its risk score from :mod:`perfloop.workflows.risk`. A low-risk change is applied at once and
verified on its own. A medium- or high-risk change can only be applied inside the open release
cycle, whose budget (in risk points) the scheduled changes may not exceed; a high-risk one also
needs a rollback plan and a *tail test*: a benchmark with a tail metric (p99, p99.9 or max).

The *floor* is the cycle's baseline run (or, outside a cycle, the run given at apply time).
Changes are applied one at a time: the next waits until the last is verified, so each effect
is attributed to one change. ``verify`` measures the change's benchmarks and compares them with
the floor on every metric, the tail included; a regression breaks the floor, and the change is
rolled back by its plan: a command is run and its result recorded, a text plan is shown as a
checklist and must be confirmed.

``status`` shows the two ways this workflow fails, with numbers: *stagnation* (budget left
unspent while proposals age in the queue) and *chaos* (rollbacks, broken floors, effects outside
the benchmarks the change was expected to move). ``calibration`` says, across closed cycles,
whether the risk scores ranked the changes that went wrong first (Spearman's rank correlation).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..config import ProjectConfig
from ..errors import UsageError
from ..metrics import TAIL_METRICS
from ..store import ChangeRecord, CycleRecord, Store
from ..store.models import utcnow
from .risk import Assessment, assess

WORKFLOW = "risk-budget"
STAGNATION_DAYS = 7.0          # a proposal older than this, with half the budget left: stagnation
ACTIVE = ("scheduled", "applied")
BAD = ("rolled-back", "breaks-floor", "rollback-failed")


@dataclass(frozen=True)
class Change:
    id: int
    title: str
    kind: str | None
    status: str        # proposed | scheduled | applied | verified | breaks-floor | rolled-back | rollback-failed
    score: float
    level: str
    hypothesis: str | None
    expect: str | None
    rollback: str | None
    rollback_command: str | None
    tail_test: str | None
    cycle_id: int | None
    baseline_run_id: int | None
    created_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)
    factors: Mapping[str, float] = field(default_factory=dict)    # points per risk factor

    def age_days(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(timezone.utc)) - self.created_at).total_seconds() / 86400

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "kind": self.kind, "status": self.status,
                "score": round(self.score, 2), "level": self.level, "hypothesis": self.hypothesis,
                "expect": self.expect, "rollback": self.rollback,
                "rollback_command": self.rollback_command, "tail_test": self.tail_test,
                "cycle_id": self.cycle_id, "baseline_run_id": self.baseline_run_id,
                "created_at": self.created_at.isoformat(),
                "verification": self.data.get("verification"), "rollbacks": self.data.get("rollbacks", [])}


@dataclass(frozen=True)
class Cycle:
    id: int
    name: str
    budget: float
    status: str
    opened_at: datetime
    closed_at: datetime | None
    baseline_run_id: int | None
    changes: tuple[Change, ...]
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def spent(self) -> float:
        return sum(c.score for c in self.changes if c.status != "proposed")

    @property
    def left(self) -> float:
        return self.budget - self.spent

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "budget": self.budget, "status": self.status,
                "opened_at": self.opened_at.isoformat(),
                "closed_at": self.closed_at.isoformat() if self.closed_at else None,
                "baseline_run_id": self.baseline_run_id, "spent": round(self.spent, 2),
                "left": round(self.left, 2), "changes": [c.to_dict() for c in self.changes],
                "outcome": self.data.get("outcome")}


def _project(root: str | Path) -> str:
    return str(Path(root).resolve())


def _change(row: ChangeRecord) -> Change:
    data = dict(row.data or {})
    return Change(id=row.id, title=row.title, kind=row.kind, status=row.status,
                  score=float(row.risk_score or 0.0), level=str(data.get("level", "high")),
                  hypothesis=row.hypothesis, expect=(row.expected or {}).get("text"),
                  rollback=row.rollback_plan, rollback_command=data.get("rollback_command"),
                  tail_test=data.get("tail_test"), cycle_id=data.get("cycle_id"),
                  baseline_run_id=row.baseline_run_id, created_at=row.created_at, data=data,
                  factors={str(f["name"]): float(f.get("points") or 0.0)
                           for f in (row.risk_factors or {}).get("factors", ())})


def _changes(store: Store, project: str) -> list[Change]:
    rows = sorted(store.changes(workflow=WORKFLOW), key=lambda r: r.id)
    return [_change(r) for r in rows if (r.data or {}).get("project") == project]


def _cycle(store: Store, row: CycleRecord) -> Cycle:
    changes = tuple(c for c in _changes(store, row.project) if c.cycle_id == row.id)
    return Cycle(id=row.id, name=row.name, budget=row.budget, status=row.status,
                 opened_at=row.opened_at, closed_at=row.closed_at,
                 baseline_run_id=row.baseline_run_id, changes=changes, data=dict(row.data or {}))


def get_change(store: Store, change_id: int) -> Change:
    row = store.change(change_id)
    if row is None or row.workflow != WORKFLOW:
        raise UsageError(f"no risk-budgeted change #{change_id}",
                         hint="perfloop cycle status lists them; propose one with "
                              "perfloop change propose")
    return _change(row)


def current_cycle(store: Store, root: str | Path) -> Cycle | None:
    rows = store.cycles(project=_project(root), status="open")
    return _cycle(store, rows[0]) if rows else None


def list_changes(store: Store, root: str | Path) -> list[Change]:
    return _changes(store, _project(root))


def _update(store: Store, change_id: int, *, status: str | None = None,
            data: Mapping[str, Any] | None = None, **columns: Any) -> Change:
    if status is not None:
        columns["status"] = status
    store.update_change(change_id, edit=(lambda old: {**old, **data}) if data else None, **columns)
    return get_change(store, change_id)


# --------------------------------------------------------------------------------------------
# propose


def _check_tail_test(config: ProjectConfig, name: str) -> None:
    specs = [s for s in config.benchmarks if name in (s.name, s.base_name)]
    if not specs:
        raise UsageError(f"--tail-test {name!r}: no such benchmark",
                         hint="name a benchmark of perfloop.toml with a tail metric")
    if not any(m in TAIL_METRICS for s in specs for m in s.metrics):
        raise UsageError(f"--tail-test {name!r} measures no tail metric",
                         hint=f"a tail test needs one of {', '.join(TAIL_METRICS)} in its metrics")


def propose(store: Store, config: ProjectConfig, title: str, *, kind: str,
            hypothesis: str | None = None, expect: str | None = None,
            rollback: str | None = None, rollback_command: str | None = None,
            tail_test: str | None = None, diff: str | None = None,
            benchmarks: Sequence[str] = (),
            assessor: Callable[..., Assessment] = assess) -> tuple[Change, Assessment]:
    """Score a change and record it as proposed (see the module docstring).

    ``benchmarks`` are verified besides the tail test (all benchmarks when neither is given).
    """
    if not title.strip():
        raise UsageError("a change needs a title", hint='perfloop change propose "raise pool 10 -> 32" ...')
    if tail_test:
        _check_tail_test(config, tail_test)
    config.select(list(benchmarks))          # unknown names are refused here, with the fix
    found = assessor(config, diff=diff, kind=kind, store=store)
    change_id = store.add_change(
        title=title, kind=found.score.kind, workflow=WORKFLOW, status="proposed",
        hypothesis=hypothesis, expected={"text": expect} if expect else {}, actual={},
        risk_score=found.score.score, risk_factors=found.to_dict(), rollback_plan=rollback,
        data={"project": _project(config.root), "level": found.score.level,
              "paths": list(found.diff.paths), "diff": found.diff.spec,
              "diff_base": found.diff.base, "tail_test": tail_test,
              "benchmarks": list(benchmarks), "rollback_command": rollback_command})
    return get_change(store, change_id), found


# --------------------------------------------------------------------------------------------
# cycles


def open_cycle(store: Store, root: str | Path, name: str, budget: float, *,
               baseline_run_id: int | None = None) -> Cycle:
    if not budget > 0:
        raise UsageError(f"--budget {budget!r}: a budget is a positive number of risk points",
                         hint="e.g. --budget 100")
    existing = current_cycle(store, root)
    if existing is not None:
        raise UsageError(f"cycle {existing.name!r} is open", hint="close it first: perfloop cycle close")
    row = store.add_cycle(name=name, project=_project(root), budget=float(budget),
                          baseline_run_id=baseline_run_id)
    return _cycle(store, row)


def _blockers(change: Change, cycle: Cycle | None, extra_budget: float = 0.0) -> list[str]:
    out = []
    if change.level == "high":
        if not (change.rollback or change.rollback_command):
            out.append("a high-risk change needs a rollback plan (--rollback or --rollback-cmd)")
        if not change.tail_test:
            out.append("a high-risk change needs a tail test (--tail-test BENCHMARK with p99, "
                       "p99.9 or max)")
    if change.level != "low":
        if cycle is None:
            out.append(f"a {change.level}-risk change is applied only inside a cycle "
                       "(perfloop cycle open NAME --budget N)")
        elif change.cycle_id is None and change.score > cycle.left + extra_budget:
            out.append(f"over budget: {change.score:.0f} points, {cycle.left:.0f} left in "
                       f"cycle {cycle.name!r}")
    return out


def apply(store: Store, root: str | Path, change_id: int, *, baseline_run_id: int | None = None) -> Change:
    """Apply a change: low risk now; medium and high only inside the cycle, within its budget."""
    change = get_change(store, change_id)
    if change.status not in ("proposed", "scheduled"):
        raise UsageError(f"change #{change.id} is {change.status}", hint="only a proposed change is applied")
    pending = [c for c in list_changes(store, root) if c.status == "applied" and c.id != change.id]
    if pending:
        raise UsageError(f"change #{pending[0].id} is applied and not verified yet: one change at "
                         "a time, so that each effect is attributed",
                         hint=f"perfloop change verify {pending[0].id}")
    cycle = current_cycle(store, root)
    blockers = _blockers(change, cycle)
    if blockers:
        raise UsageError(f"change #{change.id} cannot be applied: " + "; ".join(blockers))
    floor = baseline_run_id if baseline_run_id is not None else (
        cycle.baseline_run_id if cycle is not None else None)
    if floor is None:
        raise UsageError(f"change #{change.id} has no floor to be verified against",
                         hint="measure it before the change (perfloop run --label floor) and pass "
                              "--baseline floor, or open a cycle with --baseline")
    data: dict[str, Any] = {"applied_at": utcnow().isoformat()}
    if change.level != "low" and cycle is not None:
        data["cycle_id"] = cycle.id
    return _update(store, change.id, status="applied", data=data, baseline_run_id=floor)


# --------------------------------------------------------------------------------------------
# verify and rollback


Measure = Callable[[Sequence[str], str], int]          # (benchmarks, label) -> run id
CompareRuns = Callable[[int, int], Sequence[Any]]       # (floor, after) -> verdicts


def _benchmarks_of(change: Change, config: ProjectConfig) -> list[str]:
    names = ([change.tail_test] if change.tail_test else []) + list(change.data.get("benchmarks", ()))
    return names or [s.name for s in config.benchmarks]


def verify(store: Store, config: ProjectConfig, change_id: int, *, measure: Measure,
           compare: CompareRuns) -> Change:
    """Measure the change's benchmarks and compare them with the floor, the tail included."""
    change = get_change(store, change_id)
    if change.status not in ("applied", "breaks-floor", "verified"):
        raise UsageError(f"change #{change.id} is {change.status}: apply it first",
                         hint=f"perfloop change apply {change.id}")
    if change.baseline_run_id is None:
        raise UsageError(f"change #{change.id} has no floor run")
    run_id = measure(_benchmarks_of(change, config), f"change-{change.id}")
    verdicts = list(compare(change.baseline_run_id, run_id))
    broken = [v for v in verdicts if _value(v, "verdict") == "regressed"]
    expected = {s.name for s in config.select(_benchmarks_of(change, config))}
    outside = sorted({_value(v, "benchmark") for v in broken} - expected)
    verification = {"run_id": run_id, "floor_run_id": change.baseline_run_id,
                    "broken": [_summary(v) for v in broken],
                    "improved": [_summary(v) for v in verdicts if _value(v, "verdict") == "improved"],
                    "outside_expected": outside}
    status = "breaks-floor" if broken else "verified"
    record = store.change(change.id)
    assert record is not None
    return _update(store, change.id, status=status, data={"verification": verification},
                   verification_run_ids=[*record.verification_run_ids, run_id],
                   actual={"verdict": status, **verification})


def _value(v: Any, key: str) -> Any:
    if isinstance(v, Mapping):
        return v.get(key)
    value = getattr(v, key)
    return getattr(value, "value", value)


def _summary(v: Any) -> dict[str, Any]:
    return {"benchmark": _value(v, "benchmark"), "metric": _value(v, "metric"),
            "change": _value(v, "change"), "verdict": _value(v, "verdict")}


def rollback(store: Store, root: str | Path, change_id: int, *, confirmed: bool = False,
             run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
             timeout: float = 600.0) -> Change:
    """Roll a change back by its plan: run its command, or record a confirmed checklist."""
    change = get_change(store, change_id)
    if change.status in ("proposed", "rolled-back"):
        raise UsageError(f"change #{change.id} is {change.status}: nothing to roll back")
    entry: dict[str, Any] = {"at": utcnow().isoformat()}
    if change.rollback_command:
        try:
            proc = run(change.rollback_command, shell=True, cwd=str(Path(root).resolve()),
                       capture_output=True, text=True, timeout=timeout)
            code, output = proc.returncode, (proc.stdout + proc.stderr)[-2000:]
        except (OSError, subprocess.TimeoutExpired) as exc:
            code, output = -1, f"{type(exc).__name__}: {exc}"
        entry.update(command=change.rollback_command, exit_code=code, output=output)
        status = "rolled-back" if code == 0 else "rollback-failed"
    elif change.rollback:
        if not confirmed:
            raise UsageError(f"change #{change.id}'s rollback plan is a checklist: carry it out, "
                             f"then confirm with --yes:\n  {change.rollback}")
        entry.update(checklist=change.rollback, confirmed=True)
        status = "rolled-back"
    else:
        raise UsageError(f"change #{change.id} has no rollback plan",
                         hint="roll it back by hand, and record what you did in its notes")
    return _update(store, change.id, status=status,
                   data={"rollbacks": [*change.data.get("rollbacks", []), entry]})


# --------------------------------------------------------------------------------------------
# status, close, calibration


def health(cycle: Cycle, queue: Sequence[Change], now: datetime | None = None) -> dict[str, Any]:
    """Stagnation and chaos, with their numbers."""
    unspent = cycle.left / cycle.budget if cycle.budget else 0.0
    oldest = max((c.age_days(now) for c in queue), default=0.0)
    done = [c for c in cycle.changes if c.status not in ("proposed", "scheduled", "applied")]
    bad = [c for c in done if c.status in BAD]
    outside = [c for c in done if (c.data.get("verification") or {}).get("outside_expected")]
    stagnation = unspent > 0.5 and oldest >= STAGNATION_DAYS
    chaos = bool(done) and (len(bad) >= 2 or len(bad) / len(done) > 0.3 or bool(outside))
    return {"unspent_share": round(unspent, 3), "queue": len(queue), "oldest_queued_days": round(oldest, 1),
            "stagnation": stagnation, "verified": len(done), "rolled_back_or_broken": len(bad),
            "effects_outside_expected": len(outside), "chaos": chaos}


def status(store: Store, root: str | Path, now: datetime | None = None) -> dict[str, Any]:
    cycle = current_cycle(store, root)
    changes = list_changes(store, root)
    queue = [c for c in changes if c.status == "proposed"]
    out: dict[str, Any] = {"cycle": cycle.to_dict() if cycle else None,
                           "queue": [{**c.to_dict(), "age_days": round(c.age_days(now), 1),
                                      "blocked_by": _blockers(c, cycle)} for c in queue]}
    if cycle is not None:
        out["health"] = health(cycle, queue, now)
    return out


def close_cycle(store: Store, root: str | Path, *, confirmed: bool = False) -> Cycle:
    """Close the open cycle: roll back what broke the floor, record the outcome."""
    cycle = current_cycle(store, root)
    if cycle is None:
        raise UsageError("no cycle is open", hint="perfloop cycle open NAME --budget N")
    unverified = [c for c in cycle.changes if c.status == "applied"]
    if unverified:
        raise UsageError(f"change #{unverified[0].id} is applied and not verified",
                         hint=f"perfloop change verify {unverified[0].id}")
    for c in cycle.changes:
        if c.status == "breaks-floor":
            rollback(store, root, c.id, confirmed=confirmed)
    cycle = current_cycle(store, root)
    assert cycle is not None
    queue = [c for c in list_changes(store, root) if c.status == "proposed"]
    outcome = {"health": health(cycle, queue),
               "verified": [c.id for c in cycle.changes if c.status == "verified"],
               "rolled_back": [c.id for c in cycle.changes if c.status == "rolled-back"],
               "rollback_failed": [c.id for c in cycle.changes if c.status == "rollback-failed"],
               "spent": cycle.spent, "budget": cycle.budget}
    store.update_cycle(cycle.id, edit=lambda old: {**old, "outcome": outcome}, status="closed",
                       closed_at=utcnow())
    closed = next(c for c in store.cycles(project=_project(root)) if c.id == cycle.id)
    return _cycle(store, closed)


def calibration(store: Store, root: str | Path) -> dict[str, Any]:
    """How well risk scores ranked bad outcomes, over changes of closed cycles: the score's
    rank correlation with outcomes, and each factor's, so that the reading can name the weights
    worth raising (factors that rank bad outcomes first) and lowering (factors that do not)."""
    cycles = [_cycle(store, r) for r in store.cycles(project=_project(root), status="closed")]
    done = [c for cy in cycles for c in cy.changes if c.status in ("verified", *BAD)]
    bad = [1.0 if c.status in BAD else 0.0 for c in done]
    rho = _spearman([c.score for c in done], bad)
    names = sorted({n for c in done for n in c.factors})
    factors = {n: _spearman([c.factors.get(n, 0.0) for c in done], bad) for n in names}
    return {"cycles": len(cycles), "changes": len(done), "bad_outcomes": int(sum(bad)),
            "spearman": rho, "factors": factors, "reading": _calibration_reading(rho, factors)}


def _spearman(values: Sequence[float], outcomes: Sequence[float]) -> float | None:
    """Spearman's rank correlation, or None with fewer than 3 values or either side constant."""
    if len(values) < 3 or len(set(values)) < 2 or len(set(outcomes)) < 2:
        return None
    from scipy.stats import spearmanr
    return float(spearmanr(values, outcomes).statistic)


def _calibration_reading(rho: float | None, factors: Mapping[str, float | None]) -> str:
    if rho is None:
        return "not enough outcomes yet (3 changes with both good and bad outcomes)"
    text = ("scores rank the changes that went wrong first" if rho >= 0.3 else
            "scores do not predict outcomes: revisit the weights in [risk]")
    known = {n: r for n, r in factors.items() if r is not None}
    raise_ = [f"{n} ({r:+.2f})" for n, r in sorted(known.items(), key=lambda kv: -kv[1]) if r >= 0.3]
    lower = [f"{n} ({r:+.2f})" for n, r in sorted(known.items(), key=lambda kv: kv[1]) if r <= 0]
    if raise_:
        text += "; factors that rank bad outcomes first (weights worth raising): " + ", ".join(raise_)
    if lower:
        text += "; factors that do not (weights worth lowering): " + ", ".join(lower)
    return text


__all__ = ["Change", "Cycle", "TAIL_METRICS", "WORKFLOW", "apply", "calibration", "close_cycle",
           "current_cycle", "get_change", "health", "list_changes", "open_cycle", "propose",
           "rollback", "status", "verify"]
