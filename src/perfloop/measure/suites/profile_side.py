"""A suite benchmark inside perfloop's profiling worker (``perfloop profile -b NAME``).

:func:`with_call` sets the benchmark up as a measuring worker would (pytest runs the test with
perfloop's ``benchmark`` fixture; asv calls setup) and hands the zero-argument call to
``body``, which profiles it; then the test goes on, or asv's teardown runs.
"""

from __future__ import annotations

from typing import Any, Callable

from .pytest_side import SuiteError


def with_call(suite: dict[str, Any], body: Callable[[Callable[[], Any]], None]) -> None:
    """Run ``body(call)`` with the benchmark of ``suite`` ready; :class:`SuiteError` when it fails."""
    if suite["tool"] == "pytest":
        from .pytest_side import run_test
        from .timing import _setup_arguments

        def handle(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], setup: Any) -> Any:
            def call() -> Any:
                a, k = _setup_arguments(setup(), args, kwargs) if setup is not None else (args, kwargs)
                return fn(*a, **k)
            body(call)
            return call()   # the test may check what its function returns
        run_test(suite, handle)
    elif suite["tool"] == "asv":
        from .asv_side import prepared
        with prepared(suite) as (fn, args, _):
            body(lambda: fn(*args))
    else:
        raise SuiteError("import", f"unknown suite tool {suite['tool']!r}")


__all__ = ["SuiteError", "with_call"]
