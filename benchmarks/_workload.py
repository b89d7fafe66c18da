"""The measured workload, and the throw-away project that all three tools measure it from.

``work()`` is a pure-Python, CPU-bound function of about 3 ms whose amount of work is scaled
by the slowdown in ``PERFLOOP_BENCH_SLOWDOWN`` (a fraction: ``0.05`` runs 5% more loop
iterations). Each iteration does the same work, so the injected slowdown is the real one, up
to the rounding of one iteration in 7,000.

:func:`write_project` copies this module into a directory as ``plworkload.py`` and writes,
next to it, what each tool's users would write: a ``perfloop.toml`` with one callable
benchmark on perfloop's default settings, a pyperf script on ``pyperf.Runner`` defaults and a
pytest-benchmark test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV_VAR = "PERFLOOP_BENCH_SLOWDOWN"
BASE_ITERATIONS = 7000
MODULE = "plworkload"
BENCH_NAME = "work"


SLOWDOWN_FILE = "plslowdown.txt"


def iterations(slowdown: float | None = None) -> int:
    """Loop iterations for a slowdown: given, else from the environment, else from the file
    ``plslowdown.txt`` next to this module (how a git commit carries it, for ``perfloop gate``),
    else none."""
    if slowdown is None:
        if ENV_VAR in os.environ:
            slowdown = float(os.environ[ENV_VAR] or 0)
        else:
            path = Path(__file__).with_name(SLOWDOWN_FILE)
            slowdown = float(path.read_text().strip() or 0) if path.is_file() else 0.0
    return round(BASE_ITERATIONS * (1.0 + slowdown))


_N = iterations()


def work() -> int:
    """About 3 ms of integer arithmetic and dict updates; no I/O, no allocation growth."""
    acc = 0
    table: dict[int, int] = {}
    for i in range(_N):
        k = (i * 2654435761) & 1023
        table[k] = table.get(k, 0) + i
        acc = (acc + k * k) % 1000003
    return acc + len(table)


def empty() -> None:
    """Nothing: the harness's own cost per call."""


def tiny() -> int:
    """About a microsecond of work."""
    acc = 0
    for i in range(20):
        acc += i * i
    return acc


PERFLOOP_TOML = f'''\
# One callable benchmark on perfloop's default settings (no processes/values set).
[[benchmark]]
name = "{BENCH_NAME}"
callable = "{MODULE}:work"
metrics = ["wall_time", "cpu_time"]
'''

PYPERF_SCRIPT = f'''\
"""The workload under pyperf.Runner's default settings."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pyperf

from {MODULE} import work

runner = pyperf.Runner()
runner.bench_func("{BENCH_NAME}", work)
'''

PYTEST_TEST = f'''\
"""The workload under pytest-benchmark's default settings."""
from {MODULE} import work


def test_{BENCH_NAME}(benchmark):
    benchmark(work)
'''

# pytest must not pick up the surrounding repository's configuration.
PYTEST_INI = "[pytest]\naddopts = -p no:cacheprovider\n"


def write_project(directory: str | Path) -> Path:
    """Write the workload project into ``directory`` (created if needed) and return it."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(__file__, root / f"{MODULE}.py")
    (root / "perfloop.toml").write_text(PERFLOOP_TOML)
    (root / "bench_pyperf.py").write_text(PYPERF_SCRIPT)
    (root / f"test_{BENCH_NAME}.py").write_text(PYTEST_TEST)
    (root / "pytest.ini").write_text(PYTEST_INI)
    return root
