"""perfloop's ``benchmark`` fixture, registered as a pytest plugin inside a suite worker.

A module of its own so that it can be registered after pytest-benchmark's plugin (see
:class:`perfloop.measure.suites.pytest_side._Runner`; the state it shares with the runner is in
:mod:`.fixture_state`): the last registered fixture of a name
wins. When pytest-benchmark is installed the fixture's class also derives from its
``BenchmarkFixture``, because that plugin checks the type of whatever ``benchmark`` fixture a
test received; perfloop's methods come first, so nothing of pytest-benchmark's timing runs.
"""

from __future__ import annotations

from typing import Any

import pytest

from .fixture_state import BenchmarkFixture, current_state

try:
    from pytest_benchmark.fixture import BenchmarkFixture as _PytestBenchmarkFixture
except ImportError:
    Fixture: type = BenchmarkFixture
else:
    class Fixture(BenchmarkFixture, _PytestBenchmarkFixture):  # type: ignore[no-redef, misc]
        """perfloop's fixture, typed as pytest-benchmark's for its plugin's checks."""


@pytest.fixture(name="benchmark")
def benchmark(request: Any) -> BenchmarkFixture:
    """Hands the callable of ``benchmark(fn)`` to perfloop's timing loop."""
    return Fixture(current_state(), request.node)
