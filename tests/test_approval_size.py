"""An approval approves what was measured: a clearly larger regression fails again, and
approved regressions are always shown with who and why.

Verdicts are scripted (a known change and interval per gate), so the right answer is known;
the repository, the store and the approvals are real.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perfloop.config import load_config
from perfloop.records import BenchmarkResult, ResultStatus, Sample
from perfloop.report.markdown import render_markdown
from perfloop.store import Store
from perfloop.workflows.approvals import Approval, list_approvals, parse_up_to, record_approval
from perfloop.workflows.gate import GateOptions, run_gate
from perfloop.workflows.interleave import SamplingPolicy

from gitutil import git
from verdictutil import made_verdict as V

OPTIONS = GateOptions(base="HEAD~1", head="HEAD", sampling=SamplingPolicy(blocks=1, max_blocks=1),
                      confirm_blocks=2)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "toymod.py").write_text("def work():\n    return {'cost': 1.0, 'mem': 1.0}\n")
    (repo / "perfloop.toml").write_text(
        '[[benchmark]]\nname = "toy"\ncallable = "toymod:work"\nmetrics = ["cost", "mem"]\n'
        'custom_metrics = { cost = { unit = "units" }, mem = { unit = "B" } }\n')
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    (repo / "toymod.py").write_text("def work():\n    return {'cost': 1.2, 'mem': 1.0}\n")
    git(repo, "commit", "-q", "-am", "slower")
    return repo


def measure(spec, deadline, on_progress) -> BenchmarkResult:
    return BenchmarkResult(name=spec.name, kind=spec.kind, status=ResultStatus.OK,
                           samples=(Sample("cost", 1.0), Sample("mem", 1.0)),
                           units={"cost": "units", "mem": "B"})


def decide(cost: tuple[float, float, float], mem: str = "unchanged"):
    """Every look (first and confirmation) sees ``cost`` = (change, low, high) regressed."""
    def run(base, head):
        return [V(head.name, "cost", "regressed", cost[0], 1e-9, cost[1], cost[2]),
                V(head.name, "mem", mem, 0.0, 0.5, -0.2, 0.2)]
    return run


def approve(store: Store, repo: Path, **data) -> Approval:
    return record_approval(store, Approval(benchmark="toy", reason="correctness fix needs the copy",
                                           author="Ada <ada@example.com>",
                                           commit=git(repo, "rev-parse", "HEAD"), data=data))


def test_a_clearly_larger_regression_fails_again(repo: Path, store: Store) -> None:
    config = load_config(repo)
    approve(store, repo)
    first = run_gate(config, store, OPTIONS, measure=measure, decide=decide((0.20, 0.18, 0.22)))
    assert first.passed and first.benchmarks[0].status == "approved"
    [stored] = list_approvals(store)
    assert stored.approved_size("toy", "cost")["ci_high"] == pytest.approx(0.22)

    # the same change measured again, a little larger but not clearly: still approved
    again = run_gate(config, store, OPTIONS, measure=measure, decide=decide((0.21, 0.19, 0.23)))
    assert again.passed
    # a later commit of the same change makes it 65% slower: not what was approved
    worse = run_gate(config, store, OPTIONS, measure=measure, decide=decide((0.648, 0.60, 0.70)))
    assert not worse.passed
    [metric] = [m for m in worse.failures[0].metrics if m.metric == "cost"]
    assert metric.status == "fail" and not metric.approvals
    assert any("clearly larger" in n and "+20.0%" in n and "+64.8%" in n for n in metric.notes)
    # the recorded size is what was first reviewed, not the latest
    assert list_approvals(store)[0].approved_size("toy", "cost")["change"] == pytest.approx(0.20)


def test_a_stated_limit_is_kept(repo: Path, store: Store) -> None:
    approve(store, repo, up_to=0.25)
    report = run_gate(load_config(repo), store, OPTIONS, measure=measure,
                      decide=decide((0.32, 0.30, 0.35)))
    assert not report.passed
    assert any("approved up to +25.0%" in n for m in report.failures[0].metrics for n in m.notes)
    assert parse_up_to("the copy is needed, up to 25% slower") == pytest.approx(0.25)


def test_an_approval_is_shown_when_another_metric_is_inconclusive(repo: Path, store: Store) -> None:
    approve(store, repo)
    report = run_gate(load_config(repo), store, OPTIONS, measure=measure,
                      decide=decide((0.20, 0.18, 0.22), mem="inconclusive"))
    assert report.passed and report.benchmarks[0].status == "warn"
    assert "approved" in report.summary()
    text = render_markdown(report)
    assert "### Approved regressions" in text
    section = text.split("### Approved regressions", 1)[1].split("###", 1)[0]
    assert "correctness fix needs the copy" in section and "Ada" in section and "cost" in section
