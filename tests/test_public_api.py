"""The public API: its names are locked, each resolves, and importing perfloop stays light."""

from __future__ import annotations

import subprocess
import sys

import perfloop

EXPECTED = {
    "__version__", "load_config", "ProjectConfig", "BenchmarkSpec", "Settings", "Sample",
    "BenchmarkResult", "Metric", "Store", "resolve_store_url", "run_project", "run_benchmarks",
    "compare_groups", "compare_results", "Verdict", "VerdictKind", "compare_runs", "Comparison",
    "detect_change_points", "ChangePoint", "run_gate", "GateOptions", "PerfloopError",
    "UsageError", "ConfigError", "StoreError", "TargetError", "GateFailed",
}


def test_all_is_locked_and_every_name_resolves():
    assert set(perfloop.__all__) == EXPECTED
    for name in perfloop.__all__:
        assert getattr(perfloop, name) is not None, name


def test_importing_the_package_loads_no_heavy_dependency():
    code = ("import sys, perfloop; heavy = [m for m in ('numpy', 'scipy', 'sqlalchemy', 'rich', "
            "'typer') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
