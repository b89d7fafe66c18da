"""Running perfloop's own entry point inside the test process."""

from __future__ import annotations

import pytest

from perfloop.cli.app import main


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``perfloop.cli.app.main`` in this process.

    Returns (exit code, stdout, stderr): errors reach the user the way main prints them.
    """
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err
