"""How long ``perfloop audit`` takes on a long history, and whether what it reports is true.

A synthetic but realistic repository is generated with ``git fast-import`` (one process, a
few seconds): ``--commits`` commits (default 3000) over two years by six authors, touching a
package of 40 modules, their tests, docs and configuration, with the mix of messages a
Python service accumulates (features, fixes, refactors, docs, dependency bumps, and about 5%
performance changes). Some of those change tunable constants (``POOL_SIZE``, ``CACHE_SIZE``,
``TIMEOUT_S``...); releases are tagged every 60 commits. A perfloop store beside it holds
nightly runs of the suite at about a fifth of the recent commits, and a journal of the kind a
team writes: incidents closed with and without baselines, changes with and without a
hypothesis, one verified on wall time while peak RSS moved.

What was planted is known, so every finding can be checked against it: the script prints the
planted truth next to the audit's findings. Then ``perfloop audit`` runs as a whole process
(``--repeat`` times, default 3) for ``--since 90d`` and for ``--since 2y``; the medians are
printed with the load average.

    python benchmarks/audit_history.py [--commits 3000] [--repeat 3] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from perfloop.records import BenchmarkResult, ResultStatus, RunStatus, Sample  # noqa: E402
from perfloop.store import Store  # noqa: E402

AUTHORS = ["Ann Lee", "Bo Chen", "Cy Park", "Di Moss", "Ed Ruiz", "Flo Kim"]
MODULES = [f"svc/{area}/{name}.py" for area in ("api", "billing", "catalog", "orders", "search")
           for name in ("models", "views", "service", "queries", "cache", "tasks", "schemas", "utils")]
TUNABLES = {"svc/orders/service.py": "POOL_SIZE", "svc/catalog/cache.py": "CACHE_SIZE",
            "svc/api/views.py": "TIMEOUT_S", "svc/search/queries.py": "BATCH_SIZE"}
ORDINARY = ["Add {x} endpoint", "Fix {x} when the cart is empty", "Refactor {x} into smaller functions",
            "Rename {x} fields", "Handle missing {x} in the importer", "Log {x} failures",
            "Validate {x} input", "Bump {x} dependency", "Remove dead {x} code", "Type hints for {x}"]
DOCS = ["Document {x}", "README: {x} section", "Changelog for {x}"]
PERF = ["Speed up {x} lookups", "Optimize {x} serialization", "Faster {x} pagination",
        "Reduce allocations in {x}", "perf: memoize {x} rules"]
CONFIG = """[[benchmark]]
name = "checkout"
callable = "svc.orders.service:checkout"

[[benchmark]]
name = "search"
callable = "svc.search.queries:search"

