"""The regression gate: decisions with injected verdicts, and end to end on a real git repository.

The end-to-end tests build a repository with a tiny project (in a subdirectory, as in a
monorepo) whose benchmark returns a deterministic custom metric ``cost``: 100-104 units per
call at the base, 20% more after the planted regression. Verdicts are therefore known; wall
time is never asserted on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from perfloop.analysis.compare import Verdict
from perfloop.config import load_config
from perfloop.records import BenchmarkResult, ResultStatus, RunStatus, Sample
from perfloop.report.github import render_annotations
from perfloop.report.junit import render_junit
from perfloop.report.markdown import render_markdown
from perfloop.store import Store
from perfloop.workflows.approvals import (Approval, applicable, parse_trailers, record_approval)
from perfloop.workflows.gate import GateOptions, run_gate
from perfloop.workflows.interleave import SamplingPolicy

from gitutil import git
from verdictutil import made_verdict

MODULE = '''
FACTOR = {factor}
_calls = 0


def work():
    """Deterministic 'cost' that varies a little from call to call."""
    global _calls
    _calls += 1
    sum(i * i for i in range(200))
    return {{"cost": FACTOR * (100.0 + (_calls % 5))}}
'''

CONFIG = '''
[defaults]
processes = 2
values = 3
warmup = 1
min_time = 0.001

[[benchmark]]
name = "toy"
callable = "toymod:work"
metrics = ["cost"]
custom_metrics = { cost = { unit = "units", direction = "lower" } }
'''

FAST = ["--blocks", "2", "--max-blocks", "3", "--confirm-blocks", "2"]




def make_repo(repo: Path) -> dict[str, str]:
    """main: the base; aa: a README edit; slow: a 20% regression; slow-approved: slow plus a
    commit carrying the approval trailer. The working tree is left on ``slow``."""
    project = repo / "proj"
    project.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Ada")
    git(repo, "config", "user.email", "ada@example.com")
    (project / "toymod.py").write_text(MODULE.format(factor=1.0))
    (project / "perfloop.toml").write_text(CONFIG)
    (repo / "README.md").write_text("toy\n")
    (repo / ".gitignore").write_text(".perfloop/\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    shas = {"main": git(repo, "rev-parse", "HEAD")}
    git(repo, "checkout", "-q", "-b", "aa")
    (repo / "README.md").write_text("toy, documented\n")
    git(repo, "commit", "-q", "-am", "README only")
    shas["aa"] = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-q", "-b", "slow")
    (project / "toymod.py").write_text(MODULE.format(factor=1.2))
    git(repo, "commit", "-q", "-am", "toy: compute the cost twice over")
    shas["slow"] = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "slow-approved")
    git(repo, "commit", "-q", "--allow-empty", "-m",
        "Accept the slower toy\n\nPerf-Approved: toy: the extra work is the price of correctness")
    shas["slow-approved"] = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "slow")
    return shas


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("gate") / "repo"
    return root, make_repo(root)


def perfloop(project: Path, *args: str, store: str, env: dict | None = None
             ) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("PERFLOOP_STORE", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "perfloop", *args, "-C", str(project),
                           "--store", store], capture_output=True, text=True, env=full_env,
                          timeout=300)


# --------------------------------------------------------------------------------------------
# end to end


@pytest.mark.slow
def test_planted_regression_fails_and_is_reported_everywhere(repo, tmp_path: Path) -> None:
    root, shas = repo
    project = root / "proj"
    summary = tmp_path / "summary.md"
    md, xml = tmp_path / "gate.md", tmp_path / "gate.xml"
    proc = perfloop(project, "gate", "--base", "main", *FAST, "--markdown", str(md),
                    "--junit", str(xml), store=f"sqlite:///{tmp_path / 's.db'}",
                    env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "toy" in out and "regressed" in out
    assert "toy" in proc.stderr and "Error" in proc.stderr
    # GitHub: an error annotation naming the benchmark, and the job summary appended
    errors = [line for line in out.splitlines() if line.startswith("::error")]
    assert errors and "toy" in errors[0] and "cost" in errors[0]
    assert "perfloop gate failed" in summary.read_text()
    # Markdown and JUnit files
    text = md.read_text()
    assert "Unapproved regressions" in text and "| toy | cost |" in text.replace("❌ ", "")
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    case = suite.find("testcase")
    assert case is not None and case.get("name") == "toy"
    failure = case.find("failure")
    assert failure is not None and "cost" in failure.get("message", "")
    # the worktree is gone, the runs are stored with their commits
    assert not any((project / ".perfloop" / "worktrees").iterdir())
    assert git(root, "worktree", "list").count("\n") == 0
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        runs = {r.label: r for r in store.list_runs()}
    assert runs["gate-base"].commit == shas["main"]
    assert runs["gate-head"].commit == shas["slow"]
    assert "gate-confirm-head" in runs


@pytest.mark.slow
def test_approved_regression_passes_and_is_journaled(repo, tmp_path: Path) -> None:
    root, shas = repo
    project = root / "proj"
    store = f"sqlite:///{tmp_path / 's.db'}"
    proc = perfloop(project, "approve", "toy", "--reason", "correctness first: the cost is needed",
                    store=store)
    assert proc.returncode == 0, proc.stderr
    assert "Approved toy" in proc.stdout and "Ada <ada@example.com>" in proc.stdout
    proc = perfloop(project, "gate", "--base", "main", *FAST, store=store)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "approved" in proc.stdout and "correctness first" in proc.stdout
    listed = json.loads(perfloop(project, "approvals", "--json", store=store).stdout)
    assert listed[0]["benchmark"] == "toy" and listed[0]["commit"] == shas["slow"]
    with Store.open(store) as opened:
        changes = opened.changes()
    assert [(c.workflow, c.status) for c in changes] == [("regression", "approved")]
    assert "correctness first" in (changes[0].notes or "")


@pytest.mark.slow
def test_commit_trailer_approves(repo, tmp_path: Path) -> None:
    root, shas = repo
    proc = perfloop(root / "proj", "gate", "--base", "main", "--head", "slow-approved", *FAST, "--json",
                    store=f"sqlite:///{tmp_path / 's.db'}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    toy = report["benchmarks"][0]
    assert toy["status"] == "approved"
    approval = toy["metrics"][0]["approvals"][0]
    assert approval["source"] == "trailer" and approval["commit"] == shas["slow-approved"]
    assert "price of correctness" in approval["reason"]


@pytest.mark.slow
def test_aa_change_passes(repo, tmp_path: Path) -> None:
    root, _ = repo
    proc = perfloop(root / "proj", "gate", "--base", "main", "--head", "aa", "--blocks", "4",
                    "--max-blocks", "10", "--json", store=f"sqlite:///{tmp_path / 's.db'}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["passed"] is True
    # the same code on both sides, a cost of 100-104 per call: the paired blocks decide it,
    # and an unchanged verdict passes without a warning
    [toy] = report["benchmarks"]
    assert toy["metrics"][0]["verdict"] == "unchanged" and toy["status"] == "pass"


def test_bad_base_ref_is_a_usage_error(repo, tmp_path: Path) -> None:
    root, _ = repo
    proc = perfloop(root / "proj", "gate", "--base", "no-such-branch", store=f"sqlite:///{tmp_path / 's.db'}")
    assert proc.returncode == 2
    assert "no-such-branch" in proc.stderr and "fetch" in proc.stderr


# --------------------------------------------------------------------------------------------
# decisions with injected measurement and verdicts (no timing)


def V(benchmark: str, metric: str, verdict: str, change: float, p_value: float,
      ci_low: float = 0.0, ci_high: float = 0.0, **more) -> Verdict:
    return made_verdict(benchmark, metric, verdict, change, p_value, ci_low, ci_high, **more)


def fake_measure(spec, deadline, on_progress) -> BenchmarkResult:
    return BenchmarkResult(name=spec.name, kind=spec.kind, status=ResultStatus.OK,
                           samples=(Sample("cost", 1.0),), units={"cost": "units"})


def is_base(spec) -> bool:
    """Whether ``spec`` is rooted in the base commit's checkout (FACTOR 1.0 there)."""
    return "FACTOR = 1.0\n" in (Path(spec.root) / "toymod.py").read_text()


