"""What README.md promises, each checked: the quick start's benchmarks come out ``ok``; the
progress of a run (a bar with an ETA on a terminal, one line per benchmark in a log);
``compare`` shows environment differences before its verdicts; a command benchmark's
``peak_rss`` is that of its whole process tree; the library example runs as written.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cliutil import invoke
from rich.console import Console

from perfloop.cli.progress import RichProgress
from perfloop.config import BenchmarkSpec, Settings, load_config
from perfloop.measure.command import measure_command
from perfloop.records import BenchmarkResult, ResultStatus, RunStatus, Sample
from perfloop.store import Store

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
SHOP = REPO / "examples" / "shop"


# -- the quick start ----------------------------------------------------------------------------

@pytest.mark.slow
def test_the_quick_start_benchmarks_come_out_ok(tmp_path: Path) -> None:
    # README: `perfloop run -C examples/shop`, on a copy so the repository's store stays untouched
    assert "perfloop run -C examples/shop" in README
    shop = tmp_path / "shop"
    shutil.copytree(SHOP, shop, ignore=shutil.ignore_patterns(".perfloop", "__pycache__", "var"))
    env = {k: v for k, v in os.environ.items() if k != "PERFLOOP_STORE"}
    done = subprocess.run([sys.executable, "-m", "perfloop", "run", "-C", str(shop), "--json"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(done.stdout)
    assert run["status"] == "complete"
    statuses = {r["name"]: r["status"] for r in run["results"]}
    assert set(statuses) == {spec.name for spec in load_config(shop).benchmarks}
    assert [name for name, status in statuses.items() if status != "ok"] == [], \
        {r["name"]: r["error"] for r in run["results"] if r["status"] != "ok"}


# -- progress -----------------------------------------------------------------------------------

def _progress_output(terminal: bool) -> str:
    """Two benchmarks of equal estimated cost, the first ok, the second failed."""
    out = io.StringIO()
    progress = RichProgress(Console(file=out, width=80, force_terminal=terminal))
    specs = [BenchmarkSpec(name=name, base_name=name, kind="callable", settings=Settings(),
                           metrics=("wall_time",), callable="m:f", root=".") for name in ("alpha", "beta")]
    progress.run_started(specs, 2.0)
    for i, spec in enumerate(specs):
        progress.benchmark_started(spec, i, len(specs))
        progress.update(spec, 0.5)
        progress.bar.refresh()
        progress.benchmark_finished(BenchmarkResult(
            name=spec.name, kind="callable", status=ResultStatus.OK if i == 0 else ResultStatus.FAILED,
            samples=(Sample("wall_time", 1.0),), duration=1.5, error=None if i == 0 else "boom"))
    progress.run_finished(None)
    return out.getvalue()


def test_on_a_terminal_the_run_shows_a_bar_with_an_eta() -> None:
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", _progress_output(terminal=True))
    # halfway through the first of two equal benchmarks: a quarter of the run
    assert re.search(r"\[1/2\] alpha .*━.* 25% .*ETA", shown), shown
    assert re.search(r"\[2/2\] beta .*━.* 75% .*ETA", shown), shown
    assert "ok alpha (1.5 s)" in shown and "failed beta (1.5 s)" in shown


def test_in_a_log_the_run_prints_one_plain_line_per_benchmark() -> None:
    # no terminal (CI): no bar redrawn with control codes, the outcome of each benchmark instead
    assert _progress_output(terminal=False).splitlines() == ["  ok alpha (1.5 s)", "  failed beta (1.5 s)", ""]


# -- compare: environment differences first ------------------------------------------------------

def _stored(store: Store, cpu: str, level: float) -> int:
    run_id = store.begin_run(label=None, commit=None, branch=None, dirty=False,
                             environment={"cpu_model": cpu, "cpu_count": 8}, settings={}, project="p")
    store.add_result(run_id, BenchmarkResult(
        name="quote", kind="callable", status=ResultStatus.OK,
        samples=tuple(Sample("wall_time", level * (1 + (w % 3) / 200), worker=w) for w in range(8))))
    store.finish_run(run_id, RunStatus.COMPLETE)
    return run_id


def test_compare_shows_environment_differences_before_the_verdicts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "environment differences first" in README
    db = tmp_path / "s.db"
    with Store.open(str(db)) as store:
        base, head = _stored(store, "Machine A", 1.0), _stored(store, "Machine B", 1.3)
    code, out, _err = invoke(capsys, "compare", str(base), str(head), "--store", str(db), "-C", str(tmp_path))
    assert code == 0, out
    flat = " ".join(out.split())
    differ = flat.index("environments differ")
    assert flat.index("cpu_model: Machine A -> Machine B") > differ
    assert differ < flat.index("quote") and differ < flat.index("regressed")


# -- commands: the whole process tree's memory ---------------------------------------------------

CHILD = "import time; x = bytearray(80_000_000); x[::4096] = b'1' * len(x[::4096]); time.sleep(0.6)"


def test_a_command_s_peak_rss_counts_the_memory_of_its_children(tmp_path: Path) -> None:
    # the command itself allocates nothing; two children hold 80 MB each at the same time, so
    # the tree holds at least 160 MB while no single process holds more than about 90 MB
    parent = textwrap.dedent(f"""
        import subprocess, sys
        kids = [subprocess.Popen([sys.executable, "-c", {CHILD!r}]) for _ in range(2)]
        sys.exit(max(k.wait() for k in kids))
    """)
    spec = BenchmarkSpec(name="tree", base_name="tree", kind="command", metrics=("peak_rss",),
                         settings=Settings(processes=2, values=1, warmup=0, min_time=0.001, timeout=60),
                         command=[sys.executable, "-c", parent], root=str(tmp_path))
    result = measure_command(spec)
    assert result.status is ResultStatus.OK, result.error
    peaks = result.values("peak_rss")
    assert len(peaks) == 2 and all(p >= 160_000_000 for p in peaks), peaks


# -- the library ---------------------------------------------------------------------------------

def _library_example() -> str:
    section = README[README.index("## The library"):]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_library_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The README's code, unchanged, in a small project at the path it names.

    ``...`` in it stands for "change the code and run again": the base run is made first, so
    the example's own run is the head.
    """
    code = _library_example()
    project = tmp_path / "examples" / "shop"
    project.mkdir(parents=True)
    (project / "shopmod.py").write_text("def checkout():\n    return sum(i * i for i in range(2000))\n")
    (project / "perfloop.toml").write_text(
        '[defaults]\nprocesses = 2\nvalues = 2\nwarmup = 0\nmin_time = 0.001\n\n'
        '[[benchmark]]\nname = "checkout"\ncallable = "shopmod:checkout"\nmetrics = ["wall_time"]\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERFLOOP_STORE", raising=False)
    import perfloop

    config = perfloop.load_config("examples/shop")
    with perfloop.Store.open(perfloop.resolve_store_url(None, root=config.root)) as store:
        base_id = perfloop.run_project(config, store, label="base", names=["checkout"]).run_id
    capsys.readouterr()
    namespace: dict = {"base_id": base_id, "head_id": base_id + 1}
    exec(compile(code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert namespace["outcome"].run_id == base_id + 1
    assert [line.split()[:2] for line in printed] == [["checkout", "wall_time"]], printed
    verdict, change = printed[0].split()[2:]
    assert verdict in {k.value for k in perfloop.VerdictKind} and re.fullmatch(r"[+-]\d+\.\d%", change)
