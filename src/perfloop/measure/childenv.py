"""The environment perfloop gives the processes it starts (commands, servers).

``python`` in a benchmark's command means the interpreter perfloop runs under, so that a
command such as ``["python", "-m", "uvicorn", ...]`` finds the packages of the project's
virtual environment even when that environment is not activated: the interpreter's directory
goes first on ``PATH``.
"""

from __future__ import annotations

import os
import sys
from typing import Mapping


def child_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` with the running interpreter's directory first on PATH, then ``overrides``."""
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    path = env.get("PATH", "")
    if bindir and path.split(os.pathsep)[0] != bindir:
        env["PATH"] = bindir + (os.pathsep + path if path else "")
    env.update(overrides or {})
    return env