def suite_config(root: Path, names: list[str], metrics: str = '["cost"]'):
    (root / "perfloop.toml").write_text("\n".join(
        f'[[benchmark]]\nname = "{n}"\ncallable = "toymod:work"\nmetrics = {metrics}\n'
        f'custom_metrics = {{ cost = {{ unit = "units" }}, mem = {{ unit = "B" }} }}\n' for n in names))
    return load_config(root)


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "toymod.py").write_text(MODULE.format(factor=1.0))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    (repo / "toymod.py").write_text(MODULE.format(factor=1.01))
    git(repo, "commit", "-q", "-am", "head")
    return repo


def scripted(first: dict[tuple[str, str], tuple[str, float, float]],
             confirm: dict[tuple[str, str], tuple[str, float, float]] | None = None):
    """decide() from tables (benchmark, metric) -> (verdict, change, p); confirmation runs
    (more blocks than the first look) read ``confirm``."""
    def decide(base: BenchmarkResult, head: BenchmarkResult):
        table = first
        if confirm is not None and head.extra["interleaved"]["blocks"] > 1:
            table = confirm
        return [V(head.name, metric, *values) for (name, metric), values in table.items()
                if name == head.name]
    return decide


OPTS = dict(base="HEAD~1", head="HEAD", sampling=SamplingPolicy(blocks=1, max_blocks=1),
            confirm_blocks=2)


