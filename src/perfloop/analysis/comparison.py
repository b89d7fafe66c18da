"""Run-level comparison: base run against head run, a verdict per benchmark and metric.

Reads stored runs and the per-metric statistics of :mod:`perfloop.analysis.compare`; adds
what a reader must see before trusting the verdicts: environment differences between the two
runs, benchmarks present on one side only, and benchmarks that failed on either side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from statistics import NormalDist, median
from typing import Any, Mapping, Sequence

from ..measure.environment import EnvDifference, diff_environments
from ..records import ResultStatus
from ..store import StoredRun
from ..config import DEFAULT_RUN_NOISE
from ..metrics import BUILTIN, HOST_REFERENCE, Direction, drifts
from .compare import Verdict, VerdictKind, compare_results, decide
from .drift import CONFIGURED, DEFAULT, FLAG, INTERLEAVED, RunNoise, default_run_noise

#: Drifting metrics (see :data:`perfloop.metrics.BUILTIN`) whose drift is estimated from
#: stored repeat runs: times, throughput and latency percentiles (a loaded host moves an HTTP
#: benchmark's latencies between runs by tens of percent, far beyond the 5% default).
DRIFTING_METRICS = frozenset(n for n, m in BUILTIN.items() if m.drifts)


def with_run_noise(v: Verdict, run_noise: float, source: str = "") -> Verdict:
    """``v`` with its interval widened by run-to-run drift between two separately measured runs.

    Within one run the workers share the machine's state at that time; the interval of
    :func:`~perfloop.analysis.compare.compare_groups` covers the spread between them, not a
    shift of the whole run. Each run's location carries an extra relative error of about
    ``run_noise`` (its standard deviation), so the log ratio of two runs carries
    ``sqrt(2) * run_noise`` more, added in quadrature to the half-width of the interval.
    More workers cannot shrink that part: only interleaving the two versions (the gate) can.
    """
    if run_noise <= 0 or not drifts(v.metric) or v.base_location <= 0 or v.head_location <= 0:
        return v
    if not all(map(math.isfinite, (v.ci_low, v.ci_high))) or v.ci_low <= -1:
        return v
    z = NormalDist().inv_cdf(0.5 + v.confidence / 2)
    low, high = math.log1p(v.ci_low), math.log1p(v.ci_high)
    centre, half = (low + high) / 2, (high - low) / 2
    floor = z * math.sqrt(2.0) * math.log1p(run_noise)
    half = math.hypot(half, floor)
    ci_low, ci_high = math.expm1(centre - half), math.expm1(centre + half)
    direction = Direction(v.direction)
    kind = decide(ci_low, ci_high, v.tolerance, direction)
    p_value = 2 * (1 - NormalDist().cdf(abs(centre) / (half / z))) if half > 0 else v.p_value
    note = v.note
    more = v.more_workers
    if kind is VerdictKind.INCONCLUSIVE:
        # Could any number of workers decide it, with the drift term left alone?
        needed = min(math.log1p(v.tolerance) - abs(centre), abs(centre))
        if floor >= max(needed, abs(centre)):
            more = None
            note = (f"drift between separately measured runs (run_noise {run_noise:.1%}) hides "
                    f"changes under about {math.expm1(floor):.0%} here: measure both versions "
                    "interleaved with perfloop gate, or use the instructions metric")
    elif kind is not v.verdict:
        note = f"{v.verdict.value} within the runs, but not beyond the drift between them"
    return replace(v, verdict=kind, ci_low=ci_low, ci_high=ci_high, p_value=max(p_value, v.p_value),
                   more_workers=more, note=note,
                   test=f"{v.test} + run-to-run drift {run_noise:.1%}{source}")


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
    #: ``interleaved`` (a gate's base and head runs: analysed block by block, no drift term)
    #: or ``separate`` (two runs measured at different times: drift added).
    design: str = "separate"
    #: Per drifting metric: the drift term added, and what it rests on.
    run_noise: tuple[tuple[str, RunNoise], ...] = ()

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
            "design": self.design,
            "run_noise": {m: n.to_dict() for m, n in self.run_noise},
            "counts": {k.value: self.count(k) for k in VerdictKind},
        }


def interleaved_with(base: StoredRun, head: StoredRun) -> bool:
    """True when ``base`` and ``head`` are the two sides of one interleaved measurement."""
    b = (base.settings or {}).get("interleaved") or {}
    h = (head.settings or {}).get("interleaved") or {}
    return (isinstance(b, dict) and isinstance(h, dict) and bool(b.get("pair"))
            and b.get("pair") == h.get("pair") and b.get("side") == "base"
            and h.get("side") == "head")


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
                 metrics: Sequence[str] | None = None, run_noise: float | None = None,
                 drift: Mapping[str, RunNoise] | None = None) -> Comparison:
    """Compare every benchmark the two runs share. ``tolerance`` overrides each benchmark's own.

    The two sides of one interleaved measurement (a gate's base and head runs) are analysed
    block by block, as the gate did, with no drift term. Time metrics of two separately
    measured runs also carry drift between the runs (see :func:`with_run_noise`), taken from,
    in order: ``run_noise`` (the flag; 0 turns it off), the benchmark's configured
    ``run_noise`` when it differs from the default, ``drift`` (estimated per metric from stored
    repeat runs, :mod:`perfloop.analysis.drift`), the default.
    """
    base_results = {r.name: r for r in base.results}
    head_results = {r.name: r for r in head.results}
    names = [n for n in head_results if n in base_results]
    if benchmarks:
        wanted = set(benchmarks)
        names = [n for n in names if n in wanted or n.split("[", 1)[0] in wanted]
    paired = interleaved_with(base, head)
    verdicts: list[Verdict] = []
    failed: list[str] = []
    notes: list[str] = []
    used: dict[str, RunNoise] = {}
    host = None if paired else host_shift(base, head, names)
    for name in names:
        b, h = base_results[name], head_results[name]
        bad = [f"{side}: {r.status.value}" for side, r in (("base", b), ("head", h))
               if r.status is not ResultStatus.OK]
        if bad:
            failed.append(f"{name} ({', '.join(bad)})")
        if not b.samples or not h.samples:
            continue
        settings = h.extra.get("settings") or {}
        tol = tolerance if tolerance is not None else float(h.extra.get("tolerance", 0.05))
        found = compare_results(b, h, tolerance=tol, confidence=confidence, metrics=metrics,
                                paired=paired, decide_on=settings.get("decide_on"))
        for v in found:
            if paired or not drifts(v.metric):
                verdicts.append(v)
                continue
            noise = _run_noise(v.metric, run_noise, settings, drift)
            if run_noise is None:
                noise = host_floor(noise, v.metric, host)
            used.setdefault(v.metric, noise)
            verdicts.append(with_run_noise(v, noise.value, f" ({noise.source})"))
    if paired:
        notes.append("base and head were measured interleaved (A B B A blocks, one gate): "
                     "analysed block by block as the gate did, with no drift term")
    else:
        notes.extend(_separate_notes(verdicts, used, base, head))
        if host is not None and abs(host) >= HOST_SHIFT_NOTE:
            way = "slower" if host > 0 else "faster"
            notes.append(f"the host's reference workload took {abs(host):.0%} {way} in the head "
                         "run than in the base run: the machine's speed changed; cpu_norm (CPU "
                         "time in units of that workload) leaves that out")
    base_env, head_env = _environment_of(base), _environment_of(head)
    env_diffs = diff_environments(base_env, head_env)
    if base.dirty or head.dirty:
        notes.append("a run was taken with uncommitted changes (dirty): its commit does not "
                     "fully describe the code measured")
    base_load, head_load = base_env.get("load_avg_1m"), head_env.get("load_avg_1m")
    cpus = head_env.get("cpu_count") or 1
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
        failed=tuple(failed), notes=tuple(notes),
        design=INTERLEAVED if paired else "separate",
        run_noise=tuple(sorted(used.items())))


#: Smallest shift of the host's reference workload between two runs that a comparison names.
HOST_SHIFT_NOTE = 0.03


def host_shift(base: StoredRun, head: StoredRun, names: Sequence[str]) -> float | None:
    """The relative change of the host's reference workload from ``base`` to ``head``: the
    median over the benchmarks ``names`` that timed it on both sides (None when none did)."""
    from .drift import location
    b = {r.name: r for r in base.results}
    h = {r.name: r for r in head.results}
    logs = []
    for name in names:
        lb, lh = location(b[name], HOST_REFERENCE), location(h[name], HOST_REFERENCE)
        if lb and lh:
            logs.append(math.log(lh / lb))
    return math.expm1(median(logs)) if logs else None


#: Time metrics that move with the host's speed (``cpu_norm`` leaves it out).
HOST_SPEED_METRICS = frozenset({"wall_time", "cpu_time"})


def host_floor(noise: RunNoise, metric: str, host: float | None) -> RunNoise:
    """``noise`` raised to what the host's reference workload measured between these two runs.

    The reference workload times the machine itself beside every value. When it moved by
    ``s`` between the base and the head run, the machine's speed shifted by that much whatever
    the code did: one observed shift of ``s`` between two runs is a per-run standard deviation
    of about ``|log(1 + s)| / sqrt(2)``, and raw times (wall and CPU time) carry at least that.
    Seen on a shared host: the reference moved -34% between two runs of the same commit and
    CPU time -40%, which a fixed 5% drift term called an improvement.
    """
    if host is None or metric not in HOST_SPEED_METRICS or not math.isfinite(host) or host <= -1:
        return noise
    measured = math.expm1(abs(math.log1p(host)) / math.sqrt(2.0))
    if measured <= noise.value:
        return noise
    return RunNoise(measured, f"the host's reference workload moved {host:+.0%} between "
                              "these runs", runs=2, pairs=1, largest=host)


def _run_noise(metric: str, flag: float | None, settings: Mapping[str, Any],
               drift: Mapping[str, RunNoise] | None) -> RunNoise:
    """The drift term of one metric, by precedence (see :func:`compare_runs`)."""
    if flag is not None:
        return RunNoise(flag, FLAG)
    configured = settings.get("run_noise")
    if configured is not None and float(configured) != DEFAULT_RUN_NOISE:
        return RunNoise(float(configured), CONFIGURED)
    if drift and metric in drift:
        return drift[metric]
    return RunNoise(default_run_noise(metric, DEFAULT_RUN_NOISE), DEFAULT)


#: Fewest deciding time verdicts for a common shift of the whole run to be told apart.
_SHIFT_MIN_BENCHMARKS = 3


def _separate_notes(verdicts: Sequence[Verdict], used: Mapping[str, RunNoise], base: StoredRun,
                    head: StoredRun) -> list[str]:
    """What a reader of a comparison of two separate runs must know: the drift term used, a
    whole-run shift, and how to decide what separate runs cannot."""
    notes = [f"{m}: {n.describe()}" for m, n in sorted(used.items())]
    timed = [v for v in verdicts if drifts(v.metric) and v.role == "decides"
             and math.isfinite(v.change)]
    if len(timed) >= _SHIFT_MIN_BENCHMARKS:
        changes = sorted(math.log1p(v.change) for v in timed)
        shift = changes[len(changes) // 2]
        same_way = sum(1 for c in changes if c * shift > 0 and abs(c) > abs(shift) / 2)
        if abs(shift) > 0.03 and same_way >= 0.8 * len(changes):
            notes.append(f"{same_way} of {len(changes)} time verdicts moved together by about "
                         f"{math.expm1(shift):+.0%}: a shift of the whole run (the machine, "
                         "not the code) looks like this")
    undecided = [v for v in timed if v.verdict is VerdictKind.INCONCLUSIVE]
    if undecided:
        how = "perfloop gate"
        if base.commit and head.commit:
            how = f"perfloop gate --base {base.commit[:12]} --head {head.commit[:12]}"
        notes.append(f"{len(undecided)} time verdict(s) cannot be decided between separate "
                     f"runs here: measure both versions interleaved with `{how}`")
    return notes
