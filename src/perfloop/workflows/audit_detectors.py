"""The audit's detectors, one function per anti-pattern, and the workflow resemblance.

Each reads the :class:`~perfloop.workflows.audit_base.AuditContext` and returns its findings. The
evidence each uses is listed in ``docs/journal-and-audit.md``; thresholds are module constants.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any, Iterable

from ..metrics import UPPER_PERCENTILES
from ..store import ChangeRecord
from .audit_base import AuditContext, Detector, Finding, Resemblance, register_detector
from .gitlog import Commit

BASELINE_WINDOW = timedelta(days=14)   # a run this long before a commit counts as its baseline
STALE_AFTER = timedelta(days=30)       # a benchmark not run for this long is decaying
MIN_RUNS_UNUSED = 10                   # runs of a benchmark before "never used" means anything
MIN_COST_UNUSED = 600.0                # seconds of measurement before it is a cost worth naming
INCONCLUSIVE_GATES = 3
PROFILER_OVERHEAD = 0.5                # a profiled call this much slower distorts the picture
GATE_RUNS_UNCAUGHT = 20                # gate runs, and hours of their measurement, after which
GATE_HOURS_UNCAUGHT = 10.0             # catching nothing says the gate costs more than it gives
SHOWN = 5                              # evidence lines per finding before "... and N more"
GATE_LABELS = ("gate-base", "gate-head", "gate-confirm-base", "gate-confirm-head")
AVERAGES = {"wall_time", "cpu_time", "latency_p50", "latency_mean", "mean"}
_LATENCY_GOAL = re.compile(r"\b(p9\d(\.9)?|tail|latency|response time|slow requests?)\b", re.IGNORECASE)
_THROUGHPUT_GOAL = re.compile(r"\b(throughput|rps|qps|requests per second|req/s)\b", re.IGNORECASE)
_JUDGED = ("profile-and-patch", "manual", "risk-budget")


def _short(c: Commit) -> str:
    return f"{c.sha[:10]} {c.date:%Y-%m-%d} {c.subject[:60]}"


def _capped(lines: list[str]) -> tuple[str, ...]:
    if len(lines) <= SHOWN:
        return tuple(lines)
    return (*lines[:SHOWN], f"... and {len(lines) - SHOWN} more")


def _entry(c: ChangeRecord) -> str:
    return f"journal entry {c.id} ({c.created_at:%Y-%m-%d}, {c.workflow}) {c.title[:50]!r}"


def _judged(ctx: AuditContext) -> list[ChangeRecord]:
    return [c for c in ctx.changes if c.workflow in _JUDGED]


def _metric_of(c: ChangeRecord) -> str | None:
    return (c.expected or {}).get("metric") or None


def _benchmark_of(c: ChangeRecord) -> str | None:
    return (c.expected or {}).get("benchmark") or (c.data or {}).get("benchmark")


def _benchmarks_of(ctx: AuditContext, c: ChangeRecord) -> set[str]:
    """Base names of the benchmarks a change is about: its own, or its incident's."""
    names = {n for n in (_benchmark_of(c),) if n}
    if c.incident_id is not None:
        incident = next((i for i in ctx.incidents if i.id == c.incident_id), None) \
            or ctx.store.incident(c.incident_id)
        names.update(str(b) for b in (incident.benchmarks if incident else ()))
    return {n.split("[", 1)[0] for n in names}


# --------------------------------------------------------------------------------------------


