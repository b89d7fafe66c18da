"""Environment fingerprint: where a run happened, so that runs are compared only like with like.

Two runs are comparable when their environments match; otherwise the difference is shown.
The fingerprint separates *identity* facts (CPU model, core count, memory, OS, kernel,
Python build, package versions, governor, CI runner) that define an environment class from
*conditions* (load at start) that vary run to run and are shown but not hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import psutil

#: Keys that vary from run to run on the same machine: shown, never part of the hash.
CONDITION_KEYS = frozenset({"load_avg_1m", "hostname"})

_CI_VARS = {
    "GITHUB_ACTIONS": "github-actions",
    "GITLAB_CI": "gitlab-ci",
    "BUILDKITE": "buildkite",
    "CIRCLECI": "circleci",
    "JENKINS_URL": "jenkins",
    "TF_BUILD": "azure-pipelines",
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _governor() -> str | None:
    path = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _ci_runner() -> str | None:
    for var, name in _CI_VARS.items():
        if os.environ.get(var):
            return name
    if os.environ.get("CI"):
        return "ci"
    return None


def _packages() -> dict[str, str]:
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if "Name" in dist.metadata else None
        if name:
            found[name.lower()] = dist.version
    return dict(sorted(found.items()))


def fingerprint() -> dict[str, Any]:
    """Facts about this machine and interpreter, as a JSON-serialisable dict.

    Its ``"fingerprint"`` key is :func:`environment_hash` of the rest: the store files runs
    under it, so runs on one machine with one Python and one set of packages share a class.
    """
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    facts = {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total": psutil.virtual_memory().total,
        "os": platform.system(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_build": " ".join(platform.python_build()),
        "python_compiler": platform.python_compiler(),
        "python_executable": sys.executable,
        "governor": _governor(),
        "ci_runner": _ci_runner(),
        "packages": _packages(),
        "load_avg_1m": round(load, 2) if load is not None else None,
        "hostname": platform.node(),
        "cpu_quota": _cpu_quota(),
    }
    facts["fingerprint"] = environment_hash(facts)
    return facts


def _cpu_quota() -> float | None:
    """CPUs a container may use (cgroup v2 cpu.max), or None when unlimited or unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return round(int(quota) / int(period), 2)


def environment_hash(env: Mapping[str, Any]) -> str:
    """A stable hash of the identity facts: equal hashes mean one environment class."""
    identity = {k: v for k, v in env.items()
                if k not in CONDITION_KEYS and k not in ("python_executable", "fingerprint")}
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class EnvDifference:
    key: str
    base: Any
    head: Any
    identity: bool        # True when the difference makes the runs different environment classes

    def describe(self) -> str:
        return f"{self.key}: {self.base} -> {self.head}"


def diff_environments(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[EnvDifference]:
    """Every fact that differs between two fingerprints; package changes one per package."""
    diffs: list[EnvDifference] = []
    for key in sorted(set(base) | set(head)):
        if key in ("packages", "python_executable", "fingerprint"):
            continue
        if base.get(key) != head.get(key):
            diffs.append(EnvDifference(key, base.get(key), head.get(key), key not in CONDITION_KEYS))
    base_pkgs: Mapping[str, str] = base.get("packages") or {}
    head_pkgs: Mapping[str, str] = head.get("packages") or {}
    for name in sorted(set(base_pkgs) | set(head_pkgs)):
        if base_pkgs.get(name) != head_pkgs.get(name):
            diffs.append(EnvDifference(f"package {name}", base_pkgs.get(name, "absent"),
                                       head_pkgs.get(name, "absent"), True))
    return diffs
