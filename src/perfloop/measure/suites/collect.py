"""The collecting subprocess: ``python -m perfloop.measure.suites.collect TOOL PATH --out FILE``.

Collection imports the team's test or benchmark modules, so it runs in a process of its own
(perfloop's stays clean, and a module that crashes the interpreter cannot take perfloop down).
It writes ``{"benchmarks": [...], "errors": [...], "others": N}`` as JSON to ``--out``: each
benchmark with its ``name``, ``base_name``, ``select`` and ``params`` (and asv's ``mode``,
``combo``, ``number``, ``repeat``, ``timeout``, ``unit``); each error with the ``name`` of what
failed to collect and the ``error``; ``others`` counts tests that do not use the ``benchmark``
fixture.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perfloop.measure.suites.collect")
    parser.add_argument("tool", choices=("pytest", "asv"))
    parser.add_argument("path")
    parser.add_argument("--out", required=True)
    parser.add_argument("--arg", action="append", default=[], help="an extra pytest argument")
    args = parser.parse_args(argv)
    if args.tool == "pytest":
        from .pytest_side import collect as collect_pytest
        found = collect_pytest(args.path, args.arg)
    else:
        from .asv_side import collect as collect_asv
        found = collect_asv(args.path)
    with open(args.out, "w") as f:
        json.dump(found, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
