"""perfloop measuring a pytest-benchmark suite against pytest-benchmark itself, on the same tests.

A throw-away git repository holds one pytest-benchmark suite (``tests/benchmarks``: three
CPU-bound tests of about 1 ms) on three branches: ``base``; ``aa``, a comment-only change (A/A);
and ``slow``, where ``test_slowed`` does 10% more loop iterations (every iteration does the same
work, so the planted slowdown is 10%). Each pair puts ``base`` against ``aa`` or ``slow`` and asks
both tools, each with its own comparison:

- pytest-benchmark (its defaults): ``pytest --benchmark-only --benchmark-save`` on base, then on
  head ``--benchmark-compare --benchmark-compare-fail=mean:5%``; a test named under "Performance
  has regressed" is flagged.
- perfloop: ``perfloop gate --base base --head HEAD --json`` on the ``[[suite]]`` (balanced
  A B B A interleaving of fresh workers, adaptive sampling, FDR, confirmation); a benchmark whose
  status is ``fail`` is flagged. ``--metric`` picks what perfloop measures (wall_time by default,
  as pytest-benchmark does; cpu_time is perfloop's lever on a shared machine).

The tools alternate which goes first in each pair. Prints one line per pair and a summary, and
writes the raw rows as JSON with ``--json FILE``::

    python benchmarks/suite_vs_pytest_benchmark.py --pairs 2 --json benchmarks/results/suite-vs-pb.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
TESTS = ("test_steady", "test_other", "test_slowed")
SUITE = '''
def work(n):
    acc = 0
    table = {{}}
    for i in range(n):
        k = (i * 2654435761) & 1023
        table[k] = table.get(k, 0) + i
        acc = (acc + k * k) % 1000003
    return acc + len(table)

def test_steady(benchmark):
    benchmark(work, 3000)

def test_other(benchmark):
    benchmark(work, 2000)

def test_slowed(benchmark):
    benchmark(work, {n})   # {comment}
'''
BASE_N = 3000
GATE_ARGS: list[str] = []     # extra `perfloop gate` options (--gate-args)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
                          cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_repo(root: Path, metric: str) -> Path:
    repo = root / "repo"
    (repo / "tests" / "benchmarks").mkdir(parents=True)
    (repo / ".gitignore").write_text(".perfloop/\n.benchmarks/\n")
    (repo / "perfloop.toml").write_text(f'[[suite]]\npytest = "tests/benchmarks"\nmetrics = ["{metric}"]\n')
    suite = repo / "tests" / "benchmarks" / "test_work.py"
    git(repo, "init", "-q", "-b", "base")
    for branch, n, comment in (("base", BASE_N, "base"), ("aa", BASE_N, "a comment-only change"),
                               ("slow", round(BASE_N * 1.10), "10% more iterations")):
        if branch != "base":
            git(repo, "checkout", "-q", "-b", branch, "base")
        suite.write_text(SUITE.format(n=n, comment=comment))
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", branch)
    git(repo, "checkout", "-q", "base")
    return repo


def pytest_benchmark(repo: Path, head: str, pair: int) -> tuple[set[str], float]:
    """Flagged tests and wall seconds for pytest-benchmark's save + compare-fail on base vs head."""
    storage = repo.parent / f"pb-{pair}"
    started = time.perf_counter()
    git(repo, "checkout", "-q", "base")
    common = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/benchmarks", "--benchmark-only",
              f"--benchmark-storage={storage}"]
    subprocess.run([*common, "--benchmark-save=base"], cwd=repo, check=True, capture_output=True)
    git(repo, "checkout", "-q", head)
    proc = subprocess.run([*common, "--benchmark-compare", "--benchmark-compare-fail=mean:5%"],
                          cwd=repo, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    git(repo, "checkout", "-q", "base")
    text = proc.stdout + proc.stderr
    failed_lines = [line for line in text.split("Performance has regressed", 1)[-1].splitlines()
                    if "has failed" in line] if "Performance has regressed" in text else []
    flagged = {t for t in TESTS for line in failed_lines if re.search(rf"\b{t}\b", line)}
    if (proc.returncode != 0) != bool(flagged):
        raise RuntimeError(f"pytest-benchmark failed ({proc.returncode}): {text[-2000:]}")
    return flagged, seconds


def perfloop_gate(repo: Path, head: str, store: str) -> tuple[set[str], float, dict]:
    """Flagged tests and wall seconds for ``perfloop gate`` on base vs head."""
    git(repo, "checkout", "-q", head)
    started = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "PERFLOOP_STORE")}
    proc = subprocess.run([PYTHON, "-m", "perfloop", "gate", "--base", "base", "--head", "HEAD", "--json",
                           "--store", store, *GATE_ARGS], cwd=repo, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    git(repo, "checkout", "-q", "base")
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"perfloop gate failed ({proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    flagged = {b["name"].rsplit("::", 1)[-1] for b in report["benchmarks"] if b["status"] == "fail"}
    verdicts = {b["name"].rsplit("::", 1)[-1]: [(m.get("verdict"), m.get("change")) for m in b.get("metrics", [])]
                for b in report["benchmarks"]}
    return flagged, seconds, verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2, help="pairs per kind (A/A and 10%%)")
    parser.add_argument("--metric", default="wall_time", choices=("wall_time", "cpu_time"))
    parser.add_argument("--json", type=Path, help="write the raw rows here")
    parser.add_argument("--gate-args", default="", help="extra perfloop gate options, e.g. '--max-blocks 6'")
    args = parser.parse_args(argv)
    GATE_ARGS[:] = args.gate_args.split()
    rows = []
    with tempfile.TemporaryDirectory(prefix="suite-vs-pb-") as tmp:
        repo = make_repo(Path(tmp), args.metric)
        store = f"sqlite:///{Path(tmp) / 'perfloop.db'}"
        schedule = [(i, head) for i in range(args.pairs) for head in ("aa", "slow")]
        for index, (i, head) in enumerate(schedule):
            load = os.getloadavg()[0]
            order = ("pytest-benchmark", "perfloop") if index % 2 == 0 else ("perfloop", "pytest-benchmark")
            row: dict = {"pair": index, "head": head, "load": round(load, 2), "order": order}
            for tool in order:
                if tool == "pytest-benchmark":
                    flagged, seconds = pytest_benchmark(repo, head, index)
                    row["pytest-benchmark"] = {"flagged": sorted(flagged), "seconds": round(seconds, 1)}
                else:
                    flagged, seconds, verdicts = perfloop_gate(repo, head, store)
                    row["perfloop"] = {"flagged": sorted(flagged), "seconds": round(seconds, 1),
                                       "verdicts": verdicts}
            rows.append(row)
            print(f"pair {index} {head:4s} load {load:5.2f}  pytest-benchmark flagged "
                  f"{row['pytest-benchmark']['flagged']} in {row['pytest-benchmark']['seconds']} s; "
                  f"perfloop flagged {row['perfloop']['flagged']} in {row['perfloop']['seconds']} s",
                  flush=True)
    summary = {}
    for tool in ("pytest-benchmark", "perfloop"):
        aa = [r for r in rows if r["head"] == "aa"]
        slow = [r for r in rows if r["head"] == "slow"]
        summary[tool] = {
            "aa_false_alarms": f"{sum(len(r[tool]['flagged']) for r in aa)}/{len(aa) * len(TESTS)}",
            "slow_detected": f"{sum('test_slowed' in r[tool]['flagged'] for r in slow)}/{len(slow)}",
            "slow_false_alarms": f"{sum(len(set(r[tool]['flagged']) - {'test_slowed'}) for r in slow)}"
                                 f"/{len(slow) * (len(TESTS) - 1)}",
            "median_seconds": sorted(r[tool]["seconds"] for r in rows)[len(rows) // 2]}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"metric": args.metric, "gate_args": GATE_ARGS, "rows": rows,
                                         "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