def test_fdr_demotes_a_marginal_regression_in_a_suite(small_repo: Path, store: Store) -> None:
    names = [f"b{i}" for i in range(10)]
    config = suite_config(small_repo, names)
    first = {(n, "cost"): ("unchanged", 0.0, 0.5) for n in names}
    first[("b3", "cost")] = ("regressed", 0.08, 0.009)    # adjusted: 0.009 * 10 = 0.09 > 0.05
    report = run_gate(config, store, GateOptions(**OPTS), measure=fake_measure, decide=scripted(first))
    b3 = next(b for b in report.benchmarks if b.name == "b3")
    assert b3.metrics[0].verdict == "inconclusive" and b3.status == "warn"
    assert b3.metrics[0].p_adjusted == pytest.approx(0.09)
    assert "not significant across the 10 comparisons" in b3.metrics[0].notes[-1]
    assert report.passed and report.comparisons == 10


def test_strong_regression_is_confirmed_and_fails(small_repo: Path, store: Store) -> None:
    names = [f"b{i}" for i in range(10)]
    config = suite_config(small_repo, names)
    first = {(n, "cost"): ("unchanged", 0.0, 0.5) for n in names}
    first[("b3", "cost")] = ("regressed", 0.2, 1e-6)
    confirm = {("b3", "cost"): ("regressed", 0.19, 1e-7)}
    report = run_gate(config, store, GateOptions(**OPTS), measure=fake_measure,
                      decide=scripted(first, confirm))
    assert not report.passed and report.exit_code == 1
    [failed] = report.failures
    assert failed.name == "b3" and failed.metrics[0].confirmed is True
    assert failed.confirmation is not None and failed.confirmation["blocks"] == 2
    assert "b3" in report.failure_message()


def test_unconfirmed_regression_passes(small_repo: Path, store: Store) -> None:
    config = suite_config(small_repo, ["only"])
    report = run_gate(config, store, GateOptions(**OPTS), measure=fake_measure,
                      decide=scripted({("only", "cost"): ("regressed", 0.3, 1e-6)},
                                      {("only", "cost"): ("unchanged", 0.01, 0.6)}))
    m = report.benchmarks[0].metrics[0]
    assert report.passed and m.verdict == "unchanged" and m.confirmed is False
    assert "not confirmed" in m.notes[-1]


