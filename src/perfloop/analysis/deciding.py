"""Which time metric decides a benchmark: CPU time for code that computes, wall time for code that waits.

On a shared machine most of the noise in wall time is time a process spends waiting for a core;
process CPU time does not count it. Measured on a busy 2-core machine, the ratio of two A B B A
blocks spread 0.5-2.2% (cv) in CPU time and 19-35% in wall time. For code that only computes,
the two measure the same work, so CPU time decides and wall time is shown as context. Code that
waits (I/O, locks, sleep, subprocesses) spends time that CPU time does not see: wall time must
decide, or a change that adds waiting would pass unseen. Where the worker timed the host's
reference workload beside each value, ``cpu_norm`` (CPU time in units of that workload) stands
in for CPU time: a change of the host's own speed moves both and cancels out of it.

The classification reads the data, per side. Noise only ever *lowers* the ratio CPU time /
wall time of a single-threaded value (waiting for a core adds wall time, never CPU time), so the
least disturbed values, those with the highest ratio, show the code's own share of computing.
A side is CPU-bound when that share is between :data:`CPU_BOUND_SHARE` and
:data:`PARALLEL_SHARE` (above it, several threads or processes run at once, and a change in how
parallel they are shows only in wall time). CPU time decides when both sides are CPU-bound and
head's share has not dropped by more than half the tolerance (new waiting in head: wall time
decides, so that the change is judged where it shows). ``instructions``, when measured, decides
in place of CPU time. ``decide_on`` forces a metric.

A safety net for what the shares cannot see: when CPU time (or instructions) decides and wall
time is nonetheless *regressed* where the deciding metric is not, wall time decides too (the
code waits more). Wall time that is merely undecided stays context.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Iterable

from ..metrics import DECIDING_TIME_METRICS, RUNQUEUE_TIME
from ..records import BenchmarkResult

#: Least-disturbed CPU/wall share from which a side counts as CPU-bound.
CPU_BOUND_SHARE = 0.9
#: Above this share the code runs on several cores at once: wall time decides.
PARALLEL_SHARE = 1.1
#: The time metrics one of which decides, steadiest first; the others are context.
TIME_METRICS = DECIDING_TIME_METRICS
AUTO = "auto"
#: Values of ``decide_on``.
DECIDE_ON = (AUTO, *TIME_METRICS)


@dataclass(frozen=True)
class Choice:
    """The deciding time metric of one benchmark comparison, and why."""

    metric: str | None                 # None: no time metric was compared
    reason: str
    base_share: float | None = None    # least-disturbed CPU time / wall time per side
    head_share: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {"metric": self.metric, "reason": self.reason, "base_share": self.base_share,
                "head_share": self.head_share}


def cpu_share(result: BenchmarkResult) -> float | None:
    """CPU time over wall time of ``result``'s values, as the code itself spends it (None
    without both metrics).

    Values are paired by worker and index. Waiting for a core only ever lowers the ratio of a
    value, so the highest plain ratio is the least disturbed one; above :data:`PARALLEL_SHARE`
    the code runs on several cores at once (noise cannot raise a ratio there). Measured with 8
    values of a busy loop at a load average of 19 on 2 cores, 6 values read 0.11-0.20 and 2 read
    1.00; a sleeping function read at most 0.05, a function waiting on a lock at most 0.10.

    Where the worker measured the time each value waited for a core (``runqueue_time``,
    Linux), that time is taken out of its wall time, and the **median** of those ratios (at
    most 1) is the code's own share however busy the machine: the kernel's count is read just
    outside the timed span, so a preemption at its edge is counted as waiting that the wall
    time never saw, and the ratio of a short value then reads 5 or 17 (seen at a load of 12);
    the largest of those ratios would call single-threaded code parallel, and wall time, the
    noisiest metric there is, would decide.
    """
    wall: dict[tuple[int, int], float] = {}
    cpu: dict[tuple[int, int], float] = {}
    queued: dict[tuple[int, int], float] = {}
    for s in result.samples:
        if s.warmup:
            continue
        if s.metric == "wall_time":
            wall[(s.worker, s.index)] = s.value
        elif s.metric == "cpu_time":
            cpu[(s.worker, s.index)] = s.value
        elif s.metric == RUNQUEUE_TIME:
            queued[(s.worker, s.index)] = s.value
    plain = [cpu[k] / w for k, w in wall.items() if k in cpu and w > 0.0]
    if not plain:
        return None
    least_disturbed = max(plain)
    if least_disturbed > PARALLEL_SHARE or not queued:
        return least_disturbed
    # the time waiting for a core, where the kernel reported it, is nobody's waiting
    own = [cpu[k] / (w - queued[k]) for k, w in wall.items()
           if k in cpu and k in queued and w - queued[k] > 0.0]
    if not own:
        return least_disturbed
    return max(least_disturbed, min(statistics.median(own), 1.0))


def _bound(share: float | None) -> bool:
    return share is not None and CPU_BOUND_SHARE <= share <= PARALLEL_SHARE


def choose(base: BenchmarkResult, head: BenchmarkResult, metrics: Iterable[str], *,
           tolerance: float, decide_on: str | None = None) -> Choice:
    """The time metric that decides, among ``metrics`` (those compared on both sides)."""
    have = [m for m in TIME_METRICS if m in set(metrics)]
    if not have:
        return Choice(None, "no time metric measured")
    bs, hs = cpu_share(base), cpu_share(head)
    if decide_on and decide_on != AUTO:
        if decide_on in have:
            return Choice(decide_on, "forced by decide_on in the configuration", bs, hs)
        # Forced to a metric that was not measured: fall through to the automatic choice.
    steady = next((m for m in TIME_METRICS if m != "wall_time" and m in have), None)
    if "wall_time" not in have:
        return Choice(steady, "the only time metric measured", bs, hs)
    if steady is None:
        return Choice("wall_time", "the only time metric measured", bs, hs)
    if bs is None or hs is None:
        return Choice("wall_time", "CPU time and wall time are not measured together", bs, hs)
    shares = (f"CPU/wall {bs:.2f}" if bs == hs else f"CPU/wall {bs:.2f} at base, {hs:.2f} at head")
    if _bound(bs) and _bound(hs):
        if hs < bs * (1.0 - tolerance / 2.0):
            return Choice("wall_time", f"head waits more than base ({shares}): new waiting "
                                       "counts", bs, hs)
        return Choice(steady, f"CPU-bound ({shares}); wall time is context",
                      bs, hs)
    if max(bs, hs) > PARALLEL_SHARE:
        return Choice("wall_time", f"runs on several cores at once ({shares})", bs, hs)
    return Choice("wall_time", f"waits: I/O, locks, sleep or subprocesses ({shares})", bs, hs)


__all__ = ["AUTO", "CPU_BOUND_SHARE", "Choice", "DECIDE_ON", "PARALLEL_SHARE", "TIME_METRICS",
           "choose", "cpu_share"]
