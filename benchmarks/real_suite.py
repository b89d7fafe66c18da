"""A real project's own pytest-benchmark suite, run by ``perfloop run``: pint's.

pint (the physical-units library, pure Python) ships its pytest-benchmark suite in its source
distribution (``pint/testsuite/benchmarks``: conftest fixtures, stacked ``parametrize``,
``--import-mode=importlib`` in its addopts). This script downloads the sdist with pip, unpacks
it in a temporary directory, writes a perfloop.toml with a ``[[suite]]`` table beside pint's
pyproject.toml, and runs ``perfloop run --json`` there, with pint's source tree first on
``sys.path``. It prints how many benchmarks were collected, measured and failed (with the
errors), and the wall time; pint's runtime dependencies (flexcache, flexparser, platformdirs,
typing_extensions) must be installed::

    python benchmarks/real_suite.py                      # a subset, -k as below
    python benchmarks/real_suite.py --select ""          # all 450 benchmarks (hours on 2 cores)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
PACKAGE, VERSION = "pint", "0.25.3"
DEFAULT_SELECT = "test_00 or test_01 or test_05 or build_by_mul or finding_meter"


def fetch(into: Path) -> Path:
    """pint's sdist, downloaded by pip and unpacked; the project directory."""
    subprocess.run([PYTHON, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", PACKAGE,
                    f"{PACKAGE}=={VERSION}", "-d", str(into)], check=True)
    [archive] = into.glob(f"{PACKAGE}-{VERSION}.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / f"{PACKAGE}-{VERSION}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--select", default=DEFAULT_SELECT, help="pytest -k expression ('' for all)")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--values", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write perfloop's run JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="real-suite-") as tmp:
        project = fetch(Path(tmp))
        pytest_args = ["--import-mode=importlib"] + (["-k", args.select] if args.select else [])
        (project / "perfloop.toml").write_text(
            f"[defaults]\nprocesses = {args.processes}\nvalues = {args.values}\nmin_time = 0.005\n"
            f"timeout = 300\n\n[[suite]]\npytest = \"pint/testsuite/benchmarks\"\n"
            f"args = {json.dumps(pytest_args)}\n")
        env = {k: v for k, v in os.environ.items() if k != "PERFLOOP_STORE"}
        load = os.getloadavg()[0]
        started = time.perf_counter()
        proc = subprocess.run([PYTHON, "-m", "perfloop", "run", "--json", "--store",
                               f"sqlite:///{Path(tmp) / 'perfloop.db'}"], cwd=project, env=env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            print(proc.stderr[-3000:])
            return proc.returncode
        run = json.loads(proc.stdout)
    results = run["results"]
    statuses = collections.Counter(r["status"] for r in results)
    print(f"{PACKAGE} {VERSION}: {len(results)} benchmarks, {dict(statuses)}, {seconds:.0f} s wall, "
          f"load average {load:.1f} at start")
    for r in results:
        wall = next((m for m in r["metrics"] if m.get("metric") == "wall_time"), None)
        median = f"{wall['median'] * 1e6:10.1f} us" if wall and wall.get("median") is not None else "-"
        print(f"  {r['status']:6s} {median}  {r['name']}" + (f"\n         {r['error']}" if r["error"] else ""))
    if args.json:
        args.json.write_text(json.dumps({"seconds": seconds, "load": load, "run": run}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
