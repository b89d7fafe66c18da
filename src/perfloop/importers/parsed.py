"""What the importers of every format share: the parsed run, the error of a bad file, and the
readers of the facts a results file holds. The formats' modules import it, and so does the
package; it imports neither."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import UsageError
from ..records import BenchmarkResult

IMPORTED_KIND = "imported"


class InvalidResultsFile(UsageError):
    """A file that is not a results file of a supported tool, or a malformed one."""

    def __init__(self, path: str | Path, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{path}: {message}", hint=hint or _EXPECTED)
        self.path = str(path)


_EXPECTED = ("perfloop import reads pytest-benchmark JSON (--benchmark-json=FILE), pyperf JSON "
             "(-o FILE) and asv results files (results/MACHINE/*.json)")


@dataclass(frozen=True)
class ImportedRun:
    """One results file, parsed and validated: what :func:`store_imported` writes as a run."""

    path: str
    format: str
    label: str
    commit: str | None
    branch: str | None
    dirty: bool
    environment: Mapping[str, Any]
    results: tuple[BenchmarkResult, ...]
    source: Mapping[str, Any] = field(default_factory=dict)   # the file's own facts: date, version
    notes: tuple[str, ...] = ()                                # what the import could not keep

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "label": self.label,
                "commit": self.commit, "branch": self.branch, "dirty": self.dirty,
                "benchmarks": len(self.results),
                "samples": sum(len(r.samples) for r in self.results),
                "failed": sum(1 for r in self.results if r.status.value != "ok"),
                "notes": list(self.notes)}


def imported_environment(tool: str, facts: Mapping[str, Any]) -> dict[str, Any]:
    """The environment dict of an imported run: the file's machine facts (under perfloop's own
    key names where one exists), marked ``imported`` so that it forms its own class."""
    from ..measure.environment import environment_hash
    env = {"imported": tool, **{k: v for k, v in facts.items() if v not in (None, "", {})}}
    env["fingerprint"] = environment_hash(env)
    return env


def derived_label(path: Path) -> str:
    """A label from the file name: ``0001_abc.json`` -> ``0001_abc``."""
    name = path.name
    for suffix in (".gz", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name or path.name


def finite(value: Any, what: str) -> float:
    """``value`` as a finite float, or ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def text_or_none(value: Any, *, unknown: Sequence[str] = ()) -> str | None:
    """A string fact, or None when it is missing or one of the tool's placeholders."""
    if not isinstance(value, str) or not value.strip() or value.strip() in unknown:
        return None
    return value.strip()
