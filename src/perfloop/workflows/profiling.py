"""The profile step of profile-and-patch: where does the time go, and was the hypothesis right?

:func:`profile` picks what to profile (the incident's benchmarks, a named benchmark, a command,
or a running process), runs the profiler (:mod:`perfloop.analysis.profilers`), writes the flame
graph files under ``.perfloop/profiles/`` (speedscope JSON, SVG, offline HTML), stores the
profile, and checks the hypothesis against it (:func:`~perfloop.analysis.profiles.check_hypothesis`),
recording confirmed, refuted or unclear on the hypothesis.

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

from sqlalchemy import select, update

from ..analysis.profiles import (OUTSIDE_USER_CODE, FrameDelta, HotSpot, HypothesisCheck, Profile,
                                 check_hypothesis, diff_profiles, from_speedscope, hot_spots,
                                 to_speedscope)
from ..config import BenchmarkSpec, ProjectConfig
from ..errors import TargetError, UsageError
from ..analysis import profilers
from ..analysis.profilers import ProfileResult
from ..store import Store
from ..store.models import ProfileRow, utcnow
from .attribution import snapshot_tree
from .drills import with_drill
from .incident import HYPOTHESIS_HINT, Hypothesis, Incident, _session, current_incident, record_outcome, update_data

PROFILE_DIR = Path(".perfloop") / "profiles"
DEFAULT_PID_DURATION = 10.0      # seconds a running process is profiled for by default
DEFAULT_HTTP_DURATION = 5.0      # seconds an HTTP benchmark's server is profiled under load
DEFAULT_MIN_SHARE = 0.3          # check_hypothesis's default confirmation threshold
HOT_SPOTS_KEPT = 15
PASS_THROUGH = 0.98              # a caller handing this share of its time to one callee is skipped


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

    def to_dict(self) -> dict[str, Any]:
        return {"profile_id": self.profile_id, "target": self.target, "purpose": self.purpose,
                "profiler": self.result.profiler, "duration": self.result.duration,
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
    return {"verdict": check.verdict, "expect": list(check.expect), "share": check.share,
            "first_user": check.first_user, "min_share": check.min_share,
            "matched": list(check.matched), "unmatched": list(check.unmatched),
            "top": [dataclasses.asdict(h) for h in check.top], "reading": check.reading}


def _delta_dict(d: FrameDelta) -> dict[str, Any]:
    return {**dataclasses.asdict(d), "share_change": d.share_change, "seconds_change": d.seconds_change}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", text).strip("-")[:60] or "target"


# --------------------------------------------------------------------------------------------
# the hot-spot table


def pass_through(profile: Profile, user_modules: Sequence[str] = (),
                 threshold: float = PASS_THROUGH) -> set[str]:
    """User functions that hand at least ``threshold`` of their time to one user callee.

    Such a function (an entry point, a thin wrapper, ``price_cart`` around ``apply_discounts``)
    holds the same total share as its callee and adds nothing to read in a table ranked by
    total share: the callee is where the cost is.
    """
    def user(i: int) -> bool:
        fr = profile.frames[i]
        return fr.kind == "user" or bool(user_modules and any(
            fr.module == m or fr.module.startswith(m + ".") for m in user_modules))

    total: dict[str, float] = {}
    edge: dict[tuple[str, str], float] = {}
    for stack in profile.stacks:
        names = [profile.frames[i].name for i in stack.frames if user(i)]
        for name in set(names):
            total[name] = total.get(name, 0.0) + stack.weight
        for pair in {(a, b) for a, b in zip(names, names[1:]) if a != b}:
            edge[pair] = edge.get(pair, 0.0) + stack.weight
    return {caller for (caller, _), w in edge.items()
            if total.get(caller, 0.0) > 0 and w >= threshold * total[caller]}


def hot_spot_table(profile: Profile, *, limit: int = HOT_SPOTS_KEPT,
                   user_modules: Sequence[str] = ()) -> list[HotSpot]:
    """User functions ranked by total (inclusive) share, pass-through functions left out.

    Total share answers "how much would go if this function cost nothing"; leaving out the
    functions that only pass their time on puts first the outermost function whose cost is its
    own doing, the place a patch goes (in the example shop, ``apply_discounts``, which calls
    ``prepare_rules`` once per line). The self share next to it says where inside the cycles
    burn (``parse_condition``).
    """
    skip = pass_through(profile, user_modules)
    spots = [s for s in hot_spots(profile, limit=10_000, by="total", scope="user", user_modules=user_modules)
             if s.function not in skip and s.function != OUTSIDE_USER_CODE]
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
                                         profiler="py-spy" if profiler == "pyinstrument" else profiler)
    return _profile_http(spec, duration or DEFAULT_HTTP_DURATION)


# --------------------------------------------------------------------------------------------
# storing


def _profile_doc(profile: Profile) -> dict[str, Any]:
    return {"speedscope": to_speedscope(profile), "unit": profile.unit, "calls": profile.calls,
            "interval": profile.interval, "duration": profile.duration, "profiler": profile.profiler}


def load_profile(store: Store, profile_id: int) -> Profile:
    """A stored profile, rebuilt from its stacks (for differential profiles)."""
    with _session(store, f"reading profile {profile_id}", write=False) as session:
        row = session.get(ProfileRow, profile_id)
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
    with _session(store, "reading profiles", write=False) as session:
        rows = session.scalars(select(ProfileRow).where(ProfileRow.incident_id == incident.id,
                                                        ProfileRow.target == target,
                                                        ProfileRow.purpose != "after")
                               .order_by(ProfileRow.id)).all()
        for row in rows:
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
    row = ProfileRow(
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
    with _session(store, "storing a profile", write=True) as session:
        session.add(row)
        session.flush()
        profile_id = row.id
    if write_files is None:
        return profile_id, {}
    prefix = root / PROFILE_DIR / ((f"incident-{incident.id}-" if incident else "") +
                                   f"profile-{profile_id}-{_slug(target)}")
    title = f"{target} ({purpose}, {result.profiler})"
    written = write_files(result.profile, prefix, title=title, signals=result.signals,
                          notes=result.notes, formats=formats)
    files = {fmt: str(path) for fmt, path in written.items()}
    with _session(store, "storing a profile", write=True) as session:
        session.execute(update(ProfileRow).where(ProfileRow.id == profile_id).values(files=files))
    return profile_id, files


# --------------------------------------------------------------------------------------------
# the step


class FlameGraphWriter(Protocol):
    """Renders a profile to files under ``prefix``; returns format -> path."""

    def __call__(self, profile: Profile, prefix: Path, *, title: str, signals: Sequence[Any],
                 notes: Sequence[str], formats: Sequence[str]) -> Mapping[str, Path]: ...


def _overall(checks: Sequence[HypothesisCheck]) -> str | None:
    verdicts = {c.verdict for c in checks}
    if not verdicts:
        return None
    if verdicts == {"confirmed"}:
        return "confirmed"
    if verdicts == {"refuted"}:
        return "refuted"
    if "confirmed" in verdicts and "refuted" not in verdicts:
        return "confirmed"
    return "unclear"


def profile(store: Store, root: str | Path, *, config: ProjectConfig | None = None,
            benchmarks: Sequence[str] = (), command: Sequence[str] = (), pid: int | None = None,
            duration: float | None = None, explore: bool = False, expect: Sequence[str] = (),
            profiler: str = "pyinstrument", formats: Sequence[str] = ("speedscope", "svg", "html"),
            write_files: FlameGraphWriter | None = None) -> ProfileReport:
    """Profile, store, write flame graphs and check the hypothesis (see the module docstring).

    ``write_files`` renders the flame graph files (the CLI passes
    :func:`perfloop.report.flamegraph.write_flamegraph`: rendering sits above the workflows);
    without it the profile is stored and checked but no files are written.
    """
    root = Path(root).resolve()
    incident = current_incident(store, root)
    hypothesis = incident.hypothesis if incident else None
    if incident is not None and hypothesis is None and not explore and not expect:
        raise UsageError(f"incident #{incident.id} ({incident.title!r}) has no hypothesis yet: "
                         f"profiling without one is looking around, not testing an idea",
                         hint=HYPOTHESIS_HINT)
    if sum(bool(x) for x in (benchmarks, command, pid is not None)) > 1:
        raise UsageError("profile one kind of target at a time: --benchmark, --pid or -- COMMAND")
    expect = tuple(expect) or (hypothesis.expect if hypothesis and not explore else ())
    purpose = "exploration" if explore or not expect else "hypothesis"
    min_share = (hypothesis.expected_share if hypothesis and hypothesis.expected_share else DEFAULT_MIN_SHARE)
    notes: list[str] = []
    if hypothesis and not hypothesis.expect and not explore:
        notes.append("the hypothesis names no function or module (--expect), so the profile cannot "
                     "confirm or refute it; add one with perfloop hypothesis ... --expect module:function")

    runs: list[tuple[str, ProfileResult]] = []
    if command:
        result = profilers.profile_command(list(command), cwd=str(root), duration=duration,
                                           profiler="py-spy" if profiler == "pyinstrument" else profiler)
        runs.append((result.target, result))
    elif pid is not None:
        result = profilers.profile_pid(pid, duration=duration or DEFAULT_PID_DURATION)
        runs.append((result.target, result))
    else:
        names = list(benchmarks) or list(incident.benchmarks if incident else ())
        if not names:
            raise UsageError("nothing to profile: name a benchmark, a command or a process",
                             hint="perfloop profile --benchmark NAME, perfloop profile -- python app.py, "
                                  "or perfloop profile --pid PID --duration 30s")
        if config is None:
            raise UsageError("profiling a benchmark needs the project's perfloop.toml",
                             hint="run from the project directory or pass -C DIR")
        for spec in with_drill(config).select(names):
            try:
                runs.append((spec.name, _run_target(spec, duration, profiler)))
            except TargetError as exc:
                if len(config.select(names)) == 1:
                    raise
                notes.append(f"{spec.name} could not be profiled: {exc.message}")
        if not runs:
            raise TargetError("no benchmark could be profiled: " + "; ".join(notes))

    snapshot = snapshot_tree(root)
    targets: list[TargetProfile] = []
    checks: list[HypothesisCheck] = []
    for target, result in runs:
        this_purpose = purpose
        diff: list[FrameDelta] = []
        against = None
        if incident is not None:
            against = _earlier_profile(store, incident, target, snapshot.tree if snapshot else None)
            if against is not None and not explore:
                this_purpose = "after"
                diff = diff_profiles(load_profile(store, against), result.profile, limit=20)
        check = check_hypothesis(result.profile, expect, min_share=min_share) if expect else None
        if check is not None and this_purpose != "after":
            checks.append(check)
        profile_id, files = _store(store, root, incident, hypothesis, this_purpose, target, result,
                                   check, snapshot, diff, against, formats, write_files)
        targets.append(TargetProfile(profile_id, target, result, files, this_purpose, check,
                                     tuple(diff), against))

    outcome = _overall(checks)
    reading = None
    if checks:
        reading = " ".join(f"{t.target}: {t.check.reading}" for t in targets
                           if t.check is not None and t.purpose != "after") \
            if len(checks) > 1 else checks[0].reading
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


def _one_off(expect: Sequence[str], hypothesis: Hypothesis) -> bool:
    """True when the profile checked a one-off ``--expect``, not the hypothesis's own names."""
    return tuple(expect) != tuple(hypothesis.expect)


__all__ = ["ProfileReport", "TargetProfile", "hot_spot_table", "load_profile", "pass_through", "profile"]
