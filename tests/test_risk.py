"""Risk scores of real diffs in real git repositories built here.

The repository is a small package whose ``core`` module most others import, with a settings
file, SQL migrations and two declared fault boundaries. Four changes of rising risk are made
on branches of one base commit; the known answer is their order (a one-line config change <
an index migration < an algorithm swap in ``core`` < a concurrency change across boundaries),
and that every score is the sum of its factors.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from perfloop.analysis.risk import RiskInputs, RiskPolicy, score
from perfloop.config import load_config
from perfloop.errors import ConfigError, UsageError
from perfloop.measure.diff import read_diff
from perfloop.workflows.risk import assess

from gitutil import git


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write(root, "pkg/__init__.py", "")
    write(root, "pkg/core.py", """
        def total(xs):
            out = 0
            for x in xs:
                out += x
            return out
    """)
    for name in ("a", "b", "c", "d", "e"):
        write(root, f"pkg/{name}.py", f"""
            from pkg.core import total

            def run_{name}():
                return total(range(100))
        """)
    write(root, "pkg/db.py", "POOL = 4\n\ndef connect():\n    return POOL\n")
    write(root, "pkg/workers.py", "from pkg.db import connect\n\ndef start():\n    return connect()\n")
    write(root, "settings.toml", "cache_size = 128\npool = 4\n")
    write(root, "migrations/0001_init.sql", "CREATE TABLE orders (id INTEGER);\n")
    write(root, "perfloop.toml", """
        [[benchmark]]
        name = "a"
        callable = "pkg.a:run_a"

        [risk.boundaries]
        storage = ["pkg/db.py", "migrations/*"]
        compute = ["pkg/core.py", "pkg/workers.py"]
    """)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root


def change(root: Path, branch: str, edits: dict[str, str]) -> str:
    git(root, "checkout", "-q", "-b", branch, "main")
    for rel, text in edits.items():
        write(root, rel, text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", branch)
    git(root, "checkout", "-q", "main")
    return f"main..{branch}"


CORE_SWAP = """
    import math

    def total(xs):
        return math.fsum(xs)
