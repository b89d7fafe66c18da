"""The names a store is found by and knows itself by: its default place, its environment
variable, and the schema revision it records.

Kept apart from :mod:`perfloop.store.db` so that a reader that needs no SQLAlchemy
(:mod:`perfloop.store.listing`) finds a store and checks its revision the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "PERFLOOP_STORE"
DEFAULT_DIR = ".perfloop"
DEFAULT_FILE = "perfloop.db"
# Our own version table, so a store placed in a database that already uses Alembic for an
# application does not read (or overwrite) that application's revision.
VERSION_TABLE = "perfloop_alembic_version"
# The newest revision in migrations/versions (a test checks that they agree). Knowing it lets an
# up-to-date store open without importing Alembic, which would double perfloop's start-up time.
HEAD_REVISION = "0005"


def chosen_store(explicit: str | None, *, root: Path,
                 config_store: str | None = None) -> tuple[str, Path] | None:
    """Which store the user chose, and the directory a relative path in it is relative to:
    ``--store``, then ``PERFLOOP_STORE``, then the configuration's ``store``; None for the
    default (``<root>/.perfloop/perfloop.db``)."""
    if explicit:
        return explicit, Path.cwd()
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        return from_env, Path.cwd()
    if config_store:
        return config_store, Path(root)
    return None
