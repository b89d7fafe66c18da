"""Each layer imports only the layers below it: store, measure, analysis, workflows,
then the renderers and the CLI on top. The shared core (errors, metrics, records, config) is
below everything."""

from __future__ import annotations

import ast
from pathlib import Path

import perfloop

PACKAGE = Path(perfloop.__file__).parent
RANK = {"errors": 0, "metrics": 0, "records": 0, "config": 0, "config_schema": 0, "suite_config": 0, "store": 1, "measure": 2,
        "analysis": 3, "importers": 4, "workflows": 4, "report": 5, "cli": 6, "server": 6,
        "__init__": 7, "__main__": 7}


def _layer(module: str) -> str:
    """``perfloop.analysis.compare`` -> ``analysis``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, module: str) -> list[str]:
    tree = ast.parse(path.read_text())
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("perfloop"):
                found.append(target)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.startswith("perfloop"))
    return found


def test_no_module_imports_a_layer_above_its_own():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        layer = _layer(module) if module != "perfloop" else "__init__"
        for target in _imports(path, module):
            if target == "perfloop":
                continue  # the package root: __version__, and lazy names that load nothing here
            other = _layer(target)
            if other in RANK and RANK[other] > RANK[layer]:
                violations.append(f"{module} ({layer}) imports {target} ({other})")
    assert violations == []
