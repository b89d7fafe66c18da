"""Which tuning workflow fits a team now, and when none does.

The advice combines what the team says about its situation (:class:`Situation`: a rewrite
planned, a team new to the codebase, exploring, the expected gain against the measurement
cost, latency objectives, contributors, a live system tuned steadily) with what the project's
own history shows (:class:`Evidence`: CI time spent on the gate against the regressions it
caught, incidents per month, the hypothesis hit rate). The rules are ordered, the first that
applies decides, and each one says why, the way an experienced performance engineer would:

1. exploring, not optimizing: no formal workflow, ad-hoc profiling;
2. the gain is not worth the measurement: no formal tuning, fix only egregious bottlenecks;
3. a rewrite is planned: light profile-and-patch on the old system, benchmarks for the new;
4. strict latency objectives: data-driven regression tracking with the tail gated;
5. a team new to the codebase: profile-and-patch first, to build intuition;
6. a live system tuned continuously: risk-budgeted iterations, with a gate underneath;
7. many contributors on long-lived code: data-driven, with profile-and-patch for incidents;
8. a small team shipping features: profile-and-patch when something is slow.

The evidence adjusts and explains: a gate that costs much CI time and has caught nothing is
said to be over-instrumentation; frequent incidents with a low hypothesis hit rate call for
profiling before guessing.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from ..store import Store
from .incident import hypothesis_history

PROFILE_AND_PATCH = "profile-and-patch"
DATA_DRIVEN = "data-driven"
RISK_BUDGETED = "risk-budgeted"
HYBRID = "hybrid"
NONE = "none"
WORKFLOWS = (PROFILE_AND_PATCH, DATA_DRIVEN, RISK_BUDGETED, HYBRID, NONE)

MANY_CONTRIBUTORS = 8           # active authors in 90 days beyond which one person's memory fails
GATE_LABELS = ("gate-base", "gate-head", "gate-confirm-base", "gate-confirm-head")


@dataclass(frozen=True)
class Situation:
    """What the team says about itself. ``None`` means not said (history may tell)."""

    rewrite_planned: bool = False
    new_to_codebase: bool = False
    exploring: bool = False
    gain: float | None = None            # expected relative gain, 0.01 = 1%
    cost: float | None = None            # share of engineering time measurement would take
    strict_latency: bool = False         # latency objectives that are contractual (p99, p99.9)
    contributors: int | None = None
    live_system: bool = False            # a running service tuned continuously
    shipping_features: bool = False      # a young product whose code changes weekly


@dataclass(frozen=True)
class Evidence:
    """What the project's history shows; zero counts when there is no history."""

    runs: int = 0
    gate_runs: int = 0
    gate_seconds: float = 0.0            # wall time the gate's runs took
    regressions_caught: int = 0          # approvals and gate failures recorded
    improvements: int = 0                # journaled changes verified by a measurement
    incidents: int = 0
    months: float = 0.0                  # span of the history
    hypotheses_decided: int = 0
    hit_rate: float | None = None
    contributors: int | None = None      # git authors in the last 90 days

    @property
    def incidents_per_month(self) -> float | None:
        return self.incidents / self.months if self.months >= 1 else None

    def facts(self) -> list[str]:
        """The history in sentences, for the reader to check the advice against."""
        out = []
        if self.runs:
            out.append(f"{self.runs} stored runs over {self.months:.1f} months")
        if self.gate_runs:
            out.append(f"gate: {self.gate_runs} runs, {self.gate_seconds / 3600:.1f} h of CI time, "
                       f"{self.regressions_caught} regressions caught")
        if self.runs or self.improvements:
            out.append(f"improvements delivered, verified by a measurement: {self.improvements}")
        if self.incidents:
            rate = self.incidents_per_month
            out.append(f"{self.incidents} incidents" + (f" ({rate:.1f} a month)" if rate else ""))
        if self.hit_rate is not None:
            out.append(f"hypothesis hit rate {self.hit_rate:.0%} over {self.hypotheses_decided} "
                       "checked hypotheses")
        if self.contributors is not None:
            out.append(f"{self.contributors} git authors in the last 90 days")
        return out


@dataclass(frozen=True)
class Advice:
    workflow: str                           # one of WORKFLOWS
    headline: str
    reasons: tuple[str, ...]
    next_steps: tuple[str, ...]
    also: str | None = None                 # the secondary loop of a hybrid
    evidence: tuple[str, ...] = ()
    cautions: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _contributors(situation: Situation, evidence: Evidence) -> int | None:
    return situation.contributors if situation.contributors is not None else evidence.contributors


