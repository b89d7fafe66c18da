"""The profile step of profile-and-patch: where does the time go, and was the hypothesis right?

:func:`profile` picks what to profile (the incident's benchmarks, a named benchmark, a command,
or a running process), runs the profiler (:mod:`perfloop.analysis.profilers`), writes the flame
graph files under ``.perfloop/profiles/`` (speedscope JSON, SVG, offline HTML), stores the
profile, and checks the hypothesis against it (:func:`~perfloop.analysis.hypothesis.check_hypothesis`:
by where the time is spent, with the process's off-CPU share and the project's source at hand),
recording confirmed, refuted, unclear or too broad on the hypothesis. In an incident it needs a
hypothesis and a baseline first (``explore`` looks around without them).

*The profiler* is the one asked for; ``"auto"`` (the default) is pyinstrument for a callable,
py-spy again when the callable starts threads, and py-spy for a command. Nothing is replaced
silently: a profiler that cannot do what was asked refuses with the reason.

*Before and after.* Each stored profile keeps its working-tree snapshot and its stacks. When a
target is profiled again in the same incident and the code has changed since its first profile,
the new one is an ``after`` profile: it is diffed against that first one (which functions lost
or gained time), and it does not re-judge the hypothesis (the hot spot a patch removed would
otherwise "refute" the hypothesis that found it).

*HTTP benchmarks* with a server: the server is started as ``perfloop run`` would, put under the
benchmark's fixed-rate load from a thread, and its process is profiled with py-spy for the
duration. Without py-spy permission there is no in-process fallback for a server; the error says
how to allow py-spy, and the benchmark's callable counterpart (if the project has one) can be
profiled instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from ..analysis.hypothesis import HypothesisCheck, check_hypothesis
from ..analysis.profiles import (OUTSIDE_USER_CODE, FrameDelta, HotSpot, Profile, diff_profiles,
                                 from_speedscope, hot_spots, to_speedscope)
from ..analysis.waiting import Waiting, waiting
from ..config import BenchmarkSpec, ProjectConfig
from ..errors import TargetError, UsageError
from ..analysis import profilers
from ..analysis.profilers import ProfileResult
from ..store import Store
from ..store.models import utcnow
from .attribution import snapshot_tree
from .drills import with_drill
from .incident import HYPOTHESIS_HINT, Hypothesis, Incident, current_incident, record_outcome, update_data

PROFILE_DIR = Path(".perfloop") / "profiles"
DEFAULT_PID_DURATION = 10.0      # seconds a running process is profiled for by default
DEFAULT_HTTP_DURATION = 5.0      # seconds an HTTP benchmark's server is profiled under load
DEFAULT_MIN_SHARE = 0.3          # check_hypothesis's default confirmation threshold
HOT_SPOTS_KEPT = 15


@dataclass(frozen=True)
class TargetProfile:
    """One profiled target: the profile, its files, hot spots, hypothesis check and diff."""

    profile_id: int
    target: str
    result: ProfileResult
    files: dict[str, str]
    purpose: str
    check: HypothesisCheck | None = None
    diff: tuple[FrameDelta, ...] = ()
    diff_against: int | None = None

    def hot_spots(self, limit: int = HOT_SPOTS_KEPT) -> list[HotSpot]:
        # modules a hypothesis names count as user code even when installed as a library
        modules = [e.partition(":")[0] for e in self.check.expect] if self.check else []
        return hot_spot_table(self.result.profile, limit=limit, user_modules=modules)

    @property
    def waiting(self) -> Waiting:
        """Which samples were threads waiting, on what (lock, sleep, I/O...) and where."""
        return waiting(self.result.profile)

    def to_dict(self) -> dict[str, Any]:
        return {"profile_id": self.profile_id, "target": self.target, "purpose": self.purpose,
                "profiler": self.result.profiler, "requested": self.result.requested,
                "duration": self.result.duration, "waiting": self.waiting.to_dict(),
                "waiting_reading": self.waiting.reading(),
                "calls": self.result.calls, "notes": list(self.result.notes),
                "files": dict(self.files),
                "hot_spots": [dataclasses.asdict(h) for h in self.hot_spots()],
                "signals": [s.to_dict() for s in self.result.signals],
                "hypothesis": _check_dict(self.check) if self.check else None,
                "diff_against": self.diff_against,
                "diff": [_delta_dict(d) for d in self.diff]}


@dataclass(frozen=True)
class ProfileReport:
    """What ``perfloop profile`` did: per target, and the hypothesis's overall outcome."""

    incident_id: int | None
    hypothesis: Hypothesis | None
    purpose: str
    targets: tuple[TargetProfile, ...]
    outcome: str | None                 # confirmed | refuted | unclear | None (not checked)
    reading: str | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "purpose": self.purpose,
                "hypothesis": self.hypothesis.to_dict() if self.hypothesis else None,
                "outcome": self.outcome, "reading": self.reading, "notes": list(self.notes),
                "targets": [t.to_dict() for t in self.targets]}


