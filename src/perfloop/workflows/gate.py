"""The regression gate: does this change make a benchmark worse, beyond its tolerance, unapproved?

How it decides (``docs/gate.md`` says why each step is there):

1. **Measure both sides on this machine, interleaved.** The base is checked out in a git
   worktree (``.perfloop/worktrees/``, removed afterwards, on error and Ctrl-C too); base and
   head are measured in balanced ``A B B A`` blocks of single-process calls
   (:mod:`perfloop.workflows.interleave`), adding blocks while a verdict is inconclusive, up to
   a cost limit. With ``reuse_base``, a stored run of the base commit from the same environment
   class may stand in for the base; it can only clear a benchmark: anything else is measured
   interleaved after all.
2. **Control the false discovery rate across the suite.** The p-values of every benchmark and
   metric go through Benjamini-Hochberg at ``q``; a regression that is not significant among
   all of them becomes ``inconclusive`` (:mod:`perfloop.analysis.fdr`).
3. **Confirm.** Each remaining regression is measured again, afresh and with more blocks; it
   fails the gate only if the confirmation says ``regressed`` too.
4. **Approvals.** A confirmed regression covered by an approval (``perfloop approve`` or a
   ``Perf-Approved:`` commit trailer between base and head) passes, and is journaled.
5. **Inconclusive** verdicts follow ``on_inconclusive``: ``warn`` (default: pass, and say so
   in every output), ``pass`` or ``fail``.

A benchmark that fails to run at head fails the gate (a benchmark that no longer runs is worse
than a slow one); one that fails at base is new (nothing to compare with). Side effects are
reported per benchmark: one metric improved while another regressed (metric myopia), a better
median with a worse tail.

The measured base and head are stored as runs labelled ``gate-base`` and ``gate-head`` (and
``gate-confirm-base`` / ``gate-confirm-head`` for confirmations), so the history grows with
every gate.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .. import __version__
from ..analysis.fdr import DEFAULT_Q, bh_adjust
from ..config import DEFAULT_TOLERANCE, BenchmarkSpec, ProjectConfig
from ..errors import PerfloopError, UsageError
from ..measure.environment import fingerprint
from ..measure.git import git_state, resolve_commit
from ..measure.runner import MeasureFunction, measure_spec
from ..measure.suites import with_suites
from ..records import BenchmarkResult, ResultStatus, RunStatus
from ..store import Store
from .approvals import (Approval, applicable, commits_in_range, journal_approved, list_approvals,
                        record_size, remember, trailer_approvals)
from .drills import refuse_during_drill
from .journal import journal_gate
from .interleave import (BASE, FAILED, HEAD, Interleaved, SamplingPolicy, kind_of,
                         measure_interleaved)
from .own_code import SideCheck
from .run import with_overrides

# What happens to an inconclusive verdict.
PASS, WARN, FAIL = "pass", "warn", "fail"
INCONCLUSIVE_POLICIES = (PASS, WARN, FAIL)
#: Default: pass, and say so everywhere. On shared CI machines wall time often cannot resolve a
#: 5% change at any affordable cost; failing on "cannot tell" would block changes on noise and
#: teach people to re-run or ignore the gate, and passing silently would hide that the gate
#: could not see. A warning keeps the gate trusted and the gap visible.
DEFAULT_ON_INCONCLUSIVE = WARN

# Benchmark and metric statuses in the gate's outcome, worst first.
APPROVED, NEW = "approved", "new"
STATUS_ORDER = (FAIL, WARN, APPROVED, NEW, PASS)
STATUS_WORDS = {FAIL: "failed", WARN: "inconclusive", APPROVED: "approved", NEW: "new",
                PASS: "passed"}

LABEL_BASE, LABEL_HEAD = "gate-base", "gate-head"
LABEL_CONFIRM_BASE, LABEL_CONFIRM_HEAD = "gate-confirm-base", "gate-confirm-head"
WORKTREES = Path(".perfloop") / "worktrees"

TIME_METRICS = frozenset({"wall_time", "cpu_time", "cpu_norm", "instructions", "latency_p50", "latency_p90",
                          "latency_p99", "latency_p999", "latency_max"})
MEMORY_METRICS = frozenset({"peak_rss", "peak_alloc"})
TAIL_METRICS = ("latency_p99", "latency_p999", "latency_max")

#: ``on_event(message)``: what the gate is doing, for a progress display.
EventFunction = Callable[[str], None]


@dataclass(frozen=True)
class GateOptions:
    """What to compare and how strictly. ``head=None`` is the working tree (dirty changes included)."""

    base: str
    head: str | None = None
    benchmarks: tuple[str, ...] = ()
    sampling: SamplingPolicy = field(default_factory=SamplingPolicy)
    confirm_blocks: int = 8
    q: float = DEFAULT_Q
    confidence: float = 0.99
    tolerance: float | None = None               # None: each benchmark's own
    on_inconclusive: str = DEFAULT_ON_INCONCLUSIVE
    reuse_base: bool = False
    max_base_age: float = 24 * 3600.0            # seconds; older stored base runs are not reused
    overrides: Mapping[str, Any] = field(default_factory=dict)   # values, warmup, min_time, timeout

    def __post_init__(self) -> None:
        if self.on_inconclusive not in INCONCLUSIVE_POLICIES:
            raise UsageError(f"on_inconclusive must be one of {', '.join(INCONCLUSIVE_POLICIES)}, "
                             f"got {self.on_inconclusive!r}")
        if not 0 < self.q < 1:
            raise UsageError(f"q (false discovery rate) must be between 0 and 1, got {self.q}",
                             hint="e.g. --fdr 0.05")
        if not 0.5 < self.confidence < 1:
            raise UsageError(f"confidence must be between 0.5 and 1, got {self.confidence}")
        if self.tolerance is not None and not 0 < self.tolerance < 1:
            raise UsageError(f"tolerance must be a fraction between 0 and 1, got {self.tolerance}",
                             hint="e.g. 0.05 for 5%")
        if self.confirm_blocks < 1:
            raise UsageError("confirm_blocks must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        s = self.sampling
        return {"base": self.base, "head": self.head or "working tree",
                "benchmarks": list(self.benchmarks), "blocks": s.blocks, "max_blocks": s.max_blocks,
                "max_seconds": s.max_seconds, "confirm_blocks": self.confirm_blocks, "fdr_q": self.q,
                "confidence": self.confidence, "tolerance": self.tolerance,
                "on_inconclusive": self.on_inconclusive, "reuse_base": self.reuse_base,
                "max_base_age": self.max_base_age, "overrides": dict(self.overrides)}


@dataclass(frozen=True)
class MetricOutcome:
    """The gate's word on one metric of one benchmark."""

    benchmark: str
    metric: str
    verdict: str                   # regressed | improved | unchanged | inconclusive
    status: str                    # pass | warn | fail | approved
    change: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    base: float | None = None      # location (trimmed mean) of each side
    head: float | None = None
    unit: str = ""
    direction: str = "lower"
    tolerance: float | None = None
    confirmed: bool | None = None  # None: no confirmation was needed
    more_workers: int | None = None
    approvals: tuple[Approval, ...] = ()
    notes: tuple[str, ...] = ()
    role: str = "decides"          # decides | context (a time metric shown beside the deciding one)
    deciding_metric: str | None = None
    deciding_reason: str | None = None
    design: str | None = None      # paired | unpaired

    def to_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "metric": self.metric, "verdict": self.verdict,
                "role": self.role, "deciding_metric": self.deciding_metric,
                "deciding_reason": self.deciding_reason, "design": self.design,
                "status": self.status, "change": self.change, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "p_value": self.p_value, "p_adjusted": self.p_adjusted,
                "base": self.base, "head": self.head, "unit": self.unit, "direction": self.direction,
                "tolerance": self.tolerance, "confirmed": self.confirmed,
                "more_workers": self.more_workers,
                "approvals": [a.to_dict() for a in self.approvals], "notes": list(self.notes)}