class BlockRatios:
    """Calls in A B B A order whose head/base ratio per block is given: the first look's
    blocks, then the confirmation's. Base costs move from block to block (the machine), head
    follows with the block's ratio, so only the ratio carries the change."""

    def __init__(self, ratios: list[float]) -> None:
        self.ratios, self.calls = ratios, 0

    def __call__(self, spec, deadline, on_progress) -> BenchmarkResult:
        block, position = divmod(self.calls, 4)
        self.calls += 1
        # each call a little apart (positions 0 and 3 are base, 1 and 2 head: the same mean)
        level = 100.0 * (1.0 + 0.04 * (block % 3)) * (1.0 + 0.002 * position)
        cost = level if is_base(spec) else level * self.ratios[block]
        return BenchmarkResult(name=spec.name, kind=spec.kind, status=ResultStatus.OK,
                               samples=tuple(Sample("cost", cost, index=i) for i in range(3)),
                               units={"cost": "units"}, directions={"cost": "lower"})


POOLED = dict(base="HEAD~1", head="HEAD", sampling=SamplingPolicy(blocks=4, max_blocks=4),
              confirm_blocks=4)


def test_the_confirmation_judges_its_fresh_blocks_with_the_first_looks(
        small_repo: Path, store: Store) -> None:
    # First look +6% to +7.5%: regressed. Fresh blocks +3% to +5%: undecided on their own
    # (4 blocks), but they point the same way, and all 8 blocks together say regressed.
    first, fresh = [1.06, 1.075, 1.07, 1.065], [1.03, 1.05, 1.04, 1.045]
    config = suite_config(small_repo, ["toy"])
    report = run_gate(config, store, GateOptions(**POOLED), measure=BlockRatios(first + fresh))
    m = report.benchmarks[0].metrics[0]
    alone = report.benchmarks[0].confirmation["fresh_verdicts"][0]
    assert alone["verdict"] == "inconclusive" and 0.03 < alone["change"] < 0.05
    assert m.verdict == "regressed" and m.confirmed is True and not report.passed
    assert 0.04 < m.change < 0.07 and m.ci_low > 0.025
    assert "on all blocks" in m.notes[-1]


def test_a_lucky_first_look_is_not_confirmed_by_fresh_blocks_that_point_the_other_way(
        small_repo: Path, store: Store) -> None:
    first, fresh = [1.06, 1.075, 1.07, 1.065], [0.99, 0.985, 0.995, 0.98]
    config = suite_config(small_repo, ["toy"])
    report = run_gate(config, store, GateOptions(**POOLED), measure=BlockRatios(first + fresh))
    m = report.benchmarks[0].metrics[0]
    assert m.confirmed is False and m.verdict != "regressed" and report.passed
    assert "not confirmed" in m.notes[-1] and "fresh blocks alone -" in m.notes[-1]


def test_inconclusive_policy(small_repo: Path, store: Store) -> None:
    config = suite_config(small_repo, ["only"])
    decide = scripted({("only", "cost"): ("inconclusive", 0.04, 0.2)})
    warn = run_gate(config, store, GateOptions(**OPTS), measure=fake_measure, decide=decide)
    assert warn.passed and warn.benchmarks[0].status == "warn"
    fail = run_gate(config, store, GateOptions(**OPTS, on_inconclusive="fail"), measure=fake_measure,
                    decide=decide)
    assert not fail.passed
    quiet = run_gate(config, store, GateOptions(**OPTS, on_inconclusive="pass"), measure=fake_measure,
                     decide=decide)
    assert quiet.passed and quiet.benchmarks[0].status == "pass"


def test_side_effects_are_reported(small_repo: Path, store: Store) -> None:
    config = suite_config(small_repo, ["trade"], metrics='["cost", "mem"]')
    record_approval(store, Approval("trade", "memory is cheap for this cache", "Ada", None, metric="mem"))
    table = {("trade", "cost"): ("improved", -0.3, 1e-6), ("trade", "mem"): ("regressed", 0.5, 1e-6)}
    report = run_gate(config, store, GateOptions(**OPTS), measure=fake_measure,
                      decide=scripted(table, table))
    trade = report.benchmarks[0]
    assert trade.status == "approved" and report.passed
    assert trade.side_effects and "improved cost -30.0% but regressed mem +50.0%" in trade.side_effects[0]
    assert any("side effect" in line for line in render_annotations(report).splitlines())
    md = render_markdown(report)
    assert "Side effects" in md and "memory is cheap" in md
    suite = ET.fromstring(render_junit(report)).find("testsuite")
    assert suite is not None and suite.get("failures") == "0"


