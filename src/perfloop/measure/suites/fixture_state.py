"""The state one pytest suite worker shares between its runner and its ``benchmark`` fixture.

:func:`perfloop.measure.suites.pytest_side.run_test` starts a test with :func:`start_test`;
the fixture (:mod:`.pytest_fixture`, registered as a pytest plugin) finds the state with
:func:`current_state` and hands the test's callable to it. A module of its own so that the
fixture needs nothing of the runner, which registers it (no import circle).
"""

from __future__ import annotations

from typing import Any, Callable

#: ``handle(fn, args, kwargs, setup) -> return value``: what the fixture does with the callable.
Handler = Callable[[Any, tuple[Any, ...], dict[str, Any], Any], Any]


class FixtureState:
    """What one worker's run of one test has done so far, and what to do with the callable."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle
        self.used = False
        self.measured = False
        self.reports: list[Any] = []


_STATE: FixtureState | None = None


class BenchmarkFixture:
    """perfloop's stand-in for pytest-benchmark's ``benchmark`` fixture.

    ``benchmark(fn, *args, **kwargs)`` and ``benchmark.pedantic(fn, args, kwargs, setup=...)``
    are timed by perfloop's loop; ``rounds``, ``warmup_rounds`` and ``iterations`` are accepted
    and ignored, because perfloop's settings (values, warmup, calibration) decide how much to
    measure. ``extra_info``, ``group``, ``name`` and ``fullname`` are there for tests that use them.
    """

    def __init__(self, state: FixtureState, node: Any) -> None:
        self._state = state
        self.name = node.name
        self.fullname = node.nodeid
        self.group: str | None = None
        self.extra_info: dict[str, Any] = {}
        callspec = getattr(node, "callspec", None)
        self.param = callspec.id if callspec else None
        self.params = callspec.params if callspec else None
        self.disabled = False

    def __call__(self, function_to_benchmark: Any, *args: Any, **kwargs: Any) -> Any:
        return self._measure(function_to_benchmark, args, kwargs, None)

    def pedantic(self, target: Any, args: Any = (), kwargs: Any = None, setup: Any = None,
                 rounds: int = 1, warmup_rounds: int = 0, iterations: int = 1) -> Any:
        if iterations > 1 and setup is not None:
            raise ValueError("Can't use more than 1 `iterations` with a `setup` function.")
        return self._measure(target, tuple(args or ()), dict(kwargs or {}), setup)

    def weave(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("benchmark.weave is not supported by perfloop")

    def _measure(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], setup: Any) -> Any:
        state = self._state
        if state.used:
            raise RuntimeError("the benchmark fixture can only be used once per test")
        state.used = True
        ret = state.handle(fn, args, kwargs, setup)
        state.measured = True
        return ret


def start_test(handle: Handler) -> FixtureState:
    """A fresh state for the next test of this worker; the fixture will hand it its callable."""
    global _STATE
    _STATE = FixtureState(handle)
    return _STATE


def current_state() -> FixtureState:
    if _STATE is None:
        raise RuntimeError("perfloop's benchmark fixture is used outside a perfloop worker")
    return _STATE