def _cautions(evidence: Evidence) -> list[str]:
    out = []
    if evidence.gate_runs >= 20 and evidence.regressions_caught == 0 and evidence.gate_seconds > 3600:
        out.append(f"the gate has spent {evidence.gate_seconds / 3600:.1f} h of CI time and caught "
                   "no regression: keep the benchmarks that guard what users feel, drop the rest")
    if evidence.hit_rate is not None and evidence.hypotheses_decided >= 5 and evidence.hit_rate < 0.4:
        out.append(f"hypotheses were right {evidence.hit_rate:.0%} of the time: profile before "
                   "patching, and write the guess down first as you do")
    return out


@dataclass(frozen=True)
class _Plan:
    """A rule's answer, before the history's facts and cautions are attached."""

    workflow: str
    headline: str
    reasons: Sequence[str]
    steps: Sequence[str]
    also: str | None = None


def _exploring(situation: Situation, evidence: Evidence) -> _Plan | None:
    if not situation.exploring:
        return None
    return _Plan(NONE, "no formal workflow: explore with ad-hoc profiling",
                 ["you are learning where time goes, not chasing a target: a gate or a risk "
                  "budget would measure against a goal you do not have yet",
                  "profiles are cheap and answer 'where' without a baseline"],
                 ["perfloop profile --explore --benchmark NAME",
                  "perfloop profile --explore -- python your_program.py",
                  "once a target appears, write it down: perfloop incident open ..."])


def _not_worth_it(situation: Situation, evidence: Evidence) -> _Plan | None:
    if situation.gain is None or situation.cost is None or situation.gain >= situation.cost:
        return None
    return _Plan(NONE, "skip formal tuning: the gain is not worth the measurement",
                 [f"an expected gain of {situation.gain:.0%} against {situation.cost:.0%} of "
                  "engineering time spent measuring costs more than it returns",
                  "fix only egregious bottlenecks, when a profile shows one"],
                 ["perfloop profile --explore when something is visibly slow",
                  "revisit when the gain or the load grows"])


def _rewrite(situation: Situation, evidence: Evidence) -> _Plan | None:
    if not situation.rewrite_planned:
        return None
    return _Plan(HYBRID, "keep the old system alive with light profile-and-patch; build "
                 "benchmarks for the new one",
                 ["tuning code that will be replaced is wasted unless users suffer now: patch "
                  "only firefights, with a hypothesis and a baseline",
                  "the new system needs its benchmarks from day one, so its gate can guard it "
                  "and compare it with the old one on the same workloads"],
                 ["perfloop incident open ... for firefights on the old system",
                  "perfloop init in the new system's repository, then perfloop gate in its CI"],
                 also=f"{DATA_DRIVEN} for the new system")


def _strict_latency(situation: Situation, evidence: Evidence) -> _Plan | None:
    if not situation.strict_latency:
        return None
    return _Plan(DATA_DRIVEN, "data-driven regression tracking, with the tail gated",
                 ["contractual latency objectives make every regression a breach: each change "
                  "must be measured before it merges, not after an alert",
                  "averages hide what the objective is about: gate p99 and p99.9, not the mean"],
                 ["benchmarks with latency_p99 and latency_p999 metrics (HTTP targets)",
                  "perfloop gate --base origin/main in CI, tolerance set from the objective",
                  "perfloop history and detect for slow drifts between releases"],
                 also=f"{PROFILE_AND_PATCH} for incidents")


def _new_team(situation: Situation, evidence: Evidence) -> _Plan | None:
    if not situation.new_to_codebase:
        return None
    return _Plan(PROFILE_AND_PATCH, "profile-and-patch first, to build intuition",
                 ["a team new to a codebase guesses wrong about where time goes: a hypothesis "
                  "written down and checked by a profile teaches the codebase fastest",
                  "the hit rate of those hypotheses shows when intuition has caught up"],
                 ['perfloop incident open "..." --benchmark NAME',
                  'perfloop hypothesis "..." --expect module:function, then perfloop profile',
                  "perfloop hypotheses: the hit rate over time"])


def _live_system(situation: Situation, evidence: Evidence) -> _Plan | None:
    if not situation.live_system:
        return None
    return _Plan(RISK_BUDGETED, "risk-budgeted iterations on the live system",
                 ["steady tuning of a running service needs small, reversible steps: low-risk "
                  "changes now, high-risk ones batched with a rollback plan and a tail test",
                  "a budget keeps the pace between stagnation and chaos"],
                 ["perfloop gate in CI underneath, so no change degrades the floor",
                  "score each tuning change before applying it, and batch the risky ones"],
                 also=f"{DATA_DRIVEN} gate underneath")


