"""The store's sessions are its own: nothing in perfloop outside ``store/`` opens one through
``Store._read`` or ``Store._write``; other layers use the store's public methods."""

from __future__ import annotations

import ast
from pathlib import Path

import perfloop

PACKAGE = Path(perfloop.__file__).parent
PRIVATE = {"_read", "_write"}


def _session_calls(path: Path) -> list[int]:
    """Lines of ``x._read(...)`` / ``x._write(...)`` calls in ``path``."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in PRIVATE]


def test_only_the_store_opens_its_sessions() -> None:
    found = [f"{path.relative_to(PACKAGE)}:{line}" for path in sorted(PACKAGE.rglob("*.py"))
             if "store" not in path.relative_to(PACKAGE).parts[:1]
             for line in _session_calls(path)]
    assert found == []


def test_the_check_sees_a_private_session() -> None:
    # the store itself does open them: the check finds what it looks for
    assert _session_calls(PACKAGE / "store" / "journal.py")
