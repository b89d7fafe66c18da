"""The doctor: what on this machine makes benchmarks lie, and how small a change each one can see.

Two parts.

**Machine checks** (:mod:`.machine`). CPU frequency scaling and governor, turbo/boost, load
from other processes, container CPU limits, swap in use, too few cores, address-space
randomisation and the hash seed, each ``ok``, ``warn`` or ``unknown`` with a next step.

**Minimum detectable change.** From the stored noise of each benchmark and metric (the spread
between worker medians within its recent runs in this environment class), the smallest relative
change a comparison of two runs with ``n`` worker processes each detects with probability
``power`` at the confidence level of the verdicts::

    s    = pooled relative standard deviation of worker medians within runs (winsorised
           like the verdicts, then scaled back to a plain standard deviation)
    h    = n - 2 floor(TRIM n)                      workers left after trimming (TRIM as in
                                                    analysis.stats: 10%, none below 10 workers)
    SE   = s sqrt(w(n) (n - 1) / (h (h - 1)))       Yuen's standard error of one trimmed mean,
                                                    w(n) the winsorised share of the variance
    df   = h - 1                                    the smaller side's, as in Yuen's test
    MDC  = lambda(df) sqrt(2) SE

where ``lambda(df)`` is the shift, in standard errors, that a two-sided t test at the
verdicts' confidence detects with probability ``power`` (the noncentral t's answer; about
``t(1 - alpha/2) + t(power)``, and ``z(0.995) + z(0.8) = 3.4`` for many workers). With
estimated variances the Welch degrees of freedom of a comparison fall between ``h - 1`` and
``2 (h - 1)``; ``h - 1`` is the side that does not promise too much. Checked against
``compare_groups`` on simulated comparisons (``tests/test_doctor.py``): from 7 workers on,
80% of comparisons at the MDC come out ``regressed``; with 5 or 6 workers about 70% (the
verdicts' bootstrap-t check widens intervals of so few units); with 4 or fewer over 90%.

The verdict engine compares trimmed means of worker summaries, so the worker is the unit
here too; dividing by each run's own location takes drift between runs out (a comparison
never sees it). When the MDC exceeds a benchmark's tolerance the gate cannot work for it: the
doctor names the number of processes that would bring the MDC within the tolerance, or, when
no sensible number would, points at the ``instructions`` metric (``docs/history.md``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..analysis.stats import TRIM, effective_units, trim_count
from ..analysis.compare import THRESHOLD_SHARE
from ..analysis.deciding import choose
from ..analysis.drift import RunNoise, measured_run_noise
from ..metrics import DECIDING_TIME_METRICS, drifts
from ..records import ResultStatus
from ..config import DEFAULT_RUN_NOISE, DEFAULT_TOLERANCE, ProjectConfig, Settings
from ..store import Store
from ..store.series import Series, SeriesKey, latest_environment, load_series
from .machine import OK, UNKNOWN, WARN, Check, Machine, machine_checks

#: Power of the minimum detectable change: the share of comparisons that see a change of
#: exactly that size. 80% is the usual planning value.
DEFAULT_POWER = 0.80
DEFAULT_CONFIDENCE = 0.99       # the confidence of `perfloop compare` and the gate
RECENT_RUNS = 10                # runs of each benchmark the noise is taken from
MAX_PROCESSES = 200             # beyond this, more processes is not a realistic fix
_TRIM_STEP = int(round(1 / TRIM))   # counts between two steps of the trimming


# -- minimum detectable change -------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def winsorised_share(n: int, trim: float = TRIM) -> float:
    """Expected winsorised variance (``ddof=1``) of ``n`` standard normal values, winsorised
    like the verdicts' trimmed means: 1 when nothing is trimmed.

    It turns a winsorised variance measured with one number of workers into the plain
    variance, and back for another number. Small samples are far from the asymptotic value
    (for 5 workers about 0.32 against 0.41), so it is computed, once per ``n``, from a fixed
    set of simulated samples (deterministic: a seeded generator).
    """
    g = trim_count(n, trim)
    if g == 0 or n < 2:
        return 1.0
    if n > 60:
        # Close enough to the asymptotic value by now (within 1%), and cheaper.
        from scipy import stats  # imported where used: scipy.stats slows every command's start

        gamma = g / n
        z = float(stats.norm.ppf(1.0 - gamma))
        return (1.0 - 2.0 * gamma) - 2.0 * z * float(stats.norm.pdf(z)) + 2.0 * gamma * z * z
    rng = np.random.default_rng(20240501 + n)
    x = np.sort(rng.standard_normal((max(4000, 200_000 // n), n)), axis=1)
    x[:, :g] = x[:, [g]]
    x[:, n - g:] = x[:, [n - g - 1]]
    return float(x.var(axis=1, ddof=1).mean())


def worker_spread(runs: Sequence[Sequence[float]], trim: float = TRIM) -> tuple[float, int]:
    """Pooled relative standard deviation of worker medians within runs, and its degrees of
    freedom.

    Each run's worker medians are divided by the run's trimmed mean, so that the level moving
    between runs does not count as noise. Each run's variance is winsorised like the verdicts'
    trimmed means (one disturbed worker does not inflate it) and scaled back to a plain
    variance by :func:`winsorised_share`. Runs with fewer than 2 workers say nothing.
    """
    total, dof = 0.0, 0
    for medians in runs:
        x = np.sort(np.asarray(medians, dtype=float))
        n = len(x)
        if n < 2:
            continue
        g = trim_count(n, trim)
        location = float(x[g:n - g].mean())
        if location == 0.0:
            continue
        w = x.copy()
        if g:
            w[:g] = x[g]
            w[n - g:] = x[n - g - 1]
        w = w / abs(location)
        total += float(((w - w.mean()) ** 2).sum()) / winsorised_share(n, trim)
        dof += n - 1
    if dof == 0:
        return math.nan, 0
    return math.sqrt(total / dof), dof


def standard_error(spread: float, n: int, trim: float = TRIM) -> float:
    """Standard error of one side's trimmed mean of ``n`` workers whose spread is ``spread``:
    Yuen's ``sqrt((n - 1) s_w^2 / (h (h - 1)))`` with the winsorised variance ``s_w^2`` the
    normal share of ``spread**2`` (``sigma / sqrt(n)`` when nothing is trimmed)."""
    h = effective_units(n, trim)
    if h < 2:
        return math.inf
    share = winsorised_share(n, trim)
    return spread * math.sqrt(share * (n - 1) / (h * (h - 1)))


def minimum_detectable_change(spread: float, n: int, *, confidence: float = DEFAULT_CONFIDENCE,
                              power: float = DEFAULT_POWER, trim: float = TRIM,
                              threshold: float = 0.0) -> float:
    """The relative change two runs of ``n`` workers each detect with probability ``power``
    (module docstring: the formula). Infinite when ``n`` is too small to trim and test.

    ``threshold``: the share of the tolerance an interval must clear to call a change (the
    verdict rule: half the tolerance); the detectable change lies that much further out."""
    h = effective_units(n, trim)
    if h < 2 or not math.isfinite(spread):
        return math.inf
    return threshold + (_noncentrality(float(h - 1), confidence, power) * math.sqrt(2.0)
                        * standard_error(spread, n, trim))


@functools.lru_cache(maxsize=4096)
def _noncentrality(df: float, confidence: float, power: float) -> float:
    """The shift, in standard errors, that a two-sided t test at ``confidence`` with ``df``
    degrees of freedom detects (in the right direction) with probability ``power``: the
    noncentral t's answer to what ``t(1 - alpha/2) + t(power)`` approximates."""
    from scipy import optimize, stats

    critical = float(stats.t.ppf(0.5 + confidence / 2.0, df))
    guess = critical + float(stats.t.ppf(power, df))
    try:
        return float(optimize.brentq(lambda ncp: stats.nct.sf(critical, df, ncp) - power,
                                     0.0, 4.0 * guess + 10.0))
    except ValueError:
        return guess