def premature_optimization(ctx: AuditContext) -> list[Finding]:
    """Performance commits with no measurement before them."""
    by_commit = {r.commit for r in ctx.runs if r.commit}
    times = sorted(r.started_at for r in ctx.runs)
    with_baseline = {str(s) for c in ctx.changes if c.baseline_run_id for s in c.commits}
    unmeasured = []
    for c in ctx.perf_commits:
        if c.sha in with_baseline or any(p in by_commit for p in c.parents):
            continue
        if any(c.date - BASELINE_WINDOW <= t <= c.date for t in times):
            continue
        unmeasured.append(c)
    if not unmeasured:
        return []
    share = len(unmeasured) / len(ctx.perf_commits)
    return [Finding(
        "premature-optimization", "performance changes made without measuring first",
        (f"{len(unmeasured)} of {len(ctx.perf_commits)} performance commits since "
         f"{ctx.since:%Y-%m-%d} had no stored run at their parent or in the "
         f"{BASELINE_WINDOW.days} days before them:", *_capped([_short(c) for c in unmeasured])),
        "before the next optimisation, record a baseline (`perfloop run --label before` or "
        "`perfloop baseline` in an incident) and write down what you expect",
        severity=3 if share > 0.5 else 2, subjects=tuple(c.sha for c in unmeasured))]


def several_changes(ctx: AuditContext) -> list[Finding]:
    """Several changes measured (or shipped) together: nobody can say which one did what."""
    perf = {c.sha: c for c in ctx.perf_commits}
    lines, subjects = [], []
    for change in ctx.changes:
        mixed = [s for s in change.commits if s in perf]
        if (change.actual or {}).get("attributable") is False or len(mixed) >= 2:
            lines.append(f"{_entry(change)}: {len(change.commits)} commits verified together"
                         + (" (attribution said: not attributable)"
                            if (change.actual or {}).get("attributable") is False else ""))
            subjects.append(str(change.id))
    order = {c.sha: i for i, c in enumerate(ctx.commits)}     # newest first
    measured = sorted((r for r in ctx.runs if r.commit in order and r.label not in GATE_LABELS
                       and not r.dirty), key=lambda r: order[r.commit or ""], reverse=True)
    for older, newer in zip(measured, measured[1:]):
        between = [c for c in ctx.commits[order[newer.commit or ""]:order[older.commit or ""]]
                   if c.sha in perf]
        if len(between) >= 2:
            lines.append(f"runs #{older.id} -> #{newer.id}: {len(between)} performance commits "
                         f"measured as one change ({', '.join(c.sha[:8] for c in between[:4])})")
            subjects += [c.sha for c in between]
    lines += _releases(ctx, perf, subjects)
    if not lines:
        return []
    return [Finding(
        "several-changes", "several changes per verification: attribution impossible",
        _capped(lines), "measure each change on its own: a run (or `perfloop gate`) per commit "
        "that claims a speed-up, before the next one lands", severity=2, subjects=tuple(subjects))]


def _releases(ctx: AuditContext, perf: dict[str, Commit], subjects: list[str]) -> list[str]:
    """Releases (tags) that shipped two or more performance commits none of which was measured
    on its own: in production their effects cannot be told apart."""
    released = ctx.release_tags
    measured = {r.commit for r in ctx.runs}
    lines, batch = [], []
    for c in reversed(ctx.commits):                    # oldest first
        if c.sha in perf and c.sha not in measured:
            batch.append(c)
        if c.sha in released:
            if len(batch) >= 2:
                lines.append(f"release {released[c.sha]}: {len(batch)} performance commits shipped "
                             f"together, none measured on its own "
                             f"({', '.join(b.sha[:8] for b in batch[:4])})")
                subjects += [b.sha for b in batch]
            batch = []
    return lines


def missing_baseline(ctx: AuditContext) -> list[Finding]:
    """Changes journaled with no baseline run."""
    missing = [c for c in _judged(ctx) if not c.baseline_run_id
               and not ((c.data or {}).get("journal") or {}).get("baseline")]
    if not missing:
        return []
    return [Finding(
        "missing-baseline", "changes with no baseline to compare with",
        _capped([_entry(c) for c in missing]),
        "take the baseline before the patch: `perfloop baseline` in an incident, or "
        "`perfloop run --label before` and `perfloop journal add --baseline RUN`",
        severity=2, subjects=tuple(str(c.id) for c in missing))]


