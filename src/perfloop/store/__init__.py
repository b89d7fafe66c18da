"""The results store: runs, their results and samples, in SQLite (default) or PostgreSQL.

The lowest layer of perfloop: it knows the measurement records (:mod:`perfloop.records`) and
nothing above them. Open a store with :meth:`Store.open`, which creates or migrates its schema;
find where it is with :func:`resolve_store_url`.

The names below load on first use (PEP 562), so that :mod:`perfloop.store.listing`, which lists
runs from a SQLite file with the standard library alone, can be imported without SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "ENV_VAR": "db", "resolve_store_url": "db",
    "ApprovalRecord": "journal", "ChangeRecord": "journal", "CycleRecord": "journal",
    "HypothesisRecord": "journal", "IncidentRecord": "journal", "ProfileRecord": "journal",
    "ResultSummary": "journal", "json_ready": "journal",
    "RunInfo": "repository", "Store": "repository", "StoredRun": "repository",
}

__all__ = ["ENV_VAR", "ApprovalRecord", "ChangeRecord", "CycleRecord", "HypothesisRecord",
           "IncidentRecord", "ProfileRecord", "ResultSummary", "RunInfo", "Store", "StoredRun", "json_ready", "resolve_store_url"]

if TYPE_CHECKING:
    from .db import ENV_VAR, resolve_store_url
    from .journal import (ApprovalRecord, ChangeRecord, CycleRecord, HypothesisRecord,
                          IncidentRecord, ProfileRecord, ResultSummary, json_ready)
    from .repository import RunInfo, Store, StoredRun


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'perfloop.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