def test_a_benchmark_new_in_head_passes(small_repo: Path, store: Store) -> None:
    config = suite_config(small_repo, ["fresh"])

    def measure(spec, deadline, on_progress):
        if is_base(spec):     # the base checkout has no such benchmark
            return BenchmarkResult(name=spec.name, kind=spec.kind, status=ResultStatus.FAILED,
                                   error="ModuleNotFoundError: fresh")
        return fake_measure(spec, deadline, on_progress)

    report = run_gate(config, store, GateOptions(**OPTS), measure=measure,
                      decide=scripted({("fresh", "cost"): ("unchanged", 0.0, 0.5)}))
    assert report.passed and report.benchmarks[0].status == "new"


def test_a_benchmark_failing_at_head_fails(small_repo: Path, store: Store) -> None:
    config = suite_config(small_repo, ["broken"])

    def measure(spec, deadline, on_progress):
        if not is_base(spec):
            return BenchmarkResult(name=spec.name, kind=spec.kind, status=ResultStatus.FAILED,
                                   error="ZeroDivisionError")
        return fake_measure(spec, deadline, on_progress)

    report = run_gate(config, store, GateOptions(**OPTS), measure=measure,
                      decide=scripted({("broken", "cost"): ("unchanged", 0.0, 0.5)}))
    assert not report.passed and "ZeroDivisionError" in (report.benchmarks[0].error or "")


# --------------------------------------------------------------------------------------------
# approvals


def test_trailer_parsing() -> None:
    message = ("Speed up the cache\n\nLonger text.\n\nPerf-Approved: checkout: needs the copy for #12\n"
               "perf-approved: quote[items=10]: the new rounding is exact\nSigned-off-by: Ada\n")
    assert parse_trailers(message) == [("checkout", "needs the copy for #12"),
                                       ("quote[items=10]", "the new rounding is exact")]
    assert parse_trailers("Perf-Approved: no reason given") == []


def test_which_approvals_count() -> None:
    in_range = Approval("toy", "reason enough", "Ada", "c2")
    at_head = Approval("toy", "reason enough", "Ada", "c3")
    old = Approval("toy", "reason enough", "Ada", "c0")
    anywhere = Approval("toy", "reason enough", "Ada", None)
    counted = applicable([in_range, at_head, old, anywhere], head="c3", in_range=["c2", "c1"])
    assert counted == [in_range, at_head, anywhere]
    assert Approval("quote", "reason enough", "Ada", None).covers("quote[items=10]", "wall_time")
    assert not Approval("quote", "reason enough", "Ada", None, metric="peak_rss").covers("quote", "wall_time")


def test_an_undocumented_approval_is_refused(store: Store) -> None:
    from perfloop.errors import UsageError
    with pytest.raises(UsageError):
        record_approval(store, Approval("toy", "ok", "Ada", None))


def test_a_stored_base_run_clears_without_a_worktree(small_repo: Path, store: Store) -> None:
    from perfloop.measure.environment import fingerprint
    config = suite_config(small_repo, ["only"])
    base = git(small_repo, "rev-parse", "HEAD~1")
    run_id = store.begin_run(label="nightly", commit=base, branch="main", dirty=False,
                             environment=fingerprint(), settings={}, project=str(small_repo))
    store.add_result(run_id, BenchmarkResult(name="only", kind="callable", status=ResultStatus.OK,
                                             samples=tuple(Sample("cost", 1.0, worker=w) for w in range(4))))
    store.finish_run(run_id, RunStatus.COMPLETE)
    roots: list[str] = []

    def measure(spec, deadline, on_progress):
        roots.append(spec.root)
        return fake_measure(spec, deadline, on_progress)

    report = run_gate(config, store, GateOptions(**{**OPTS, "head": None}, reuse_base=True),
                      measure=measure, decide=scripted({("only", "cost"): ("unchanged", 0.0, 0.5)}))
    assert report.passed and report.benchmarks[0].source == f"stored run #{run_id}"
    assert roots == [str(small_repo)]          # head only, in the working tree; no base checkout
    # a stored base that does not clear the benchmark is measured interleaved after all
    roots.clear()
    report = run_gate(config, store, GateOptions(**{**OPTS, "head": None}, reuse_base=True),
                      measure=measure, decide=scripted({("only", "cost"): ("inconclusive", 0.0, 0.5)}))
    assert report.benchmarks[0].source == "interleaved" and len(roots) == 1 + 4


