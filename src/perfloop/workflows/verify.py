"""Before and after: the incident's baseline, and the verification that compares with it.

:func:`capture_baseline` measures the incident's benchmarks *before* the patch and remembers
exactly how (benchmarks, processes, values, warmup, load duration), the git commit and a
snapshot of the working tree, and the environment. For a live service it can instead scrape a
metrics endpoint over a duration (:mod:`perfloop.measure.scrape`).

:func:`verify` measures again the same way, compares on *every* metric (not only the targeted
one) and answers four questions:

1. did the target metric move as expected (the incident's metric, the hypothesis's effect)?
2. did anything else get worse? A faster time with more memory is a *latency-for-memory trade*;
   a better median with a worse tail is said as such;
3. can the effect be attributed to one change (:mod:`perfloop.workflows.attribution`)?
4. can the baseline still be trusted: is it older than the code it claims to describe, or was
   it measured in another environment?

The verdict is ``verified`` (the target improved as expected and nothing regressed),
``trade-off`` (it improved, something else regressed), ``partial`` (it improved by less than
half of what the hypothesis expected), ``not-verified`` (the target did not move),
``regressed`` (the target got worse) or ``inconclusive`` (too noisy to tell).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from .. import __version__
from ..analysis.compare import Verdict, VerdictKind
from ..analysis.comparison import DRIFTING_METRICS, Comparison, compare_runs
from ..analysis.side_effects import side_effects as side_effects_of
from ..analysis.drift import measured_run_noise
from ..config import DEFAULT_RUN_NOISE, BenchmarkSpec, ProjectConfig
from ..errors import UsageError
from ..measure.environment import diff_environments, environment_hash, fingerprint
from ..measure.git import git_state
from ..measure.progress import Progress
from ..records import RunStatus
from ..store import Store
from .attribution import Attribution, TreeSnapshot, attribution_since, snapshot_tree
from .drills import refuse_during_drill
from .incident import HYPOTHESIS_HINT, Incident, record_effect, require_incident, update_data
from .run import run_project, with_overrides

#: A baseline older than this is flagged: machines drift (docs/statistics.md, "What noise does to verdicts").
STALE_AFTER_SECONDS = 3600.0
#: "As expected" means at least this fraction of the expected improvement was measured.
EXPECTED_FRACTION = 0.5

#: When the incident's metric is not measured by a benchmark, what stands in for it, in order.
STAND_INS = ("latency_p99", "wall_time", "cpu_time", "instructions")


# --------------------------------------------------------------------------------------------
# how to measure, identically before and after


@dataclass(frozen=True)
class MeasureSettings:
    """Everything that decides what a baseline measured, so that verify measures the same."""

    benchmarks: tuple[str, ...] = ()
    processes: int | None = None
    values: int | None = None
    warmup: int | None = None
    duration: float | None = None          # http: total seconds of load per benchmark
    scrape_url: str | None = None
    scrape_metrics: tuple[str, ...] = ()
    interval: float | None = None          # seconds between scrapes

    @property
    def scrape(self) -> bool:
        return self.scrape_url is not None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "benchmarks": list(self.benchmarks),
                "scrape_metrics": list(self.scrape_metrics)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MeasureSettings:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["benchmarks"] = tuple(values.get("benchmarks") or ())
        values["scrape_metrics"] = tuple(values.get("scrape_metrics") or ())
        return cls(**values)


def specs_for(config: ProjectConfig, settings: MeasureSettings) -> list[BenchmarkSpec]:
    """The benchmarks a baseline or verification measures, with its overrides applied."""
    from ..measure.suites import with_suites
    config = with_suites(config, settings.benchmarks)
    specs = with_overrides(config.select(list(settings.benchmarks)), processes=settings.processes,
                           values=settings.values, warmup=settings.warmup)
    if settings.duration:
        out = []
        for spec in specs:
            if spec.kind == "http" and spec.http is not None:
                # a fixed-rate load for the duration, split over the benchmark's load periods
                per_period = settings.duration / spec.settings.processes
                spec = replace(spec, http=replace(spec.http, duration=per_period),
                               settings=replace(spec.settings,
                                                timeout=max(spec.settings.timeout,
                                                            settings.duration * 2 + 60)))
            out.append(spec)
        specs = out
    return specs


def _measure(config: ProjectConfig, store: Store, settings: MeasureSettings, label: str, *,
             progress: Progress | None, fetch: Callable[[str], str] | None,
             clock: Callable[[], float], sleep: Callable[[float], None]) -> int:
    """Make the run (benchmarks, or a scrape window) and return its id."""
    if settings.scrape:
        return _scrape_run(config, store, settings, label, fetch=fetch, clock=clock, sleep=sleep)
    specs = specs_for(config, settings)
    restricted = replace(config, benchmarks=tuple(specs))
    outcome = run_project(restricted, store, label=label, names=[s.name for s in specs],
                          progress=progress)
    return outcome.run_id


def _scrape_run(config: ProjectConfig, store: Store, settings: MeasureSettings, label: str, *,
                fetch: Callable[[str], str] | None, clock: Callable[[], float],
                sleep: Callable[[float], None]) -> int:
    from ..measure.scrape import DEFAULT_INTERVAL, parse_selector, scrape, to_results
    selectors = [parse_selector(s) for s in settings.scrape_metrics]
    if not selectors:
        raise UsageError("a scrape needs at least one metric to read",
                         hint="add --scrape-metric NAME, e.g. http_request_duration_seconds")
    assert settings.scrape_url is not None and settings.duration
    env = fingerprint()
    git = git_state(config.root)
    run_id = store.begin_run(label=label, commit=git.commit, branch=git.branch, dirty=git.dirty,
                             environment=env, project=str(config.root),
                             settings={"perfloop": __version__, "scrape": settings.to_dict()})
    try:
        capture = scrape(settings.scrape_url, duration=settings.duration,
                         interval=settings.interval or DEFAULT_INTERVAL, fetch=fetch, clock=clock,
                         sleep=sleep)
        for result in to_results(capture, selectors):
            store.add_result(run_id, result)
    except BaseException:
        store.finish_run(run_id, RunStatus.INTERRUPTED)
        raise
    store.finish_run(run_id, RunStatus.COMPLETE)
    return run_id


# --------------------------------------------------------------------------------------------
# baseline


@dataclass(frozen=True)
class BaselineOutcome:
    incident_id: int
    run_id: int
    label: str
    settings: MeasureSettings
    snapshot: TreeSnapshot | None
    environment_hash: str | None
    warnings: tuple[str, ...] = ()
    adopted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "run_id": self.run_id, "label": self.label,
                "settings": self.settings.to_dict(),
                "snapshot": self.snapshot.to_dict() if self.snapshot else None,
                "environment_hash": self.environment_hash, "warnings": list(self.warnings),
                "adopted": self.adopted}


def capture_baseline(config: ProjectConfig, store: Store, *, processes: int | None = None,
                     values: int | None = None, warmup: int | None = None,
                     duration: float | None = None, scrape_url: str | None = None,
                     scrape_metrics: Sequence[str] = (), interval: float | None = None,
                     adopt_run: int | None = None, progress: Progress | None = None,
                     fetch: Callable[[str], str] | None = None,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> BaselineOutcome:
    """Measure the before-state of the open incident (or adopt a stored run as it) and record it."""
    refuse_during_drill(config.root, "a baseline")
    incident = require_incident(store, config.root, "a baseline")
    if scrape_url and not duration:
        raise UsageError("a scrape baseline needs a duration",
                         hint="e.g. perfloop baseline --scrape URL --scrape-metric NAME --duration 10m")
    if not incident.benchmarks and not scrape_url and adopt_run is None:
        raise UsageError(f"incident #{incident.id} names no benchmarks to measure",
                         hint="open it with --benchmark NAME, or scrape a live service with "
                              "--scrape URL --scrape-metric NAME --duration 10m")
    settings = MeasureSettings(
        benchmarks=() if scrape_url else incident.benchmarks, processes=processes, values=values,
        warmup=warmup, duration=duration, scrape_url=scrape_url,
        scrape_metrics=tuple(scrape_metrics), interval=interval)
    if not scrape_url:
        specs_for(config, settings)     # unknown benchmarks fail before anything runs
    snapshot = snapshot_tree(config.root)
    warnings: list[str] = []
    label = f"incident-{incident.id}-baseline"
    if adopt_run is not None:
        run_id = adopt_run
        warnings.extend(_adoption_warnings(store, adopt_run, snapshot, incident))
        stored = store.get_run(adopt_run)
        names = tuple(dict.fromkeys(r.name.split("[", 1)[0] for r in stored.results))
        settings = replace(settings, benchmarks=settings.benchmarks or names)
    else:
        run_id = _measure(config, store, settings, label, progress=progress, fetch=fetch,
                          clock=clock, sleep=sleep)
    stored = store.get_run(run_id)
    failed = [r.name for r in stored.results if r.status.value != "ok"]
    if failed:
        warnings.append(f"{len(failed)} benchmark(s) failed in the baseline ({', '.join(failed)}): "
                        f"they cannot be verified; fix them and run perfloop baseline again")
    outcome = BaselineOutcome(incident.id, run_id, stored.label or label, settings, snapshot,
                              stored.environment_hash, tuple(warnings), adopted=adopt_run is not None)
    record = {**outcome.to_dict(), "captured_at": datetime.now(timezone.utc),
              "run_started_at": stored.started_at}
    update_data(store, incident.id, {"baseline": record}, append={"baselines": record},
                event=f"baseline run #{run_id}", baseline_run_id=run_id)
    return outcome


def _adoption_warnings(store: Store, run_id: int, snapshot: TreeSnapshot | None,
                       incident: Incident) -> list[str]:
    """Why a stored run might not describe the code as it is now (before the patch)."""
    run = store.get_run(run_id)
    out: list[str] = []
    if snapshot and snapshot.commit and run.commit and run.commit != snapshot.commit:
        out.append(f"run #{run_id} was measured at commit {run.commit[:10]}, but the code now is "
                   f"{snapshot.commit[:10]}: the baseline is older than the code it claims to "
                   f"describe; run `perfloop baseline` without --from to measure the code as it is")
    elif snapshot and snapshot.dirty and not run.dirty:
        out.append(f"run #{run_id} was measured on a clean tree, and the tree now has uncommitted "
                   f"changes ({', '.join(snapshot.dirty_files[:5])}): it may not describe this code")
    if run.started_at < incident.opened_at:
        out.append(f"run #{run_id} is from {run.started_at:%Y-%m-%d %H:%M}, before the incident "
                   f"was opened")
    current = environment_hash(fingerprint())
    if run.environment_hash != current:
        diffs = [d.describe() for d in diff_environments(run.environment or {}, fingerprint()) if d.identity]
        out.append("the environment changed since run #%d: %s" % (run_id, "; ".join(diffs[:5]) or "fingerprint differs"))
    return out


# --------------------------------------------------------------------------------------------
# verify


@dataclass(frozen=True)
class VerifyReport:
    incident_id: int
    baseline_run_id: int
    run_id: int
    comparison: Comparison
    target_metric: str | None
    expected_effect: float | None
    target: tuple[dict[str, Any], ...]
    side_effects: tuple[str, ...]
    tradeoffs: tuple[str, ...]
    attribution: Attribution
    warnings: tuple[str, ...]
    verdict: str
    reading: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        counts = {k.value: self.comparison.count(k) for k in VerdictKind}
        return {"incident_id": self.incident_id, "baseline_run_id": self.baseline_run_id,
                "run_id": self.run_id, "verdict": self.verdict, "reading": self.reading,
                "target_metric": self.target_metric, "expected_effect": self.expected_effect,
                "target": list(self.target), "side_effects": list(self.side_effects),
                "tradeoffs": list(self.tradeoffs), "attribution": self.attribution.to_dict(),
                "warnings": list(self.warnings), "notes": list(self.notes), "counts": counts,
                "comparison": self.comparison.to_dict()}


def _better(v: Verdict) -> float:
    """The relative change as improvement: positive is better, whatever the metric's direction."""
    direction = getattr(v.direction, "value", v.direction)
    return -v.change if direction == "lower" else v.change


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def _matches(metric: str, target: str) -> bool:
    return metric == target or metric.endswith(":" + target.removeprefix("latency_")) \
        or metric.endswith(":" + target)