def _check_dict(check: HypothesisCheck) -> dict[str, Any]:
    return check.to_dict()


def _delta_dict(d: FrameDelta) -> dict[str, Any]:
    return {**dataclasses.asdict(d), "share_change": d.share_change, "seconds_change": d.seconds_change}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", text).strip("-")[:60] or "target"


# --------------------------------------------------------------------------------------------
# the hot-spot table


def hot_spot_table(profile: Profile, *, limit: int = HOT_SPOTS_KEPT,
                   user_modules: Sequence[str] = ()) -> list[HotSpot]:
    """User functions ranked by self share, the function where the time is spent first.

    Self share is the time charged to the function under the user hot-spot rule (its own lines,
    and the library and native code it calls directly); the total share next to it says how much
    passes through it. Ranking by total would put the entry point first in every profile (it
    contains everything); ranking by self puts first the code that burns the cycles (in the
    example shop, ``parse_condition``), and its callers follow by what they add themselves.
    """
    spots = [s for s in hot_spots(profile, limit=10_000, by="self", scope="user", user_modules=user_modules)
             if s.function != OUTSIDE_USER_CODE and s.self_share > 0]
    return [dataclasses.replace(s, rank=i) for i, s in enumerate(spots[:limit], start=1)]


# --------------------------------------------------------------------------------------------
# running the profilers


def _profile_http(spec: BenchmarkSpec, duration: float) -> ProfileResult:
    """Start the benchmark's server, load it at its fixed rate, profile the server with py-spy."""
    from ..measure.http import HttpClient
    from ..measure.loadgen import run_load
    from ..measure.server import ManagedServer
    assert spec.http is not None
    if spec.server is None:
        raise UsageError(f"benchmark {spec.name!r} is an HTTP endpoint whose server perfloop does not "
                         f"start, so there is no process to profile",
                         hint="profile the running server with perfloop profile --pid PID --duration 30s "
                              "while the load runs")
    status = profilers.check_py_spy()
    if not status.ok:
        raise status.error(f"profile the server of {spec.name!r}")
    http = spec.http
    stats: list[Any] = []

    async def load() -> None:
        client = HttpClient(http)
        try:
            # a little longer than the profile, so the server is under load for all of it
            stats.append(await run_load(client.send, rate=http.rate, duration=duration + 2.0,
                                        connections=http.connections))
        finally:
            await client.aclose()

    with ManagedServer(spec.server, spec.root, deadline=time.monotonic() + spec.server.ready_timeout + 5) as server:
        assert server.pid is not None
        thread = threading.Thread(target=lambda: asyncio.run(load()), name="perfloop-load", daemon=True)
        thread.start()
        time.sleep(0.5)       # let the first requests arrive before sampling
        result = profilers.profile_pid(server.pid, duration=duration, subprocesses=True)
        thread.join(timeout=duration + 30)
    notes = list(result.notes)
    if stats:
        s = stats[0]
        notes.append(f"under a fixed load of {http.rate:g} requests/s to {http.url}: {s.requests} "
                     f"requests, {s.failed} failed")
    return dataclasses.replace(result, target=f"{spec.name} (server pid {server.pid})", notes=tuple(notes))


def _run_target(spec: BenchmarkSpec, duration: float | None, profiler: str) -> ProfileResult:
    if spec.kind == "callable":
        return profilers.profile_callable(spec, duration=duration, profiler=profiler)
    if spec.kind == "command":
        assert spec.command is not None
        cwd = str((Path(spec.root) / spec.cwd).resolve()) if spec.cwd else str(Path(spec.root).resolve())
        return profilers.profile_command(spec.command, cwd=cwd, env=spec.env, duration=duration,
                                         profiler=profiler)
    _outside_only(profiler, f"the server of HTTP benchmark {spec.name!r}")
    return _profile_http(spec, duration or DEFAULT_HTTP_DURATION)


