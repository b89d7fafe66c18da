"""The journal, registry, audit, advisor, modes and drills import no module that imports them back.

Every import counts, module-level and function-local alike (only ``if TYPE_CHECKING:`` blocks are
left out, as they never run): a cycle through a function-local import still ties the modules
together and breaks as soon as the import moves to the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
AREA = ["perfloop.workflows." + m for m in ("journal", "params", "audit", "audit_base",
                                             "audit_detectors", "advisor", "modes", "drills")] + \
       ["perfloop.store.journal", "perfloop.measure.drill_hook.sitecustomize"] + \
       ["perfloop.cli." + m for m in ("journal_cmds", "params_cmds", "audit_cmds", "drill_cmds")]


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree)
               if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for n in ast.walk(node)}
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module or ""
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != name}


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), list(graph[start])
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
    return seen


def test_no_module_of_the_area_is_in_an_import_cycle() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    assert set(AREA) <= set(graph)
    cyclic = {m: sorted(n for n in _reaches(graph, m) if m in _reaches(graph, n))
              for m in AREA if m in _reaches(graph, m)}
    assert cyclic == {}


def test_the_check_sees_a_function_local_cycle(tmp_path: Path) -> None:
    """A known answer: two modules that import each other, one of them inside a function."""
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n")
    known = {"p", "p.a", "p.b"}
    graph = {m: _imports(m, tmp_path / (m.replace(".", "/") + ("/__init__.py" if m == "p" else ".py")),
                         known) for m in known}
    assert graph["p.a"] == {"p.b"} and graph["p.b"] == {"p.a"}
    assert "p.a" in _reaches(graph, "p.a")
