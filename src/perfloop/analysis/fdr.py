"""False discovery rate control across a suite: the Benjamini-Hochberg procedure.

A gate that tests 200 benchmark-metric pairs at a 1% error rate each calls about two of them
"regressed" on pure noise in every pull request; after a few such false alarms people stop
reading the gate. Benjamini and Hochberg (1995) bound the *expected share of false alarms among
the alarms raised* at ``q`` instead, which costs little power when there are real effects:

1. sort the ``m`` p-values, ``p(1) <= ... <= p(m)``;
2. find the largest ``k`` with ``p(k) <= k * q / m``;
3. reject (call significant) the ``k`` smallest.

The bound holds for independent tests and for positively dependent ones (PRDS), which covers
benchmarks measured one after another on one machine, where a slow period slows them all alike.

The adjusted p-values (sometimes called BH q-values) are the smallest ``q`` at which each test
would be rejected; a pair is significant at ``q`` exactly when its adjusted p-value is ``<= q``.
"""

from __future__ import annotations

import math
from typing import Sequence

#: The false discovery rate the gate allows by default: at most 5% of its alarms, on average,
#: are noise.
DEFAULT_Q = 0.05


def _check(p_values: Sequence[float], q: float | None = None) -> None:
    if q is not None and not 0.0 < q < 1.0:
        raise ValueError(f"q must be between 0 and 1, got {q}")
    for p in p_values:
        if not isinstance(p, (int, float)) or math.isnan(p) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p-values must be numbers between 0 and 1, got {p!r}")


def bh_adjust(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values, in the order given.

    ``adjusted[i] = min over j with p(j) >= p(i) of min(1, p(j) * m / rank(j))``: the step-up
    cumulative minimum taken from the largest p-value down.
    """
    _check(p_values)
    m = len(p_values)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(running, 1.0)
    return adjusted


def bh_reject(p_values: Sequence[float], q: float = DEFAULT_Q) -> list[bool]:
    """Which hypotheses Benjamini-Hochberg rejects at false discovery rate ``q``, in order given."""
    _check(p_values, q)
    return [a <= q for a in bh_adjust(p_values)]


def bh_threshold(p_values: Sequence[float], q: float = DEFAULT_Q) -> float:
    """The largest p-value that is still significant at ``q`` (0.0 when none is)."""
    _check(p_values, q)
    m = len(p_values)
    best = 0.0
    for k, p in enumerate(sorted(p_values), start=1):
        if p <= k * q / m:
            best = p
    return best


__all__ = ["DEFAULT_Q", "bh_adjust", "bh_reject", "bh_threshold"]
