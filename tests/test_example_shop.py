"""The example project's own tests, run as part of perfloop's suite.

``examples/shop`` is the project perfloop's workflows are demonstrated and tested on; if its
pricing, API or patches break, those demonstrations silently measure something else. Its
tests live with it (``examples/shop/tests/test_shop.py``) so the example stays a
self-contained project; this module puts the example on ``sys.path``, as perfloop's workers
do, loads that test module under a private name and re-exports its tests and fixtures so
pytest collects them here.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import warnings
from pathlib import Path
from urllib.parse import urlsplit

from perfloop.config import load_config

SHOP_ROOT = Path(__file__).resolve().parent.parent / "examples" / "shop"

if str(SHOP_ROOT) not in sys.path:
    sys.path.insert(0, str(SHOP_ROOT))

_spec = importlib.util.spec_from_file_location("perfloop_example_shop_tests",
                                               SHOP_ROOT / "tests" / "test_shop.py")
assert _spec is not None and _spec.loader is not None
_shop_tests = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _shop_tests
_spec.loader.exec_module(_shop_tests)

# Tests (test_*) and the fixtures they use; pytest finds fixtures among a module's globals.
globals().update({name: value for name, value in vars(_shop_tests).items()
                  if name.startswith("test_") or hasattr(value, "_pytestfixturefunction")
                  or type(value).__name__ == "FixtureFunctionDefinition"})


def test_the_example_is_the_one_on_sys_path() -> None:
    import shop

    assert Path(shop.__file__).resolve().parent == SHOP_ROOT / "shop"


def test_perfloop_toml_targets_exist_and_the_http_body_is_accepted(shop_db: Path) -> None:
    """The benchmarks name real functions, and the HTTP load's body prices successfully."""
    config = load_config(SHOP_ROOT)
    kinds = {spec.base_name: spec.kind for spec in config.benchmarks}
    assert kinds == {"checkout": "callable", "serialize-order": "callable", "report": "command",
                     "api-checkout": "http"}
    for spec in config.benchmarks:
        for target in (spec.setup, spec.callable, spec.teardown):
            if target:
                module, _, attr = target.partition(":")
                assert callable(getattr(importlib.import_module(module), attr)), target

    (api,) = [spec for spec in config.benchmarks if spec.kind == "http"]
    assert api.http is not None and api.server is not None and api.http.body is not None
    assert api.server.command[:3] == ("python", "-m", "uvicorn")
    port = api.server.command[api.server.command.index("--port") + 1]
    assert urlsplit(api.http.url).port == urlsplit(api.server.ready_url).port == int(port)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    from shop.app import create_app
    from shop.settings import Settings

    with TestClient(create_app(Settings(db_path=shop_db))) as client:
        path = urlsplit(api.http.url).path
        response = client.request(api.http.method, path, content=api.http.body, headers=dict(api.http.headers))
        assert response.status_code == 200, response.text
        assert json.loads(response.content)["lines"]
        assert client.get(urlsplit(api.server.ready_url).path).status_code == 200