def no_hypothesis(ctx: AuditContext) -> list[Finding]:
    """Patches with no hypothesis written down before them."""
    missing = [c for c in _judged(ctx) if not (c.hypothesis or "").strip()]
    if not missing:
        return []
    return [Finding(
        "no-hypothesis", "patches with no hypothesis", _capped([_entry(c) for c in missing]),
        "write the hypothesis first (`perfloop hypothesis \"...\" --expect module:function`) so "
        "the profile can confirm or refute it", severity=2,
        subjects=tuple(str(c.id) for c in missing))]


def metric_myopia(ctx: AuditContext) -> list[Finding]:
    """A change judged on one metric while another one moved."""
    lines, subjects = [], []
    for c in ctx.changes:
        actual = c.actual or {}
        moved = [str(s) for s in (*actual.get("side_effects", []), *actual.get("tradeoffs", []))]
        if moved and c.status in ("verified", "done", "approved", "closed"):
            judged = _metric_of(c) or "its target metric"
            lines.append(f"{_entry(c)}: judged on {judged} while {'; '.join(moved)[:120]}")
            subjects.append(str(c.id))
    if not lines:
        return []
    return [Finding(
        "metric-myopia", "changes judged on one metric while another moved", _capped(lines),
        "state each change's effect on every measured metric in the journal, and decide on the "
        "trade-off explicitly (`perfloop journal actual`)", severity=3, subjects=tuple(subjects))]


def _decision_names(ctx: AuditContext) -> tuple[set[str], set[str]]:
    """Benchmarks and metrics that appear in some decision: journal, incidents, approvals."""
    benches: set[str] = set()
    metrics: set[str] = set()
    for c in ctx.changes:
        text = " ".join([c.title, str(c.expected), str(c.actual), str(c.data.get("benchmark", ""))])
        benches.update(n for n in {r.base_name for r in ctx.results} if n in text)
        metrics.update(m for m in {m for r in ctx.results for m in r.metrics} if m in text)
    for i in ctx.incidents:
        benches.update(str(b).split("[", 1)[0] for b in i.benchmarks)
        if i.metric:
            metrics.add(i.metric)
    for a in ctx.approvals:
        benches.add(a.benchmark.split("[", 1)[0])
        if a.metric:
            metrics.add(a.metric)
    return benches, metrics


def over_instrumentation(ctx: AuditContext) -> list[Finding]:
    """Measurements nobody uses, profilers that distort what they measure, a gate that costs
    more CI time than it has caught anything with."""
    found = (_unused_measurements(ctx), _profiler_overhead(ctx), _gate_cost(ctx))
    return [f for f in found if f is not None]


def _unused_measurements(ctx: AuditContext) -> Finding | None:
    """Benchmarks and metrics measured again and again and never used in a decision."""
    gated = {r.base_name for r in ctx.results if r.label in GATE_LABELS}
    benches, metrics = _decision_names(ctx)
    runs: dict[str, set[int]] = defaultdict(set)
    cost: dict[str, float] = defaultdict(float)   # seconds measured
    measured: dict[str, Counter[str]] = defaultdict(Counter)
    for r in ctx.results:
        runs[r.base_name].add(r.run_id)
        cost[r.base_name] += r.duration
        for m in r.metrics:
            measured[r.base_name][m] += 1
    lines, subjects = [], []
    for name, ids in sorted(runs.items()):
        if name in gated or len(ids) < MIN_RUNS_UNUSED:
            continue
        if name not in benches and cost[name] >= MIN_COST_UNUSED:
            lines.append(f"benchmark {name}: {len(ids)} runs, {cost[name] / 3600:.1f} h of "
                         "measurement, never in a gate, a journal entry, an incident or an approval")
            subjects.append(name)
        elif name in benches:
            unused = sorted(m for m, n in measured[name].items()
                            if n >= MIN_RUNS_UNUSED and m not in metrics)
            if unused and len(unused) < len(measured[name]):
                lines.append(f"benchmark {name}: metrics {', '.join(unused)} recorded in "
                             f"{len(ids)} runs and never named in a decision")
                subjects.append(name)
    if not lines:
        return None
    return Finding(
        "over-instrumentation", "measurements nobody uses", _capped(lines),
        "drop what no decision reads, or put it under the gate (`perfloop gate`) so that it can "
        "catch something", severity=1, subjects=tuple(subjects))