def _many_contributors(situation: Situation, evidence: Evidence) -> _Plan | None:
    contributors = _contributors(situation, evidence)
    if contributors is None or contributors < MANY_CONTRIBUTORS:
        return None
    return _Plan(HYBRID, "data-driven regression tracking, with profile-and-patch for incidents",
                 [f"{contributors} contributors on long-lived code: nobody sees every change, "
                  "so a gate in CI must, at a tolerance the team agreed",
                  "incidents still happen; profile-and-patch handles them with a hypothesis "
                  "and a baseline"],
                 ["perfloop init (config and CI workflow), perfloop gate --base origin/main",
                  "perfloop incident open ... when an alert fires"],
                 also=f"{PROFILE_AND_PATCH} for incidents")


def _small_team(situation: Situation, evidence: Evidence) -> _Plan | None:
    contributors = _contributors(situation, evidence)
    if not situation.shipping_features and (contributors is None or contributors >= MANY_CONTRIBUTORS):
        return None
    reasons = ["a small team shipping features changes the code faster than a benchmark suite "
               "can be kept meaningful; fix what users feel when they feel it",
               "profile-and-patch costs nothing until something is slow"]
    rate = evidence.incidents_per_month
    if rate is not None and rate >= 2:
        reasons.append(f"{rate:.1f} incidents a month: add a few benchmarks for the paths "
                       "that keep breaking, and gate those")
    return _Plan(PROFILE_AND_PATCH, "profile-and-patch when something is slow", reasons,
                 ['perfloop incident open "..." --benchmark NAME when a complaint or alert comes',
                  "perfloop baseline before the patch, perfloop verify after"])


_DEFAULT = _Plan(PROFILE_AND_PATCH, "profile-and-patch until the situation says more",
                 ["nothing in the answers or the history calls for a standing workflow yet",
                  "answer the questions (perfloop advise --help) for sharper advice"],
                 ['perfloop incident open "..." when something is slow'])

#: The rules in the order the module's docstring lists them: the first that answers decides.
RULES: tuple[Callable[[Situation, Evidence], _Plan | None], ...] = (
    _exploring, _not_worth_it, _rewrite, _strict_latency, _new_team, _live_system,
    _many_contributors, _small_team)


def advise(situation: Situation, evidence: Evidence = Evidence()) -> Advice:
    """The workflow that fits, with reasons, next steps and the history behind it."""
    plan = next((p for p in (rule(situation, evidence) for rule in RULES) if p is not None), _DEFAULT)
    return Advice(plan.workflow, plan.headline, tuple(plan.reasons), tuple(plan.steps), plan.also,
                  tuple(evidence.facts()), tuple(_cautions(evidence)))


# --------------------------------------------------------------------------------------------
# evidence from the store and git


def _git_authors(root: Path, days: int = 90) -> int | None:
    try:
        out = subprocess.run(["git", "-C", str(root), "log", f"--since={days}.days", "--format=%ae"],
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return len({line.strip().lower() for line in out.stdout.splitlines() if line.strip()})


def gather_evidence(store: Store, root: str | Path, *, now: datetime | None = None) -> Evidence:
    """The project's history as :class:`Evidence` (runs, gate cost, incidents, hypotheses, git)."""
    root = Path(root).resolve()
    now = now or datetime.now(timezone.utc)
    project = str(root)
    # runs carry no project of their own here: a store holds one project's runs in practice
    runs = store.list_runs(limit=None)
    incidents = len(store.incidents(project=project))
    changes = store.changes()
    failed_gates = sum(1 for c in changes if (c.data or {}).get("gate") and c.status == "failed")
    approvals = len(store.approvals()) + failed_gates
    improvements = sum(1 for c in changes if c.status == "verified")
    gate = [r for r in runs if (r.label or "") in GATE_LABELS]
    gate_seconds = sum((r.finished_at - r.started_at).total_seconds() for r in gate if r.finished_at)
    started = min((r.started_at for r in runs), default=now)
    hyps = hypothesis_history(store, root)
    decided = hyps.confirmed + hyps.refuted
    return Evidence(runs=len(runs), gate_runs=len(gate), gate_seconds=gate_seconds,
                    regressions_caught=int(approvals), improvements=improvements,
                    incidents=int(incidents),
                    months=max(0.0, (now - started) / timedelta(days=30.44)),
                    hypotheses_decided=decided, hit_rate=hyps.hit_rate,
                    contributors=_git_authors(root))


__all__ = ["Advice", "DATA_DRIVEN", "Evidence", "HYBRID", "NONE", "PROFILE_AND_PATCH",
           "RISK_BUDGETED", "Situation", "WORKFLOWS", "advise", "gather_evidence"]
