"""What the gate compares and how strictly: :class:`GateOptions`, built once from the command
line (:meth:`GateOptions.build`) or by a caller of :func:`~perfloop.workflows.gate.run_gate`.

Every default lives here (the sampling defaults in
:class:`~perfloop.workflows.sampling_policy.SamplingPolicy`); the ``gate`` command's option
defaults read them. The module is light: the command's ``--help`` imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ...analysis.fdr import DEFAULT_Q
from ...errors import UsageError
from ..sampling_policy import SamplingPolicy

# What happens to an inconclusive verdict.
PASS, WARN, FAIL = "pass", "warn", "fail"
INCONCLUSIVE_POLICIES = (PASS, WARN, FAIL)
#: Default: pass, and say so everywhere. On shared CI machines wall time often cannot resolve a
#: 5% change at any affordable cost; failing on "cannot tell" would block changes on noise and
#: teach people to re-run or ignore the gate, and passing silently would hide that the gate
#: could not see. A warning keeps the gate trusted and the gap visible.
DEFAULT_ON_INCONCLUSIVE = WARN

#: Sampling of the first look and its cost limit.
DEFAULT_SAMPLING = SamplingPolicy()
#: Blocks measured afresh to confirm a regression.
DEFAULT_CONFIRM_BLOCKS = 8
#: Confidence level of the intervals.
DEFAULT_CONFIDENCE = 0.99
#: Hours a stored base run may be old and still stand in for the base.
DEFAULT_MAX_BASE_AGE_HOURS = 24.0


@dataclass(frozen=True)
class GateOptions:
    """What to compare and how strictly. ``head=None`` is the working tree (dirty changes included)."""

    base: str
    head: str | None = None
    benchmarks: tuple[str, ...] = ()
    sampling: SamplingPolicy = field(default_factory=SamplingPolicy)
    confirm_blocks: int = DEFAULT_CONFIRM_BLOCKS
    q: float = DEFAULT_Q
    confidence: float = DEFAULT_CONFIDENCE
    tolerance: float | None = None               # None: each benchmark's own
    on_inconclusive: str = DEFAULT_ON_INCONCLUSIVE
    reuse_base: bool = False
    max_base_age: float = DEFAULT_MAX_BASE_AGE_HOURS * 3600.0   # seconds
    overrides: Mapping[str, Any] = field(default_factory=dict)   # values, warmup, min_time, timeout

    def __post_init__(self) -> None:
        if self.on_inconclusive not in INCONCLUSIVE_POLICIES:
            raise UsageError(f"on_inconclusive must be one of {', '.join(INCONCLUSIVE_POLICIES)}, "
                             f"got {self.on_inconclusive!r}")
        if not 0 < self.q < 1:
            raise UsageError(f"q (false discovery rate) must be between 0 and 1, got {self.q}",
                             hint="e.g. --fdr 0.05")
        if not 0.5 < self.confidence < 1:
            raise UsageError(f"confidence must be between 0.5 and 1, got {self.confidence}")
        if self.tolerance is not None and not 0 < self.tolerance < 1:
            raise UsageError(f"tolerance must be a fraction between 0 and 1, got {self.tolerance}",
                             hint="e.g. 0.05 for 5%")
        if self.confirm_blocks < 1:
            raise UsageError("confirm_blocks must be at least 1")

    @classmethod
    def build(cls, base: str, *, head: str | None = None, benchmarks: tuple[str, ...] = (),
              blocks: int = DEFAULT_SAMPLING.blocks, max_blocks: int = DEFAULT_SAMPLING.max_blocks,
              max_seconds: float = DEFAULT_SAMPLING.max_seconds,
              confirm_blocks: int = DEFAULT_CONFIRM_BLOCKS, q: float = DEFAULT_Q,
              confidence: float = DEFAULT_CONFIDENCE, tolerance: float | None = None,
              on_inconclusive: str = DEFAULT_ON_INCONCLUSIVE, reuse_base: bool = False,
              max_base_age_hours: float = DEFAULT_MAX_BASE_AGE_HOURS,
              overrides: Mapping[str, Any] | None = None) -> GateOptions:
        """The options from flat values, as a command line gives them: a cost limit below the
        first look is raised to it, the base age is in hours; an override of None leaves the
        benchmark's own setting. Raises UsageError for a value out of range."""
        try:
            sampling = SamplingPolicy(blocks=blocks, max_blocks=max(max_blocks, blocks),
                                      max_seconds=max_seconds)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        return cls(base=base, head=head, benchmarks=tuple(benchmarks), sampling=sampling,
                   confirm_blocks=confirm_blocks, q=q, confidence=confidence, tolerance=tolerance,
                   on_inconclusive=on_inconclusive, reuse_base=reuse_base,
                   max_base_age=max_base_age_hours * 3600.0, overrides=dict(overrides or {}))

    def to_dict(self) -> dict[str, Any]:
        s = self.sampling
        return {"base": self.base, "head": self.head or "working tree",
                "benchmarks": list(self.benchmarks), "blocks": s.blocks, "max_blocks": s.max_blocks,
                "max_seconds": s.max_seconds, "confirm_blocks": self.confirm_blocks, "fdr_q": self.q,
                "confidence": self.confidence, "tolerance": self.tolerance,
                "on_inconclusive": self.on_inconclusive, "reuse_base": self.reuse_base,
                "max_base_age": self.max_base_age, "overrides": dict(self.overrides)}


__all__ = ["DEFAULT_CONFIDENCE", "DEFAULT_CONFIRM_BLOCKS", "DEFAULT_MAX_BASE_AGE_HOURS",
           "DEFAULT_ON_INCONCLUSIVE", "DEFAULT_Q", "DEFAULT_SAMPLING", "FAIL", "GateOptions",
           "INCONCLUSIVE_POLICIES", "PASS", "WARN"]
