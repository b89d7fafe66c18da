"""Measurement: targets, the worker protocol, the runner, quality warnings.

The public names are imported lazily (PEP 562): every callable worker imports this package on
its way to :mod:`perfloop.measure.worker`, and whatever the package imports at start-up would
sit in every worker's memory and start-up time, and so in the target's peak RSS.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "measure_callable": ".callable",
    "measure_command": ".command",
    "quality_warnings": ".quality",
    "run_benchmarks": ".runner",
    "measure_spec": ".runner",
    "ResultSink": ".runner",
    "RunInterrupted": ".runner",
    "RunSummary": ".runner",
    "Progress": ".progress",
    "NullProgress": ".progress",
    "estimate_seconds": ".progress",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .callable import measure_callable
    from .command import measure_command
    from .progress import NullProgress, Progress, estimate_seconds
    from .quality import quality_warnings
    from .runner import ResultSink, RunInterrupted, RunSummary, measure_spec, run_benchmarks


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
