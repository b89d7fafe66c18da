"""The project's import graph, and the blast radius of a change in it.

The graph is built by grimp (the library behind import-linter), which parses the source without
importing it and caches what it parsed, so a second call on an unchanged tree reads the cache
(``.perfloop/import-graph`` in the project). The *blast radius* of a change is the share of the
project's modules that import a touched module directly or transitively, the touched ones
included: a change to a module that most of the package imports can break most of it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence


@dataclass(frozen=True)
class BlastRadius:
    touched: tuple[str, ...]           # touched modules found in the graph
    affected: tuple[str, ...]          # touched and every module importing them
    modules: int                       # modules in the graph

    @property
    def share(self) -> float:
        return len(self.affected) / self.modules if self.modules else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"touched": list(self.touched), "affected": len(self.affected),
                "modules": self.modules, "share": round(self.share, 4)}


def find_packages(root: Path, paths: Sequence[str] = ()) -> list[tuple[Path, str]]:
    """The project's top-level packages, as (directory on sys.path, package name).

    Looked for in the project root, ``src/`` and the configured ``pythonpath`` entries; tests,
    benchmarks and hidden directories are not the project's code.
    """
    bases = [root, root / "src", *(root / p for p in paths)]
    found: dict[str, tuple[Path, str]] = {}
    for base in bases:
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            if (child.is_dir() and (child / "__init__.py").is_file()
                    and child.name not in ("tests", "test", "benchmarks", "docs")
                    and not child.name.startswith(".") and child.name.isidentifier()):
                found.setdefault(child.name, (base.resolve(), child.name))
    return list(found.values())


def module_of(path: str, packages: Sequence[tuple[Path, str]], root: Path) -> str | None:
    """The dotted module name of a repository-relative ``.py`` path, if it is in a package."""
    if not path.endswith(".py"):
        return None
    absolute = (root / path).resolve()
    for base, _ in packages:
        try:
            rel = PurePosixPath(absolute.relative_to(base).as_posix())
        except ValueError:
            continue
        parts = list(rel.with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        if parts:
            return ".".join(parts)
    return None


def blast_radius(root: Path, touched_paths: Iterable[str], *, paths: Sequence[str] = (),
                 cache_dir: Path | None = None) -> BlastRadius:
    """The modules that import what ``touched_paths`` change (see the module docstring)."""
    import grimp

    packages = find_packages(root, paths)
    if not packages:
        return BlastRadius((), (), 0)
    added = [str(base) for base, _ in packages if str(base) not in sys.path]
    sys.path[:0] = added             # grimp locates packages through the import system
    try:
        names = [name for _, name in packages]
        graph = (grimp.build_graph(*names) if cache_dir is None
                 else grimp.build_graph(*names, cache_dir=str(cache_dir)))
    finally:
        for entry in added:
            sys.path.remove(entry)
    modules = graph.modules
    touched = sorted({m for p in touched_paths if (m := module_of(p, packages, root)) in modules})
    affected = set(touched)
    for module in touched:
        affected |= graph.find_downstream_modules(module)   # its importers
    return BlastRadius(tuple(touched), tuple(sorted(affected)), len(modules))


__all__ = ["BlastRadius", "blast_radius", "find_packages", "module_of"]
