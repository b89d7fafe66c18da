"""Property-based fuzzing of the server's API from its own OpenAPI description: whatever
schemathesis sends (valid or not, with a write token or a wrong one), no answer is a 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from perfloop.server.app import create_app  # noqa: E402
from perfloop.store import Store  # noqa: E402

# The schema is read when this module is imported, so the app (on a store of its own) is too.
_DIR = tempfile.TemporaryDirectory(prefix="perfloop-fuzz-")
_URL = f"sqlite:///{Path(_DIR.name) / 'fuzz.db'}"
with Store.open(_URL) as _store:
    TOKENS = {"write": _store.create_token(project="shop", scope="write"),
              "wrong": "plt_not-a-token"}
APP = create_app(_URL, max_body=256 * 1024)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.mark.slow
@pytest.mark.parametrize("who", ["write", "wrong"])
@schema.parametrize()
@settings(max_examples=40, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case, who: str) -> None:
    if who == "write":
        # the token's own project: generated bodies reach validation and the store
        case.path_parameters["project"] = "shop"
    response = case.call(headers={"Authorization": f"Bearer {TOKENS[who]}"})
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
