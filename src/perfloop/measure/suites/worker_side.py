"""A suite task inside ``python -m perfloop.measure.worker``: dispatch to the tool, report errors.

The worker hands a task with a ``suite`` entry here instead of importing a callable. The same
messages go back to the parent (``hello``, ``calibration``, ``value``, ``end``, or ``error``
with its phase), so :mod:`perfloop.measure.callable` measures a suite benchmark like any
callable. A failing test's own report (pytest's long form, or the traceback) goes to stderr,
whose tail the parent keeps with the failed result.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Any

from ..channel import PROTOCOL_VERSION, ResultChannel
from .pytest_side import SuiteError


def run_suite_task(task: dict[str, Any], channel: ResultChannel) -> int:
    """Run one suite benchmark; returns the worker's exit code (0 ok, 1 the benchmark failed)."""
    channel.send("hello", version=PROTOCOL_VERSION, pid=os.getpid(),
                 timer_resolution=time.get_clock_info("perf_counter").resolution)
    for path in reversed(task.get("sys_path", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    tool = task["suite"]["tool"]
    try:
        if tool == "pytest":
            from . import pytest_side
            pytest_side.run(task, channel)
        elif tool == "asv":
            from . import asv_side
            asv_side.run(task, channel)
        else:
            raise SuiteError("protocol", f"unknown suite tool {tool!r}")
    except SuiteError as exc:
        channel.send("error", phase=exc.phase, error=str(exc))
        if exc.details:
            sys.stderr.write(exc.details.rstrip() + "\n")
        elif exc.__cause__ is not None:
            sys.stderr.write("".join(traceback.format_exception(exc.__cause__)))
        sys.stderr.flush()
        return 1
    return 0
