"""How long ``perfloop risk`` takes on a repository of a popular library's size.

The repository is built here from real code: the source of the SQLAlchemy that perfloop
depends on (about 260 modules, copied from site-packages) is committed, then ``--commits``
further commits (default 3000, written with ``git fast-import`` in one process) change it the
way a library's history does: most touch a changelog or docs, one in ten appends to a real
source file, so the churn of the touched files is real git work. A diff is then scored that
changes ``sqlalchemy/sql/elements.py``, which most of the package imports, and the same diff
again: the first call builds the import graph (grimp parses every module), the second reads
grimp's cache in ``.perfloop/import-graph``. Each is a whole ``perfloop risk --json
--no-coverage`` process, repeated ``--repeat`` times; the medians are printed with the load.

    python benchmarks/risk_scale.py [--commits 3000] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    return subprocess.run(["git", *args], cwd=repo, input=stdin, check=True, capture_output=True,
                          env={**os.environ, **IDENTITY}).stdout.decode()


def build(repo: Path, commits: int, seed: int = 7) -> int:
    import sqlalchemy
    source = Path(sqlalchemy.__file__).parent
    shutil.copytree(source, repo / "sqlalchemy", ignore=shutil.ignore_patterns("__pycache__", "*.so",
                                                                               "*.pyx", "*.c"))
    (repo / "perfloop.toml").write_text('[[benchmark]]\nname = "compile"\n'
                                        'callable = "sqlalchemy.sql.expression:select"\n')
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "import the library")
    modules = sorted(str(p.relative_to(repo)) for p in (repo / "sqlalchemy").rglob("*.py"))
    rng = random.Random(seed)
    texts = {m: (repo / m).read_bytes() for m in modules}
    stream = []
    when = int(time.time()) - commits * 3600
    for i in range(commits):
        when += 3600
        if i % 10 == 0:
            path = rng.choice(modules)
            texts[path] += f"# revision {i}\n".encode()
            blob, message = texts[path], f"tune {path}"
        else:
            path = rng.choice(["CHANGES.rst", "doc/build/changelog.rst", "doc/build/orm.rst"])
            blob, message = f"entry {i}\n".encode() * 3, f"docs: entry {i}"
        stream.append(b"commit refs/heads/main\n")
        stream.append(f"committer bench <bench@example.com> {when} +0000\n".encode())
        stream.append(f"data {len(message)}\n{message}\n".encode())
        if i == 0:
            stream.append(b"from refs/heads/main^0\n")
        stream.append(f"M 100644 inline {path}\ndata {len(blob)}\n".encode() + blob + b"\n")
    git(repo, "fast-import", "--quiet", stdin=b"".join(stream))
    git(repo, "reset", "-q", "--hard", "main")
    return len(modules)


def timed(repo: Path, args: list[str]) -> tuple[float, float, dict]:
    """Wall seconds and CPU seconds (user + sys of the process and its git children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "perfloop", "risk", "-C", str(repo), "--json",
                          "--no-coverage", *args], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commits", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="build the repository here and keep it")
    opts = ap.parse_args()
    work = opts.keep or Path(tempfile.mkdtemp(prefix="perfloop-risk-"))
    repo = work / "repo"
    t0 = time.perf_counter()
    modules = build(repo, opts.commits)
    print(f"repository: {modules} modules of SQLAlchemy, {opts.commits + 1} commits, "
          f"built in {time.perf_counter() - t0:.1f} s")
    target = repo / "sqlalchemy" / "sql" / "elements.py"
    target.write_text(target.read_text() + "\n_RISK_PROBE = 1\n")
    git(repo, "commit", "-qam", "change a module most of the package imports")
    cold, warm, cold_cpu, warm_cpu = [], [], [], []
    for _ in range(opts.repeat):
        shutil.rmtree(repo / ".perfloop" / "import-graph", ignore_errors=True)
        wall, cpu, result = timed(repo, ["--diff", "HEAD~1..HEAD", "--kind", "code path"])
        cold.append(wall)
        cold_cpu.append(cpu)
        wall, cpu, result = timed(repo, ["--diff", "HEAD~1..HEAD", "--kind", "code path"])
        warm.append(wall)
        warm_cpu.append(cpu)
    blast = result["blast_radius"]
    print(f"score {result['score']:.1f} ({result['level']}); blast radius {blast['affected']} of "
          f"{blast['modules']} modules ({blast['share']:.0%})")
    print(f"perfloop risk, whole process, median of {opts.repeat}: first call (graph built) "
          f"{statistics.median(cold):.2f} s wall, {statistics.median(cold_cpu):.2f} s CPU; "
          f"second (cached) {statistics.median(warm):.2f} s wall, "
          f"{statistics.median(warm_cpu):.2f} s CPU; load average {os.getloadavg()[0]:.1f}")
    if opts.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