def _plain_wall_time(ctx: AuditContext, name: str) -> float | None:
    """The median wall time of one call in the latest stored result of benchmark ``name``."""
    summary = next((r for r in reversed(ctx.results) if r.name == name and r.status == "ok"
                    and "wall_time" in r.metrics), None)
    if summary is None:
        return None
    try:
        result = ctx.store.get_run(summary.run_id).result(summary.name)
    except (KeyError, LookupError):
        return None
    values = [s.value for s in result.samples if s.metric == "wall_time" and not s.warmup]
    return statistics.median(values) if values else None


def _profiler_overhead(ctx: AuditContext) -> Finding | None:
    """Profiles whose calls took much longer than the same benchmark's unprofiled calls."""
    lines, subjects = [], []
    for p in ctx.profiles:
        calls = int((p.data or {}).get("calls") or 0)
        plain = _plain_wall_time(ctx, p.target) if calls > 0 and p.duration > 0 else None
        if not plain:
            continue
        overhead = p.duration / calls / plain - 1
        if overhead > PROFILER_OVERHEAD:
            lines.append(f"profile #{p.id} of {p.target} ({p.profiler}, {p.created_at:%Y-%m-%d}): "
                         f"{p.duration / calls * 1e3:.3g} ms a call against {plain * 1e3:.3g} ms "
                         f"unprofiled, {overhead:+.0%}")
            subjects.append(f"profile-{p.id}")
    if not lines:
        return None
    return Finding(
        "over-instrumentation", "profiles that distort what they measure", _capped(lines),
        "profile with a sampling profiler (`perfloop profile --profiler py-spy`), whose overhead "
        "does not grow with the number of calls, and trust shares, not times, from the others",
        severity=1, subjects=tuple(subjects))


def _gate_cost(ctx: AuditContext) -> Finding | None:
    """A gate that has spent hours of CI time in the period and caught no regression."""
    gated = [r for r in ctx.results if r.label in GATE_LABELS]
    runs = {r.run_id for r in gated}
    seconds = sum(r.duration for r in gated)
    caught = len(ctx.approvals) + sum(1 for c in ctx.changes
                                      if (c.data or {}).get("gate") and c.status == "failed")
    if caught or len(runs) < GATE_RUNS_UNCAUGHT or seconds < GATE_HOURS_UNCAUGHT * 3600:
        return None
    names = sorted({r.base_name for r in gated})
    return Finding(
        "over-instrumentation", "a gate that costs more than it catches",
        (f"the gate: {len(runs)} runs since {ctx.since:%Y-%m-%d}, {seconds / 3600:.1f} h of "
         f"measurement, no regression caught (no failed gate, no approval); benchmarks "
         f"{', '.join(names[:SHOWN])}{' ...' if len(names) > SHOWN else ''}",),
        "keep under the gate the benchmarks that guard what users feel, and run the others "
        "nightly (`perfloop run` on a schedule) instead of on every change",
        severity=1, subjects=("gate",))


def _http_benchmarks(ctx: AuditContext) -> dict[str, tuple[str, ...]]:
    found = {s.base_name: tuple(s.metrics) for s in (ctx.config.benchmarks if ctx.config else ())
             if s.kind == "http"}
    for r in ctx.results:
        if r.kind == "http":
            found.setdefault(r.base_name, r.metrics)
    return found


