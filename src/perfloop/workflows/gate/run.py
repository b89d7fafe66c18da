"""The gate's course: resolve base and head, measure every benchmark, keep what holds up
across the suite and on a second look, judge against approvals, store and journal it all."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ...config import BenchmarkSpec, ProjectConfig
from ...errors import UsageError
from ...measure.environment import fingerprint
from ...measure.git import git_state, resolve_commit
from ...measure.runner import MeasureFunction, measure_spec
from ...measure.suites import with_suites
from ...records import RunStatus
from ...store import Store
from ..approvals import Approval, applicable, commits_in_range
from ..drills import refuse_during_drill
from ..journal import journal_gate
from ..own_code import SideCheck
from ..run import with_overrides
from .confirm import confirm, control_fdr
from .judging import approvals_for, journal_approval, judge, record_sizes
from .options import PASS, GateOptions
from .outcome import APPROVED, BenchmarkOutcome, GateReport
from .runs import LABEL_BASE, LABEL_HEAD, GateRuns, Revision, stored_base
from .sampling import DecideFunction, EventFunction, Measuring, Work, cleared_by_stored, first_look
from .sampling import make_decide
from .worktrees import Checkouts, git_toplevel, rooted


@dataclass(frozen=True)
class Change:
    """Base and head as resolved: what the gate compares."""

    root: Path
    base: Revision
    head: Revision
    base_ref: str
    head_ref: str

    @property
    def base_commit(self) -> str:
        assert self.base.commit is not None
        return self.base.commit

    def report(self, options: GateOptions, benchmarks: tuple[BenchmarkOutcome, ...], *,
               approvals: tuple[Approval, ...], notes: tuple[str, ...], seconds: float,
               comparisons: int = 0, run_ids: dict[str, int] | None = None) -> GateReport:
        return GateReport(base_ref=self.base_ref, base_commit=self.base_commit,
                          head_ref=self.head_ref, head_commit=self.head.commit,
                          head_dirty=self.head.dirty, project=str(self.root), options=options,
                          benchmarks=benchmarks, comparisons=comparisons,
                          run_ids=dict(run_ids or {}), approvals=approvals, notes=notes,
                          seconds=seconds)


def resolve_change(root: Path, options: GateOptions) -> Change:
    """Base and head commits of ``options``; UsageError for a ref that is not there."""
    git_toplevel(root)
    base_commit = resolve_commit(root, options.base)
    if base_commit is None:
        raise UsageError(f"--base {options.base}: no such commit in this repository",
                         hint="fetch it first (git fetch origin main); in GitHub Actions check out "
                              "with fetch-depth: 0 so the base branch is there")
    if options.head:
        head_commit = resolve_commit(root, options.head)
        if head_commit is None:
            raise UsageError(f"--head {options.head}: no such commit in this repository")
        head = Revision(LABEL_HEAD, head_commit)
    else:
        state = git_state(root)
        head = Revision(LABEL_HEAD, state.commit, state.branch, state.dirty)
    return Change(root=root, base=Revision(LABEL_BASE, base_commit), head=head,
                  base_ref=options.base, head_ref=options.head or "working tree")


def run_gate(config: ProjectConfig, store: Store, options: GateOptions, *,
             measure: MeasureFunction | None = None, decide: DecideFunction | None = None,
             on_event: EventFunction | None = None,
             clock: Callable[[], float] = time.monotonic) -> GateReport:
    """Measure base and head of the project, decide, and return the gate's report.

    ``measure`` and ``decide`` replace the real measurement and comparison (tests inject
    fakes). Raises UsageError for a bad base or head ref or unknown benchmarks; runs that were
    begun are marked ``interrupted`` on Ctrl-C or an error, and the worktree is removed.
    """
    started = clock()
    say = on_event or (lambda message: None)
    root = config.root.resolve()
    refuse_during_drill(root, "the gate")
    change = resolve_change(root, options)
    config = with_suites(config, options.benchmarks)   # collected in head; base re-roots them
    specs = with_overrides(config.select(list(options.benchmarks)), **dict(options.overrides))
    decide = decide or make_decide(options.tolerance, options.confidence,
                                   {s.name: s.settings.tolerance for s in specs},
                                   {s.name: s.settings.decide_on for s in specs})
    approvals = approvals_for(store, root, change.base_commit, change.head.commit)
    if change.head.commit == change.base_commit and not change.head.dirty:
        return change.report(options, tuple(BenchmarkOutcome(s.name, PASS) for s in specs),
                             approvals=tuple(approvals), seconds=clock() - started,
                             notes=(f"base and head are the same commit "
                                    f"({change.base_commit[:12]}): nothing to gate",))

    runs = GateRuns(store, config, fingerprint(), options, specs)
    ctx = Measuring(measure=measure or measure_spec, decide=decide, runs=runs, clock=clock,
                    say=say)
    work = [Work(spec) for spec in specs]
    comparisons = _measure_all(work, change, ctx, options, SideCheck(config.path))

    head = change.head.commit
    in_range = set(commits_in_range(root, change.base_commit, head)) if head else set()
    counting = applicable(approvals, head=head, in_range=in_range)
    outcomes = [judge(item, counting, options) for item in work]
    for outcome in outcomes:
        record_sizes(store, outcome, head)
        if outcome.status == APPROVED:
            journal_approval(store, outcome, base=change.base_commit, head=head, run_ids=runs.ids)
    journal_gate(store, outcomes, base=change.base_commit, head=head, run_ids=runs.ids)
    notes = (("head has uncommitted changes: they were measured, and the head run is marked "
              "dirty",) if change.head.dirty else ())
    return change.report(options, tuple(outcomes), approvals=tuple(counting), notes=notes,
                         seconds=clock() - started, comparisons=comparisons, run_ids=runs.ids)


def _measure_all(work: list[Work], change: Change, ctx: Measuring, options: GateOptions,
                 own_code: SideCheck) -> int:
    """Measure every benchmark, control the false discovery rate and confirm what is left;
    the runs are finished ``complete``, or ``interrupted`` on any way out but the normal one.
    Returns the number of comparisons under FDR control."""
    with contextlib.ExitStack() as stack:
        checkouts = Checkouts(change.root, stack, ctx.say)
        head_root = change.head.commit if options.head else None
        try:
            reusable = (stored_base(ctx.runs.store, change.base_commit,
                                    ctx.runs.environment["fingerprint"],
                                    max_age=options.max_base_age) if options.reuse_base else {})
            for item in work:
                head_spec = _own_checkout("head", rooted(item.spec, checkouts.of(head_root)),
                                          own_code)
                stored = reusable.get(item.name)
                if stored is not None and cleared_by_stored(item, head_spec, stored, ctx,
                                                            head=change.head):
                    continue
                item.base_spec = _own_checkout(
                    "base", rooted(item.spec, checkouts.of(change.base_commit)), own_code)
                first_look(item, head_spec, ctx, options.sampling, base=change.base,
                           head=change.head)
            comparisons = control_fdr(work, options.q)
            confirm(work, ctx, options, checkouts, base=change.base, head=change.head)
        except BaseException:
            ctx.runs.finish(RunStatus.INTERRUPTED)
            raise
        ctx.runs.finish(RunStatus.COMPLETE)
    return comparisons


def _own_checkout(side: str, spec: BenchmarkSpec, own_code: SideCheck) -> BenchmarkSpec:
    """``spec``, checked to import its own checkout's code (or both sides measure the same)."""
    own_code(side, spec, git_toplevel(Path(spec.root)))
    return spec


__all__ = ["Change", "resolve_change", "run_gate"]
