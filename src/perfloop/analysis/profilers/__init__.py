"""Profilers: record where a target spends its time, and the systemic signals around it.

Three entry points, one result type (:class:`ProfileResult`, in :mod:`.result`):

- :func:`profile_callable` (:mod:`.callables`): a benchmark's callable, called repeatedly for
  about ``duration`` seconds in a fresh worker process (``profile_worker.py``) under
  pyinstrument (a wall-clock sampler, in-process, which records only the calling thread), or
  cProfile, or py-spy attached from outside (which sees every thread). ``"auto"`` (default)
  uses pyinstrument and profiles again with py-spy when the callable started threads. GC time
  and memory are measured inside the worker (:mod:`.worker`).
- :func:`profile_command` (:mod:`.commands`): a command, with py-spy attached from outside
  (``--idle`` so waiting shows). When py-spy is missing or not permitted and the command is a
  Python program, it is run under pyinstrument in the worker instead, and the result says so.
- :func:`profile_pid` (:mod:`.pyspy`): a running Python process (a service), with py-spy; no
  fallback exists.

While the target runs, a thread of this process samples it with psutil (:mod:`.process`) for
:mod:`perfloop.analysis.signals`. The profile model lives in :mod:`perfloop.analysis.profiles`,
which these modules fill.

Worker protocol: the request and result are JSON files; see ``profile_worker.py``.
"""

from __future__ import annotations

from .callables import profile_callable
from .commands import profile_command
from .process import SAMPLE_INTERVAL
from .pyspy import PY_SPY_INSTALL, PY_SPY_PERMISSION, PySpyStatus, check_py_spy, find_py_spy, profile_pid
from .result import CPROFILE_CAVEAT, DEFAULT_DURATION, DEFAULT_RATE, PROFILERS, ProfileResult
from .worker import WORKER

__all__ = [
    "CPROFILE_CAVEAT", "DEFAULT_DURATION", "DEFAULT_RATE", "PROFILERS", "PY_SPY_INSTALL",
    "PY_SPY_PERMISSION", "SAMPLE_INTERVAL", "WORKER", "ProfileResult", "PySpyStatus",
    "check_py_spy", "find_py_spy", "profile_callable", "profile_command", "profile_pid",
]