"""
WORKERS_THREADS = """
    from concurrent.futures import ThreadPoolExecutor
    from pkg.db import connect

    def start(n=8):
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(lambda _: connect(), range(n)))
"""


def every_file(config) -> set[str]:
    return {str(p.resolve()) for p in config.root.rglob("*.py")}


def test_scores_rise_with_what_the_change_touches(repo: Path) -> None:
    config = load_config(repo)
    cases = {
        "config": ("config", {"settings.toml": "cache_size = 4096\npool = 4\n"}),
        "index": ("index", {"migrations/0002_index.sql": "CREATE INDEX ix_orders ON orders (id);\n"}),
        "algorithm": ("algorithm", {"pkg/core.py": CORE_SWAP}),
        "concurrency": ("concurrency", {"pkg/workers.py": WORKERS_THREADS,
                                        "pkg/db.py": "POOL = 32\n\ndef connect():\n    return POOL\n"}),
    }
    scores = {}
    for name, (kind, edits) in cases.items():
        found = assess(config, diff=change(repo, name, edits), kind=kind, coverage=every_file)
        total = sum(f.points for f in found.score.factors)
        assert found.score.score == pytest.approx(total), name      # the factors add up
        scores[name] = found
    order = [scores[n].score.score for n in ("config", "index", "algorithm", "concurrency")]
    assert order == sorted(order) and len(set(order)) == 4, order
    assert scores["config"].score.level == "low" and scores["config"].reversibility == "config"
    assert scores["index"].reversibility == "irreversible"
    # most of the package imports core: the algorithm swap's blast radius says so
    assert scores["algorithm"].blast.share > 0.6 and "pkg.core" in scores["algorithm"].blast.touched
    assert scores["concurrency"].boundaries == ("compute", "storage")
    crossing = {f.name: f for f in scores["concurrency"].score.factors}["fault boundaries"]
    assert crossing.points > 0 and "crosses compute, storage" in crossing.detail


def test_a_change_no_benchmark_exercises_scores_higher(repo: Path) -> None:
    config = load_config(repo)
    diff = change(repo, "swap", {"pkg/core.py": CORE_SWAP})
    covered = assess(config, diff=diff, kind="algorithm", coverage=every_file)
    uncovered = assess(config, diff=diff, kind="algorithm", coverage=lambda c: set())
    assert uncovered.score.score > covered.score.score
    assert uncovered.uncovered == ("pkg/core.py",) and covered.uncovered == ()


@pytest.mark.slow
def test_coverage_is_measured_by_profiling_the_benchmarks(repo: Path) -> None:
    config = load_config(repo)
    # the benchmark runs pkg.a and pkg.core; pkg.workers is exercised by none
    touched = assess(config, diff=change(repo, "w", {"pkg/workers.py": WORKERS_THREADS,
                                                     "pkg/core.py": CORE_SWAP}), kind="code path")
    assert touched.uncovered == ("pkg/workers.py",)


def test_the_working_tree_is_scored_when_no_range_is_given(repo: Path) -> None:
    (repo / "settings.toml").write_text("cache_size = 256\npool = 4\n")
    (repo / "pkg" / "new.py").write_text("X = 1\n")
    facts = read_diff(repo)
    assert facts.spec == "working tree"
    assert sorted(facts.paths) == ["pkg/new.py", "settings.toml"]
    assert facts.added == 2 and facts.deleted == 1
    assert facts.lines_before == 2            # settings.toml had 2 lines; new.py none


def test_diffusion_measures_follow_kamei() -> None:
    from perfloop.measure.diff import DiffFacts, FileChange
    facts = DiffFacts("x", None, (FileChange("a/x.py", 10, 0, 0), FileChange("b/c/y.py", 10, 0, 0)))
    assert facts.subsystems == 2 and facts.directories == 2
    assert facts.entropy == pytest.approx(1.0)     # changed lines evenly across two files
    one = DiffFacts("x", None, (FileChange("a/x.py", 30, 0, 0), FileChange("a/y.py", 10, 0, 0)))
    assert 0 < one.entropy < 1 and one.subsystems == 1


def test_past_regressions_against_the_touched_files_add_to_the_score(repo: Path, store) -> None:
    config = load_config(repo)
    diff = change(repo, "swap", {"pkg/core.py": CORE_SWAP})
    before = assess(config, diff=diff, kind="algorithm", store=store, coverage=every_file)
    sha = git(repo, "rev-parse", "swap")
    store.add_change(title="core got slower", workflow="regression", status="regressed",
                     actual={"verdict": "regressed"}, commits=[sha])
    after = assess(config, diff=diff, kind="algorithm", store=store, coverage=every_file)
    history = {f.name: f for f in after.score.factors}["history"]
    assert after.score.score > before.score.score and "1 past regressions" in history.detail


def test_bad_input_is_refused_with_the_fix(repo: Path) -> None:
    config = load_config(repo)
    with pytest.raises(UsageError, match="unknown kind 'rewrite'"):
        assess(config, diff=change(repo, "k", {"settings.toml": "pool = 5\n"}), kind="rewrite")
    with pytest.raises(UsageError, match="--diff"):
        assess(config, diff="nosuchbranch..main", kind="config")
    with pytest.raises(UsageError, match="nothing changed"):
        assess(config, kind="config")
    (repo / "perfloop.toml").write_text((repo / "perfloop.toml").read_text()
                                        + "\n[risk.kinds]\nrewrite = 50\n")
    with pytest.raises(ConfigError, match="unknown kind 'rewrite'"):
        assess(load_config(repo), diff="main..k", kind="config")


def test_the_policy_sets_levels_and_weights() -> None:
    inputs = RiskInputs(kind="concurrency", lines_changed=400, lines_before=3000, files=6,
                        directories=4, subsystems=3, entropy=0.9, blast_share=0.8,
                        boundaries_touched=("a", "b"), reversibility="irreversible",
                        recent_commits=30, past_incidents=3, python_files=4,
                        uncovered_python_files=4)
    worst = score(inputs)
    assert worst.level == "high" and worst.score <= 100
    lenient = RiskPolicy().with_overrides({"high_from": 99, "kinds": {"concurrency": 5}})
    relaxed = score(inputs, lenient)
    assert relaxed.level == "medium" and relaxed.score == pytest.approx(worst.score - 20)


def test_every_kind_of_change_has_a_base_risk() -> None:
    from perfloop.analysis.risk import KINDS
    from perfloop.records import CHANGE_KINDS
    assert set(KINDS) == set(CHANGE_KINDS)


def test_a_single_commit_is_a_diff_the_root_commit_included(repo: Path) -> None:
    first = read_diff(repo, git(repo, "rev-list", "--max-parents=0", "HEAD"))
    assert "pkg/core.py" in first.paths and first.deleted == 0 and first.lines_before == 0
    change(repo, "one", {"settings.toml": "cache_size = 1\npool = 4\n"})
    single = read_diff(repo, "one")
    assert single.paths == ("settings.toml",) and single.added == 1 and single.deleted == 1


def test_the_import_graph_is_cached_between_calls(repo: Path) -> None:
    import json
    config = load_config(repo)
    diff = change(repo, "swap", {"pkg/core.py": CORE_SWAP})
    cache = repo / ".perfloop" / "import-graph"
    assert not cache.exists()
    first = assess(config, diff=diff, kind="algorithm", coverage=every_file)
    assert first.blast.modules == 9 and len(first.blast.affected) == 6   # core and a..e
    # the cache is read, not rebuilt: with the source unchanged, an edit made to the cached
    # imports alone (pkg.a no longer imports pkg.core) shows in the second call's blast radius
    [data] = cache.glob("*.data.json")
    graph = json.loads(data.read_text())
    graph["imports_by_module"]["pkg.a"] = []
    data.write_text(json.dumps(graph))
    second = assess(config, diff=diff, kind="algorithm", coverage=every_file)
    assert len(second.blast.affected) == 5 and "pkg.a" not in second.blast.affected