def _outside_only(profiler: str, what: str) -> None:
    """Refuse an in-process profiler for a process perfloop did not start in its worker."""
    if profiler not in ("auto", "py-spy"):
        raise UsageError(f"--profiler {profiler} cannot profile {what}: it runs inside the "
                         f"interpreter it profiles, and this process is already running; only "
                         f"py-spy attaches to a running process",
                         hint="use --profiler py-spy (or leave the default, auto)")


# --------------------------------------------------------------------------------------------
# storing


def _profile_doc(profile: Profile) -> dict[str, Any]:
    return {"speedscope": to_speedscope(profile), "unit": profile.unit, "calls": profile.calls,
            "interval": profile.interval, "duration": profile.duration, "profiler": profile.profiler}


def load_profile(store: Store, profile_id: int) -> Profile:
    """A stored profile, rebuilt from its stacks (for differential profiles)."""
    row = store.profile(profile_id)
    if row is None:
        raise UsageError(f"no profile #{profile_id}")
    data = dict(row.data or {})
    doc = data.get("profile") or {}
    profile = from_speedscope(doc.get("speedscope") or {"profiles": []}, profiler=doc.get("profiler"),
                              calls=doc.get("calls"), interval=doc.get("interval"))
    return dataclasses.replace(profile, duration=float(doc.get("duration") or profile.duration))


def _earlier_profile(store: Store, incident: Incident, target: str, tree: str | None) -> int | None:
    """The first profile of ``target`` in the incident, if the code has changed since it."""
    if not tree:
        return None
    for row in store.profiles(incident_id=incident.id, target=target):
        if row.purpose == "after":
            continue
        earlier = (row.data or {}).get("tree")
        if earlier and earlier != tree:
            return row.id
    return None


def _store(store: Store, root: Path, incident: Incident | None, hypothesis: Hypothesis | None,
           purpose: str, target: str, result: ProfileResult, check: HypothesisCheck | None,
           snapshot: Any, diff: Sequence[FrameDelta], diff_against: int | None,
           formats: Sequence[str], write_files: FlameGraphWriter | None) -> tuple[int, dict[str, str]]:
    modules = [e.partition(":")[0] for e in (check.expect if check else ())]
    spots = [dataclasses.asdict(h) for h in hot_spot_table(result.profile, user_modules=modules)]
    profile_id = store.add_profile(
        incident_id=incident.id if incident else None,
        hypothesis_id=hypothesis.id if hypothesis and purpose == "hypothesis" else None,
        purpose=purpose, target=target, profiler=result.profiler,
        commit=snapshot.commit if snapshot else None, dirty=bool(snapshot and snapshot.dirty),
        created_at=utcnow(), duration=float(result.duration), hot_spots=spots,
        signals=[s.to_dict() for s in result.signals], files={},
        data={"profile": _profile_doc(result.profile), "tree": snapshot.tree if snapshot else None,
              "check": _check_dict(check) if check else None, "notes": list(result.notes),
              "calls": result.calls, "diff_against": diff_against,
              "diff": [_delta_dict(d) for d in diff[:20]]})
    if write_files is None:
        return profile_id, {}
    prefix = root / PROFILE_DIR / ((f"incident-{incident.id}-" if incident else "") +
                                   f"profile-{profile_id}-{_slug(target)}")
    title = f"{target} ({purpose}, {result.profiler})"
    written = write_files(result.profile, prefix, title=title, signals=result.signals,
                          notes=result.notes, formats=formats)
    files = {fmt: str(path) for fmt, path in written.items()}
    store.update_profile(profile_id, files=files)
    return profile_id, files


# --------------------------------------------------------------------------------------------
# the step


class FlameGraphWriter(Protocol):
    """Renders a profile to files under ``prefix``; returns format -> path."""

    def __call__(self, profile: Profile, prefix: Path, /, *, title: str, signals: Sequence[Any],
                 notes: Sequence[str], formats: Sequence[str]) -> Mapping[str, Path]: ...