@dataclass(frozen=True)
class BenchmarkOutcome:
    """The gate's word on one benchmark: its metrics, how it was measured, side effects."""

    name: str
    status: str
    metrics: tuple[MetricOutcome, ...] = ()
    source: str = "interleaved"             # or "stored run #N" (reused base)
    blocks: int = 0
    seconds: float = 0.0
    stopped: str | None = None
    confirmation: Mapping[str, Any] | None = None
    side_effects: tuple[str, ...] = ()
    error: str | None = None
    approvals: tuple[Approval, ...] = ()    # approvals covering a head failure
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status,
                "metrics": [m.to_dict() for m in self.metrics], "source": self.source,
                "blocks": self.blocks, "workers_per_side": 2 * self.blocks, "seconds": self.seconds,
                "stopped": self.stopped,
                "confirmation": dict(self.confirmation) if self.confirmation is not None else None,
                "side_effects": list(self.side_effects), "error": self.error,
                "approvals": [a.to_dict() for a in self.approvals], "notes": list(self.notes)}


@dataclass(frozen=True)
class GateReport:
    """Everything the gate decided, for the renderers (terminal, Markdown, JUnit, GitHub)."""

    base_ref: str
    base_commit: str
    head_ref: str
    head_commit: str | None
    head_dirty: bool
    project: str
    options: GateOptions
    benchmarks: tuple[BenchmarkOutcome, ...]
    comparisons: int = 0                    # benchmark-metric pairs under FDR control
    run_ids: Mapping[str, int] = field(default_factory=dict)
    approvals: tuple[Approval, ...] = ()    # every approval that counted for this change
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def failures(self) -> list[BenchmarkOutcome]:
        return [b for b in self.benchmarks if b.status == FAIL]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def count(self, status: str) -> int:
        return sum(1 for b in self.benchmarks if b.status == status)

    def summary(self) -> str:
        """One line: what the gate decided."""
        parts = [f"{self.count(s)} {STATUS_WORDS[s]}" for s in STATUS_ORDER if self.count(s)]
        # approvals inside benchmarks whose worst status is another one are still said
        hidden = sum(1 for b in self.benchmarks if b.status != APPROVED
                     and any(m.status == APPROVED for m in b.metrics))
        if hidden:
            parts.append(f"{hidden} more with an approved regression")
        verdict = "passed" if self.passed else "FAILED"
        return f"gate {verdict}: {', '.join(parts) or 'no benchmarks'}"

    def failure_message(self) -> str:
        items = []
        for b in self.failures:
            bad = [m for m in b.metrics if m.status == FAIL]
            if bad:
                items.append(f"{b.name}: " + ", ".join(f"{m.metric} {m.verdict} {_pct(m.change)}"
                                                         for m in bad))
            else:
                items.append(f"{b.name}: {b.error or 'failed'}")
        return f"{len(items)} benchmark(s) failed the gate: " + "; ".join(items)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "exit_code": self.exit_code, "summary": self.summary(),
                "base": {"ref": self.base_ref, "commit": self.base_commit},
                "head": {"ref": self.head_ref, "commit": self.head_commit, "dirty": self.head_dirty},
                "project": self.project, "options": self.options.to_dict(),
                "comparisons": self.comparisons, "run_ids": dict(self.run_ids),
                "counts": {s: self.count(s) for s in STATUS_ORDER},
                "benchmarks": [b.to_dict() for b in self.benchmarks],
                "approvals": [a.to_dict() for a in self.approvals], "notes": list(self.notes),
                "seconds": self.seconds}


