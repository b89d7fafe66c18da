"""The doctor: machine checks on fake /sys and /proc trees, and the minimum detectable change
checked against what the verdicts' statistics actually detect on simulated noise."""

from __future__ import annotations

import json
import os
import math
from pathlib import Path

import numpy as np
import pytest

from perfloop.analysis.compare import VerdictKind, compare_groups
from perfloop.metrics import get_metric
from perfloop.records import BenchmarkResult, RunStatus, Sample
from perfloop.store import Store
from perfloop.workflows.doctor import (OK, UNKNOWN, WARN, Machine, machine_checks,
                                       minimum_detectable_change, noise_report, processes_needed,
                                       standard_error, worker_spread)


def write(root: Path, path: str, text: str) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text + "\n")


def by_name(checks) -> dict:
    return {c.name: c for c in checks}


# -- machine checks ------------------------------------------------------------------------------

def test_a_noisy_machine_gets_a_warning_with_a_next_step_for_each_problem(tmp_path: Path) -> None:
    for cpu in range(4):
        write(tmp_path, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor", "powersave")
        write(tmp_path, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_min_freq", "800000")
        write(tmp_path, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_max_freq", "3600000")
    write(tmp_path, "sys/devices/system/cpu/intel_pstate/no_turbo", "0")
    write(tmp_path, "sys/fs/cgroup/cpu.max", "150000 100000")
    write(tmp_path, "sys/fs/cgroup/cpu.stat", "usage_usec 10\nnr_periods 40\nnr_throttled 12")
    write(tmp_path, "proc/sys/kernel/randomize_va_space", "0")
    machine = Machine(root=tmp_path, cpu_count=4, usable_cpus=4, loadavg=(3.2, 2.0, 1.0),
                      busy_processes=(("chrome", 4242, 87.0), ("idle-ish", 7, 2.0)),
                      swap_used=512 * 2**20, swap_total=2**30, env={"PYTHONHASHSEED": "0"})
    checks = by_name(machine_checks(machine))
    expected_warnings = {"cpu governor", "cpu frequency", "turbo/boost", "load",
                         "container cpu limit", "swap", "aslr", "hash seed"}
    assert {n for n, c in checks.items() if c.status == WARN} == expected_warnings
    assert checks["cores"].status == OK
    for name in expected_warnings:
        assert checks[name].next_step, name
    assert "powersave on 4 CPU(s)" in checks["cpu governor"].summary
    assert "0.80 to 3.60 GHz" in checks["cpu frequency"].summary
    assert "chrome (4242)" in checks["load"].summary and "idle-ish" not in checks["load"].summary
    assert "1.5 CPU(s) of 4" in checks["container cpu limit"].summary
    assert "throttled 12 times" in checks["container cpu limit"].summary
    assert "512 MiB" in checks["swap"].summary
    assert "no_turbo" in checks["turbo/boost"].next_step


def test_a_quiet_tuned_machine_is_ok(tmp_path: Path) -> None:
    for cpu in range(8):
        write(tmp_path, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor", "performance")
        write(tmp_path, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_min_freq", "3000000")
        write(tmp_path, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_max_freq", "3000000")
    write(tmp_path, "sys/devices/system/cpu/cpufreq/boost", "0")
    write(tmp_path, "sys/fs/cgroup/cpu.max", "max 100000")
    write(tmp_path, "proc/sys/kernel/randomize_va_space", "2")
    machine = Machine(root=tmp_path, cpu_count=8, usable_cpus=8, loadavg=(0.3, 0.2, 0.1),
                      busy_processes=(), swap_used=0, swap_total=0, env={})
    checks = machine_checks(machine)
    assert [c.name for c in checks if c.status != OK] == []


def test_what_is_not_visible_is_unknown_not_ok(tmp_path: Path) -> None:
    machine = Machine(root=tmp_path, cpu_count=1, usable_cpus=1, loadavg=None, swap_used=None)
    checks = by_name(machine_checks(machine))
    for name in ("cpu governor", "cpu frequency", "turbo/boost", "load", "swap", "aslr"):
        assert checks[name].status == UNKNOWN, name
    assert checks["cores"].status == WARN           # one CPU shared with everything
    assert checks["container cpu limit"].status == OK


def test_the_live_machine_can_be_examined() -> None:
    checks = machine_checks(Machine.live(sample_seconds=0.05))
    # every check ran to the end: one that raised is reported as "could not check"
    assert [c.summary for c in checks if c.summary.startswith("could not check")] == []
    assert len({c.name for c in checks}) == len(checks) == 9
    found = by_name(checks)
    # what this process can read for itself, the checks must read alike
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert found["cores"].details["usable_cpus"] == cpus
    assert found["cores"].status == (OK if cpus >= 4 else WARN)
    try:
        aslr = Path("/proc/sys/kernel/randomize_va_space").read_text().strip()
    except OSError:
        aslr = None
    assert found["aslr"].status == (UNKNOWN if aslr is None else WARN if aslr == "0" else OK)
    assert json.loads(json.dumps([c.to_dict() for c in checks]))[0]["name"] == checks[0].name


# -- minimum detectable change -------------------------------------------------------------------

def test_spread_is_taken_within_runs_so_drift_between_runs_does_not_count() -> None:
    rng = np.random.default_rng(5)
    sigma = 0.04
    runs = [level * (1 + sigma * rng.standard_normal(10))
            for level in np.linspace(1.0, 1.5, 400)]          # the level drifts by 50%
    spread, dof = worker_spread(runs)
    assert dof == 400 * 9
    assert spread == pytest.approx(sigma, rel=0.05)
    # five workers, winsorised by one on each side: the estimate stays unbiased
    five = [1 + sigma * rng.standard_normal(5) for _ in range(1000)]
    assert worker_spread(five)[0] == pytest.approx(sigma, rel=0.05)
    # one wild worker per run barely moves it
    wild = [np.append(1 + sigma * rng.standard_normal(9), 3.0) for _ in range(400)]
    assert worker_spread(wild)[0] < 1.6 * sigma


def test_standard_error_without_trimming_is_sigma_over_root_n() -> None:
    assert standard_error(0.1, 4) == pytest.approx(0.1 / 2)
    assert minimum_detectable_change(0.1, 1) == math.inf      # one worker a side: no spread to test
    assert minimum_detectable_change(0.05, 10) > minimum_detectable_change(0.05, 20)
    assert minimum_detectable_change(0.05, 10, confidence=0.95) < minimum_detectable_change(0.05, 10)


def regressed_share(sigma: float, n: int, change: float, *, trials: int, seed: int) -> float:
    """Share of simulated comparisons (n workers a side, worker-level noise ``sigma``, head
    slower by ``change``) that the verdict engine, ``compare_groups``, calls ``regressed``."""
    rng = np.random.default_rng(seed)
    wall_time = get_metric("wall_time")
    hits = 0
    for _ in range(trials):
        base = [[float(v)] for v in 1.0 + sigma * rng.standard_normal(n)]
        head = [[float(v)] for v in (1.0 + change) * (1.0 + sigma * rng.standard_normal(n))]
        verdict = compare_groups(base, head, metric=wall_time, tolerance=0.01, confidence=0.99)
        hits += verdict.verdict is VerdictKind.REGRESSED
    return hits / trials


@pytest.mark.parametrize("n, trials, low, high", [
    (10, 600, 0.73, 0.87),     # from 7 workers on: 80% at the MDC
    (20, 400, 0.72, 0.88),
    (5, 400, 0.60, 0.80),      # 5-6: the bootstrap-t check widens intervals of so few units
    (4, 300, 0.85, 1.00),      # 4 or fewer: h - 1 df is conservative
])
def test_mdc_matches_what_compare_groups_detects(n: int, trials: int, low: float, high: float) -> None:
    """Known answer: at the MDC (80% power, 99% confidence) about 80% of simulated comparisons
    come out regressed; the bands say where, and by how much, the formula is off."""
    sigma = 0.05
    # compare_groups runs at a 1% tolerance: a change must clear half of it.
    mdc = minimum_detectable_change(sigma, n, threshold=0.005)
    assert low <= regressed_share(sigma, n, mdc, trials=trials, seed=n) <= high


def test_a_change_below_the_mdc_is_seen_less_often() -> None:
    mdc = minimum_detectable_change(0.05, 10)
    assert regressed_share(0.05, 10, 0.7 * mdc, trials=300, seed=70) < 0.6
    assert regressed_share(0.05, 10, 1.5 * mdc, trials=200, seed=150) > 0.95


def test_processes_needed_is_the_first_count_within_the_tolerance() -> None:
    # A change must clear half the 5% tolerance: the detectable change starts at 2.5%.
    needed = processes_needed(0.05, 0.05)
    assert needed is not None
    assert all(minimum_detectable_change(0.05, n, threshold=0.025) <= 0.05
               for n in range(needed, needed + 20))
    assert minimum_detectable_change(0.05, needed - 1, threshold=0.025) > 0.05
    # where trimming sets in, one more worker sees less (9 untrimmed beat 10 trimmed to 8):
    # advice to raise processes to N must hold beyond N
    dips = [n for n in range(3, 40)
            if minimum_detectable_change(0.01, n) < minimum_detectable_change(0.01, n + 1)]
    assert dips
    n = dips[0]
    assert processes_needed(0.01, minimum_detectable_change(0.01, n)) > n + 1
    assert processes_needed(2.0, 0.01) is None


# -- noise from the store --------------------------------------------------------------------------

def stored_run(store: Store, *, env: str, results: list[BenchmarkResult]) -> None:
    run_id = store.begin_run(label=None, commit="ab" * 20, branch="main", dirty=False,
                             environment={"fingerprint": env}, settings={}, project="/p")
    for r in results:
        store.add_result(run_id, r)
    store.finish_run(run_id, RunStatus.COMPLETE)


def worker_samples(rng: np.random.Generator, sigma: float, workers: int = 5) -> tuple[Sample, ...]:
    return tuple(Sample("wall_time", float(0.1 * (1 + sigma * rng.standard_normal())), worker=w, index=0)
                 for w in range(workers))


def test_noise_report_warns_when_the_gate_cannot_work(store: Store) -> None:
    rng = np.random.default_rng(3)
    for _ in range(12):
        stored_run(store, env="e" * 16, results=[
            BenchmarkResult("noisy", "callable", "ok", samples=worker_samples(rng, 0.10),
                            extra={"tolerance": 0.05, "settings": {"processes": 5}}),
            BenchmarkResult("quiet", "callable", "ok", samples=worker_samples(rng, 0.002),
                            extra={"tolerance": 0.05, "settings": {"processes": 5}})])
    estimates, env, notes = noise_report(store, environment="e" * 16)
    assert env == "e" * 16 and notes == []
    found = {e.benchmark: e for e in estimates}
    noisy, quiet = found["noisy"], found["quiet"]
    assert noisy.runs == 10 and noisy.processes == 5 and noisy.tolerance == 0.05
    assert noisy.status == WARN and noisy.mdc > 0.05
    # 9% per worker: a change must clear half the tolerance, beyond any affordable count
    assert "the gate cannot work for it: more than 200 processes" in noisy.message
    assert noisy.processes_needed is None
    assert "instructions metric" in noisy.message
    assert noisy.mdc == pytest.approx(minimum_detectable_change(noisy.spread, 5, threshold=0.025))
    assert quiet.status == OK and quiet.mdc < 0.05
    # planning for more processes changes what the report says it detects
    planned = {e.benchmark: e for e in noise_report(store, environment="e" * 16,
                                                      processes=100)[0]}
    assert planned["noisy"].processes == 100 and planned["noisy"].mdc < noisy.mdc
    # a machine with no runs of its own: the latest run's class, and a note that says so
    _, used, notes = noise_report(store, environment="f" * 16)
    assert used == "e" * 16 and "no runs stored in this machine's environment class" in notes[0]


def test_doctor_command_json(store_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from perfloop.cli.app import app
    rng = np.random.default_rng(4)
    with Store.open(store_url) as store:
        for _ in range(3):
            stored_run(store, env="e" * 16, results=[BenchmarkResult(
                "b", "callable", "ok", samples=worker_samples(rng, 0.05, workers=10),
                extra={"tolerance": 0.05, "settings": {"processes": 10}})])
    out = CliRunner().invoke(app, ["doctor", "--json", "--store", store_url, "-C", str(tmp_path)])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert {c["name"] for c in data["checks"]} >= {"cpu governor", "load", "swap", "cores"}
    [noise] = data["noise"]
    assert noise["benchmark"] == "b" and noise["processes"] == 10 and noise["runs"] == 3
    assert "MDC" in data["formula"]