def test_each_benchmark_is_judged_at_its_own_tolerance(small_repo: Path, store: Store, monkeypatch) -> None:
    import perfloop.analysis.compare
    from perfloop.workflows.gate import make_decide
    (small_repo / "perfloop.toml").write_text(
        '[[benchmark]]\nname = "loose"\ncallable = "toymod:work"\nmetrics = ["cost"]\ntolerance = 0.2\n'
        'custom_metrics = { cost = { unit = "units" } }\n'
        '[[benchmark]]\nname = "strict"\ncallable = "toymod:work"\nmetrics = ["cost"]\n'
        'custom_metrics = { cost = { unit = "units" } }\n')
    seen: dict[str, float] = {}

    def compare_results(base, head, *, tolerance, confidence, metrics=None, **more):
        seen[head.name] = tolerance
        return [V(head.name, "cost", "unchanged", 0.0, 0.5)]

    # the gate's decide calls perfloop.analysis.compare.compare_results when it compares
    monkeypatch.setattr(perfloop.analysis.compare, "compare_results", compare_results)
    report = run_gate(load_config(small_repo), store, GateOptions(**OPTS), measure=fake_measure)
    assert report.passed and seen == {"loose": 0.2, "strict": 0.05}
    seen.clear()
    override = make_decide(0.1, 0.99, {"loose": 0.2})   # an override wins
    override(fake_measure(load_config(small_repo).benchmarks[0], None, None),
             fake_measure(load_config(small_repo).benchmarks[0], None, None))
    assert seen == {"loose": 0.1}


