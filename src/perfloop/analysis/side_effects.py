"""Side effects of a change: what a verdict on one metric alone would not show.

Two kinds, read from the verdicts of one comparison (the gate's, or a verification's):

* **metric myopia**: one metric improved while another one regressed. Within one benchmark
  it is named as a trade ("time bought with memory"); across benchmarks, a faster one next to
  one that takes more memory is named as a latency-for-memory trade.
* **a hidden tail**: the median latency improved or held while a far-tail latency (p99 and
  beyond) got worse.

What counts as time, memory or tail comes from the metric table (:mod:`perfloop.metrics`).
"""

from __future__ import annotations

import math
from typing import Protocol, Sequence

from ..metrics import is_memory, is_tail, is_time, kind_of_metric

IMPROVED, REGRESSED, UNCHANGED = "improved", "regressed", "unchanged"
#: Items named per kind in a trade across benchmarks.
SHOWN = 3


class Moved(Protocol):
    """One metric's verdict as the side-effect rules read it (a gate's MetricOutcome, or a
    comparison's Verdict: its ``verdict`` is a str enum)."""

    @property
    def benchmark(self) -> str: ...
    @property
    def metric(self) -> str: ...
    @property
    def verdict(self) -> str: ...
    @property
    def change(self) -> float | None: ...
    @property
    def unit(self) -> str: ...


def side_effects(verdicts: Sequence[Moved], *, name_benchmarks: bool = False) -> list[str]:
    """Every side effect among ``verdicts``, one sentence each; ``name_benchmarks`` starts
    each sentence about one benchmark with its name (for verdicts of several benchmarks)."""
    out: list[str] = []
    for bench in dict.fromkeys(v.benchmark for v in verdicts):
        prefix = f"{bench}: " if name_benchmarks else ""
        mine = [v for v in verdicts if v.benchmark == bench]
        out += [prefix + line for line in (*_traded(mine), *_hidden_tail(mine))]
    out += _latency_for_memory(verdicts)
    return out


def _traded(verdicts: Sequence[Moved]) -> list[str]:
    improved = [v for v in verdicts if v.verdict == IMPROVED]
    regressed = [v for v in verdicts if v.verdict == REGRESSED]
    if not improved or not regressed:
        return []
    gains = ", ".join(f"{v.metric} {_pct(v.change)}" for v in improved)
    costs = ", ".join(f"{v.metric} {_pct(v.change)}" for v in regressed)
    bought = {kind_of_metric(v.metric, v.unit) for v in improved}
    paid = {kind_of_metric(v.metric, v.unit) for v in regressed}
    trade = (f" ({'/'.join(sorted(bought))} bought with {'/'.join(sorted(paid))})"
             if bought.isdisjoint(paid) else "")
    return [f"improved {gains} but regressed {costs}{trade}: judge the trade, not the "
            "improvement alone"]


def _hidden_tail(verdicts: Sequence[Moved]) -> list[str]:
    by_name = {v.metric: v for v in verdicts}
    median = by_name.get("latency_p50")
    tails = [v for v in verdicts if is_tail(v.metric) and v.verdict == REGRESSED]
    if median is None or median.verdict not in (IMPROVED, UNCHANGED) or not tails:
        return []
    how = "got better" if median.verdict == IMPROVED else "held"
    return [f"the median {how} ({_pct(median.change)}) but the tail got worse: "
            + ", ".join(f"{t.metric} {_pct(t.change)}" for t in tails)]


def _latency_for_memory(verdicts: Sequence[Moved]) -> list[str]:
    """A faster benchmark next to another that takes more memory (one benchmark trading the
    two is named by :func:`_traded`)."""
    faster = [v for v in verdicts if v.verdict == IMPROVED and is_time(v.metric, v.unit)]
    heavier = [v for v in verdicts if v.verdict == REGRESSED and is_memory(v.metric, v.unit)]
    if not faster or not heavier or len({v.benchmark for v in (*faster, *heavier)}) < 2:
        return []
    fast = ", ".join(f"{v.metric} {_pct(v.change)} ({v.benchmark})" for v in faster[:SHOWN])
    mem = ", ".join(f"{v.metric} {_pct(v.change)} ({v.benchmark})" for v in heavier[:SHOWN])
    return [f"trades latency for memory: faster ({fast}) but more memory ({mem}); check that "
            "memory stays bounded under real traffic before shipping"]


def _pct(change: float | None) -> str:
    if change is None or not math.isfinite(change):
        return "-"
    return f"{change * 100:+.1f}%"


__all__ = ["Moved", "side_effects"]
