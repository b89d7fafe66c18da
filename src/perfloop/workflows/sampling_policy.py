"""How much the interleaved measurement samples: :class:`SamplingPolicy`.

A module of its own, with nothing heavy to import, so that the ``gate`` command's ``--help``
can show the defaults without loading the measurement (:mod:`perfloop.workflows.interleave`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Sampling stops as hopeless only when every undecided verdict plans this many times the blocks
#: left: plans made from a dozen blocks are rough (an estimate that happens to sit near half
#: the tolerance asks for hundreds), and stopping on them loses most changes near the tolerance.
HOPELESS_FACTOR = 8


@dataclass(frozen=True)
class SamplingPolicy:
    """How much to measure: the first look, and the cost limit of adaptive sampling."""

    blocks: int = 4                # ABBA blocks before the first verdict (8 workers per side)
    max_blocks: int = 48           # cost limit in blocks (96 workers per side)
    max_seconds: float = 300.0     # cost limit in seconds per benchmark
    step: int = 2                  # blocks added per round when the comparison gives no estimate
    patience: int = 12             # blocks measured before a plan may stop the sampling as hopeless
    change_blocks: int = 8         # blocks a change (regressed, improved) must rest on

    def __post_init__(self) -> None:
        if self.blocks < 1 or self.step < 1:
            raise ValueError("blocks and step must be at least 1")
        if self.patience < 0 or self.change_blocks < 1:
            raise ValueError("patience must be at least 0 and change_blocks at least 1")
        if self.max_blocks < self.blocks:
            raise ValueError(f"max_blocks ({self.max_blocks}) must be at least blocks ({self.blocks})")
        if self.max_seconds <= 0:
            raise ValueError("max_seconds must be positive")
