"""Fixtures shared by the test suite: results stores on SQLite and, when available, PostgreSQL."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, make_url, text

from perfloop.store import Store

POSTGRES_ENV = "PERFLOOP_TEST_POSTGRES_URL"

# A shell without job control starts background commands with SIGINT ignored, and an ignored
# signal stays ignored across exec: Python then installs no KeyboardInterrupt handler, in this
# process or in the children the Ctrl-C tests interrupt. Those tests are about what perfloop
# does on Ctrl-C, so give them the handler a terminal would.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The URL of a fresh SQLite store file (not yet created)."""
    return f"sqlite:///{tmp_path / 'perfloop.db'}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, empty SQLite store, closed after the test."""
    with Store.open(store_url) as opened:
        yield opened


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of an empty PostgreSQL schema of its own, dropped after the test.

    Skips unless PERFLOOP_TEST_POSTGRES_URL names a server, e.g.
    ``postgresql+psycopg://postgres@127.0.0.1:5432/test``. A schema per test keeps tests (and
    people sharing the server) out of each other's way.
    """
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"set {POSTGRES_ENV} to run PostgreSQL tests")
    schema = f"perfloop_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty store on each backend: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'perfloop.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def any_store(any_store_url: str) -> Iterator[Store]:
    """An open, empty store on each backend (see ``any_store_url``), closed after the test."""
    with Store.open(any_store_url) as opened:
        yield opened