def ignoring_tail(ctx: AuditContext) -> list[Finding]:
    """Latency benchmarks without percentiles; changes verified on averages only."""
    http = _http_benchmarks(ctx)
    lines, subjects = [], []
    for name, metrics in sorted(http.items()):
        if metrics and not UPPER_PERCENTILES & set(metrics):
            lines.append(f"HTTP benchmark {name} measures {', '.join(metrics)}: no p90/p99/max")
            subjects.append(name)
    for c in ctx.changes:
        metric = _metric_of(c)
        if metric in AVERAGES and any(b in http for b in _benchmarks_of(ctx, c)):
            lines.append(f"{_entry(c)}: a latency change judged on {metric}")
            subjects.append(str(c.id))
    if not lines:
        return []
    return [Finding(
        "ignoring-the-tail", "latency judged without its tail", _capped(lines),
        "add latency_p99 (and latency_max) to the HTTP benchmarks' metrics, and state latency "
        "changes on p99", severity=2, subjects=tuple(subjects))]


def goal_mismatch(ctx: AuditContext) -> list[Finding]:
    """A latency goal judged on throughput or a mean; a throughput goal on one latency."""
    lines, subjects = [], []
    items: list[tuple[str, str, str | None]] = [
        (_entry(c), " ".join(x for x in (c.title, c.hypothesis or "") if x), _metric_of(c))
        for c in ctx.changes if c.workflow in _JUDGED]
    items += [(f"incident #{i.id} {i.title[:50]!r}", i.title, i.metric) for i in ctx.incidents]
    for label, text, metric in items:
        if not metric:
            continue
        if _LATENCY_GOAL.search(text) and (metric == "throughput" or metric in AVERAGES):
            lines.append(f"{label}: the goal speaks of {_LATENCY_GOAL.search(text)[0]!r}, the "  # type: ignore[index]
                         f"metric is {metric}")
            subjects.append(label)
        elif _THROUGHPUT_GOAL.search(text) and metric != "throughput" and \
                (metric.startswith("latency") or metric == "wall_time"):
            lines.append(f"{label}: the goal speaks of {_THROUGHPUT_GOAL.search(text)[0]!r}, the "  # type: ignore[index]
                         f"metric is {metric}")
            subjects.append(label)
    if not lines:
        return []
    return [Finding(
        "goal-mismatch", "goals judged on the wrong metric", _capped(lines),
        "name the metric the goal is about: p99 for tail latency (`--metric p99`), throughput "
        "for capacity", severity=3, subjects=tuple(subjects))]


def _cv(values: list[float]) -> float | None:
    if len(values) < 3 or not statistics.fmean(values):
        return None
    return statistics.stdev(values) / abs(statistics.fmean(values))


def benchmark_decay(ctx: AuditContext) -> list[Finding]:
    """Benchmarks not run lately, baselines from another environment, noise, inconclusive gates."""
    lines, subjects = [], []
    last: dict[str, Any] = {}
    for r in ctx.results:
        last[r.base_name] = r
    if ctx.config is not None and ctx.runs:
        for spec in {s.base_name: s for s in ctx.config.benchmarks}.values():
            seen = last.get(spec.base_name)
            if seen is None or ctx.now - seen.started_at > STALE_AFTER:
                when = f"last run {seen.started_at:%Y-%m-%d}" if seen else "never run in the period"
                lines.append(f"benchmark {spec.base_name}: {when}")
                subjects.append(spec.base_name)
    env = {r.id: r.environment_id for r in ctx.runs}
    for c in ctx.changes:
        base = env.get(c.baseline_run_id or -1)
        others = {env.get(int(i)) for i in c.verification_run_ids} - {None}
        if base is not None and others and base not in others:
            lines.append(f"{_entry(c)}: baseline run #{c.baseline_run_id} from another "
                         "environment than its verification")
            subjects.append(str(c.id))
    lines += _noisy(ctx, last, subjects)
    unsure = [c for c in ctx.changes if c.status == "inconclusive" and (c.data or {}).get("gate")]
    if len(unsure) >= INCONCLUSIVE_GATES:
        lines.append(f"{len(unsure)} gates since {ctx.since:%Y-%m-%d} ended inconclusive "
                     f"(entries {', '.join(str(c.id) for c in unsure[:5])})")
        subjects += [str(c.id) for c in unsure]
    if not lines:
        return []
    return [Finding(
        "benchmark-decay", "benchmarks that no longer tell the truth", _capped(lines),
        "run the suite on a schedule, re-take baselines after an environment change, and "
        "steady the noisy benchmarks (cpu_time or instructions; more processes)", severity=2,
        subjects=tuple(subjects))]