def _overall(checks: Sequence[HypothesisCheck]) -> str | None:
    verdicts = {c.verdict for c in checks}
    if not verdicts:
        return None
    if len(verdicts) == 1:
        return verdicts.pop()
    if "too-broad" in verdicts and verdicts <= {"too-broad", "confirmed"}:
        return "too-broad"       # a confirmation beside an entry point's share is not a fair one
    if "confirmed" in verdicts and "refuted" not in verdicts:
        return "confirmed"
    return "unclear"


def profile(store: Store, root: str | Path, *, config: ProjectConfig | None = None,
            benchmarks: Sequence[str] = (), command: Sequence[str] = (), pid: int | None = None,
            duration: float | None = None, explore: bool = False, expect: Sequence[str] = (),
            profiler: str = "auto", formats: Sequence[str] = ("speedscope", "svg", "html"),
            write_files: FlameGraphWriter | None = None) -> ProfileReport:
    """Profile, store, write flame graphs and check the hypothesis (see the module docstring).

    ``write_files`` renders the flame graph files (the CLI passes
    :func:`perfloop.report.flamegraph.write_flamegraph`: rendering sits above the workflows);
    without it the profile is stored and checked but no files are written.
    """
    root = Path(root).resolve()
    incident = current_incident(store, root)
    hypothesis = incident.hypothesis if incident else None
    _refuse_out_of_order(incident, explore, expect)
    if sum(bool(x) for x in (benchmarks, command, pid is not None)) > 1:
        raise UsageError("profile one kind of target at a time: --benchmark, --pid or -- COMMAND")
    expect = tuple(expect) or (hypothesis.expect if hypothesis and not explore else ())
    purpose = "exploration" if explore or not expect else "hypothesis"
    min_share = (hypothesis.expected_share if hypothesis and hypothesis.expected_share else DEFAULT_MIN_SHARE)
    notes: list[str] = []
    if hypothesis and not hypothesis.expect and not explore:
        notes.append("the hypothesis names no function or module (--expect), so the profile cannot "
                     "confirm or refute it; add one with perfloop hypothesis ... --expect module:function")
    runs = _run(root, incident, config, benchmarks, command, pid, duration, profiler, notes)
    step = _Step(store, root, incident, hypothesis, purpose, explore, expect, min_share,
                 _search_paths(root, config), snapshot_tree(root), formats, write_files)
    targets = [step.target(target, result) for target, result in runs]
    checks = [t.check for t in targets if t.check is not None and t.purpose != "after"]
    outcome = _overall(checks)
    reading = _reading(targets, checks)
    if outcome and hypothesis and incident and not explore and not _one_off(expect, hypothesis):
        record_outcome(store, hypothesis.id, outcome, {
            "reading": reading, "profiles": [t.profile_id for t in targets],
            "checks": [_check_dict(c) for c in checks]})
    if incident is not None:
        update_data(store, incident.id, {}, event="profile " + ", ".join(
            f"#{t.profile_id} {t.target} ({t.purpose})" for t in targets))
    if any(t.purpose == "after" for t in targets):
        notes.append("the code changed since this target's first profile in the incident: this is "
                     "an after profile, diffed against it; the hypothesis keeps the verdict of the "
                     "before profile")
    return ProfileReport(incident.id if incident else None, hypothesis, purpose, tuple(targets),
                         outcome if purpose == "hypothesis" else None, reading, tuple(notes))


def _refuse_out_of_order(incident: Incident | None, explore: bool, expect: Sequence[str]) -> None:
    """In an incident, a profile tests a hypothesis against a baseline: refuse without them."""
    if incident is None:
        return
    if incident.hypothesis is None and not explore and not expect:
        raise UsageError(f"incident #{incident.id} ({incident.title!r}) has no hypothesis yet: "
                         f"profiling without one is looking around, not testing an idea",
                         hint=HYPOTHESIS_HINT)
    if not explore and incident.baseline is None:
        # profiling leads to patching; a baseline measured after the patch measures the patch
        raise UsageError(f"incident #{incident.id} ({incident.title!r}) has no baseline yet: measure "
                         f"the before-state first, because what the profile shows is what you will "
                         f"patch, and a baseline taken after the patch cannot show its effect",
                         hint="run perfloop baseline, then perfloop profile; or profile with "
                              "--explore to look around (recorded as exploration)")


