"""The ``instructions`` metric: valgrind's counts for callables and commands.

The counting tests run real valgrind (marked slow: each valgrind process costs seconds) on a
callable doing a known amount of work. Missing valgrind is simulated with an empty PATH or a
path that does not exist, and must give a failed result naming the fix.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from perfloop.config import parse_config
from perfloop.errors import ConfigError
from perfloop.measure.callable import measure_callable
from perfloop.measure.command import measure_command
from perfloop.measure.instructions import find_valgrind, read_count
from perfloop.metrics import DEFAULT_METRICS

needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")

WORK = textwrap.dedent("""
    def spin(n):
        # small ints only: the instructions per iteration do not depend on n
        total = 0
        for i in range(n):
            total ^= i & 1023
        return total

    def fails(n):
        raise RuntimeError("boom")
""")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "work.py").write_text(WORK)
    return tmp_path


def specs(root: Path, **bench):
    data = {"defaults": {"processes": 2, "values": 2, "warmup": 1, "min_time": 0.002},
            "benchmark": [{"name": "b", **bench}]}
    return list(parse_config(data, root=root).benchmarks)


def test_instructions_is_off_by_default_and_accepted_for_callables_and_commands(tmp_path: Path) -> None:
    assert "instructions" not in DEFAULT_METRICS["callable"]
    assert "instructions" not in DEFAULT_METRICS["command"]
    [spec] = specs(tmp_path, callable="work:spin", metrics=["wall_time", "instructions"])
    assert spec.metrics == ("wall_time", "instructions")
    [spec] = specs(tmp_path, command=["true"], metrics=["instructions"])
    assert spec.metrics == ("instructions",)
    with pytest.raises(ConfigError):
        specs(tmp_path, http={"url": "http://127.0.0.1:1/"}, metrics=["instructions"])


def test_missing_valgrind_fails_with_the_fix(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [spec] = specs(project, callable="work:spin", params={"n": [1000]},
                   metrics=["wall_time", "instructions"])
    monkeypatch.setenv("PATH", str(project))          # nothing called valgrind here
    result = measure_callable(spec)
    assert result.status.value == "failed"
    assert "apt-get install valgrind" in result.error
    # the timed values measured before are kept
    assert len(result.values("wall_time")) == 2 * 2


def test_missing_valgrind_for_a_command(project: Path) -> None:
    [spec] = specs(project, command=[sys.executable, "-c", "pass"], metrics=["instructions"])
    result = measure_command(spec, valgrind=str(project / "no-such-valgrind"))
    assert result.status.value == "failed"
    assert "apt-get install valgrind" in result.error and "no-such-valgrind" in result.error


def test_find_valgrind_uses_the_given_path(tmp_path: Path) -> None:
    fake = tmp_path / "valgrind"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_valgrind(str(fake)) == str(fake)
    assert find_valgrind(env={"PATH": str(tmp_path)}) == str(fake)
    assert find_valgrind(env={"PATH": ""}) is None


def test_read_count_takes_ir_from_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "cachegrind.out"
    out.write_text("desc: I1 cache: none\ncmd: python\nevents: Ir\nfl=???\nfn=main\n1 5\nsummary: 39433518\n")
    assert read_count(out) == 39433518
    out.write_text("events: Dr Ir\nsummary: 7 11\n")
    assert read_count(out) == 11
    out.write_text("events: Ir\n")
    with pytest.raises(ValueError):
        read_count(out)


@pytest.mark.slow
@needs_valgrind
def test_callable_instructions_scale_with_the_work_and_repeat(project: Path) -> None:
    n = 20_000
    spec_1x, spec_2x = specs(project, callable="work:spin", params={"n": [n, 2 * n]},
                             metrics=["instructions"])
    one, two = measure_callable(spec_1x), measure_callable(spec_2x)
    for result in (one, two):
        assert result.status.value == "ok", result.error
        assert sorted(result.by_worker("instructions")) == [0, 1]   # one sample per counting worker
        assert result.extra["instructions_baseline"] > 0
        assert result.extra["instructions_hash_seed"] == "0"
    a, b = one.values("instructions"), two.values("instructions")
    # start-up and imports are subtracted: per call, about 10 instructions per iteration or more,
    # not the ~40 million of an interpreter's start
    assert 10 * n < a[0] < 1_000 * n
    # twice the work, twice the instructions (the constant per call is small)
    assert sum(b) / sum(a) == pytest.approx(2.0, rel=0.05)
    # repeated processes agree within 0.5%
    for values in (a, b):
        assert max(values) / min(values) - 1 < 0.005


@pytest.mark.slow
@needs_valgrind
def test_a_failing_callable_under_valgrind_is_a_failed_result(project: Path) -> None:
    [spec] = specs(project, callable="work:fails", params={"n": [1]}, metrics=["instructions"],
                   processes=1)
    result = measure_callable(spec)
    assert result.status.value == "failed"
    assert "RuntimeError" in result.error


@pytest.mark.slow
@needs_valgrind
def test_command_instructions_count_the_whole_process_tree(project: Path) -> None:
    # A shell string: sh starts python, which does the work and starts a second python doing
    # the same work; every process of the tree is counted and summed.
    (project / "tree.py").write_text(textwrap.dedent(f"""
        import subprocess, work
        work.spin(20000)
        subprocess.run([{sys.executable!r}, "-c", "import work; work.spin(20000)"], check=True)
    """))
    [tree] = specs(project, command=f"{sys.executable} tree.py", metrics=["instructions"], warmup=0)
    [single] = specs(project, command=[sys.executable, "-c", "import work; work.spin(20000)"],
                     metrics=["instructions", "wall_time"], warmup=0)
    tree_result, single_result = measure_command(tree), measure_command(single)
    assert tree_result.status.value == "ok", (tree_result.error, tree_result.stderr_tail)
    assert single_result.status.value == "ok", (single_result.error, single_result.stderr_tail)
    assert single_result.extra["instructions_processes"] == [1, 1]
    assert all(n >= 2 for n in tree_result.extra["instructions_processes"])   # sh may exec python
    assert len(single_result.values("wall_time")) == 2            # timed in runs of their own
    tree_count = min(tree_result.values("instructions"))
    single_count = min(single_result.values("instructions"))
    assert tree_count > 1.8 * single_count
    for values in (tree_result.values("instructions"), single_result.values("instructions")):
        assert max(values) / min(values) - 1 < 0.005


def test_hash_seed_is_fixed_unless_the_benchmark_sets_one() -> None:
    from perfloop.measure.instructions import counting_env
    assert counting_env({"PYTHONHASHSEED": "random"}, {})["PYTHONHASHSEED"] == "0"
    assert counting_env({}, {"PYTHONHASHSEED": "123"})["PYTHONHASHSEED"] == "123"
