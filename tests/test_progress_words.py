"""Progress lines and reports in words a user understands: full parametrised names, block
counts that say why they grow, no internal jargon for why sampling stopped."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from perfloop.cli.progress import RichProgress
from perfloop.config import load_config
from perfloop.records import BenchmarkResult, ResultStatus, Sample
from perfloop.report.markdown import render_markdown
from perfloop.store import Store
from perfloop.workflows.gate import GateOptions, run_gate
from perfloop.workflows.interleave import SamplingPolicy

from gitutil import git
from verdictutil import made_verdict as V


def test_progress_shows_the_full_parametrised_name() -> None:
    out = io.StringIO()
    progress = RichProgress(Console(file=out, width=80, force_terminal=False))
    progress.run_started([], 1.0)
    for items in (10, 100):
        progress.benchmark_finished(BenchmarkResult(
            name=f"checkout[items={items}]", kind="callable", status=ResultStatus.OK,
            samples=(Sample("wall_time", 1.0),), duration=1.0))
    progress.close()
    text = out.getvalue()
    assert "checkout[items=10]" in text and "checkout[items=100]" in text


def test_gate_progress_says_why_blocks_are_added_and_why_it_stopped(tmp_path: Path,
                                                                    store: Store) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "toymod.py").write_text("def work():\n    return {'cost': 1.0}\n")
    (repo / "perfloop.toml").write_text('[[benchmark]]\nname = "toy"\ncallable = "toymod:work"\n'
                                        'metrics = ["cost"]\ncustom_metrics = { cost = { unit = "units" } }\n')
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "commit", "-q", "--allow-empty", "-m", "head")

    def measure(spec, deadline, on_progress):
        return BenchmarkResult(name=spec.name, kind=spec.kind, status=ResultStatus.OK,
                               samples=(Sample("cost", 1.0),), units={"cost": "units"})

    def decide(base, head):
        # inconclusive, and deciding would take far more workers than the limit allows
        return [V(head.name, "cost", "inconclusive", more_workers=10_000)
                if head.extra["interleaved"]["blocks"] >= 3 else
                V(head.name, "cost", "inconclusive", more_workers=2)]

    events: list[str] = []
    report = run_gate(load_config(repo), store,
                      GateOptions(base="HEAD~1", head="HEAD",
                                  sampling=SamplingPolicy(blocks=2, max_blocks=8, patience=3,
                                                          hopeless_after=0.0)),
                      measure=measure, decide=decide, on_event=events.append)
    blocks = [e for e in events if "block" in e]
    assert "toy: block 1 of 2" in blocks and "toy: block 3 of 3" in blocks
    assert any("still inconclusive after 2 blocks: measuring 1 more (at most 8 blocks" in e
               for e in blocks), blocks
    text = render_markdown(report)
    assert "hopeless" not in text and "far more blocks than the limit allows" in text