def target_verdicts(verdicts: Sequence[Verdict], target: str | None) -> tuple[list[Verdict], list[str]]:
    """The verdicts on the incident's metric, one per benchmark, with a stand-in where it is
    not measured (a callable has no p99: its wall time stands in) and notes saying so."""
    by_bench: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_bench.setdefault(v.benchmark, []).append(v)
    chosen: list[Verdict] = []
    notes: list[str] = []
    for bench, items in by_bench.items():
        exact = [v for v in items if target and _matches(v.metric, target)]
        if exact:
            chosen.extend(exact)
            continue
        for name in STAND_INS:
            found = [v for v in items if v.metric == name]
            if found:
                chosen.extend(found)
                if target:
                    notes.append(f"{bench} does not measure {target}; {name} stands in for it")
                break
        # otherwise (a scraped memory gauge next to a latency histogram) it is not a target
    if not chosen:
        chosen = [items[0] for items in by_bench.values()]
    return chosen, notes


def judge(verdicts: Sequence[Verdict], target: str | None, expected_effect: float | None
          ) -> tuple[str, str, list[dict[str, Any]], list[str], list[str], list[str]]:
    """(verdict, reading, target rows, side effects, trade-offs, notes) of a comparison.

    Pure: tested on verdicts made up for the purpose.
    """
    targets, notes = target_verdicts(verdicts, target)
    chosen = {(v.benchmark, v.metric) for v in targets}
    rows = []
    for v in targets:
        met = None
        if v.verdict is VerdictKind.IMPROVED and expected_effect is not None:
            met = bool(_better(v) >= EXPECTED_FRACTION * abs(expected_effect))
        # plain floats: the rows are stored as JSON and numpy scalars would become strings
        rows.append({"benchmark": v.benchmark, "metric": v.metric, "verdict": v.verdict.value,
                     "change": float(v.change), "ci_low": float(v.ci_low), "ci_high": float(v.ci_high),
                     "base": float(v.base_location), "head": float(v.head_location), "unit": v.unit,
                     "expected_effect": expected_effect, "as_expected": met})
    others = [v for v in verdicts if (v.benchmark, v.metric) not in chosen]
    regressed = [v for v in others if v.verdict is VerdictKind.REGRESSED]
    side_effects = [f"{v.metric} of {v.benchmark} regressed {_pct(v.change)} "
                    f"(from {v.base_location:.4g} to {v.head_location:.4g} {v.unit})".rstrip()
                    for v in regressed]
    tradeoffs = side_effects_of(verdicts, name_benchmarks=True)

    kinds = [v.verdict for v in targets]
    if not targets:
        verdict, reading = "inconclusive", "no benchmark was measured on both sides"
    elif VerdictKind.REGRESSED in kinds:
        verdict = "regressed"
        reading = "the target metric got worse: " + _rows_text(rows, VerdictKind.REGRESSED)
    elif VerdictKind.IMPROVED in kinds:
        short = [r for r in rows if r["as_expected"] is False]
        improved = _rows_text(rows, VerdictKind.IMPROVED)
        if regressed or tradeoffs:
            verdict = "trade-off"
            reading = f"the target improved ({improved}), but other metrics got worse"
        elif short:
            verdict = "partial"
            reading = (f"the target improved by less than half of the expected "
                       f"{abs(expected_effect or 0) * 100:.0f}%: {improved}")
        elif all(k is VerdictKind.IMPROVED for k in kinds):
            verdict = "verified"
            reading = f"the target improved as expected and no other metric got worse: {improved}"
        else:
            verdict = "partial"
            reading = f"the target improved on some benchmarks only: {improved}"
    elif any(k is VerdictKind.INCONCLUSIVE for k in kinds):
        verdict = "inconclusive"
        reading = ("too noisy to tell whether the target moved; measure more (--processes) or "
                   "use a steadier metric (instructions)")
    else:
        verdict = "not-verified"
        reading = "the target metric did not move beyond the tolerance"
    return verdict, reading, rows, side_effects, tradeoffs, notes