def _noisy(ctx: AuditContext, last: dict[str, Any], subjects: list[str]) -> list[str]:
    tolerance = {s.base_name: s.settings.tolerance for s in (ctx.config.benchmarks if ctx.config else ())}
    lines = []
    for name, summary in sorted(last.items()):
        if name not in tolerance or summary.status != "ok":
            continue
        try:
            result = ctx.store.get_run(summary.run_id).result(summary.name)
        except (KeyError, LookupError):
            continue
        metric = "wall_time" if "wall_time" in summary.metrics else \
            next((m for m in summary.metrics if m.startswith("latency")), None)
        values = [s.value for s in result.samples if s.metric == metric and not s.warmup]
        cv = _cv(values)
        if cv is not None and cv > tolerance[name]:
            lines.append(f"benchmark {name}: {metric} spread {cv:.0%} in run #{summary.run_id}, "
                         f"above its {tolerance[name]:.0%} tolerance")
            subjects.append(name)
    return lines


def configuration_drift(ctx: AuditContext) -> list[Finding]:
    """The registry against the files and git: drift, unjournaled and undocumented tuning."""
    report = ctx.params()
    if not report.problems:
        return []
    return [Finding(
        "configuration-drift", "tuning that nobody wrote down",
        _capped([f"{p.kind}: {p.message}" for p in report.problems]),
        "journal each tuning change (`perfloop journal add`, a `Perf-Change:` trailer) and "
        "register the tunable in perfloop.toml; `perfloop params check` in CI keeps it so",
        severity=2, subjects=tuple(p.subject for p in report.problems))]


#: Days without a drill after which a team that practised is told its skills may be fading.
DRILL_GAP_DAYS = 90


def skill_atrophy(ctx: AuditContext) -> list[Finding]:
    """A team that used to practise with drills, and has not for a long time."""
    drills = ctx.store.changes(workflow="drill")
    if not drills:
        return []       # never practised: nothing to atrophy that the history can show
    last = max(d.created_at for d in drills)
    gap = (ctx.now - last).days
    if gap < DRILL_GAP_DAYS:
        return []
    solved = sum(1 for d in drills if d.status == "solved")
    return [Finding(
        "skill-atrophy", "no tuning drill in a long time",
        (f"last drill {last:%Y-%m-%d}, {gap} days ago; {solved} of {len(drills)} drills solved",
         f"{len(ctx.incidents)} incidents in the period"),
        "run a drill this week (`perfloop drill start`), and one a month after that",
        severity=1, subjects=(f"drill-{max(d.id for d in drills)}",))]