class BlockNoise:
    """Seeded cpu_time and wall_time per call: a shared effect per A B B A block (the load at
    the time), a little noise per worker; benchmarks named ``slow*`` are 20% slower at head."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.calls = 0
        self.shared = 0.0

    def __call__(self, spec, deadline, on_progress) -> BenchmarkResult:
        if self.calls % 4 == 0:
            self.shared = float(self.rng.normal(0.0, 0.05))
        self.calls += 1
        factor = 1.2 if spec.name.startswith("slow") and not is_base(spec) else 1.0
        samples = []
        for i in range(3):
            cpu = 1e-3 * factor * float(np.exp(self.shared + self.rng.normal(0.0, 0.01)))
            samples += [Sample("cpu_time", cpu, index=i), Sample("wall_time", cpu * 1.01, index=i)]
        return BenchmarkResult(name=spec.name, kind=spec.kind, status=ResultStatus.OK,
                               samples=tuple(samples), units={"cpu_time": "s", "wall_time": "s"})


def test_compare_on_the_gates_runs_gives_the_gates_verdicts(small_repo: Path, store: Store) -> None:
    from perfloop.analysis.comparison import compare_runs
    config = suite_config(small_repo, ["same", "slow"], metrics='["wall_time", "cpu_time"]')
    options = GateOptions(base="HEAD~1", head="HEAD", confirm_blocks=4,
                          sampling=SamplingPolicy(blocks=4, max_blocks=8))
    report = run_gate(config, store, options, measure=BlockNoise(5))
    gate = {(b.name, m.metric): m for b in report.benchmarks for m in b.metrics}
    assert gate[("same", "cpu_time")].verdict == "unchanged"
    assert gate[("slow", "cpu_time")].verdict == "regressed" and not report.passed
    assert gate[("same", "cpu_time")].deciding_metric == "cpu_time"
    assert gate[("same", "wall_time")].role == "context"

    def compared(base_label: str, head_label: str):
        cmp = compare_runs(store.get_run(report.run_ids[base_label]),
                           store.get_run(report.run_ids[head_label]))
        assert cmp.design == "interleaved" and not cmp.run_noise
        return {(v.benchmark, v.metric): v for v in cmp.verdicts}

    first = compared("gate-base", "gate-head")
    m = gate[("same", "cpu_time")]
    v = first[("same", "cpu_time")]
    assert (v.verdict.value, v.change, v.ci_low, v.ci_high) == pytest.approx(
        (m.verdict, m.change, m.ci_low, m.ci_high))
    assert first[("slow", "cpu_time")].verdict.value == "regressed"
    # the confirmation's fresh blocks are stored as runs of their own; compare on them gives
    # what the gate found in those blocks alone (the gate's final word pools them with the first)
    confirm = compared("gate-confirm-base", "gate-confirm-head")
    m, v = gate[("slow", "cpu_time")], confirm[("slow", "cpu_time")]
    assert m.confirmed is True
    slow = next(b for b in report.benchmarks if b.name == "slow")
    alone = next(a for a in slow.confirmation["fresh_verdicts"] if a["metric"] == "cpu_time")
    assert (v.verdict.value, v.change, v.ci_low, v.ci_high) == pytest.approx(
        (alone["verdict"], alone["change"], alone["ci_low"], alone["ci_high"]))
    # runs of two different measurements are separate runs: drift is added
    mixed = compare_runs(store.get_run(report.run_ids["gate-base"]),
                         store.get_run(report.run_ids["gate-confirm-head"]))
    assert mixed.design == "separate" and mixed.run_noise


def test_the_gate_commands_defaults_are_the_workflows() -> None:
    import typer.main
    from perfloop.cli.app import app
    command = typer.main.get_command(app).commands["gate"]   # type: ignore[attr-defined]
    given = {p.name: p.default for p in command.params}
    built = GateOptions.build("main", blocks=given["blocks"], max_blocks=given["max_blocks"],
                              max_seconds=given["max_seconds"],
                              confirm_blocks=given["confirm_blocks"], q=given["fdr"],
                              confidence=given["confidence"], tolerance=given["tolerance"],
                              on_inconclusive=given["on_inconclusive"].value,
                              reuse_base=given["reuse_base"],
                              max_base_age_hours=given["max_base_age"])
    assert built == GateOptions(base="main")
    # a cost limit below the first look is raised to it; a bad value is a usage error
    assert GateOptions.build("main", blocks=6, max_blocks=2).sampling.max_blocks == 6
    from perfloop.errors import UsageError
    with pytest.raises(UsageError):
        GateOptions.build("main", max_seconds=0.0)


def test_side_effect_rules_shared_with_verify() -> None:
    from perfloop.analysis.side_effects import side_effects

    def moved(bench: str, metric: str, kind: str, change: float, unit: str = "s") -> Verdict:
        return made_verdict(bench, metric, kind, change, unit=unit)

    # one benchmark: time bought with memory, said once (not again as a cross-benchmark trade)
    same = side_effects([moved("cache", "wall_time", "improved", -0.3),
                         moved("cache", "peak_rss", "regressed", 0.5, "B")])
    assert same == ["improved wall_time -30.0% but regressed peak_rss +50.0% (time bought with "
                    "memory): judge the trade, not the improvement alone"]
    # two benchmarks: a latency-for-memory trade across them, and nothing within either
    across = side_effects([moved("checkout", "wall_time", "improved", -0.2),
                           moved("report", "peak_rss", "regressed", 0.09, "B")],
                          name_benchmarks=True)
    assert len(across) == 1 and across[0].startswith(
        "trades latency for memory: faster (wall_time -20.0% (checkout)) but more memory "
        "(peak_rss +9.0% (report))")
    # a median that held hides a worse tail; p90 is not the tail
    tail = side_effects([moved("api", "latency_p50", "unchanged", 0.002),
                         moved("api", "latency_p90", "regressed", 0.1),
                         moved("api", "latency_p99", "regressed", 0.3)], name_benchmarks=True)
    assert tail == ["api: the median held (+0.2%) but the tail got worse: latency_p99 +30.0%"]
    assert side_effects([moved("api", "latency_p50", "regressed", 0.1),
                         moved("api", "latency_p99", "regressed", 0.3)]) == []
    assert side_effects([moved("a", "wall_time", "unchanged", 0.0)]) == []
