"""Start-up: the CLI parses its arguments before it imports the heavy libraries, so that
``perfloop --help`` and a command's ``--help`` are quick (figures in BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("scipy", "numpy", "sqlalchemy", "pandas", "pyinstrument", "alembic", "fastapi")


def loaded_after(code: str) -> set[str]:
    """Top-level packages in sys.modules after running ``code`` in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys, json\n"
                          "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"],
                         capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_imports_no_heavy_library() -> None:
    loaded = loaded_after("import perfloop.cli.app")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.slow   # one fresh interpreter per command
def test_command_help_imports_no_heavy_library() -> None:
    for command in ("gate", "runs", "report", "compare", "import", "incident", "journal", "audit",
                    "params", "risk", "change", "cycle", "drill", "advise", "mode"):
        code = ("import sys\nfrom perfloop.cli.app import app\n"
                f"try:\n    app(args=[{command!r}, '--help'], standalone_mode=False)\n"
                "except SystemExit:\n    pass\n")
        loaded = loaded_after(code)
        assert not loaded & set(HEAVY), (command, sorted(loaded & set(HEAVY)))


def test_import_formats_in_the_help_are_the_importers() -> None:
    from perfloop.cli.import_cmds import FORMATS as shown
    from perfloop.importers import FORMATS
    assert tuple(shown) == tuple(FORMATS)


def test_listing_runs_does_not_load_the_statistics(tmp_path) -> None:
    store = f"sqlite:///{tmp_path / 'perfloop.db'}"
    code = ("from perfloop.cli.app import app\n"
            f"try:\n    app(args=['runs', '--store', {store!r}, '-C', {str(tmp_path)!r}], "
            "standalone_mode=False)\nexcept SystemExit:\n    pass\n")
    loaded = loaded_after(code)
    assert "sqlalchemy" in loaded                      # it did read the store
    assert not loaded & {"scipy", "numpy"}, sorted(loaded & {"scipy", "numpy"})
