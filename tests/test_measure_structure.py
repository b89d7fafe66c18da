"""The shape of perfloop.measure: one module owns child processes, no import circles, one
ProtocolError, short functions and files.

Each rule is checked by reading the source (ast), and each checker is first shown to catch a
small program written here that breaks its rule, so that a checker that sees nothing fails.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import perfloop
import perfloop.measure

from graphutil import cycles

PACKAGE = Path(perfloop.__file__).parent
MEASURE = Path(perfloop.measure.__file__).parent
PROCESS_MODULE = "perfloop.measure.process"

#: Calls that start, wait for or signal a process: only the process module may make them.
PROCESS_CALLS = {
    "subprocess": {"Popen", "run", "call", "check_call", "check_output", "getoutput",
                   "getstatusoutput"},
    "os": {"kill", "killpg", "fork", "forkpty", "system", "popen", "posix_spawn", "posix_spawnp",
           "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe",
           "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe",
           "wait", "waitpid", "wait3", "wait4", "waitid"},
    "asyncio": {"create_subprocess_exec", "create_subprocess_shell"},
}


def module_name(path: Path, root: Path = PACKAGE.parent) -> str:
    """``perfloop.measure.process`` for ``ROOT/perfloop/measure/process.py``."""
    rel = path.relative_to(root).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def process_calls(source: str) -> list[str]:
    """``module.function`` of every process call in ``source``, however the module is named."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}      # local name -> "os" / "subprocess" / "os.kill"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in PROCESS_CALLS:
                    aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module in PROCESS_CALLS and not node.level:
            for a in node.names:
                if a.name in PROCESS_CALLS[node.module]:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module = aliases.get(func.value.id)
            if module in PROCESS_CALLS and func.attr in PROCESS_CALLS[module]:
                found.append(f"{module}.{func.attr} (line {node.lineno})")
        elif isinstance(func, ast.Name) and "." in aliases.get(func.id, ""):
            found.append(f"{aliases[func.id]} (line {node.lineno})")
    return found


def imported_modules(path: Path, known: set[str], root: Path = PACKAGE.parent) -> set[str]:
    """The modules of ``known`` that the file imports anywhere: at the top, inside functions,
    under TYPE_CHECKING. ``from pkg import sub`` counts as importing ``pkg.sub``."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m in known and m != module}


def measure_files() -> list[Path]:
    return sorted(MEASURE.rglob("*.py"))


def measure_graph() -> dict[str, set[str]]:
    files = measure_files()
    known = {module_name(p) for p in files}
    return {module_name(p): imported_modules(p, known) for p in files}


# -- the checkers catch what they are for ---------------------------------------------------

def test_the_process_call_checker_catches_every_spelling():
    source = textwrap.dedent("""
        import os, subprocess as sp
        from os import killpg as kp
        import asyncio
        def f(pid):
            sp.Popen(["true"])
            os.killpg(pid, 9)
            kp(pid, 9)
            asyncio.create_subprocess_exec("true")
            sp.DEVNULL, os.getpid()
    """)
    assert [c.split(" ")[0] for c in process_calls(source)] == [
        "subprocess.Popen", "os.killpg", "os.killpg", "asyncio.create_subprocess_exec"]


def test_the_cycle_finder_sees_a_circle_through_a_function_local_import(tmp_path):
    pkg = tmp_path / "perfloop" / "measure"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from . import c\n")
    (pkg / "c.py").write_text("from perfloop.measure.a import thing\n")
    (pkg / "d.py").write_text("from .a import thing\n")
    files = sorted(pkg.glob("*.py"))
    known = {module_name(p, tmp_path) for p in files}
    graph = {module_name(p, tmp_path): imported_modules(p, known, tmp_path) for p in files}
    assert cycles(graph) == [["perfloop.measure.a", "perfloop.measure.b", "perfloop.measure.c"]]


# -- the rules ------------------------------------------------------------------------------

def test_only_the_process_module_starts_waits_for_or_signals_processes():
    # measure/ and the profilers, which start the profiled target and py-spy
    offenders = {}
    for path in [*measure_files(), *sorted((PACKAGE / "analysis" / "profilers").glob("*.py"))]:
        if module_name(path) == PROCESS_MODULE:
            continue
        calls = process_calls(path.read_text())
        if calls:
            offenders[module_name(path)] = calls
    assert offenders == {}, "spawn, supervise and kill children through perfloop.measure.process"


def test_the_process_module_is_the_one_that_spawns():
    calls = process_calls((MEASURE / "process.py").read_text())
    assert any(c.startswith("subprocess.Popen") for c in calls)
    assert any(c.startswith("os.killpg") for c in calls)


def test_no_import_circle_among_measure_modules():
    graph = measure_graph()
    assert "perfloop.measure.protocol" in graph["perfloop.measure.callable"]   # the graph is read
    assert cycles(graph) == []


def test_the_former_circles_stay_broken():
    graph = measure_graph()
    for low, high in [("perfloop.measure.instructions", "perfloop.measure.callable"),
                      ("perfloop.measure.instructions", "perfloop.measure.command"),
                      ("perfloop.measure.progress", "perfloop.measure.runner"),
                      ("perfloop.measure.protocol", "perfloop.measure.callable")]:
        assert high not in graph[low], f"{low} imports {high}"


def test_one_protocol_error_class_in_perfloop():
    defined = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name == "ProtocolError":
                defined.append(module_name(path))
    assert defined == ["perfloop.measure.protocol"]
    from perfloop.measure.http import MalformedResponse
    from perfloop.measure.protocol import ProtocolError
    assert not issubclass(MalformedResponse, ProtocolError)


def test_measure_functions_and_files_are_short():
    long = []
    for path in measure_files():
        text = path.read_text()
        if len(text.splitlines()) > 600:
            long.append(f"{module_name(path)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 80:
                    long.append(f"{module_name(path)}.{node.name}: {length} lines")
    assert long == []
