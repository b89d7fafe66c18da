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

#: ... and only once this share of ``max_seconds`` is spent: on a machine whose load moves, a
#: plan made from the first dozen or two blocks is too pessimistic at times (under a load of 4
#: to 8, two 5% slowdowns in ten stopped as hopeless after 38 s and 67 s of a 300 s limit), so
#: stopping early saves at most this share of the limit the user set.
HOPELESS_AFTER_SHARE = 0.5


@dataclass(frozen=True)
class SamplingPolicy:
    """How much to measure: the first look, and the cost limit of adaptive sampling."""

    blocks: int = 4                # ABBA blocks before the first verdict (8 workers per side)
    # Cost limit in blocks (192 workers per side); ``max_seconds`` is the limit that binds on
    # all but the fastest benchmarks. Under a load of 5 on 2 cores a 1 ms benchmark takes about
    # 2.5 s a block: 48 blocks stopped two 5% slowdowns in five after 105 s and 124 s.
    max_blocks: int = 96
    max_seconds: float = 300.0     # cost limit in seconds per benchmark
    step: int = 2                  # blocks added per round when the comparison gives no estimate
    patience: int = 12             # blocks measured before a plan may stop the sampling as hopeless
    hopeless_after: float = HOPELESS_AFTER_SHARE   # share of max_seconds spent before that, too
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
        if not 0.0 <= self.hopeless_after <= 1.0:
            raise ValueError(f"hopeless_after must be a share between 0 and 1, not {self.hopeless_after}")
