"""The measuring loop: run a project's benchmarks and store the run as it goes.

Each finished benchmark is committed to the store at once, so Ctrl-C or a crash keeps what
was measured; the run is then marked ``interrupted`` rather than left half-written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

from .. import __version__
from ..config import BenchmarkSpec, ProjectConfig
from ..measure.environment import CONDITION_KEYS, environment_hash, fingerprint
from ..measure.git import GitState, git_state
from ..measure.progress import Progress
from ..measure.runner import RunInterrupted, run_benchmarks
from ..measure.suites import with_suites
from ..records import BenchmarkResult, RunStatus
from ..store import Store
from . import drills


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    status: RunStatus
    results: tuple[BenchmarkResult, ...]
    git: GitState
    environment_hash: str


class _StoreSink:
    """Hands each finished result to the store, with the settings it was measured under."""

    def __init__(self, store: Store, run_id: int, specs: Sequence[BenchmarkSpec]) -> None:
        self.store = store
        self.run_id = run_id
        self.specs = {s.name: s for s in specs}
        self.results: list[BenchmarkResult] = []

    def add_result(self, result: BenchmarkResult) -> None:
        spec = self.specs.get(result.name)
        if spec is not None:
            extra = {**result.extra, "tolerance": spec.settings.tolerance,
                     "settings": settings_dict(spec)}
            result = replace(result, extra=extra)
        self.store.add_result(self.run_id, result)
        self.results.append(result)


def settings_dict(spec: BenchmarkSpec) -> dict[str, Any]:
    """The settings a result was measured with, as stored beside it (compare reads them)."""
    s = spec.settings
    return {"processes": s.processes, "values": s.values, "warmup": s.warmup,
            "min_time": s.min_time, "tolerance": s.tolerance, "timeout": s.timeout,
            "run_noise": s.run_noise, "decide_on": s.decide_on,
            "metrics": list(spec.metrics), "kind": spec.kind}


def with_overrides(specs: Sequence[BenchmarkSpec], **overrides: Any) -> list[BenchmarkSpec]:
    """The specs with settings (processes, values, warmup, min_time, timeout) overridden."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return list(specs)
    return [replace(s, settings=replace(s.settings, **given)) for s in specs]


def run_project(config: ProjectConfig, store: Store, *, label: str | None = None,
                names: Sequence[str] | None = None, progress: Progress | None = None,
                **overrides: Any) -> RunOutcome:
    """Run the selected benchmarks of a project and store the run. Returns its outcome.

    Raises :class:`~perfloop.measure.runner.RunInterrupted` after marking the run
    ``interrupted`` when the user presses Ctrl-C; what was measured stays stored.
    """
    config = with_suites(config, names)     # [[suite]] tables: collect their benchmarks
    drill = drills.active(config.root)
    if drill is not None:
        config = drills.with_drill(config)
    specs = with_overrides(config.select(list(names or [])), **overrides)
    env = fingerprint()
    git = git_state(config.root)
    settings: dict[str, Any] = {
        "perfloop": __version__, "benchmarks": {s.name: settings_dict(s) for s in specs},
        # conditions vary run to run; the shared environment row keeps only identity
        "conditions": {k: env.get(k) for k in sorted(CONDITION_KEYS)}}
    if drill is not None:
        # measured with a drill's injected slowdown: kept out of history and commit lookups
        settings["drill"] = int(drill["id"])
    run_id = store.begin_run(
        label=label, commit=git.commit, branch=git.branch, dirty=git.dirty, environment=env,
        settings=settings, project=str(config.root))
    sink = _StoreSink(store, run_id, specs)
    try:
        run_benchmarks(specs, sink=sink, progress=progress)
    except BaseException:
        # Interrupted (Ctrl-C) or perfloop itself failed: keep what was measured, say so.
        store.finish_run(run_id, RunStatus.INTERRUPTED)
        raise
    store.finish_run(run_id, RunStatus.COMPLETE)
    return RunOutcome(run_id, RunStatus.COMPLETE, tuple(sink.results), git, environment_hash(env))


__all__ = ["RunOutcome", "RunInterrupted", "run_project", "settings_dict", "with_overrides"]