def _rows_text(rows: Sequence[Mapping[str, Any]], kind: VerdictKind) -> str:
    return ", ".join(f"{r['metric']} of {r['benchmark']} {_pct(r['change'])}" for r in rows
                     if r["verdict"] == kind.value)


def verify(config: ProjectConfig, store: Store, *, progress: Progress | None = None,
           confidence: float = 0.99, tolerance: float | None = None,
           fetch: Callable[[str], str] | None = None, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep,
           now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> VerifyReport:
    """Measure the after-state like the baseline, compare on every metric, judge, record."""
    refuse_during_drill(config.root, "verify")
    incident = require_incident(store, config.root, "verify")
    if incident.hypothesis is None:
        raise UsageError(f"incident #{incident.id} has no hypothesis: verify checks a patch "
                         f"against what you expected, and nothing was written down",
                         hint=HYPOTHESIS_HINT.split("; or")[0])
    baseline = incident.baseline
    if baseline is None or incident.baseline_run_id is None:
        raise UsageError(f"incident #{incident.id} has no baseline: there is nothing to compare "
                         f"the patched code with",
                         hint="run `perfloop baseline` on the code *before* the patch (stash or "
                              "revert the patch first: git stash; perfloop baseline; git stash pop), "
                              "then perfloop verify")
    settings = MeasureSettings.from_dict(baseline.get("settings") or {})
    warnings: list[str] = list(baseline.get("warnings") or [])
    label = f"incident-{incident.id}-verify-{len(incident.data.get('verifications', [])) + 1}"
    run_id = _measure(config, store, settings, label, progress=progress, fetch=fetch, clock=clock,
                      sleep=sleep)
    base_run = store.get_run(incident.baseline_run_id)
    head_run = store.get_run(run_id)
    # Drift between the baseline and this run: measured from repeat runs here, if any.
    drift = measured_run_noise(store, head_run.environment_hash, sorted(DRIFTING_METRICS),
                               fallback=DEFAULT_RUN_NOISE)
    cmp = compare_runs(base_run, head_run, tolerance=tolerance, confidence=confidence, drift=drift)

    age = (now() - base_run.started_at).total_seconds()
    if age > STALE_AFTER_SECONDS:
        warnings.append(f"the baseline was measured {age / 3600:.1f} h ago: machines drift over "
                        f"hours, so part of any difference may be drift; re-measure the baseline's "
                        f"code now if the verdict matters (git stash; perfloop baseline; git stash pop)")
    identity = [d.describe() for d in cmp.env_differences if d.identity]
    if identity:
        warnings.append("the environment changed since the baseline: " + "; ".join(identity[:6]) +
                        ". A difference may come from the environment, not the patch; re-measure "
                        "the baseline here")
    snapshot = TreeSnapshot.from_dict(baseline.get("snapshot"))
    attribution = attribution_since(snapshot, config.root)
    for note in attribution.notes:
        if "not an ancestor" in note:
            warnings.append("the baseline is older than the code it claims to describe: " + note)

    hyp = incident.hypothesis
    verdict, reading, rows, side, trades, notes = judge(cmp.verdicts, incident.metric,
                                                        hyp.expected_effect)
    if not attribution.attributable:
        reading += f". But {attribution.summary}"
    report = VerifyReport(
        incident_id=incident.id, baseline_run_id=incident.baseline_run_id, run_id=run_id,
        comparison=cmp, target_metric=incident.metric, expected_effect=hyp.expected_effect,
        target=tuple(rows), side_effects=tuple(side), tradeoffs=tuple(trades),
        attribution=attribution, warnings=tuple(warnings), verdict=verdict, reading=reading,
        notes=tuple(notes))
    record = {k: v for k, v in report.to_dict().items() if k != "comparison"}
    record["verified_at"] = now()
    update_data(store, incident.id, {}, append={"verifications": record},
                event=f"verify run #{run_id}: {verdict}", verify_run_id=run_id)
    record_effect(store, hyp.id, {"verdict": verdict, "target": rows,
                                  "expected_effect": hyp.expected_effect})
    return report


__all__ = ["BaselineOutcome", "MeasureSettings", "VerifyReport", "capture_baseline", "judge",
           "specs_for", "target_verdicts", "verify"]