def _run(root: Path, incident: Incident | None, config: ProjectConfig | None,
         benchmarks: Sequence[str], command: Sequence[str], pid: int | None, duration: float | None,
         profiler: str, notes: list[str]) -> list[tuple[str, ProfileResult]]:
    """Profile the command, the process or the benchmarks; a benchmark that cannot be profiled
    among several is noted in ``notes`` and skipped."""
    if command:
        result = profilers.profile_command(list(command), cwd=str(root), duration=duration,
                                           profiler=profiler)
        return [(result.target, result)]
    if pid is not None:
        _outside_only(profiler, f"process {pid}")
        result = profilers.profile_pid(pid, duration=duration or DEFAULT_PID_DURATION)
        return [(result.target, result)]
    names = list(benchmarks) or list(incident.benchmarks if incident else ())
    if not names:
        raise UsageError("nothing to profile: name a benchmark, a command or a process",
                         hint="perfloop profile --benchmark NAME, perfloop profile -- python app.py, "
                              "or perfloop profile --pid PID --duration 30s")
    if config is None:
        raise UsageError("profiling a benchmark needs the project's perfloop.toml",
                         hint="run from the project directory or pass -C DIR")
    from ..measure.suites import with_suites
    config = with_drill(with_suites(config, names))
    specs = config.select(names)
    runs: list[tuple[str, ProfileResult]] = []
    for spec in specs:
        try:
            runs.append((spec.name, _run_target(spec, duration, profiler)))
        except TargetError as exc:
            if len(specs) == 1:
                raise
            notes.append(f"{spec.name} could not be profiled: {exc.message}")
    if not runs:
        raise TargetError("no benchmark could be profiled: " + "; ".join(notes))
    return runs


@dataclass(frozen=True)
class _Step:
    """What every target of one ``profile`` call shares: where to store it and what to check."""

    store: Store
    root: Path
    incident: Incident | None
    hypothesis: Hypothesis | None
    purpose: str
    explore: bool
    expect: tuple[str, ...]
    min_share: float
    search_paths: list[str]
    snapshot: Any
    formats: Sequence[str]
    write_files: FlameGraphWriter | None

    def target(self, target: str, result: ProfileResult) -> TargetProfile:
        """Diff against the target's first profile if the code changed, check, store."""
        purpose = self.purpose
        diff: list[FrameDelta] = []
        against = None
        if self.incident is not None:
            tree = self.snapshot.tree if self.snapshot else None
            against = _earlier_profile(self.store, self.incident, target, tree)
            if against is not None and not self.explore:
                purpose = "after"
                diff = diff_profiles(load_profile(self.store, against), result.profile, limit=20)
        check = check_hypothesis(result.profile, self.expect, min_share=self.min_share,
                                 off_cpu=_off_cpu(result), paths=self.search_paths) if self.expect else None
        profile_id, files = _store(self.store, self.root, self.incident, self.hypothesis, purpose,
                                   target, result, check, self.snapshot, diff, against, self.formats,
                                   self.write_files)
        return TargetProfile(profile_id, target, result, files, purpose, check, tuple(diff), against)


def _reading(targets: Sequence[TargetProfile], checks: Sequence[HypothesisCheck]) -> str | None:
    """The hypothesis checks' readings: one, or one per target profiled before any patch."""
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0].reading
    return " ".join(f"{t.target}: {t.check.reading}" for t in targets
                    if t.check is not None and t.purpose != "after")


def _off_cpu(result: ProfileResult) -> float | None:
    signal = result.signal("off_cpu")
    return signal.value if signal is not None else None


def _search_paths(root: Path, config: ProjectConfig | None) -> list[str]:
    """Import roots where a hypothesis's names are looked up in the source."""
    paths = [str(root)]
    for spec in (config.benchmarks if config is not None else ()):
        paths += [str((Path(spec.root) / p).resolve()) for p in spec.pythonpath]
    for sub in ("src", "lib"):
        if (root / sub).is_dir():
            paths.append(str(root / sub))
    return list(dict.fromkeys(paths))


def _one_off(expect: Sequence[str], hypothesis: Hypothesis) -> bool:
    """True when the profile checked a one-off ``--expect``, not the hypothesis's own names."""
    return tuple(expect) != tuple(hypothesis.expect)


__all__ = ["ProfileReport", "TargetProfile", "hot_spot_table", "load_profile", "profile"]