def processes_needed(spread: float, tolerance: float, *, confidence: float = DEFAULT_CONFIDENCE,
                     power: float = DEFAULT_POWER, limit: int = MAX_PROCESSES) -> int | None:
    """Fewest worker processes from which on the MDC stays within ``tolerance``; None beyond
    ``limit``.

    "From which on": trimming drops one more worker from each end at every ``1 / TRIM``-th
    count, so the MDC is not monotone (with 10% trimming, 10 workers keep 8 and see less than
    9 untrimmed ones). Advice to raise processes to N must not turn false at N + 1.
    """
    if not math.isfinite(spread):
        return None
    threshold = THRESHOLD_SHARE * tolerance
    within = [minimum_detectable_change(spread, n, confidence=confidence, power=power,
                                        threshold=threshold) <= tolerance
              for n in range(3, limit + _TRIM_STEP + 1)]
    for i in range(limit - 2):
        if all(within[i:i + _TRIM_STEP + 1]):
            return i + 3
    return None


@dataclass(frozen=True)
class NoiseEstimate:
    """A benchmark's noise in one environment class and what it lets a comparison see."""

    benchmark: str
    metric: str
    branch: str
    environment: str
    runs: int                    # recent runs the spread was taken from
    spread: float                # relative worker-level spread (s_w)
    dof: int
    processes: int               # worker processes per run (configured)
    tolerance: float
    mdc: float                   # minimum detectable change, relative
    processes_needed: int | None
    status: str                  # ok | warn | unknown
    message: str

    def to_dict(self) -> dict[str, Any]:
        mdc = self.mdc if math.isfinite(self.mdc) else None
        spread = self.spread if math.isfinite(self.spread) else None
        return {"benchmark": self.benchmark, "metric": self.metric, "branch": self.branch,
                "environment": self.environment, "runs": self.runs, "spread": spread,
                "dof": self.dof, "processes": self.processes, "tolerance": self.tolerance,
                "mdc": mdc, "processes_needed": self.processes_needed, "status": self.status,
                "message": self.message}


