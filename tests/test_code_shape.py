"""The shape of perfloop's own code: no file in ``src/perfloop`` over 600 lines, no function
over 80 (the database migrations aside: each is one long list of table definitions), and no
module that imports itself back through other modules.

An import counts wherever it is written, inside a function too (it runs when the function is
called, and ties the two modules together all the same); one under ``if TYPE_CHECKING:`` does
not (it never runs). The graph is grimp's, the one behind ``perfloop risk``.

The allow-lists below name what is still waiting for its split, each with the reason; they may
only shrink: an entry that no longer matches a violation fails the test too, so it is removed
with the change that fixes it.
"""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import grimp

import perfloop

from graphutil import cycles

PACKAGE = Path(perfloop.__file__).parent
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80
MIGRATIONS = "store/migrations/"

# Files over 600 lines that are being reshaped elsewhere (path relative to src/perfloop).
LONG_FILES: dict[str, str] = {
}

# Functions over 80 lines that are being reshaped elsewhere: (path, function name).
LONG_FUNCTIONS: dict[tuple[str, str], str] = {
}

# Modules that may sit on an import cycle while their cycle is being broken elsewhere. A cycle
# is allowed only if every module on it is listed.
CYCLE_MODULES: dict[str, str] = {
}


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def long_files(paths: list[Path], root: Path) -> dict[str, int]:
    """Files over the limit, with their line counts."""
    counts = {p.relative_to(root).as_posix(): len(p.read_text().splitlines()) for p in paths}
    return {name: n for name, n in counts.items() if n > MAX_FILE_LINES}


def long_functions(paths: list[Path], root: Path) -> dict[tuple[str, str], int]:
    """Functions (methods and nested functions too) over the limit, from ``def`` to the last
    line of the body, with their lengths; the migrations are left out."""
    found = {}
    for path in paths:
        name = path.relative_to(root).as_posix()
        if name.startswith(MIGRATIONS):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found[(name, node.name)] = length
    return found


def import_cycles(package: str) -> list[list[str]]:
    """The modules of ``package`` that import themselves back, one sorted list per cycle (the
    strongly connected components of the import graph with more than one module, or one that
    imports itself)."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=True, cache_dir=None)
    return cycles({m: graph.find_modules_directly_imported_by(m) for m in graph.modules})


def _explain(graph_package: str, cycle: list[str]) -> str:
    """One cycle, with the lines that tie it together."""
    graph = grimp.build_graph(graph_package, exclude_type_checking_imports=True, cache_dir=None)
    members = set(cycle)
    lines = []
    for module in cycle:
        for target in sorted(graph.find_modules_directly_imported_by(module) & members):
            where = [d["line_number"] for d in graph.get_import_details(importer=module, imported=target)]
            lines.append(f"  {module} -> {target} (line {', '.join(map(str, where))})")
    return "\n".join(lines)


def test_no_file_is_over_600_lines() -> None:
    found = long_files(_sources(), PACKAGE)
    assert {k: v for k, v in found.items() if k not in LONG_FILES} == {}, \
        "split these by noun into modules of their own"
    assert sorted(set(LONG_FILES) - set(found)) == [], "now short enough: remove from LONG_FILES"


def test_no_function_is_over_80_lines() -> None:
    found = long_functions(_sources(), PACKAGE)
    assert {k: v for k, v in found.items() if k not in LONG_FUNCTIONS} == {}, \
        "split these into steps with names of their own"
    assert sorted(set(LONG_FUNCTIONS) - set(found)) == [], "now short enough: remove from LONG_FUNCTIONS"


def test_no_module_imports_itself_back() -> None:
    cycles = import_cycles("perfloop")
    unexplained = [c for c in cycles if not set(c) <= set(CYCLE_MODULES)]
    assert unexplained == [], "\n".join(_explain("perfloop", c) for c in unexplained) + \
        "\nmove what both sides need into a small module of its own that imports neither"
    still = {m for c in cycles for m in c}
    assert sorted(set(CYCLE_MODULES) - still) == [], "no longer on a cycle: remove from CYCLE_MODULES"


# The checks find what they look for, on code written here.

def _write(root: Path, files: dict[str, str]) -> list[Path]:
    paths = []
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        paths.append(path)
    return paths


def test_the_length_checks_count_lines(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(79))
    paths = _write(tmp_path, {
        "short.py": "def fits():\n" + body,                                # 80 lines: allowed
        "long.py": "class C:\n    def over(self):\n    " + body.replace("\n    ", "\n        ")
                   + "        return 1\n" + "\n" * 520,                      # 81-line method, 602 lines
        "store/migrations/versions/0001.py": "def upgrade():\n" + body * 2,  # a migration
    })
    assert long_functions(paths, tmp_path) == {("long.py", "over"): 81}
    assert long_files(paths, tmp_path) == {"long.py": 602}


def test_the_cycle_check_counts_local_imports_not_type_checking_ones(tmp_path: Path,
                                                                       monkeypatch) -> None:
    package = f"shapecheck_{tmp_path.name.replace('-', '_')}"
    _write(tmp_path, {
        f"{package}/__init__.py": "",
        # a and b import each other, b only inside a function: a cycle
        f"{package}/a.py": f"from {package} import b\n",
        f"{package}/b.py": f"def f():\n    from {package} import a\n    return a\n",
        # c and d import each other, d only for the type checker: no cycle
        f"{package}/c.py": f"from {package} import d\n",
        f"{package}/d.py": f"""\
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from {package} import c
            """,
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert import_cycles(package) == [[f"{package}.a", f"{package}.b"]]
    finally:
        for name in [m for m in sys.modules if m.startswith(package)]:
            del sys.modules[name]
