"""The doctor's machine checks: what on this machine makes benchmarks lie.

CPU frequency scaling and governor, turbo/boost, load from other processes, container CPU
limits, swap in use, too few cores, address-space randomisation and the hash seed. Each check
is ``ok``, ``warn`` or ``unknown`` (not visible here, as inside many containers and virtual
machines) with a next step. The checks read a :class:`Machine`, a snapshot of the system taken
once; tests build one from a fake ``/sys`` and ``/proc`` tree. :mod:`.doctor` reports them
beside the noise of the stored benchmarks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

OK, WARN, UNKNOWN = "ok", "warn", "unknown"

#: A load average above this share of the usable CPUs means other work competes for them.
LOAD_SHARE = 0.25
#: Another process using more than this share of one CPU is named as a competitor.
BUSY_PERCENT = 10.0


@dataclass(frozen=True)
class Check:
    """One thing that can make benchmarks lie, and what was found."""

    name: str
    status: str                   # ok | warn | unknown
    summary: str
    next_step: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "summary": self.summary,
                "next_step": self.next_step, "details": dict(self.details)}


@dataclass(frozen=True)
class Machine:
    """A snapshot of what the checks look at. :meth:`live` reads this machine."""

    root: Path = Path("/")                         # where sys/ and proc/ are found
    cpu_count: int | None = None                   # logical CPUs of the machine
    usable_cpus: int | None = None                 # CPUs this process may run on (affinity)
    loadavg: tuple[float, float, float] | None = None
    busy_processes: tuple[tuple[str, int, float], ...] = ()   # (name, pid, % of one CPU)
    swap_used: int | None = None                   # bytes
    swap_total: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def live(cls, *, sample_seconds: float = 0.5) -> "Machine":
        """Read this machine: psutil for load, processes and swap; the real /sys and /proc."""
        import psutil

        load: tuple[float, float, float] | None
        try:
            one, five, fifteen = os.getloadavg()
            load = (float(one), float(five), float(fifteen))
        except OSError:
            load = None
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        try:
            swap = psutil.swap_memory()
            swap_used: int | None = int(swap.used)
            swap_total: int | None = int(swap.total)
        except (OSError, RuntimeError):
            swap_used = swap_total = None
        return cls(root=Path("/"), cpu_count=os.cpu_count(), usable_cpus=usable,
                   loadavg=load, busy_processes=_busy_processes(sample_seconds),
                   swap_used=swap_used, swap_total=swap_total, env=dict(os.environ))

    def read(self, path: str) -> str | None:
        """The stripped text of ``path`` under :attr:`root`, or None when it cannot be read."""
        try:
            return (self.root / path.lstrip("/")).read_text().strip()
        except (OSError, UnicodeDecodeError):
            return None

    def cpu_dirs(self) -> list[Path]:
        base = self.root / "sys/devices/system/cpu"
        try:
            return sorted((p for p in base.glob("cpu[0-9]*") if p.name[3:].isdigit()),
                          key=lambda p: int(p.name[3:]))
        except OSError:
            return []


def _busy_processes(seconds: float) -> tuple[tuple[str, int, float], ...]:
    """Processes other than this one using CPU, measured over ``seconds``, busiest first."""
    import time

    import psutil

    me = os.getpid()
    procs = []
    for p in psutil.process_iter(["name", "pid"]):
        try:
            p.cpu_percent(None)
            procs.append(p)
        except (psutil.Error, OSError):
            continue
    time.sleep(seconds)   # cpu_percent needs an interval; this is what `top` does too
    busy = []
    for p in procs:
        try:
            if p.pid == me:
                continue
            percent = p.cpu_percent(None)
            if percent > 0:
                busy.append((p.info.get("name") or "?", p.pid, float(percent)))
        except (psutil.Error, OSError):
            continue
    busy.sort(key=lambda item: -item[2])
    return tuple(busy[:10])


# -- machine checks ------------------------------------------------------------------------------

def check_governor(m: Machine) -> Check:
    governors: dict[str, list[str]] = {}
    for cpu in m.cpu_dirs():
        value = m.read(str((cpu / "cpufreq/scaling_governor").relative_to(m.root)))
        if value:
            governors.setdefault(value, []).append(cpu.name)
    if not governors:
        return Check("cpu governor", UNKNOWN, "no cpufreq governor is visible (common in VMs and "
                     "containers): the host decides the CPU frequency",
                     "on a machine you control, check `cpupower frequency-info` on the host; "
                     "otherwise compare only runs from one environment class")
    summary = ", ".join(f"{g} on {len(c)} CPU(s)" for g, c in sorted(governors.items()))
    if set(governors) == {"performance"}:
        return Check("cpu governor", OK, f"governor {summary}", details={"governors": governors})
    return Check("cpu governor", WARN, f"governor {summary}: the frequency follows the load, so "
                 "a benchmark's first seconds run slower than the rest",
                 "sudo cpupower frequency-set -g performance (or `python -m pyperf system tune`) "
                 "before measuring, and back afterwards", details={"governors": governors})


def check_frequency(m: Machine) -> Check:
    ranges = []
    for cpu in m.cpu_dirs():
        rel = cpu.relative_to(m.root)
        lo, hi = m.read(f"{rel}/cpufreq/scaling_min_freq"), m.read(f"{rel}/cpufreq/scaling_max_freq")
        if lo and hi and lo.isdigit() and hi.isdigit():
            ranges.append((int(lo), int(hi)))
    if not ranges:
        return Check("cpu frequency", UNKNOWN, "CPU frequency limits are not visible here",
                     "nothing to do from inside; keep comparisons within one environment class")
    varying = [(lo, hi) for lo, hi in ranges if lo < hi]
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    if not varying:
        return Check("cpu frequency", OK, f"fixed at {high / 1e6:.2f} GHz",
                     details={"min_khz": low, "max_khz": high})
    return Check("cpu frequency", WARN, f"may vary from {low / 1e6:.2f} to {high / 1e6:.2f} GHz "
                 f"on {len(varying)} CPU(s)",
                 "pin it: sudo cpupower frequency-set -d MAX -u MAX (or `pyperf system tune`); "
                 "interleaved comparisons (the gate) suffer least from it",
                 details={"min_khz": low, "max_khz": high})


def check_boost(m: Machine) -> Check:
    no_turbo = m.read("sys/devices/system/cpu/intel_pstate/no_turbo")
    boost = m.read("sys/devices/system/cpu/cpufreq/boost")
    if no_turbo is None and boost is None:
        return Check("turbo/boost", UNKNOWN, "turbo boost state is not visible here",
                     "nothing to do from inside; on bare metal check the BIOS or intel_pstate")
    on = (no_turbo == "0") or (boost == "1")
    if not on:
        return Check("turbo/boost", OK, "turbo boost is off")
    knob = ("echo 1 | sudo tee /sys/devices/system/cpu/intel_pstate/no_turbo" if no_turbo is not None
            else "echo 0 | sudo tee /sys/devices/system/cpu/cpufreq/boost")
    return Check("turbo/boost", WARN, "turbo boost is on: the clock depends on temperature and on "
                 "how many cores are busy", f"turn it off while measuring: {knob}")


def check_load(m: Machine) -> Check:
    cpus = m.usable_cpus or m.cpu_count or 1
    busy = [p for p in m.busy_processes if p[2] >= BUSY_PERCENT]
    details: dict[str, Any] = {"loadavg": list(m.loadavg) if m.loadavg else None, "cpus": cpus,
                               "busy": [{"name": n, "pid": pid, "cpu_percent": round(pct, 1)}
                                        for n, pid, pct in busy[:5]]}
    if m.loadavg is None:
        return Check("load", UNKNOWN, "the load average is not available", details=details)
    load1 = m.loadavg[0]
    names = ", ".join(f"{n} ({pid}) {pct:.0f}%" for n, pid, pct in busy[:5])
    if load1 > LOAD_SHARE * cpus or busy:
        summary = f"load average {load1:.2f} on {cpus} CPU(s)"
        if busy:
            summary += f"; busy: {names}"
        return Check("load", WARN, summary, "stop the other work, or measure where nothing else "
                     "runs; interleaved comparisons (perfloop gate) spread what remains over both "
                     "sides", details=details)
    return Check("load", OK, f"load average {load1:.2f} on {cpus} CPU(s), no busy process",
                 details=details)


def check_container_quota(m: Machine) -> Check:
    cpus = m.usable_cpus or m.cpu_count or 1
    quota: float | None = None
    text = m.read("sys/fs/cgroup/cpu.max")
    if text:
        parts = text.split()
        if len(parts) >= 2 and parts[0] != "max" and parts[0].isdigit() and parts[1].isdigit():
            quota = int(parts[0]) / int(parts[1])
    else:
        q, p = m.read("sys/fs/cgroup/cpu/cpu.cfs_quota_us"), m.read("sys/fs/cgroup/cpu/cpu.cfs_period_us")
        if q and p and q.lstrip("-").isdigit() and p.isdigit() and int(q) > 0:
            quota = int(q) / int(p)
    throttled = None
    stat = m.read("sys/fs/cgroup/cpu.stat") or m.read("sys/fs/cgroup/cpu/cpu.stat")
    if stat:
        for line in stat.splitlines():
            key, _, value = line.partition(" ")
            if key == "nr_throttled" and value.strip().isdigit():
                throttled = int(value)
    details = {"cpu_quota": quota, "usable_cpus": cpus, "nr_throttled": throttled}
    if quota is None:
        if text is None and m.read("sys/fs/cgroup/cpu/cpu.cfs_quota_us") is None:
            return Check("container cpu limit", OK, "no cgroup CPU limit found", details=details)
        return Check("container cpu limit", OK, "no cgroup CPU limit", details=details)
    summary = f"the cgroup allows {quota:g} CPU(s) of {cpus}"
    if throttled:
        summary += f"; throttled {throttled} times so far"
    if quota < cpus or throttled:
        return Check("container cpu limit", WARN, summary + ": bursts above the quota are "
                     "paused until the next period, which shows up as noise",
                     "give the container whole CPUs matching its cpuset (docker --cpus N "
                     "--cpuset-cpus ...), or measure with fewer parallel workers", details=details)
    return Check("container cpu limit", OK, summary, details=details)


def check_swap(m: Machine) -> Check:
    if m.swap_used is None:
        return Check("swap", UNKNOWN, "swap use is not available")
    if m.swap_used > 0:
        return Check("swap", WARN, f"{m.swap_used / 2**20:.0f} MiB of swap in use: a page swapped "
                     "back in during a measurement costs milliseconds",
                     "free memory (close what is idle) or `sudo swapoff -a && sudo swapon -a` "
                     "to bring the pages back", details={"used": m.swap_used, "total": m.swap_total})
    return Check("swap", OK, "no swap in use", details={"used": 0, "total": m.swap_total})


def check_cores(m: Machine) -> Check:
    cpus = m.usable_cpus or m.cpu_count
    if cpus is None:
        return Check("cores", UNKNOWN, "the number of usable CPUs is unknown")
    details = {"usable_cpus": cpus, "cpu_count": m.cpu_count}
    if cpus < 2:
        return Check("cores", WARN, f"{cpus} usable CPU: the worker shares it with perfloop, the OS "
                     "and everything else", "measure on a machine with 2 or more CPUs, or use the "
                     "instructions metric, which does not depend on sharing", details=details)
    if cpus < 4:
        return Check("cores", WARN, f"{cpus} usable CPUs: on small (CI-like) machines wall time "
                     "spreads 10-20% between processes", "prefer interleaved comparisons (perfloop "
                     "gate) and the instructions metric for CPU-bound code; raise processes for "
                     "wall time (see the minimum detectable changes below)", details=details)
    return Check("cores", OK, f"{cpus} usable CPUs", details=details)


def check_aslr(m: Machine) -> Check:
    value = m.read("proc/sys/kernel/randomize_va_space")
    if value is None:
        return Check("aslr", UNKNOWN, "address-space randomisation setting not visible")
    if value == "0":
        return Check("aslr", WARN, "address-space randomisation is off: every process gets one "
                     "memory layout, so a layout-dependent effect becomes a constant bias",
                     "turn it back on (echo 2 | sudo tee /proc/sys/kernel/randomize_va_space); "
                     "perfloop's fresh worker processes average layouts out")
    return Check("aslr", OK, f"address-space randomisation on ({value}): each worker process gets "
                 "its own layout, and perfloop averages over fresh worker processes")


def check_hash_seed(m: Machine) -> Check:
    seed = m.env.get("PYTHONHASHSEED")
    if seed and seed != "random":
        return Check("hash seed", WARN, f"PYTHONHASHSEED={seed}: every worker hashes strings alike, "
                     "so one dict/set layout is measured again and again",
                     "unset PYTHONHASHSEED while benchmarking so workers differ")
    return Check("hash seed", OK, "PYTHONHASHSEED is random: each worker gets its own string hashes")


MACHINE_CHECKS: tuple[Callable[[Machine], Check], ...] = (
    check_governor, check_frequency, check_boost, check_load, check_container_quota, check_swap,
    check_cores, check_aslr, check_hash_seed)


def machine_checks(machine: Machine) -> list[Check]:
    """Every machine check on ``machine`` (a check that fails to read reports ``unknown``)."""
    out = []
    for check in MACHINE_CHECKS:
        try:
            out.append(check(machine))
        except Exception as exc:  # one unreadable file must not hide the other checks
            name = check.__name__.removeprefix("check_").replace("_", " ")
            out.append(Check(name, UNKNOWN, f"could not check: {type(exc).__name__}: {exc}"))
    return out
