"""perfloop: a performance-tuning workbench for Python teams.

The library is the product; the ``perfloop`` command is a thin user of it. The names below are
the public API. They load on first use, so that a measuring worker process, which imports this
package, pays nothing for the store, the statistics or the CLI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:   # what type checkers and editors see; at run time each name loads on first use
    from .analysis.changepoints import ChangePoint, detect_change_points
    from .analysis.compare import Verdict, VerdictKind, compare_groups, compare_results
    from .analysis.comparison import Comparison, compare_runs
    from .config import BenchmarkSpec, ProjectConfig, Settings, load_config
    from .errors import ConfigError, GateFailed, PerfloopError, StoreError, TargetError, UsageError
    from .measure.runner import run_benchmarks
    from .metrics import Metric
    from .records import BenchmarkResult, Sample
    from .store import Store, resolve_store_url
    from .workflows.gate import GateOptions, run_gate
    from .workflows.run import run_project

_EXPORTS: dict[str, str] = {
    # configuration and records
    "load_config": "perfloop.config",
    "ProjectConfig": "perfloop.config",
    "BenchmarkSpec": "perfloop.config",
    "Settings": "perfloop.config",
    "Sample": "perfloop.records",
    "BenchmarkResult": "perfloop.records",
    "Metric": "perfloop.metrics",
    # store
    "Store": "perfloop.store",
    "resolve_store_url": "perfloop.store",
    # measuring
    "run_project": "perfloop.workflows.run",
    "run_benchmarks": "perfloop.measure.runner",
    # verdicts and history
    "compare_groups": "perfloop.analysis.compare",
    "compare_results": "perfloop.analysis.compare",
    "Verdict": "perfloop.analysis.compare",
    "VerdictKind": "perfloop.analysis.compare",
    "compare_runs": "perfloop.analysis.comparison",
    "Comparison": "perfloop.analysis.comparison",
    "detect_change_points": "perfloop.analysis.changepoints",
    "ChangePoint": "perfloop.analysis.changepoints",
    # workflows
    "run_gate": "perfloop.workflows.gate",
    "GateOptions": "perfloop.workflows.gate",
    # errors
    "PerfloopError": "perfloop.errors",
    "UsageError": "perfloop.errors",
    "ConfigError": "perfloop.errors",
    "StoreError": "perfloop.errors",
    "TargetError": "perfloop.errors",
    "GateFailed": "perfloop.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'perfloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
