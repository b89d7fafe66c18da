"""What type checkers see of perfloop: the py.typed marker, and each public name's real type."""

from __future__ import annotations

import ast
from pathlib import Path

import perfloop

PACKAGE = Path(perfloop.__file__).parent


def _type_checking_imports() -> dict[str, str]:
    """name -> module of the imports under ``if TYPE_CHECKING:`` in perfloop/__init__.py."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.level == 1, ast.dump(stmt)
                for alias in stmt.names:
                    found[alias.asname or alias.name] = f"perfloop.{stmt.module}"
    return found


def test_the_package_is_marked_typed():
    assert (PACKAGE / "py.typed").is_file()


def test_type_checkers_see_every_lazy_public_name_where_it_loads_from():
    # perfloop.__getattr__ loads the names lazily; the TYPE_CHECKING imports must say the same
    assert _type_checking_imports() == perfloop._EXPORTS


def test_the_names_type_checkers_see_are_the_objects_loaded_at_run_time():
    import importlib
    for name, module in _type_checking_imports().items():
        assert getattr(perfloop, name) is getattr(importlib.import_module(module), name)
