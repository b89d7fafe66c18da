"""Tables read in pipes and CI logs (no terminal) at 80 and 60 columns: verdicts, statuses,
commits and labels are never cut, and ``COLUMNS`` is respected."""

from __future__ import annotations

import io
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from perfloop.records import BenchmarkResult, ResultStatus, RunStatus, Sample
from perfloop.store import Store
from perfloop.workflows.gate import BenchmarkOutcome, GateOptions, GateReport, MetricOutcome

LONG = "checkout_with_a_rather_long_benchmark_name[items=1000,mode=strict]"


def results(scale: float, seed: int) -> list[BenchmarkResult]:
    rng = random.Random(seed)
    out = []
    for name in (LONG, "parse"):
        samples = tuple(Sample(m, scale * (1 + rng.gauss(0, 0.3)), worker=w, index=i)
                        for m in ("wall_time", "cpu_time") for w in range(6) for i in range(3))
        out.append(BenchmarkResult(name=name, kind="callable", status=ResultStatus.OK, samples=samples))
    return out


@pytest.fixture
def stored(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'perfloop.db'}"
    with Store.open(url) as store:
        for i, scale in enumerate((1.0, 1.02)):
            run = store.begin_run(label=f"nightly-build-of-the-release-branch-{i}", commit=f"{i + 10:x}" * 20,
                                  branch="feature/a-very-long-branch-name-for-a-change", dirty=False,
                                  environment={"python": "3.11"}, settings={}, project=str(tmp_path))
            for result in results(scale, seed=i):
                store.add_result(run, result)
            store.finish_run(run, RunStatus.COMPLETE)
    return url


def perfloop(*args: str, columns: int, store: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PERFLOOP_STORE",)}
    env.update(COLUMNS=str(columns), PERFLOOP_STORE=store)
    proc = subprocess.run([sys.executable, "-m", "perfloop", *args, "-C", str(cwd)], capture_output=True,
                          text=True, env=env, timeout=300)     # stdout is a pipe, as in CI
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout


def check_width(text: str, columns: int) -> None:
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= columns, text


@pytest.mark.parametrize("columns", [80, 60])
def test_runs_and_compare_are_not_cut_in_a_pipe(stored: str, tmp_path: Path, columns: int) -> None:
    runs = perfloop("runs", columns=columns, store=stored, cwd=tmp_path)
    check_width(runs, columns)
    flat = runs.replace("\n", " ")
    for i in range(2):
        assert f"{i + 10:x}" * 5 in flat                  # the commit, whole (10 characters)
        assert "complete" in flat
        assert f"nightly-build-of-the-release-branch-{i}" in "".join(runs.split())
    compare = perfloop("compare", "1", "2", columns=columns, store=stored, cwd=tmp_path)
    check_width(compare, columns)
    verdicts = [w for w in ("inconclusive", "unchanged", "regressed", "improved") if w in compare]
    assert verdicts, compare
    assert "".join(LONG.split()) in "".join(compare.split())


def gate_report() -> GateReport:
    metric = MetricOutcome(benchmark=LONG, metric="wall_time", verdict="inconclusive", status="warn",
                           change=0.031, ci_low=-0.052, ci_high=0.118, base=0.0123, head=0.0127,
                           unit="s", more_workers=240)
    return GateReport(base_ref="origin/main", base_commit="a" * 40, head_ref="working tree",
                      head_commit="b" * 40, head_dirty=False, project="/p",
                      options=GateOptions(base="origin/main"),
                      benchmarks=(BenchmarkOutcome(name=LONG, status="warn", metrics=(metric,)),))


@pytest.mark.parametrize("columns", [80, 60, 40])
def test_gate_table_keeps_verdict_and_status_whole(monkeypatch, columns: int) -> None:
    from perfloop.cli import gate_cmds
    out = io.StringIO()
    monkeypatch.setattr(gate_cmds, "console", Console(file=out, width=columns, force_terminal=False))
    gate_cmds.render_gate(gate_report())
    text = out.getvalue()
    check_width(text, columns)
    assert "inconclusive" in text and " warn" in text
    # the name is folded, never cut: all its characters, in order
    assert re.search(".*?".join(map(re.escape, LONG)), text, re.S), text