def estimate_noise(series: Series, *, processes: int, tolerance: float, recent: int = RECENT_RUNS,
                   confidence: float = DEFAULT_CONFIDENCE, power: float = DEFAULT_POWER) -> NoiseEstimate:
    """The :class:`NoiseEstimate` of one series from its ``recent`` latest runs."""
    points = series.points[-recent:]
    spread, dof = worker_spread([p.worker_medians for p in points])
    key = series.key
    mdc, needed, status = math.inf, None, UNKNOWN
    message = "too few workers stored to estimate the noise: run it a few more times (perfloop run)"
    if dof >= 4:
        mdc = minimum_detectable_change(spread, processes, confidence=confidence, power=power,
                                        threshold=THRESHOLD_SHARE * tolerance)
        needed = processes_needed(spread, tolerance, confidence=confidence, power=power)
        status = OK if mdc <= tolerance else WARN
        message = (f"detects {mdc * 100:.1f}% at {processes} processes, within "
                   f"its {tolerance * 100:g}% tolerance")
    if status == WARN:
        fix = (f"raise processes to {needed}" if needed is not None
               else f"more than {MAX_PROCESSES} processes would be needed")
        if key.metric in DECIDING_TIME_METRICS and drifts(key.metric):   # instructions would not
            fix += ", or use the instructions metric"
        elif needed is None:
            fix += "; measure longer periods or reduce what varies"
        message = (f"noise {spread * 100:.1f}% per worker: {processes} processes "
                   f"detect {mdc * 100:.1f}%, above its {tolerance * 100:g}% "
                   f"tolerance; the gate cannot work for it: {fix}")
    return NoiseEstimate(benchmark=key.benchmark, metric=key.metric, branch=key.branch,
                         environment=key.environment or "", runs=len(points), spread=spread,
                         dof=dof, processes=processes, tolerance=tolerance, mdc=mdc,
                         processes_needed=needed, status=status, message=message)


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]
    noise: tuple[NoiseEstimate, ...]
    environment: str | None
    confidence: float
    power: float
    notes: tuple[str, ...] = ()
    #: Drift between separate runs per time metric, measured from repeat runs (or the default).
    run_noise: Mapping[str, RunNoise] = field(default_factory=dict)
    #: Per benchmark of the latest run here: the time metric that decides its verdicts, and why.
    deciding: tuple[tuple[str, str, str], ...] = ()

    @property
    def warnings(self) -> int:
        return sum(c.status == WARN for c in self.checks) + sum(n.status == WARN for n in self.noise)

    def to_dict(self) -> dict[str, Any]:
        return {"checks": [c.to_dict() for c in self.checks],
                "noise": [n.to_dict() for n in self.noise], "environment": self.environment,
                "confidence": self.confidence, "power": self.power,
                "formula": MDC_FORMULA, "warnings": self.warnings, "notes": list(self.notes),
                "run_noise": {m: n.to_dict() for m, n in self.run_noise.items()},
                "deciding": [{"benchmark": b, "metric": m, "reason": r}
                             for b, m, r in self.deciding]}


MDC_FORMULA = ("MDC = lambda(df) * sqrt(2) * s * sqrt(w(n) (n - 1) / (h (h - 1))); h = n - 2 floor(TRIM n), "
               "df = h - 1, lambda = noncentrality a two-sided t test at the confidence detects with "
               "the power (about t(1 - alpha/2) + t(power)), s = pooled relative spread of worker "
               "medians within runs, w(n) = winsorised share of the variance")


