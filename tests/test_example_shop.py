"""The example project's own tests, run as part of perfloop's suite.

``examples/shop`` is the project perfloop's workflows are demonstrated and tested on; if its
pricing, API or patches break, those demonstrations silently measure something else. Its
tests live with it (``examples/shop/tests/test_shop.py``) so the example stays a
self-contained project; this module puts the example on ``sys.path``, as perfloop's workers
do, loads that test module under a private name and re-exports its tests and fixtures so
pytest collects them here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
