"""What a target's measurement ends with when it stops early, and the words it uses.

Shared by every target kind (:mod:`.callable`, :mod:`.command`, :mod:`.instructions`): a
failed or timed-out :class:`~perfloop.records.BenchmarkResult` keeping the samples measured
before, the timeout message naming the setting to raise, and the benchmark's working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from ..config import BenchmarkSpec, DeclaredMetrics
from ..records import BenchmarkResult, ResultStatus, Sample


def resolve_dir(spec: BenchmarkSpec, path: str | None) -> str:
    """``path`` relative to the project root (the root itself when ``path`` is None)."""
    root = Path(spec.root)
    return str(root / path) if path else str(root)


def declared_metrics(spec: BenchmarkSpec) -> DeclaredMetrics:
    """The units and directions of the benchmark's custom metrics, as a result records them."""
    return {"units": {m: unit for m, (unit, _) in spec.custom_metrics.items()},
            "directions": {m: direction for m, (_, direction) in spec.custom_metrics.items()}}


def failed_result(spec: BenchmarkSpec, status: ResultStatus, error: str, samples: Sequence[Sample],
                  *, stderr_tail: str | None = None, duration: float = 0.0,
                  extra: Mapping[str, object] | None = None) -> BenchmarkResult:
    """A failed or timed-out result that keeps the samples measured before the failure."""
    return BenchmarkResult(name=spec.name, kind=spec.kind, status=status, samples=tuple(samples),
                           params=spec.params, error=error, stderr_tail=stderr_tail or None,
                           duration=duration, extra=extra or {}, **declared_metrics(spec))


def ok_result(spec: BenchmarkSpec, samples: Sequence[Sample], *, duration: float,
              extra: Mapping[str, object]) -> BenchmarkResult:
    """The result of a measurement that went to its end."""
    return BenchmarkResult(name=spec.name, kind=spec.kind, status=ResultStatus.OK, samples=tuple(samples),
                           params=spec.params, duration=duration, extra=extra, **declared_metrics(spec))


def timeout_message(spec: BenchmarkSpec, done: str) -> str:
    return (f"killed at the benchmark's timeout ({spec.settings.timeout:g} s) after {done}; "
            f"raise timeout for {spec.base_name!r} in perfloop.toml, or lower processes/values")


def missing_cwd(spec: BenchmarkSpec, cwd: str) -> str | None:
    """The error for a working directory that does not exist; None when it does."""
    if Path(cwd).is_dir():
        return None
    return (f"cwd {cwd} is not a directory; fix cwd for {spec.base_name!r} in perfloop.toml "
            "(it is relative to the project)")
