"""Blind tuning drills: a hidden slowdown is injected into the project; find it.

``start`` surveys the functions that the project's callable benchmarks exercise (a cProfile run
of each, the project's own code only), picks one at random, and writes the drill to
``.perfloop/drill.json``. From then on every benchmark process that :func:`with_drill` prepares
(``perfloop run`` and ``perfloop profile``) starts with an import hook that wraps that function
so that it spends ``factor`` times its own duration more on the CPU; the factor is chosen from
the function's share of its benchmark so that the benchmark slows by the difficulty's target
(+40% easy, +12% hard). No source file is edited: stopping the drill removes the file, and the
code runs as before.

The engineer diagnoses it with the usual tools and answers ``module:function``; the answer is
scored (right or not, time taken, attempts) and kept in the journal of changes, workflow
``drill``. While a drill runs, its runs are marked (``settings["drill"]``) and left out of
history and of commit resolution, and ``baseline``, ``verify`` and ``gate`` refuse to start, so
that a forgotten drill cannot leak into a real decision.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import random
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..config import BenchmarkSpec, ProjectConfig
from ..errors import UsageError
from ..measure import drill_hook
from ..store import ChangeRecord, Store

WORKFLOW = "drill"
DIFFICULTIES: Mapping[str, float] = {"easy": 0.40, "hard": 0.12}   # the benchmark's slowdown
#: Functions holding less than this share of a benchmark would need a huge factor to show.
MIN_SHARE = {"easy": 0.10, "hard": 0.03}
#: Functions holding more are the benchmark's entry points, not a finding.
MAX_SHARE = 0.90
HOOK_DIR = str(Path(drill_hook.__path__[0]).resolve())
STATE_FILE = "drill.json"
STOP_HINT = "perfloop drill stop (it reveals the answer and removes the slowdown)"


@dataclass(frozen=True)
class Candidate:
    """A function a benchmark exercises, and its share of that benchmark's time."""

    function: str           # "module:qualname"
    benchmark: str
    total_share: float
    self_share: float