[[parameter]]
name = "order pool"
file = "svc/orders/service.py"
key = "POOL_SIZE"
value = {pool}
why = "one connection per worker thread"
"""


def _module(path: str, version: int, tunable: int | None) -> str:
    name = TUNABLES.get(path)
    lines = [f'"""{path}: generated module, version {version}."""', ""]
    if name:
        lines += [f"{name} = {tunable}", ""]
    lines += [f"def handler_{i}(x):\n    return x * {version + i}\n" for i in range(8)]
    return "\n".join(lines)


def generate(root: Path, n: int, seed: int = 7) -> dict[str, Any]:
    """The repository, by fast-import; what was planted."""
    rng = random.Random(seed)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    start = datetime.now(timezone.utc) - timedelta(days=730)
    step = timedelta(days=730) / n
    values = {p: {"POOL_SIZE": 16, "CACHE_SIZE": 1024, "TIMEOUT_S": 30, "BATCH_SIZE": 100}[v]
              for p, v in TUNABLES.items()}
    versions = {p: 0 for p in MODULES}
    stream: list[bytes] = []
    planted: dict[str, Any] = {"perf": [], "tunable_changes": [], "dates": []}

    def blob(path: str, text: str) -> None:
        data = text.encode()
        stream.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")

    for i in range(n):
        when = start + step * i + timedelta(seconds=rng.randint(0, 3000))
        author = rng.choice(AUTHORS)
        email = author.split()[0].lower() + "@example.com"
        roll = rng.random()
        area = rng.choice(MODULES)
        x = area.split("/")[1]
        touched: dict[str, str] = {}
        if i == 0:
            message = "Initial service skeleton"
            for p in MODULES:
                touched[p] = _module(p, 0, values.get(p))
                touched["tests/test_" + p[4:].replace("/", "_")] = "def test():\n    pass\n"
            touched["perfloop.toml"] = CONFIG.format(pool=16)
            touched["README.md"] = "# svc\n"
        elif roll < 0.05:
            message = rng.choice(PERF).format(x=x)
            if rng.random() < 0.3:        # a tuning change: a constant moves
                path = rng.choice(sorted(TUNABLES))
                options = {"POOL_SIZE": [8, 16, 32, 64], "CACHE_SIZE": [512, 1024, 4096],
                           "TIMEOUT_S": [10, 30, 60], "BATCH_SIZE": [50, 100, 500]}[TUNABLES[path]]
                values[path] = rng.choice([v for v in options if v != values[path]])
                area = path
                planted["tunable_changes"].append((i, path, TUNABLES[path], values[path]))
            planted["perf"].append(i)
            versions[area] += 1
            touched[area] = _module(area, versions[area], values.get(area))
        elif roll < 0.17:
            message = rng.choice(DOCS).format(x=x)
            touched[f"docs/{x}.md"] = f"# {x}\n\nrevision {i}\n"
        else:
            message = rng.choice(ORDINARY).format(x=x)
            versions[area] += 1
            touched[area] = _module(area, versions[area], values.get(area))
            if rng.random() < 0.5:
                touched[f"tests/test_{x}.py"] = f"def test_{i}():\n    assert True\n"
        stamp = f"{int(when.timestamp())} +0000"
        header = (f"commit refs/heads/main\nmark :{i + 1}\nauthor {author} <{email}> {stamp}\n"
                  f"committer {author} <{email}> {stamp}\n")
        msg = message.encode()
        stream.append(header.encode() + f"data {len(msg)}\n".encode() + msg + b"\n")
        if i:
            stream.append(f"from :{i}\n".encode())
        for path, text in touched.items():
            blob(path, text)
        if i and i % 60 == 0:
            stream.append(f"reset refs/tags/v{i // 60}.0\nfrom :{i + 1}\n".encode())
        stream.append(b"\n")
        planted["dates"].append(when)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=b"".join(stream), check=True)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=root, check=True)
    planted["final_pool"] = values["svc/orders/service.py"]
    return planted


def fill_store(root: Path, url: str, planted: dict[str, Any], seed: int = 7) -> dict[str, Any]:
    """Nightly runs at about a fifth of the last 90 days' commits, and a journal."""
    rng = random.Random(seed)
    shas = subprocess.run(["git", "log", "--reverse", "--format=%H %aI"], cwd=root, check=True,
                          capture_output=True, text=True).stdout.split("\n")
    commits = [line.split() for line in shas if line]
    cutoff = datetime.now(timezone.utc) - timedelta(days=90)
    recent = [(s, datetime.fromisoformat(d)) for s, d in commits if datetime.fromisoformat(d) >= cutoff]
    runs, run_commits = [], []
    with Store.open(url) as store:
        for sha, _ in recent:
            if rng.random() > 0.2:
                continue
            run_id = store.begin_run(label="nightly", commit=sha, branch="main", dirty=False,
                                     environment={"fingerprint": "ci-runner"}, settings={}, project=str(root))
            for name in ("checkout", "search"):
                values = [rng.gauss(1.0, 0.01) for _ in range(6)]
                store.add_result(run_id, BenchmarkResult(
                    name=name, kind="callable", status=ResultStatus.OK, duration=20.0,
                    samples=tuple(Sample("wall_time", v, worker=k) for k, v in enumerate(values))))
            store.finish_run(run_id, RunStatus.COMPLETE)
            runs.append(run_id)
            run_commits.append(sha)
        good = store.add_change(title="prepare discount rules once per cart", workflow="profile-and-patch",
                                status="verified", hypothesis="rules rebuilt for every line",
                                expected={"benchmark": "checkout", "metric": "wall_time"},
                                actual={"verdict": "verified", "side_effects": []},
                                baseline_run_id=runs[0], verification_run_ids=[runs[1]])
        blind = store.add_change(title="bigger search batch", workflow="manual", status="done",
                                 hypothesis="fewer round trips", actual={"text": "search -10%"})
        guess = store.add_change(title="patched the slow report", workflow="profile-and-patch",
                                 status="verified", hypothesis=None, baseline_run_id=runs[2],
                                 actual={"verdict": "verified"})
        myopic = store.add_change(title="faster checkout", workflow="profile-and-patch", status="verified",
                                  hypothesis="copying carts", baseline_run_id=runs[3],
                                  expected={"benchmark": "checkout", "metric": "wall_time"},
                                  actual={"verdict": "verified", "side_effects": ["peak_rss +35% (regressed)"]})
    measured = {sha for sha, _ in recent} & set(run_commits)
    unmeasured = [commits[i][0] for i in planted["perf"]
                  if datetime.fromisoformat(commits[i][1]) >= cutoff and commits[i - 1][0] not in measured]
    return {"runs": len(runs), "unmeasured_perf_commits_90d": len(unmeasured), "clean_change": good, "missing_baseline": blind,
            "no_hypothesis": guess, "metric_myopia": myopic}


