"""Benchmark suites a team already has (pytest-benchmark, asv), measured by perfloop's workers.

- :mod:`.expand`: collection in a subprocess, one :class:`~perfloop.config.BenchmarkSpec` per
  benchmark found (:func:`with_suites`);
- :mod:`.collect`: the collecting subprocess (``python -m perfloop.measure.suites.collect``);
- :mod:`.timing`: the value loop a suite worker shares with perfloop's callable worker;
- :mod:`.pytest_side`, :mod:`.asv_side`: what runs inside a worker for each tool.

Nothing is imported here: every worker of a suite imports this package on its way to its
tool's module, and whatever sits here would be in every worker's memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .expand import with_suites


def __getattr__(name: str) -> Any:
    if name == "with_suites":
        from .expand import with_suites
        return with_suites
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["with_suites"]