def _pct(change: float | None) -> str:
    if change is None or not math.isfinite(change):
        return "-"
    return f"{change * 100:+.1f}%"


# --------------------------------------------------------------------------------------------
# git worktrees


def git_toplevel(root: Path) -> Path:
    """The top of the git repository holding ``root``; UsageError outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run git in {root}: {exc}", hint="install git") from exc
    if out.returncode != 0:
        raise UsageError(f"{root} is not in a git repository: the gate compares two commits",
                         hint="run it in a git checkout, or compare stored runs with "
                              "perfloop compare BASE HEAD")
    return Path(out.stdout.strip()).resolve()


@contextlib.contextmanager
def worktree(root: Path, commit: str) -> Iterator[Path]:
    """The project at ``root`` as it was at ``commit``, in a temporary git worktree.

    Yields the project directory inside the worktree (the project may be a subdirectory of the
    repository). The worktree lives under ``.perfloop/worktrees`` and is removed on the way out,
    whatever the way out is.
    """
    root = root.resolve()
    top = git_toplevel(root)
    parent = root / WORKTREES
    parent.mkdir(parents=True, exist_ok=True)
    ignore = root / ".perfloop" / ".gitignore"
    if not ignore.exists():
        # A worktree inside the checkout would otherwise show up as untracked files.
        ignore.write_text("# perfloop's store and temporary worktrees\n*\n")
    prune_worktrees(parent, top)
    # The owner's pid in the name: a later gate removes what a killed one left behind.
    path = Path(tempfile.mkdtemp(prefix=f"{commit[:10]}-{os.getpid()}-", dir=parent))
    out = subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=top,
                         capture_output=True, text=True)
    if out.returncode != 0:
        shutil.rmtree(path, ignore_errors=True)
        raise PerfloopError(f"git worktree add for {commit[:12]} failed: {out.stderr.strip()}",
                            hint="check that the commit exists locally (git fetch) and that "
                                 f"{parent} is writable")
    try:
        yield path / root.relative_to(top)
    finally:
        done = subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=top,
                              capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            subprocess.run(["git", "worktree", "prune"], cwd=top, capture_output=True)


def prune_worktrees(parent: Path, top: Path) -> list[Path]:
    """Remove the worktrees under ``parent`` whose gate is gone (killed, so it could not clean
    up), then let git forget them (``git worktree prune``). Returns the directories removed."""
    stale = []
    for path in parent.iterdir() if parent.is_dir() else []:
        parts = path.name.split("-")
        owner = int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None
        if path.is_dir() and (owner is None or not _process_exists(owner)):
            shutil.rmtree(path, ignore_errors=True)
            stale.append(path)
    if stale:
        subprocess.run(["git", "worktree", "prune"], cwd=top, capture_output=True)
    return stale


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def rooted(spec: BenchmarkSpec, root: Path) -> BenchmarkSpec:
    """``spec`` with its project directory moved to ``root`` (relative paths follow)."""
    return replace(spec, root=str(root))


# --------------------------------------------------------------------------------------------
# verdicts


def make_decide(tolerance: float | None, confidence: float,
                tolerances: Mapping[str, float] | None = None,
                decide_on: Mapping[str, str] | None = None
                ) -> Callable[[BenchmarkResult, BenchmarkResult], list[Any]]:
    """The comparison the gate uses: per-metric verdicts of :mod:`perfloop.analysis.compare`.

    ``tolerance`` overrides every benchmark's own, which ``tolerances`` gives by name;
    ``decide_on`` names each benchmark's forced deciding time metric (``auto`` by default).
    Results measured interleaved (both carry ``extra["interleaved"]``) are analysed paired,
    block by block; a stored base against a fresh head is not.
    """
    from ..analysis.compare import compare_results   # the verdict engine, at call time
    own = dict(tolerances or {})
    forced = dict(decide_on or {})

    def decide(base: BenchmarkResult, head: BenchmarkResult) -> list[Any]:
        tol = tolerance if tolerance is not None else own.get(
            head.name, float(head.extra.get("tolerance", DEFAULT_TOLERANCE)))
        paired = "interleaved" in base.extra and "interleaved" in head.extra
        return list(compare_results(base, head, tolerance=tol, confidence=confidence,
                                    paired=paired, decide_on=forced.get(head.name)))

    return decide


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def metric_outcome(verdict: Any, benchmark: str) -> MetricOutcome:
    """A provisional MetricOutcome from a verdict of the comparison (status decided later)."""
    direction = getattr(verdict, "direction", "lower")
    more = getattr(verdict, "more_workers", None)
    note = getattr(verdict, "note", None)
    return MetricOutcome(
        benchmark=getattr(verdict, "benchmark", None) or benchmark, metric=str(verdict.metric),
        verdict=kind_of(verdict), status=PASS, change=_num(getattr(verdict, "change", None)),
        ci_low=_num(getattr(verdict, "ci_low", None)), ci_high=_num(getattr(verdict, "ci_high", None)),
        p_value=_num(getattr(verdict, "p_value", None)),
        base=_num(getattr(verdict, "base_location", None)),
        head=_num(getattr(verdict, "head_location", None)), unit=str(getattr(verdict, "unit", "") or ""),
        direction=str(getattr(direction, "value", direction)),
        tolerance=_num(getattr(verdict, "tolerance", None)),
        more_workers=more if isinstance(more, int) else None, notes=(note,) if note else (),
        role=str(getattr(verdict, "role", "decides") or "decides"),
        deciding_metric=getattr(verdict, "deciding_metric", None),
        deciding_reason=getattr(verdict, "deciding_reason", None),
        design=getattr(verdict, "design", None))


def side_effects(metrics: Sequence[MetricOutcome]) -> list[str]:
    """Improvements bought with another metric (metric myopia), and a better median with a
    worse tail."""
    improved = [m for m in metrics if m.verdict == "improved"]
    regressed = [m for m in metrics if m.verdict == "regressed"]
    out: list[str] = []
    if improved and regressed:
        def kind(m: MetricOutcome) -> str:
            return "time" if m.metric in TIME_METRICS else "memory" if m.metric in MEMORY_METRICS else m.metric
        gains = ", ".join(f"{m.metric} {_pct(m.change)}" for m in improved)
        costs = ", ".join(f"{m.metric} {_pct(m.change)}" for m in regressed)
        what = {kind(m) for m in improved}, {kind(m) for m in regressed}
        trade = (f" ({'/'.join(sorted(what[0]))} bought with {'/'.join(sorted(what[1]))})"
                 if what[0].isdisjoint(what[1]) else "")
        out.append(f"improved {gains} but regressed {costs}{trade}: judge the trade, not the "
                   "improvement alone")
    by_name = {m.metric: m for m in metrics}
    p50 = by_name.get("latency_p50")
    tails = [by_name[t] for t in TAIL_METRICS if t in by_name and by_name[t].verdict == "regressed"]
    if p50 is not None and p50.verdict in ("improved", "unchanged") and tails:
        out.append(f"the median is {p50.verdict} ({_pct(p50.change)}) but the tail got worse: "
                   + ", ".join(f"{t.metric} {_pct(t.change)}" for t in tails))
    return out


# --------------------------------------------------------------------------------------------
# storing what was measured


class _Runs:
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

    def add(self, label: str, commit: str | None, branch: str | None, dirty: bool,
            result: BenchmarkResult, measured: Mapping[str, Any]) -> int:
        if label not in self.ids:
            self.ids[label] = self.store.begin_run(
                label=label, commit=commit, branch=branch, dirty=dirty, environment=self.environment,
                settings={"perfloop": __version__, "gate": self.options.to_dict(),
                          "benchmarks": {n: _settings(s) for n, s in self.specs.items()},
                          "interleaved": interleaved_pair(self.token, label)},
                project=str(self.config.root))
        spec = self.specs.get(result.name)
        extra = {**result.extra, "gate": dict(measured)}
        if spec is not None:
            extra.update(tolerance=spec.settings.tolerance, settings=_settings(spec))
        self.store.add_result(self.ids[label], replace(result, extra=extra))
        return self.ids[label]

    def finish(self, status: RunStatus) -> None:
        for run_id in self.ids.values():
            self.store.finish_run(run_id, status)


def interleaved_pair(token: str, label: str) -> dict[str, str]:
    """How a gate run records that it was measured interleaved with its partner run."""
    stage = "confirm" if label in (LABEL_CONFIRM_BASE, LABEL_CONFIRM_HEAD) else "first"
    side = BASE if label in (LABEL_BASE, LABEL_CONFIRM_BASE) else HEAD
    return {"pair": f"{token}:{stage}", "side": side, "order": "ABBA"}


def _settings(spec: BenchmarkSpec) -> dict[str, Any]:
    s = spec.settings
    return {"processes": s.processes, "values": s.values, "warmup": s.warmup, "min_time": s.min_time,
            "tolerance": s.tolerance, "timeout": s.timeout, "metrics": list(spec.metrics),
            "kind": spec.kind, "decide_on": s.decide_on, "run_noise": s.run_noise}


def stored_base(store: Store, commit: str, environment_hash: str, *, max_age: float,
                now: datetime | None = None) -> dict[str, tuple[int, BenchmarkResult]]:
    """Results of complete, clean runs of ``commit`` in the same environment class, not older
    than ``max_age`` seconds: benchmark name -> (run id, result), newest run first."""
    now = now or datetime.now(timezone.utc)
    found: dict[str, tuple[int, BenchmarkResult]] = {}
    for info in store.list_runs(limit=500):
        if (info.commit != commit or info.dirty or info.status is not RunStatus.COMPLETE
                or info.environment_hash != environment_hash
                or now - info.started_at > timedelta(seconds=max_age)):
            continue
        for result in store.get_run(info.id).results:
            if result.status is ResultStatus.OK and result.samples:
                found.setdefault(result.name, (info.id, result))
    return found


# --------------------------------------------------------------------------------------------
# the gate


@dataclass
class _Work:
    """One benchmark on its way through the gate."""

    spec: BenchmarkSpec
    base_spec: BenchmarkSpec | None = None
    metrics: list[MetricOutcome] = field(default_factory=list)
    source: str = "interleaved"
    blocks: int = 0
    seconds: float = 0.0
    stopped: str | None = None
    error: str | None = None
    status: str | None = None       # set early for new or failed benchmarks
    notes: list[str] = field(default_factory=list)
    confirmation: dict[str, Any] | None = None


def run_gate(config: ProjectConfig, store: Store, options: GateOptions, *,
             measure: MeasureFunction | None = None,
             decide: Callable[[BenchmarkResult, BenchmarkResult], Sequence[Any]] | None = None,
             on_event: EventFunction | None = None,
             clock: Callable[[], float] = time.monotonic) -> GateReport:
    """Measure base and head of the project, decide, and return the gate's report.

    ``measure`` and ``decide`` replace the real measurement and comparison (tests inject
    fakes). Raises UsageError for a bad base or head ref or unknown benchmarks; runs that were
    begun are marked ``interrupted`` on Ctrl-C or an error, and the worktree is removed.
    """
    started = clock()
    say = on_event or (lambda message: None)
    measure = measure or measure_spec
    root = config.root.resolve()
    refuse_during_drill(root, "the gate")
    git_toplevel(root)
    base_commit = resolve_commit(root, options.base)
    if base_commit is None:
        raise UsageError(f"--base {options.base}: no such commit in this repository",
                         hint="fetch it first (git fetch origin main); in GitHub Actions check out "
                              "with fetch-depth: 0 so the base branch is there")
    state = git_state(root)
    if options.head:
        head_commit = resolve_commit(root, options.head)
        if head_commit is None:
            raise UsageError(f"--head {options.head}: no such commit in this repository")
        head_dirty = False
        head_branch = None
    else:
        head_commit, head_dirty, head_branch = state.commit, state.dirty, state.branch
    config = with_suites(config, options.benchmarks)   # collected in head; base re-roots them
    specs = with_overrides(config.select(list(options.benchmarks)), **dict(options.overrides))
    decide = decide or make_decide(options.tolerance, options.confidence,
                                   {s.name: s.settings.tolerance for s in specs},
                                   {s.name: s.settings.decide_on for s in specs})
    head_ref = options.head or "working tree"

    approvals = _approvals(store, root, base_commit, head_commit)
    notes: list[str] = []
    if head_commit == base_commit and not head_dirty:
        notes.append(f"base and head are the same commit ({base_commit[:12]}): nothing to gate")
        return GateReport(base_ref=options.base, base_commit=base_commit, head_ref=head_ref,
                          head_commit=head_commit, head_dirty=head_dirty, project=str(root),
                          options=options, benchmarks=tuple(BenchmarkOutcome(s.name, PASS)
                                                            for s in specs),
                          approvals=tuple(approvals), notes=tuple(notes), seconds=clock() - started)

    env = fingerprint()
    runs = _Runs(store, config, env, options, specs)
    work = [_Work(spec) for spec in specs]
    own_code = SideCheck(config.path)
    with contextlib.ExitStack() as stack:
        cache: dict[str, Path] = {}

        def checkout(commit: str) -> Path:
            if commit not in cache:
                say(f"checking out {commit[:12]} in a worktree")
                cache[commit] = stack.enter_context(worktree(root, commit))
            return cache[commit]

        def head_root() -> Path:
            return checkout(head_commit) if options.head else root  # type: ignore[arg-type]

        try:
            reusable = (stored_base(store, base_commit, env["fingerprint"],
                                    max_age=options.max_base_age) if options.reuse_base else {})
            for item in work:
                head_spec = rooted(item.spec, head_root())
                # Each side must import its own checkout's code, or both measure the same.
                own_code("head", head_spec, git_toplevel(Path(head_spec.root)))
                if item.spec.name in reusable and _cleared_by_stored(
                        item, head_spec, reusable[item.spec.name], measure, decide, runs,
                        (head_commit, head_branch, head_dirty), say):
                    continue
                item.base_spec = rooted(item.spec, checkout(base_commit))
                own_code("base", item.base_spec, git_toplevel(Path(item.base_spec.root)))
                _measure_pair(item, head_spec, measure, decide, options.sampling, runs,
                              (LABEL_BASE, base_commit), (LABEL_HEAD, head_commit, head_branch, head_dirty),
                              clock, say, first=True)
            comparisons = _fdr(work, options.q)
            _confirm(work, head_root, checkout, base_commit, measure, decide, options, runs,
                     (head_commit, head_branch, head_dirty), clock, say)
        except BaseException:
            runs.finish(RunStatus.INTERRUPTED)
            raise
        runs.finish(RunStatus.COMPLETE)

    in_range = set(commits_in_range(root, base_commit, head_commit)) if head_commit else set()
    counting = applicable(approvals, head=head_commit, in_range=in_range)
    outcomes = [_judge(item, counting, options) for item in work]
    for outcome in outcomes:
        _record_sizes(store, outcome, head_commit)
        if outcome.status == APPROVED:
            _journal(store, outcome, base_commit, head_commit, runs.ids)
    journal_gate(store, outcomes, base=base_commit, head=head_commit, run_ids=runs.ids)
    if head_dirty:
        notes.append("head has uncommitted changes: they were measured, and the head run is "
                     "marked dirty")
    return GateReport(base_ref=options.base, base_commit=base_commit, head_ref=head_ref,
                      head_commit=head_commit, head_dirty=head_dirty, project=str(root),
                      options=options, benchmarks=tuple(outcomes), comparisons=comparisons,
                      run_ids=dict(runs.ids), approvals=tuple(counting), notes=tuple(notes),
                      seconds=clock() - started)


def _approvals(store: Store, root: Path, base: str, head: str | None) -> list[Approval]:
    """Stored approvals plus the trailers between base and head (stored too, for the history)."""
    trailers = trailer_approvals(root, base, head) if head else []
    stored = list_approvals(store)
    return [*stored, *[a for a in remember(store, trailers) if a.id not in {s.id for s in stored}]]


def _cleared_by_stored(item: _Work, head_spec: BenchmarkSpec, stored: tuple[int, BenchmarkResult],
                       measure: MeasureFunction, decide: Callable[..., Sequence[Any]], runs: _Runs,
                       head: tuple[str | None, str | None, bool], say: EventFunction) -> bool:
    """Measure head alone against a stored base run; True when that clears every metric."""
    run_id, base_result = stored
    workers = max(len(base_result.by_worker(m)) for m in base_result.metrics) if base_result.metrics else 1
    spec = replace(head_spec, settings=replace(head_spec.settings, processes=max(workers, 2)))
    say(f"{item.spec.name}: head against stored base run #{run_id}")
    result = measure(spec, time.monotonic() + spec.settings.timeout, lambda fraction: None)
    if result.status is not ResultStatus.OK:
        return False
    verdicts = list(decide(base_result, result))
    if not verdicts or any(kind_of(v) not in ("unchanged", "improved") for v in verdicts):
        say(f"{item.spec.name}: not cleared by the stored base; measuring both, interleaved")
        return False
    runs.add(LABEL_HEAD, head[0], head[1], head[2], result, {"against_run": run_id})
    item.metrics = [metric_outcome(v, item.spec.name) for v in verdicts]
    item.source = f"stored run #{run_id}"
    item.stopped = "decided"
    return True


def _measure_pair(item: _Work, head_spec: BenchmarkSpec, measure: MeasureFunction,
                  decide: Callable[..., Sequence[Any]], policy: SamplingPolicy, runs: _Runs,
                  base: tuple[str, str], head: tuple[str, str | None, str | None, bool],
                  clock: Callable[[], float], say: EventFunction, *, first: bool) -> Interleaved:
    assert item.base_spec is not None
    name = item.spec.name
    say(f"{name}: measuring base and head interleaved ({policy.blocks} blocks A B B A)")
    out = measure_interleaved(item.base_spec, head_spec, decide=decide, policy=policy,
                              measure=measure, clock=clock,
                              on_block=_block_progress(name, policy, say))
    info = out.to_dict()
    runs.add(base[0], base[1], None, False, out.base, info)
    runs.add(head[0], head[1], head[2], head[3], out.head, info)
    if not first:
        return out
    item.blocks, item.seconds, item.stopped = out.blocks, out.seconds, out.stopped
    if out.stopped == FAILED:
        if out.failed_side == BASE:
            # Does head run at all? A benchmark new in head has nothing to compare with.
            check = measure(replace(head_spec, settings=replace(head_spec.settings, processes=1)),
                            time.monotonic() + head_spec.settings.timeout, lambda fraction: None)
            if check.status is ResultStatus.OK:
                item.status = NEW
                item.notes.append(f"the base could not run it ({out.base.error}); nothing to "
                                  "compare with: a new benchmark?")
            else:
                item.status, item.error = FAIL, f"fails at head: {check.error}"
        else:
            item.status, item.error = FAIL, f"fails at head: {out.head.error}"
        return out
    item.metrics = [metric_outcome(v, name) for v in out.verdicts]
    return out


def _block_progress(name: str, policy: SamplingPolicy, say: EventFunction) -> Callable[[int, int], None]:
    """Progress of the blocks, saying why the plan grows: the first look measures
    ``policy.blocks``; while a verdict is inconclusive more are added, up to the cost limit."""
    seen = {"planned": policy.blocks}

    def on_block(done: int, planned: int) -> None:
        if planned > seen["planned"]:
            say(f"{name}: still inconclusive after {seen['planned']} blocks: measuring "
                f"{planned - seen['planned']} more (at most {policy.max_blocks} blocks in all)")
            seen["planned"] = planned
        say(f"{name}: block {done} of {planned}")

    return on_block


def _fdr(work: Sequence[_Work], q: float) -> int:
    """Benjamini-Hochberg over every benchmark-metric pair; demotes regressions it does not
    keep to inconclusive. Returns the number of pairs."""
    pairs = [(item, i) for item in work for i, m in enumerate(item.metrics)
             if m.p_value is not None and m.role != "context"]
    adjusted = bh_adjust([min(max(item.metrics[i].p_value or 0.0, 0.0), 1.0) for item, i in pairs])
    for (item, i), adj in zip(pairs, adjusted):
        m = item.metrics[i]
        m = replace(m, p_adjusted=adj)
        if m.verdict == "regressed" and adj > q:
            m = replace(m, verdict="inconclusive", notes=(*m.notes, (
                f"regressed on its own (p = {m.p_value:.3g}) but not significant across the "
                f"{len(pairs)} comparisons of the suite (adjusted p = {adj:.3g} > {q:g})")))
        item.metrics[i] = m
    return len(pairs)


def _confirm(work: Sequence[_Work], head_root: Callable[[], Path], checkout: Callable[[str], Path],
             base_commit: str, measure: MeasureFunction, decide: Callable[..., Sequence[Any]],
             options: GateOptions, runs: _Runs, head: tuple[str | None, str | None, bool],
             clock: Callable[[], float], say: EventFunction) -> None:
    """Measure every candidate regression again, with more blocks; keep it only if confirmed."""
    policy = options.sampling
    confirm_policy = SamplingPolicy(blocks=options.confirm_blocks,
                                    max_blocks=max(policy.max_blocks, options.confirm_blocks),
                                    max_seconds=policy.max_seconds, step=policy.step)
    for item in work:
        candidates = {m.metric for m in item.metrics
                      if m.verdict == "regressed" and m.role != "context"}
        if not candidates:
            continue
        say(f"{item.spec.name}: confirming the regression of {', '.join(sorted(candidates))}")
        if item.base_spec is None:
            item.base_spec = rooted(item.spec, checkout(base_commit))
        out = _measure_pair(item, rooted(item.spec, head_root()), measure, decide, confirm_policy,
                            runs, (LABEL_CONFIRM_BASE, base_commit),
                            (LABEL_CONFIRM_HEAD, head[0], head[1], head[2]), clock, say, first=False)
        again = {metric_outcome(v, item.spec.name).metric: metric_outcome(v, item.spec.name)
                 for v in out.verdicts}
        item.confirmation = {**out.to_dict(), "verdicts": [m.to_dict() for m in again.values()]}
        for i, m in enumerate(item.metrics):
            if m.metric not in candidates:
                continue
            if out.stopped == FAILED:
                item.metrics[i] = replace(m, confirmed=None, notes=(
                    *m.notes, f"the confirmation could not measure it: "
                              f"{(out.head if out.failed_side == HEAD else out.base).error}"))
                if out.failed_side == HEAD:
                    item.status, item.error = FAIL, f"fails at head: {out.head.error}"
                continue
            c = again.get(m.metric)
            if c is not None and c.verdict == "regressed":
                item.metrics[i] = replace(m, confirmed=True, change=c.change, ci_low=c.ci_low,
                                          ci_high=c.ci_high, base=c.base, head=c.head, notes=(
                                              *m.notes, f"confirmed by a fresh measurement of "
                                                        f"{out.blocks} blocks ({_pct(c.change)})"))
            else:
                verdict = c.verdict if c is not None else "inconclusive"
                item.metrics[i] = replace(m, verdict=verdict, confirmed=False, notes=(
                    *m.notes, f"not confirmed: measured again with {out.blocks} blocks it was "
                              f"{verdict} ({_pct(c.change if c else None)})"))


def _judge(item: _Work, approvals: Sequence[Approval], options: GateOptions) -> BenchmarkOutcome:
    """Statuses of the metrics and the benchmark, from verdicts, approvals and the policy."""
    name = item.spec.name
    metrics: list[MetricOutcome] = []
    for m in item.metrics:
        if m.role == "context":
            # Shown beside the deciding time metric; it neither fails nor warns.
            m = replace(m, status=PASS)
        elif m.verdict == "regressed":
            covering = tuple(a for a in approvals if a.covers(name, m.metric))
            # An approval covers the regression it approved, not one clearly larger.
            checked = [(a, a.exceeded_by(name, m.metric, m.change, m.ci_low, m.ci_high,
                                         m.direction)) for a in covering]
            fits = tuple(a for a, why in checked if why is None)
            notes = tuple(f"the approval by {a.author or 'unknown'} ({a.reason}) does not cover "
                          f"it: {why}" for a, why in checked if why and not fits)
            m = replace(m, status=APPROVED if fits else FAIL, approvals=fits,
                        notes=(*m.notes, *notes))
        elif m.verdict == "inconclusive":
            status = {PASS: PASS, WARN: WARN, FAIL: FAIL}[options.on_inconclusive]
            m = replace(m, status=status)
        else:
            m = replace(m, status=PASS)
        metrics.append(m)
    covering_failure: tuple[Approval, ...] = ()
    if item.status == FAIL:
        covering_failure = tuple(a for a in approvals if a.covers(name, None) and a.metric is None)
        status = APPROVED if covering_failure else FAIL
    elif item.status == NEW:
        status = NEW
    else:
        statuses = {m.status for m in metrics}
        status = next((s for s in STATUS_ORDER if s in statuses), PASS)
    return BenchmarkOutcome(
        name=name, status=status, metrics=tuple(metrics), source=item.source, blocks=item.blocks,
        seconds=item.seconds, stopped=item.stopped, confirmation=item.confirmation,
        side_effects=tuple(side_effects(metrics)), error=item.error, approvals=covering_failure,
        notes=tuple(item.notes))


def _record_sizes(store: Store, outcome: BenchmarkOutcome, head: str | None) -> None:
    """The first gate that uses an approval records what it let through: the approval's size."""
    for m in outcome.metrics:
        if m.status != APPROVED:
            continue
        for a in m.approvals:
            record_size(store, a, outcome.name, m.metric,
                        {"change": m.change, "ci_low": m.ci_low, "ci_high": m.ci_high,
                         "direction": m.direction, "head": head})