def time_audit(root: Path, url: str, since: str, repeat: int) -> tuple[list[float], dict[str, Any]]:
    times, report = [], {}
    for _ in range(repeat):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "perfloop", "audit", "--since", since, "--json",
                              "--store", url, "-C", str(root)], capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if out.returncode not in (0, 1):
            raise SystemExit(f"perfloop audit failed: {out.stderr}")
        report = json.loads(out.stdout)
    return times, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the repository here and keep it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="perfloop-audit-"))
    root = base / "repo"
    started = time.perf_counter()
    planted = generate(root, args.commits)
    url = f"sqlite:///{base / 'store.db'}"
    journal = fill_store(root, url, planted)
    built = time.perf_counter() - started
    result: dict[str, Any] = {"commits": args.commits, "build_seconds": round(built, 1),
                              "load_average": os.getloadavg(), "planted": {
                                  "performance_commits": len(planted["perf"]),
                                  "tunable_changes": planted["tunable_changes"],
                                  "final_pool": planted["final_pool"], **journal}}
    for since in ("90d", "2y"):
        times, report = time_audit(root, url, since, args.repeat)
        result[since] = {"seconds": [round(t, 2) for t in times],
                         "median": round(statistics.median(times), 2), "stats": report["stats"],
                         "findings": {f["pattern"]: {"subjects": len(f["subjects"]),
                                                     "evidence": f["evidence"]}
                                      for f in report["findings"]},
                         "resemblance": {r["workflow"]: r["score"] for r in report["resemblance"]}}
    result["load_average_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    print(json.dumps({k: v for k, v in result.items() if k not in ("90d", "2y")}, indent=1, default=str))
    for since in ("90d", "2y"):
        r = result[since]
        print(f"\n--since {since}: median {r['median']} s over {args.repeat} runs {r['seconds']}; "
              f"stats {r['stats']}")
        for pattern, f in r["findings"].items():
            print(f"  {pattern}: {f['subjects']} subjects")
            for line in f["evidence"]:
                print(f"      {line}")
        print(f"  resemblance {r['resemblance']}")


if __name__ == "__main__":
    main()
