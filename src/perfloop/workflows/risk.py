"""Scoring a change's risk from the project as it is: the diff, the import graph, the journal.

:func:`assess` reads a diff (a commit range or the working tree), classes its reversibility,
finds the declared fault boundaries it touches (``[risk.boundaries]`` in the configuration),
measures its blast radius in the import graph, counts the churn and the past regressions and
rollbacks of the touched files, checks which touched files some benchmark exercises, and hands
it all to :func:`perfloop.analysis.risk.score`.

Benchmark coverage comes from a deterministic profile (cProfile records every call) of each
callable benchmark, cached per HEAD commit in ``.perfloop/coverage``: the files whose functions
ran. Commands and HTTP benchmarks are not profiled for it, so code only they run counts as
unexercised.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..analysis.imports import BlastRadius, blast_radius
from ..analysis.risk import KINDS, RiskInputs, RiskPolicy, RiskScore, normalize_kind, score
from ..config import ProjectConfig
from ..errors import ConfigError, UsageError
from ..measure.diff import DiffFacts, read_diff
from ..store import Store

#: Paths that do not revert in seconds: migrations, schemas, data formats, lock files.
IRREVERSIBLE = ("*/migrations/*", "migrations/*", "*/alembic/*", "*.sql", "*.proto", "*.avsc",
                "*.lock", "poetry.lock", "uv.lock", "Pipfile.lock", "*/versions/*.py")
#: Paths whose change is a configuration value.
CONFIG_FILES = ("*.toml", "*.yaml", "*.yml", "*.ini", "*.cfg", "*.json", "*.env", ".env",
                "*.conf", "*/settings.py", "settings.py", "*/config.py")
#: Journal statuses that count against the files a change touched.
BAD_OUTCOMES = ("regressed", "rolled-back", "approved")
RISK_KEYS = {"kinds", "weights", "low_below", "high_from", "boundaries", "irreversible",
             "config_files"}

Coverage = Callable[[ProjectConfig], set[str]]


@dataclass(frozen=True)
class Assessment:
    score: RiskScore
    diff: DiffFacts
    blast: BlastRadius
    boundaries: tuple[str, ...]
    reversibility: str
    uncovered: tuple[str, ...] | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.score.to_dict(), "diff": self.diff.to_dict(), "blast_radius": self.blast.to_dict(),
                "boundaries": list(self.boundaries), "reversibility": self.reversibility,
                "uncovered": list(self.uncovered) if self.uncovered is not None else None}


def risk_settings(config: ProjectConfig) -> Mapping[str, Any]:
    """``[risk]`` of the configuration, checked (errors name the key and the fix)."""
    raw = dict(getattr(config, "risk", None) or {})
    where = str(config.path) if config.path else "<config>"
    unknown = set(raw) - RISK_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s): {', '.join(sorted(unknown))}", path=where, key="risk",
                          hint=f"allowed: {', '.join(sorted(RISK_KEYS))}")
    for name in (raw.get("kinds") or {}):
        if normalize_kind(name) not in KINDS:
            raise ConfigError(f"unknown kind {name!r}", path=where, key="risk.kinds",
                              hint=f"kinds: {', '.join(KINDS)}")
    bounds = raw.get("boundaries") or {}
    if not isinstance(bounds, Mapping) or not all(
            isinstance(v, list) and all(isinstance(p, str) for p in v) for v in bounds.values()):
        raise ConfigError("boundaries maps a name to a list of path patterns", path=where,
                          key="risk.boundaries", hint='e.g. storage = ["shop/db.py", "shop/models.py"]')
    return raw


def policy_of(config: ProjectConfig) -> RiskPolicy:
    return RiskPolicy().with_overrides(risk_settings(config))


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(Path(path).name, p) for p in patterns)


def reversibility(paths: Sequence[str], settings: Mapping[str, Any]) -> str:
    """``irreversible`` if anything is a migration/schema/lock file, ``config`` if all are config."""
    if any(_matches(p, (*IRREVERSIBLE, *settings.get("irreversible", ()))) for p in paths):
        return "irreversible"
    if paths and all(_matches(p, (*CONFIG_FILES, *settings.get("config_files", ()))) for p in paths):
        return "config"
    return "code"


def boundaries_touched(paths: Sequence[str], settings: Mapping[str, Any]) -> tuple[str, ...]:
    bounds: Mapping[str, list[str]] = settings.get("boundaries") or {}
    return tuple(sorted(name for name, patterns in bounds.items()
                        if any(_matches(p, patterns) for p in paths)))


def past_incidents(store: Store | None, root: Path, paths: Sequence[str]) -> int:
    """Regressions, rollbacks and approved regressions in the journal whose commits touched ``paths``."""
    if store is None or not paths:
        return 0
    rows = [(c.commits, c.data) for status in BAD_OUTCOMES for c in store.changes(status=status)]
    wanted, count = set(paths), 0
    for commits, data in rows:
        touched = set((data or {}).get("paths") or ())
        for sha in commits or ():
            out = subprocess.run(["git", "diff-tree", "--no-commit-id", "--name-only", "-r", str(sha)],
                                 cwd=root, capture_output=True, text=True, timeout=60)
            touched.update(out.stdout.split())
        count += bool(touched & wanted)
    return count


def exercised_files(config: ProjectConfig) -> set[str]:
    """Files whose code some callable benchmark runs (cProfile of each), cached per commit."""
    from ..analysis.profilers import profile_callable
    from ..analysis.profiles import hot_spots
    from ..measure.git import git_state
    # keyed by HEAD even when the tree is dirty: which files run rarely changes with an edit
    state = git_state(config.root)
    cache = config.root / ".perfloop" / "coverage" / f"{state.commit or 'none'}.json"
    if state.commit and cache.is_file():
        return set(json.loads(cache.read_text(encoding="utf-8")))
    files: set[str] = set()
    for spec in config.benchmarks:
        if spec.kind != "callable" or not spec.callable:
            continue
        result = profile_callable(spec, duration=0.3, profiler="cprofile", memory_check=False)
        for spot in hot_spots(result.profile, limit=100_000, scope="all", by="total"):
            file = spot.location.rsplit(":", 1)[0]
            if file:
                files.add(str(Path(file).resolve()))
    if state.commit:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(sorted(files)), encoding="utf-8")
    return files


def assess(config: ProjectConfig, *, diff: str | None = None, kind: str | None = None,
           store: Store | None = None, coverage: Coverage | None = exercised_files) -> Assessment:
    """Score ``diff`` (a commit range; the working tree when None) in the project ``config``."""
    if kind is not None and normalize_kind(kind) not in policy_of(config).kinds:
        raise UsageError(f"unknown kind {kind!r}", hint=f"one of: {', '.join(KINDS)}")
    settings = risk_settings(config)
    facts = read_diff(config.root, diff)
    if not facts.files:
        raise UsageError(f"{facts.spec}: nothing changed", hint="name a range: --diff main..HEAD")
    top = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=config.root,
                              capture_output=True, text=True, timeout=30).stdout.strip())
    paths = list(facts.paths)
    pythonpath = sorted({p for s in config.benchmarks for p in s.pythonpath})
    blast = blast_radius(top, paths, paths=pythonpath,
                         cache_dir=config.root / ".perfloop" / "import-graph")
    python = [p for p in paths if p.endswith(".py")]
    uncovered: tuple[str, ...] | None = None
    if coverage is not None and python:
        ran = coverage(config)
        uncovered = tuple(p for p in python if str((top / p).resolve()) not in ran)
    inputs = RiskInputs(
        kind=kind, lines_changed=facts.added + facts.deleted, lines_before=facts.lines_before,
        files=len(facts.files), directories=facts.directories, subsystems=facts.subsystems,
        entropy=facts.entropy, blast_share=blast.share,
        boundaries_touched=boundaries_touched(paths, settings),
        reversibility=reversibility(paths, settings),
        recent_commits=sum(facts.recent_commits.values()),
        past_incidents=past_incidents(store, top, paths), python_files=len(python),
        uncovered_python_files=None if uncovered is None else len(uncovered))
    return Assessment(score(inputs, policy_of(config)), facts, blast, inputs.boundaries_touched,
                      inputs.reversibility, uncovered)


__all__ = ["Assessment", "assess", "boundaries_touched", "exercised_files", "policy_of",
           "reversibility", "risk_settings"]