def noise_report(store: Store, *, environment: str | None, config: ProjectConfig | None = None,
                 processes: int | None = None, recent: int = RECENT_RUNS,
                 confidence: float = DEFAULT_CONFIDENCE, power: float = DEFAULT_POWER,
                 branch: str | None = None) -> tuple[list[NoiseEstimate], str | None, list[str]]:
    """Noise estimates of every stored benchmark and metric in ``environment`` (a fingerprint);
    when no run is stored there, in the environment class of the latest run (and a note says
    so). Returns the estimates, the environment used and notes.

    Processes and tolerance come from ``processes`` (an override), else the benchmark's entry in
    ``config``, else what its latest run was configured with, else the defaults.
    """
    notes: list[str] = []
    found = load_series(store, environment=environment, branch=branch) if environment else []
    used = environment
    if not found:
        latest = latest_environment(store)
        if latest is None:
            return [], None, ["no runs stored yet: `perfloop run` a few times, then ask again"]
        if environment:
            notes.append(f"no runs stored in this machine's environment class ({environment[:8]}); "
                         f"the noise below is from the latest run's class ({latest[:8]})")
        used = latest
        found = load_series(store, environment=latest, branch=branch)
    specs = {s.name: s for s in config.benchmarks} if config else {}
    defaults = config.defaults if config else Settings()
    # Noise belongs to the benchmark on this machine, not to a branch: pool the branches and
    # take the latest runs of all of them.
    pooled: dict[tuple[str, str], list[Series]] = {}
    for series in found:
        pooled.setdefault((series.key.benchmark, series.key.metric), []).append(series)
    out = []
    for (name, metric), group in pooled.items():
        points = sorted((p for s in group for p in s.points), key=lambda p: (p.started_at, p.run_id))
        series = Series(key=SeriesKey(benchmark=name, metric=metric,
                                      branch=",".join(sorted({s.key.branch for s in group})),
                                      environment=used),
                        unit=group[0].unit, direction=group[0].direction, points=tuple(points))
        spec = specs.get(name)
        last = points[-1]
        n = processes or (spec.settings.processes if spec else None) or last.processes or defaults.processes
        tol = (spec.settings.tolerance if spec else None) or last.tolerance or DEFAULT_TOLERANCE
        out.append(estimate_noise(series, processes=int(n), tolerance=float(tol), recent=recent,
                                  confidence=confidence, power=power))
    return out, used, notes


def run_doctor(store: Store | None, *, machine: Machine | None = None,
               environment: str | None = None, config: ProjectConfig | None = None,
               processes: int | None = None, recent: int = RECENT_RUNS,
               confidence: float = DEFAULT_CONFIDENCE, power: float = DEFAULT_POWER) -> DoctorReport:
    """Machine checks on ``machine`` (this one when None) and, with a store, noise estimates."""
    checks = machine_checks(machine if machine is not None else Machine.live())
    noise: list[NoiseEstimate] = []
    used = environment
    notes: list[str] = []
    drift: dict[str, RunNoise] = {}
    deciding: list[tuple[str, str, str]] = []
    if store is not None:
        noise, used, notes = noise_report(store, environment=environment, config=config,
                                          processes=processes, recent=recent,
                                          confidence=confidence, power=power)
        if used:
            drift = measured_run_noise(store, used, ("cpu_norm", "cpu_time", "wall_time"),
                                       fallback=DEFAULT_RUN_NOISE)
            deciding = deciding_metrics(store, used)
    return DoctorReport(checks=tuple(checks), noise=tuple(noise), environment=used,
                        confidence=confidence, power=power, notes=tuple(notes),
                        run_noise=drift, deciding=tuple(deciding))


def deciding_metrics(store: Store, environment: str) -> list[tuple[str, str, str]]:
    """(benchmark, deciding time metric, reason) from the latest complete run here.

    The classification of :mod:`perfloop.analysis.deciding` on one run (both sides alike):
    what the gate and compare will decide on for each benchmark on this machine.
    """
    for info in store.list_runs(limit=50):
        status = getattr(info.status, "value", info.status)
        if info.environment_hash != environment or status != "complete":
            continue
        out = []
        for r in store.get_run(info.id).results:
            if r.status is ResultStatus.OK and r.samples:
                choice = choose(r, r, r.metrics, tolerance=float(r.extra.get("tolerance", 0.05)))
                if choice.metric is not None:
                    out.append((r.name, choice.metric, choice.reason))
        return out
    return []


__all__ = ["Check", "DoctorReport", "Machine", "MDC_FORMULA", "NoiseEstimate", "estimate_noise",
           "machine_checks", "minimum_detectable_change", "noise_report", "processes_needed",
           "run_doctor", "standard_error", "worker_spread"]