@dataclass(frozen=True)
class Drill:
    """A drill as stored. ``target`` is None while it runs (the answer stays hidden)."""

    id: int
    difficulty: str
    status: str                   # running | solved | stopped
    started_at: datetime
    finished_at: datetime | None
    benchmarks: tuple[str, ...]   # the benchmarks expected to slow down
    slowdown: float               # expected relative slowdown of those benchmarks
    target: str | None
    attempts: tuple[Mapping[str, Any], ...]

    @property
    def solved(self) -> bool:
        return self.status == "solved"

    @property
    def seconds(self) -> float | None:
        """Time from start to the right answer (or to the stop)."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "difficulty": self.difficulty, "status": self.status,
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "benchmarks": list(self.benchmarks), "slowdown": self.slowdown,
                "target": self.target, "solved": self.solved, "seconds": self.seconds,
                "attempts": [dict(a) for a in self.attempts]}


@dataclass(frozen=True)
class Answer:
    drill: Drill
    answer: str
    right: bool


# --------------------------------------------------------------------------------------------
# the survey: which functions the benchmarks exercise


Profiler = Callable[[BenchmarkSpec], Sequence[Any]]


def _cprofile_spots(spec: BenchmarkSpec) -> Sequence[Any]:
    from ..analysis.profilers import profile_callable
    from ..analysis.profiles import hot_spots
    result = profile_callable(spec, duration=1.0, profiler="cprofile", memory_check=False)
    return hot_spots(result.profile, limit=60, scope="all", by="total")


def _module_file(module: str, root: Path, spec: BenchmarkSpec) -> Path | None:
    """The project's source file of ``module``, or None (the standard library, a dependency)."""
    parts = module.split(".")
    for base in [root / p for p in spec.pythonpath] + [root]:
        for candidate in (base.joinpath(*parts).with_suffix(".py"),
                          base.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate
    return None


def _qualname(path: Path, name: str) -> str | None:
    """The one module-level function or class method called ``name`` in ``path`` (by qualname).

    Profilers name a method by its bare name (cProfile) or its qualname; the import hook needs
    the attribute path. Functions nested in functions cannot be reached from the module, and a
    name defined twice is ambiguous: both give None.
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    found: list[str] = []

    def walk(body: Sequence[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.name == name or f"{prefix}{node.name}" == name:
                    found.append(f"{prefix}{node.name}")
            elif isinstance(node, ast.ClassDef):
                walk(node.body, f"{prefix}{node.name}.")

    walk(tree.body, "")
    return found[0] if len(found) == 1 else None


def survey(config: ProjectConfig, *, names: Sequence[str] = (),
           profiler: Profiler = _cprofile_spots) -> list[Candidate]:
    """The project's functions that its callable benchmarks exercise, with their shares."""
    found: dict[str, Candidate] = {}
    for spec in config.select(list(names)):
        if spec.kind != "callable" or not spec.callable:
            continue
        entry = {spec.callable, spec.setup, spec.teardown}
        for spot in profiler(spec):
            module, _, name = spot.function.partition(":")
            if not name or "<" in name or not 0 < spot.total_share <= MAX_SHARE:
                continue
            path = _module_file(module, config.root, spec)
            qualname = _qualname(path, name) if path is not None else None
            function = f"{module}:{qualname}"
            if qualname is None or function in entry:
                continue
            known = found.get(function)
            if known is None or spot.total_share > known.total_share:
                found[function] = Candidate(function, spec.name, float(spot.total_share),
                                            float(spot.self_share))
    return sorted(found.values(), key=lambda c: (-c.total_share, c.function))


def choose(candidates: Sequence[Candidate], difficulty: str, rng: random.Random) -> Candidate:
    """A random candidate big enough to show at this difficulty; hard drills prefer small ones."""
    usable = [c for c in candidates if c.total_share >= MIN_SHARE[difficulty]]
    if not usable:
        raise UsageError(
            "no function of the project holds enough of any callable benchmark's time for a "
            f"{difficulty} drill", hint="add a callable benchmark that exercises the project's "
            "own code (perfloop run works on commands and HTTP too, but drills need a callable)")
    if difficulty == "hard":
        # the less obvious half: smaller shares, further down a profile
        usable = sorted(usable, key=lambda c: c.total_share)[: max(1, (len(usable) + 1) // 2)]
    return rng.choice(usable)


# --------------------------------------------------------------------------------------------
# the drill file and the environment of the processes it slows


def _state_path(root: str | Path) -> Path:
    return Path(root).resolve() / ".perfloop" / STATE_FILE


def active(root: str | Path) -> dict[str, Any] | None:
    """The running drill's file contents (with the secret target), or None."""
    path = _state_path(root)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"the drill file {path} cannot be read ({exc})",
                         hint=f"delete it to end the drill: rm {path}") from exc


def drill_env(root: str | Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that make a process start with the drill's slowdown (empty: no drill)."""
    if active(root) is None:
        return {}
    existing = (base or {}).get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    return {"PYTHONPATH": HOOK_DIR + (os.pathsep + existing if existing else ""),
            "PERFLOOP_DRILL": str(_state_path(root))}


def with_drill(config: ProjectConfig) -> ProjectConfig:
    """``config`` with the drill's slowdown in every benchmark's processes, when one runs."""
    if active(config.root) is None:
        return config
    specs = []
    for spec in config.benchmarks:
        spec = replace(spec, env={**spec.env, **drill_env(config.root, spec.env)})
        if spec.server is not None:
            server = spec.server
            spec = replace(spec, server=replace(server, env={**server.env,
                                                              **drill_env(config.root, server.env)}))
        specs.append(spec)
    return replace(config, benchmarks=tuple(specs))


def refuse_during_drill(root: str | Path, doing: str) -> None:
    """Raise when a drill runs: ``doing`` (a baseline, a gate) would measure its slowdown."""
    state = active(root)
    if state is not None:
        raise UsageError(f"drill #{state['id']} is running: {doing} would measure its injected "
                         "slowdown", hint=f"finish it first: {STOP_HINT}")


# --------------------------------------------------------------------------------------------
# the store: one journal row per drill (workflow "drill")


def _digest(target: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{target}".encode()).hexdigest()


def _drill(row: ChangeRecord) -> Drill:
    data = dict(row.data or {})
    finished = data.get("finished_at")
    return Drill(id=row.id, difficulty=str(data.get("difficulty", "easy")), status=row.status,
                 started_at=row.created_at,
                 finished_at=datetime.fromisoformat(finished) if finished else None,
                 benchmarks=tuple(data.get("benchmarks", ())),
                 slowdown=float(data.get("slowdown", 0.0)),
                 target=data.get("target") if row.status != "running" else None,
                 attempts=tuple(data.get("attempts", ())))


def _project(root: str | Path) -> str:
    return str(Path(root).resolve())


def history(store: Store, root: str | Path, *, limit: int = 50) -> list[Drill]:
    """The project's drills, newest first."""
    rows = store.changes(workflow=WORKFLOW)
    return [_drill(r) for r in rows if (r.data or {}).get("project") == _project(root)][:limit]


def _update(store: Store, drill_id: int, status: str, changes: Mapping[str, Any],
            actual: Mapping[str, Any] | None = None) -> Drill:
    row = store.change(drill_id)
    if row is None or row.workflow != WORKFLOW:
        raise UsageError(f"no drill #{drill_id} in this store",
                         hint="the drill file belongs to another store: use the same --store, "
                              f"or {STOP_HINT}")
    columns: dict[str, Any] = {"status": status}
    if actual is not None:
        columns["actual"] = dict(actual)
    store.update_change(drill_id, edit=lambda data: {**data, **changes}, **columns)
    updated = store.change(drill_id)
    assert updated is not None
    return _drill(updated)


# --------------------------------------------------------------------------------------------
# start, answer, stop


def start(store: Store, config: ProjectConfig, *, difficulty: str = "easy",
          seed: int | None = None, names: Sequence[str] = (), slowdown: float | None = None,
          profiler: Profiler = _cprofile_spots) -> Drill:
    """Inject a hidden slowdown into one function the benchmarks exercise.

    ``slowdown`` overrides the difficulty's relative slowdown of the chosen benchmark.
    """
    if difficulty not in DIFFICULTIES:
        raise UsageError(f"unknown difficulty {difficulty!r}", hint="use easy or hard")
    if slowdown is not None and not 0 < slowdown <= 10:
        raise UsageError(f"a slowdown of {slowdown!r} is not a relative change between 0 and 10",
                         hint="e.g. 0.4 for +40%")
    state = active(config.root)
    if state is not None:
        raise UsageError(f"drill #{state['id']} is already running", hint=STOP_HINT)
    rng = random.Random(seed if seed is not None else secrets.randbits(64))
    pick = choose(survey(config, names=names, profiler=profiler), difficulty, rng)
    slowdown = DIFFICULTIES[difficulty] if slowdown is None else float(slowdown)
    factor = slowdown / pick.total_share
    salt = secrets.token_hex(8)
    drill_id = store.add_change(
        title=f"drill ({difficulty}): find the injected slowdown", kind=None, workflow=WORKFLOW,
        status="running", expected={"benchmark": pick.benchmark, "metric": "cpu_time",
                                     "change": slowdown},
        data={"project": _project(config.root), "difficulty": difficulty,
              "benchmarks": [pick.benchmark], "slowdown": slowdown,
              "target_digest": _digest(pick.function, salt), "salt": salt, "attempts": []})
    stored = store.change(drill_id)
    assert stored is not None
    drill = _drill(stored)
    path = _state_path(config.root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"id": drill.id, "target": pick.function, "factor": factor,
                               "benchmark": pick.benchmark, "difficulty": difficulty,
                               "store": store.url}), encoding="utf-8")
    tmp.replace(path)
    return drill


def _same_function(answer: str, target: str) -> bool:
    """``module:qualname``, ``module.qualname`` or ``module:Class.method`` name the same thing."""
    def norm(text: str) -> str:
        return text.strip().replace(":", ".").strip(".")
    return norm(answer) == norm(target)


def _finish(root: str | Path) -> None:
    try:
        _state_path(root).unlink()
    except FileNotFoundError:
        pass


def answer(store: Store, root: str | Path, text: str, *, now: datetime | None = None) -> Answer:
    """Score an answer. A right one ends the drill (and removes the slowdown)."""
    state = active(root)
    if state is None:
        raise UsageError("no drill is running", hint="start one: perfloop drill start")
    if ":" not in text and "." not in text:
        raise UsageError(f"{text!r} does not name a function", hint="answer module:function, "
                         "for example shop.pricing:apply_discounts")
    now = now or datetime.now(timezone.utc)
    drill_id, target = int(state["id"]), str(state["target"])
    right = _same_function(text, target)
    current = next((d for d in history(store, root) if d.id == drill_id), None)
    attempts = [*(current.attempts if current else ()),
                {"answer": text, "right": right, "at": now.isoformat()}]
    changes: dict[str, Any] = {"attempts": attempts}
    status = "running"
    actual = None
    if right:
        status = "solved"
        changes.update(target=target, finished_at=now.isoformat())
        started = current.started_at if current else now
        seconds = (now - started).total_seconds()
        actual = {"solved": True, "attempts": len(attempts), "seconds": seconds,
                  "text": f"found {target} in {seconds:.0f} s, {len(attempts)} answer(s)"}
    drill = _update(store, drill_id, status, changes, actual)
    if right:
        _finish(root)
    return Answer(drill=drill, answer=text, right=right)


def stop(store: Store, root: str | Path, *, now: datetime | None = None) -> Drill:
    """End the running drill: remove the slowdown and reveal the answer."""
    state = active(root)
    if state is None:
        raise UsageError("no drill is running", hint="perfloop drill history shows past drills")
    now = now or datetime.now(timezone.utc)
    try:
        drill = _update(store, int(state["id"]), "stopped",
                        {"target": state["target"], "finished_at": now.isoformat()},
                        {"solved": False, "text": f"stopped unsolved: it was {state['target']}"})
    finally:
        _finish(root)   # whatever the store says, the slowdown goes
    return drill


__all__ = ["Answer", "Candidate", "DIFFICULTIES", "Drill", "active", "answer", "choose",
           "drill_env", "history", "refuse_during_drill", "start", "stop", "survey", "with_drill"]
