"""Human formatting of metric values by unit: seconds, bytes, counts, rates, ratios."""

from __future__ import annotations

import math

_TIME_STEPS = ((1e-9, "ns"), (1e-6, "µs"), (1e-3, "ms"), (1.0, "s"))
_BYTE_STEPS = ((1, "B"), (1024, "KiB"), (1024**2, "MiB"), (1024**3, "GiB"))


def format_value(value: float | None, unit: str) -> str:
    """``0.00123, "s"`` -> ``"1.23 ms"``; ``3.2e6, "B"`` -> ``"3.05 MiB"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "s":
        steps = _TIME_STEPS
    elif unit == "B":
        steps = _BYTE_STEPS
    elif unit == "ratio":
        return f"{value * 100:.2f}%"
    elif unit == "count":
        for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"{value / scale:.3f}{suffix}"
        return f"{value:.0f}"
    else:
        return f"{value:.4g} {unit}".rstrip()
    if value == 0:
        return f"0 {steps[0][1]}"
    k = 0
    for i, (scale, _) in enumerate(steps):
        if abs(value) >= scale:
            k = i
    text = f"{value / steps[k][0]:.3g}"
    if abs(float(text)) >= 1000 and k + 1 < len(steps):
        # 0.99996 s rounds to 1000 ms, printed "1e+03 ms": say "1 s"
        k += 1
        text = f"{value / steps[k][0]:.3g}"
    return f"{text} {steps[k][1]}"


def format_change(change: float) -> str:
    """A relative change as a signed percentage: ``0.1034`` -> ``"+10.3%"``."""
    if change is None or math.isnan(change):
        return "-"
    return f"{change * 100:+.1f}%"