def _journal(store: Store, outcome: BenchmarkOutcome, base: str, head: str | None,
             run_ids: Mapping[str, int]) -> None:
    used = {a.id or id(a): a for m in outcome.metrics for a in m.approvals}
    used.update({a.id or id(a): a for a in outcome.approvals})
    journal_approved(
        store, benchmark=outcome.name, approvals=list(used.values()),
        actual={"status": outcome.status, "error": outcome.error,
                "metrics": [m.to_dict() for m in outcome.metrics if m.status == APPROVED]},
        base=base, head=head, base_run_id=run_ids.get(LABEL_BASE),
        head_run_id=run_ids.get(LABEL_HEAD))


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    return (environ if environ is not None else os.environ).get("GITHUB_ACTIONS") == "true"


__all__ = ["APPROVED", "BenchmarkOutcome", "DEFAULT_ON_INCONCLUSIVE", "FAIL",
           "INCONCLUSIVE_POLICIES", "GateOptions", "GateReport", "LABEL_BASE", "LABEL_HEAD",
           "MetricOutcome", "NEW", "PASS", "STATUS_ORDER", "WARN", "git_toplevel", "in_github_actions",
           "make_decide", "metric_outcome", "rooted", "run_gate", "side_effects", "stored_base",
           "worktree"]
