"""The risk score of a tuning change: 0-100, from what the change touches, factor by factor.

Seven factors, each with a ceiling; the score is their sum, so every point is explained:

========================  =======  ==========================================================
factor                    ceiling  what earns points
========================  =======  ==========================================================
kind                      25       the kind of change (config 3 ... concurrency 25);
                                   *optimization* kinds redesign, *tuning* kinds adjust
size                      10       lines added and deleted, and the size of the files touched
diffusion                 5        subsystems, directories and the entropy of the change
                                   across files (Kamei et al. 2013: diffuse changes are riskier)
blast radius              15       the share of the project's modules that import the touched
                                   code, directly or transitively
fault boundaries          10       declared boundaries that the change crosses
reversibility             10       a flag or config value reverts in seconds (0); code (4);
                                   a schema migration, data format or lock file does not (10)
history                   10       recent churn of the touched files, and past regressions or
                                   rollbacks recorded against them
coverage                  15       the share of the touched Python files no benchmark exercises
========================  =======  ==========================================================

Classes: ``low`` below 25, ``high`` from 50, ``medium`` between (configurable). The weights
and the kinds' base risks can be changed in ``[risk]`` of the configuration; ``docs/risk-budget.md``
says where the numbers come from and how calibration across cycles tells which to change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

#: Base risk of each kind of change, and whether it tunes (adjusts parameters inside the
#: existing design) or optimizes (redesigns a component).
KINDS: Mapping[str, tuple[float, str]] = {   # every one of perfloop.records.CHANGE_KINDS
    "config": (3.0, "tuning"),
    "index": (8.0, "tuning"),
    "cache": (8.0, "tuning"),
    "code path": (12.0, "optimization"),
    "dependency": (15.0, "optimization"),
    "infrastructure": (18.0, "optimization"),
    "algorithm": (20.0, "optimization"),
    "concurrency": (25.0, "optimization"),
}
KIND_ALIASES = {"code-path": "code path", "codepath": "code path", "code": "code path",
                "infra": "infrastructure", "deps": "dependency", "db-index": "index"}

CEILINGS: Mapping[str, float] = {"kind": 25.0, "size": 10.0, "diffusion": 5.0,
                                 "blast radius": 15.0, "fault boundaries": 10.0,
                                 "reversibility": 10.0, "history": 10.0, "coverage": 15.0}
REVERSIBILITY = {"config": 0.0, "code": 4.0, "irreversible": 10.0}


def normalize_kind(kind: str) -> str:
    k = kind.strip().lower().replace("_", " ")
    return KIND_ALIASES.get(k, KIND_ALIASES.get(k.replace(" ", "-"), k))


@dataclass(frozen=True)
class RiskPolicy:
    """The configurable part: base risks, ceilings and class thresholds."""

    kinds: Mapping[str, tuple[float, str]] = field(default_factory=lambda: dict(KINDS))
    ceilings: Mapping[str, float] = field(default_factory=lambda: dict(CEILINGS))
    low_below: float = 25.0
    high_from: float = 50.0

    def level(self, score: float) -> str:
        if score >= self.high_from:
            return "high"
        return "low" if score < self.low_below else "medium"

    def with_overrides(self, raw: Mapping[str, Any]) -> RiskPolicy:
        """This policy with ``[risk]`` settings applied (validated by the caller)."""
        kinds = dict(self.kinds)
        for name, base in (raw.get("kinds") or {}).items():
            kinds[normalize_kind(name)] = (float(base), kinds.get(normalize_kind(name), (0, "tuning"))[1])
        ceilings = {**self.ceilings, **{k: float(v) for k, v in (raw.get("weights") or {}).items()}}
        return replace(self, kinds=kinds, ceilings=ceilings,
                       low_below=float(raw.get("low_below", self.low_below)),
                       high_from=float(raw.get("high_from", self.high_from)))


@dataclass(frozen=True)
class RiskInputs:
    """What a change touches, as measured (see :mod:`perfloop.measure.diff` and the workflow)."""

    kind: str | None
    lines_changed: int = 0
    lines_before: int = 0
    files: int = 0
    directories: int = 0
    subsystems: int = 0
    entropy: float = 0.0
    blast_share: float = 0.0           # share of modules importing the touched code
    boundaries_touched: tuple[str, ...] = ()
    reversibility: str = "code"        # config | code | irreversible
    recent_commits: int = 0            # commits on the touched files in the churn window
    past_incidents: int = 0            # regressions and rollbacks recorded against them
    python_files: int = 0
    uncovered_python_files: int | None = None   # None: coverage not measured


@dataclass(frozen=True)
class Factor:
    name: str
    points: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "points": round(self.points, 2), "detail": self.detail}


@dataclass(frozen=True)
class RiskScore:
    score: float
    level: str
    kind: str | None
    klass: str | None                  # tuning | optimization
    factors: tuple[Factor, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"score": round(self.score, 2), "level": self.level, "kind": self.kind,
                "class": self.klass, "factors": [f.to_dict() for f in self.factors]}


def _saturate(x: float, at: float) -> float:
    """0 at 0, 1 at ``at`` and beyond, logarithmic in between (size effects are)."""
    if x <= 0:
        return 0.0
    return min(1.0, math.log1p(x) / math.log1p(at))


def score(inputs: RiskInputs, policy: RiskPolicy = RiskPolicy()) -> RiskScore:
    """The score of one change, with each factor's contribution (they add up to it)."""
    c = policy.ceilings
    factors: list[Factor] = []
    kind = normalize_kind(inputs.kind) if inputs.kind else None
    klass = None
    if kind is None:
        factors.append(Factor("kind", c["kind"] * 0.5, "kind not given: half the ceiling"))
    else:
        if kind not in policy.kinds:
            raise ValueError(f"unknown kind {inputs.kind!r}")
        base, klass = policy.kinds[kind]
        factors.append(Factor("kind", min(base, c["kind"]), f"{kind} ({klass})"))
    size = 0.7 * _saturate(inputs.lines_changed, 500) + 0.3 * _saturate(inputs.lines_before, 5000)
    factors.append(Factor("size", c["size"] * size,
                          f"{inputs.lines_changed} lines changed in files of "
                          f"{inputs.lines_before} lines"))
    spread = (0.4 * min(1.0, max(0, inputs.subsystems - 1) / 3)
              + 0.3 * min(1.0, max(0, inputs.directories - 1) / 5) + 0.3 * inputs.entropy)
    factors.append(Factor("diffusion", c["diffusion"] * spread,
                          f"{inputs.files} files, {inputs.directories} directories, "
                          f"{inputs.subsystems} subsystems, entropy {inputs.entropy:.2f}"))
    factors.append(Factor("blast radius", c["blast radius"] * min(1.0, max(0.0, inputs.blast_share)),
                          f"{inputs.blast_share:.0%} of the project's modules import the touched "
                          "code"))
    crossed = max(0, len(inputs.boundaries_touched) - 1)
    factors.append(Factor("fault boundaries",
                          0.0 if not crossed else c["fault boundaries"] * min(1.0, 0.6 + 0.2 * (crossed - 1)),
                          (f"crosses {', '.join(inputs.boundaries_touched)}" if crossed else
                           f"within {inputs.boundaries_touched[0]}" if inputs.boundaries_touched
                           else "no declared boundary touched")))
    rev = REVERSIBILITY[inputs.reversibility] / REVERSIBILITY["irreversible"]
    factors.append(Factor("reversibility", c["reversibility"] * rev, {
        "config": "a config or flag value: reverts in seconds",
        "code": "code: reverts with a deploy",
        "irreversible": "a schema migration, data format or lock file: does not simply revert",
    }[inputs.reversibility]))
    history = 0.5 * min(1.0, inputs.recent_commits / 20) + 0.5 * min(1.0, inputs.past_incidents / 2)
    factors.append(Factor("history", c["history"] * history,
                          f"{inputs.recent_commits} recent commits on these files, "
                          f"{inputs.past_incidents} past regressions or rollbacks"))
    if inputs.uncovered_python_files is None or inputs.python_files == 0:
        factors.append(Factor("coverage", 0.0, "no Python file touched" if inputs.python_files == 0
                              else "coverage not measured (--no-coverage)"))
    else:
        share = inputs.uncovered_python_files / inputs.python_files
        factors.append(Factor("coverage", c["coverage"] * share,
                              f"{inputs.uncovered_python_files} of {inputs.python_files} touched "
                              "Python files exercised by no benchmark"))
    total = sum(f.points for f in factors)
    return RiskScore(total, policy.level(total), kind, klass, tuple(factors))


__all__ = ["CEILINGS", "Factor", "KINDS", "RiskInputs", "RiskPolicy", "RiskScore", "normalize_kind",
           "score"]