for _detector in (
    Detector("premature-optimization", "premature optimization", premature_optimization,
             "for the next two weeks, every commit that claims a speed-up carries a "
             "`Perf-Change:` trailer naming a journal entry that has a baseline run"),
    Detector("several-changes", "several changes per verification", several_changes,
             "for the next three performance changes, measure each one alone before the next "
             "lands (one commit, one `perfloop gate` or `perfloop verify`)"),
    Detector("missing-baseline", "missing baselines", missing_baseline,
             "for the next incident, run `perfloop baseline` before touching the code and "
             "compare the journal entry's quality with the last one"),
    Detector("no-hypothesis", "patches with no hypothesis", no_hypothesis,
             "for the next five patches, write the hypothesis first and count how many the "
             "profile confirms: that hit rate is your team's intuition"),
    Detector("metric-myopia", "metric myopia", metric_myopia,
             "for the next change, list every metric the benchmark measures in the journal "
             "entry's actual effect, and decide the trade-off in writing"),
    Detector("over-instrumentation", "over-instrumentation", over_instrumentation,
             "drop one unused benchmark or metric from CI for a month and watch whether any "
             "decision missed it"),
    Detector("ignoring-the-tail", "ignoring the tail", ignoring_tail,
             "add latency_p99 to one HTTP benchmark and compare its verdicts with the mean's for "
             "the next three changes"),
    Detector("goal-mismatch", "goal and metric mismatch", goal_mismatch,
             "rewrite the goal of the open work as 'METRIC of BENCHMARK from X to Y' and judge "
             "it on that metric only"),
    Detector("benchmark-decay", "benchmark decay", benchmark_decay,
             "run the suite nightly for two weeks and re-take the baselines; count how many "
             "verdicts change"),
    Detector("configuration-drift", "configuration drift", configuration_drift,
             "run `perfloop params check` in CI for two weeks and journal every change it flags"),
    Detector("skill-atrophy", "skill atrophy", skill_atrophy,
             "one blind drill (`perfloop drill start --difficulty hard`) per engineer this month; "
             "compare the times with the last ones"),
):
    register_detector(_detector)


# --------------------------------------------------------------------------------------------
# which workflow the team resembles


def _share(flags: Iterable[bool]) -> float:
    items = list(flags)
    return sum(items) / len(items) if items else 0.0


def resemblance(ctx: AuditContext) -> list[Resemblance]:
    """How much the practice over the period looks like each of the three workflows."""
    out = []
    incidents = ctx.incidents
    if incidents:
        hyp = {h.incident_id for h in ctx.hypotheses}
        profiled = {p.incident_id for p in ctx.profiles}
        parts = {"a hypothesis": _share(i.id in hyp for i in incidents),
                 "a baseline": _share(bool(i.baseline_run_id) for i in incidents),
                 "a profile": _share(i.id in profiled for i in incidents),
                 "a verification": _share(bool(i.verify_run_id) for i in incidents)}
        out.append(Resemblance("profile-and-patch", statistics.fmean(parts.values()), (
            f"{len(incidents)} incidents since {ctx.since:%Y-%m-%d}",
            *(f"{v:.0%} of them had {k}" for k, v in parts.items()))))
    else:
        out.append(Resemblance("profile-and-patch", 0.0, ("no incidents in the period",)))
    gated = [r for r in ctx.runs if r.label in GATE_LABELS and r.started_at >= ctx.since]
    commits = {c.sha for c in ctx.commits}
    measured = {r.commit for r in ctx.runs if r.commit in commits}
    perf = ctx.perf_commits
    before = {r.commit for r in ctx.runs}
    parts2 = {"benchmarks configured": 1.0 if ctx.config else 0.0,
              "commits with a stored run": len(measured) / len(commits) if commits else 0.0,
              "gate runs": min(len(gated) / max(len(commits) / 10, 1), 1.0),
              "performance commits measured at their parent":
                  _share(any(p in before for p in c.parents) for c in perf) if perf else 0.0}
    out.append(Resemblance("regression-aware", statistics.fmean(parts2.values()), (
        f"{'a' if ctx.config else 'no'} benchmark suite configured",
        f"{len(measured)} of {len(commits)} commits have a stored run",
        f"{len(gated)} gate runs", f"{parts2['performance commits measured at their parent']:.0%} "
        f"of {len(perf)} performance commits measured at their parent")))
    changes = ctx.changes
    risk = _share(c.risk_score is not None for c in changes)
    rollback = _share(bool(c.rollback_plan) for c in changes)
    out.append(Resemblance("risk-budgeted", (risk + rollback) / 2, (
        f"{len(changes)} journal entries, {risk:.0%} with a risk score, {rollback:.0%} with a "
        "rollback plan", "no release cycles recorded")))
    return out


__all__ = ["resemblance"]
