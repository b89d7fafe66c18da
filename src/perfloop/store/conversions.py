"""Values as the store keeps them: plain JSON, lowercase commits, environment hashes, base
names, and the run listing's record built from a row. Shared by the store's tables; imports none
of them."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from datetime import datetime
from pathlib import PurePath
from typing import Any, Mapping

from ..errors import StoreError
from ..records import RunStatus
from .listing import RunInfo
from .models import RunRow

#: A commit written in hex digits (a sha or a prefix of one).
HEX = re.compile(r"^[0-9a-f]+$")


def environment_fingerprint(environment: Mapping[str, Any]) -> str:
    """The hash that identifies an environment.

    An explicit ``"fingerprint"`` string in the dict wins: the measurement layer knows which facts
    make two environments different (CPU, Python build) and which vary from run to run (load).
    Otherwise the hash covers the whole dict.
    """
    given = environment.get("fingerprint")
    if isinstance(given, str) and given:
        return given
    canonical = json.dumps(plain_json(environment, "the environment"), sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def base_name_of(name: str) -> str:
    """``quote[items=10]`` -> ``quote``: the benchmark before its parameters were expanded."""
    if name.endswith("]") and "[" in name:
        return name.split("[", 1)[0] or name
    return name


def run_info(run: RunRow, fingerprint: str, n_results: int | None, n_failed: int | None) -> RunInfo:
    return RunInfo(
        id=run.id, label=run.label, commit=run.commit, branch=run.branch, dirty=bool(run.dirty),
        status=RunStatus(run.status), started_at=run.started_at, finished_at=run.finished_at,
        environment_id=run.environment_id, environment_hash=fingerprint,
        n_results=int(n_results or 0), n_failed=int(n_failed or 0))


def normal_sha(commit: str | None) -> str | None:
    """Git prints lowercase hex; store it so, so that prefixes match whatever case is typed."""
    if not commit:
        return None
    commit = commit.strip()
    return commit.lower() if HEX.match(commit.lower()) else commit


def json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (PurePath, datetime)):
        return str(value) if isinstance(value, PurePath) else value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def plain_json(value: Mapping[str, Any] | Any, what: str) -> Any:
    """``value`` as plain JSON data (dicts, lists, str, numbers), or a StoreError naming it.

    Done before the database sees it so that a bad value is reported by name, and NaN (which
    PostgreSQL's JSON rejects and SQLite would accept) is refused on both.
    """
    if value is None:
        return {}
    try:
        return json.loads(json.dumps(value, default=json_default, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise StoreError(f"{what} cannot be stored as JSON: {e}",
                         hint="use strings, numbers, booleans, lists and dicts (no NaN)") from e
