"""The results store: runs, their results and samples, in SQLite (default) or PostgreSQL.

The lowest layer of perfloop: it knows the measurement records (:mod:`perfloop.records`) and
nothing above them. Open a store with :meth:`Store.open`, which creates or migrates its schema;
find where it is with :func:`resolve_store_url`.
"""

from .db import ENV_VAR, resolve_store_url
from .journal import (ApprovalRecord, ChangeRecord, CycleRecord, HypothesisRecord, IncidentRecord,
                      ProfileRecord, ResultSummary, json_ready)
from .repository import RunInfo, Store, StoredRun

__all__ = ["ENV_VAR", "ApprovalRecord", "ChangeRecord", "CycleRecord", "HypothesisRecord",
           "IncidentRecord", "ProfileRecord", "ResultSummary", "RunInfo", "Store", "StoredRun", "json_ready", "resolve_store_url"]
