"""Systemic signals: what a flame graph does not show, read from the process while it was profiled.

A CPU profile says where the code runs; it does not say that the process spent most of its time
waiting, that garbage collection ate a fifth of it, that memory kept growing, or that four
threads took turns on one GIL. These readings come from two sources:

- a :class:`ProcessTrace`: the profiled process (and its children) sampled from outside with
  psutil, every ~50 ms: CPU time, RSS, thread count, per-thread CPU time, and the machine's
  busy CPU time;
- :class:`RuntimeStats`: measured inside perfloop's profiling worker (callables only): wall
  and CPU time of the profiled loop, time between ``gc.callbacks`` "start" and "stop",
  allocated-block counts, and, when RSS grew, a short tracemalloc pass that measures the Python
  memory retained per call.

Each :class:`Signal` carries a value, a unit, a plain-language reading that says what to do next,
and a severity (``warn`` when it needs attention). The thresholds are the constants below and
are documented in docs/profiling.md; every function here is pure, so they are tested on
made-up numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Sequence

SEVERITIES = ("info", "warn")

OFF_CPU_WARN = 0.30             # share of wall time off-CPU
GC_WARN = 0.10                  # share of wall time in garbage collection
RSS_GROWTH_MIN_BYTES = 10 * 2**20   # growth that counts, absolute ...
RSS_GROWTH_MIN_FRACTION = 0.10      # ... and relative to the starting RSS
RSS_STILL_GROWING = 0.25        # share of the growth that happened in the second half of the run
PYTHON_MEMORY_MOST = 0.5        # Python retains >= this share of the RSS growth: Python objects
PYTHON_MEMORY_LITTLE = 0.2      # Python retains < this share: native memory or fragmentation
BLOCKS_GROWTH = 0.10            # allocated-block growth that counts as "Python objects accumulate"
THREAD_ACTIVE_CORES = 0.05      # a thread using at least this share of a core is "busy" ...
THREAD_ACTIVE_MIN_SECONDS = 0.01    # ... and at least one clock tick of CPU in the interval
GIL_SERIAL_CORES = 1.2          # busy threads that together use at most this many cores take turns
GIL_WARN = 0.5                  # share of the multi-threaded time spent so serialized
GIL_MIN_STEP = 0.1              # seconds between the trace points compared (tick resolution)
LOAD_WARN = 0.5                 # other processes used this share of the machine's cores

MiB = 2**20


@dataclass(frozen=True)
class Signal:
    """One reading about the profiled process, with what it means in plain words."""

    name: str
    value: float
    unit: str
    reading: str
    severity: str = "info"

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be 'info' or 'warn', got {self.severity!r}")
        if not self.name or not self.reading:
            raise ValueError("a signal needs a name and a reading")

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value, "unit": self.unit,
                "reading": self.reading, "severity": self.severity}


@dataclass(frozen=True)
class ProcessPoint:
    """One psutil sample of the profiled process tree; times are cumulative."""

    t: float                                  # time.time() of the sample
    cpu: float                                # user + system CPU seconds of the process tree
    rss: int                                  # bytes, summed over the tree
    threads: int
    thread_cpu: Mapping[int, float] = field(default_factory=dict)   # thread id -> CPU seconds
    system_busy: float | None = None          # busy CPU seconds of the whole machine, all cores
    runqueue: float | None = None             # seconds its threads waited for a CPU (schedstat)

    def __post_init__(self) -> None:
        object.__setattr__(self, "thread_cpu", MappingProxyType(dict(self.thread_cpu)))


@dataclass(frozen=True)
class ProcessTrace:
    points: tuple[ProcessPoint, ...]
    cpu_count: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", tuple(sorted(self.points, key=lambda p: p.t)))

    def window(self, start: float, end: float) -> ProcessTrace:
        """The points between ``start`` and ``end`` (time.time() values)."""
        return ProcessTrace(tuple(p for p in self.points if start <= p.t <= end), self.cpu_count)

    @property
    def wall(self) -> float:
        return self.points[-1].t - self.points[0].t if len(self.points) > 1 else 0.0


@dataclass(frozen=True)
class RuntimeStats:
    """Measured inside the profiled process over the profiled calls."""

    wall: float
    cpu: float
    calls: int
    runqueue: float | None = None             # seconds the threads waited for a CPU (schedstat)
    gc_time: float | None = None
    gc_collections: tuple[int, int, int] = (0, 0, 0)
    blocks_start: int | None = None
    blocks_end: int | None = None
    rss_start: int | None = None
    rss_end: int | None = None
    retained_per_call: float | None = None    # bytes of Python memory kept per call (tracemalloc)
    retained_sites: tuple[tuple[str, int], ...] = ()   # ("file:line", bytes) where it was allocated
    threads_max: int | None = None
    threads_started: int | None = None        # Python threads started while profiled


# --------------------------------------------------------------------------------------------
# helpers


def _mb(n: float) -> str:
    return f"{n / MiB:,.0f} MB" if abs(n) >= 10 * MiB else f"{n / MiB:,.1f} MB"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _slope(times: Sequence[float], values: Sequence[float]) -> float:
    n = len(times)
    if n < 2:
        return 0.0
    mt, mv = sum(times) / n, sum(values) / n
    den = sum((t - mt) ** 2 for t in times)
    return sum((t - mt) * (v - mv) for t, v in zip(times, values)) / den if den > 0 else 0.0


# --------------------------------------------------------------------------------------------
# one function per signal


def off_cpu_signal(wall: float, cpu: float, runqueue: float | None = None) -> Signal | None:
    """On-CPU vs wall time: how much of the run the process was blocked (I/O, locks, sleep).

    ``runqueue`` is the time its threads were ready to run but waited for a CPU (Linux
    schedstat). That is not waiting in the code: on a busy machine it is most of the off-CPU
    time, so it is taken out before judging, and reported apart.
    """
    if wall <= 0:
        return None
    cores = cpu / wall
    idle = max(0.0, 1.0 - min(cores, 1.0))
    queued = min(max(0.0, runqueue or 0.0) / wall, idle)
    off = idle - queued
    busy = (f" The process also waited for a CPU {_pct(queued)} of the time (ready to run, other "
            f"work on the machine): seconds in this profile are inflated." if queued >= 0.05 else "")
    if off >= OFF_CPU_WARN:
        return Signal("off_cpu", off, "ratio",
                      f"{_pct(off)} of wall time is off-CPU: the process is waiting (I/O, locks, "
                      f"sleep). A CPU flame graph will not show the cause; look at waiting time "
                      f"(py-spy --idle, or the sleep/acquire/select/read calls in a wall-clock "
                      f"pyinstrument profile) and at lock and I/O calls.{busy}", "warn")
    if cores > 1.05:
        return Signal("off_cpu", off, "ratio",
                      f"The process used {cores:.1f} CPU cores on average: threads or native code "
                      f"run in parallel; it is CPU-bound.{busy}")
    return Signal("off_cpu", off, "ratio",
                  f"Blocked (I/O, locks, sleep) only {_pct(off)} of wall time: CPU-bound; the flame "
                  f"graph shows where the time goes.{busy}")


def gc_signal(gc_time: float, wall: float, collections: Sequence[int]) -> Signal | None:
    """Share of wall time spent in garbage collection (gc.callbacks start/stop)."""
    if wall <= 0:
        return None
    share = gc_time / wall
    counts = "/".join(str(int(c)) for c in collections)
    total = sum(int(c) for c in collections)
    if share >= GC_WARN:
        return Signal("gc_time", share, "ratio",
                      f"Garbage collection took {_pct(share)} of wall time ({total} collections, "
                      f"{counts} by generation 0/1/2). The code creates many container objects or "
                      f"reference cycles: reuse objects, avoid cycles (weakref), or call gc.freeze() "
                      f"after start-up; raising gc.set_threshold() trades memory for fewer pauses. "
                      f"The flame graph charges GC pauses to whichever function allocated.", "warn")
    return Signal("gc_time", share, "ratio",
                  f"Garbage collection took {_pct(share)} of wall time ({total} collections, "
                  f"{counts} by generation): not a factor.")


def rss_signal(times: Sequence[float], rss: Sequence[int]) -> Signal | None:
    """RSS over the run: first vs last vs peak, slope, and whether it was still growing."""
    if len(rss) < 2 or len(times) != len(rss):
        return None
    first, last, peak = rss[0], rss[-1], max(rss)
    growth = last - first
    span = times[-1] - times[0]
    slope = _slope(times, rss)
    mid = len(rss) // 2
    late = rss[-1] - rss[mid] if len(rss) > 2 else growth
    big = growth >= RSS_GROWTH_MIN_BYTES and growth >= RSS_GROWTH_MIN_FRACTION * max(first, 1)
    if big and late >= RSS_STILL_GROWING * growth:
        return Signal("rss_growth", growth / MiB, "MB",
                      f"RSS grew from {_mb(first)} to {_mb(last)} (peak {_mb(peak)}) in {span:.1f} s, "
                      f"about {_mb(slope)}/s, and was still growing at the end: memory is retained "
                      f"across calls (a cache, a list, a leak). Find what holds it with tracemalloc "
                      f"snapshots (or memray for native memory).", "warn")
    if big:
        return Signal("rss_growth", growth / MiB, "MB",
                      f"RSS grew from {_mb(first)} to {_mb(last)} early in the run and then levelled "
                      f"off: warm-up (caches filling, pools growing), not steady growth.")
    over = peak - max(first, last)
    if over >= RSS_GROWTH_MIN_BYTES and over >= RSS_GROWTH_MIN_FRACTION * max(first, 1):
        return Signal("rss_growth", growth / MiB, "MB",
                      f"RSS peaked at {_mb(peak)}, {_mb(over)} above where it ended ({_mb(last)}): "
                      f"large temporary allocations; peak memory, not a leak.")
    if growth >= RSS_GROWTH_MIN_FRACTION * max(first, 1) and growth >= MiB:
        return Signal("rss_growth", growth / MiB, "MB",
                      f"RSS grew from {_mb(first)} to {_mb(last)} in {span:.1f} s, less than the "
                      f"{RSS_GROWTH_MIN_BYTES // MiB} MB that counts as growth; profile for longer "
                      f"to see whether it keeps growing.")
    return Signal("rss_growth", growth / MiB, "MB",
                  f"RSS stayed at about {_mb(last)} (first {_mb(first)}, peak {_mb(peak)}).")


def python_memory_signal(rss_growth: float, calls: int, *, retained_per_call: float | None = None,
                         sites: Sequence[tuple[str, int]] = (), blocks_start: int | None = None,
                         blocks_end: int | None = None) -> Signal | None:
    """RSS growth against Python-allocated memory: Python objects, or native memory?

    Best evidence: a tracemalloc pass that measured the Python memory retained per call,
    extrapolated over the profiled calls. Without it, the change in ``sys.getallocatedblocks()``
    shows whether Python objects pile up, but it counts blocks, not bytes: one large bytes or
    array object is a single block, so a flat count cannot rule Python out.
    """
    if rss_growth < RSS_GROWTH_MIN_BYTES:
        return None
    where = ""
    if sites:
        where = ", allocated mostly at " + "; ".join(f"{loc} ({_mb(n)})" for loc, n in sites[:3])
    if retained_per_call is not None and calls > 0:
        python = max(0.0, retained_per_call) * calls
        ratio = python / rss_growth
        if ratio >= PYTHON_MEMORY_MOST:
            return Signal("python_memory", ratio, "ratio",
                          f"Python objects account for most of the RSS growth: about "
                          f"{retained_per_call / 1024:,.0f} KB kept per call{where}. Something "
                          f"keeps references (a cache without a bound, a list, a global).", "warn")
        if ratio < PYTHON_MEMORY_LITTLE:
            return Signal("python_memory", ratio, "ratio",
                          f"Python allocations explain only {_pct(ratio)} of the RSS growth: the "
                          f"rest is native memory (C extensions, buffers) or fragmentation. "
                          f"tracemalloc will not show it; try memray with --native.", "warn")
        return Signal("python_memory", ratio, "ratio",
                      f"Python objects explain {_pct(ratio)} of the RSS growth{where}; the rest is "
                      f"native memory or fragmentation.", "warn")
    if blocks_start and blocks_end is not None:
        rel = (blocks_end - blocks_start) / blocks_start
        if rel >= BLOCKS_GROWTH:
            return Signal("python_memory", rel, "ratio",
                          f"Python's allocated blocks grew by {blocks_end - blocks_start:,} "
                          f"(+{_pct(rel)}) along with RSS: Python objects are accumulating.", "warn")
        return Signal("python_memory", rel, "ratio",
                      f"RSS grew but Python's allocated block count barely moved (+{_pct(rel)}): "
                      f"native memory, fragmentation, or a few large buffers (bytes, arrays). The "
                      f"block count cannot tell these apart; a tracemalloc pass can.")
    return None


def thread_signal(max_threads: int, *, profiler: str = "") -> Signal:
    """How many threads the process had; in-process profilers see only one of them."""
    reading = f"Up to {max_threads} thread{'s' if max_threads != 1 else ''} in the process."
    if max_threads > 1 and profiler in ("pyinstrument", "cprofile"):
        reading += (f" {profiler} records only the thread that runs the profiled code; profile with "
                    f"py-spy (profiler='py-spy') to see the others.")
    return Signal("threads", float(max_threads), "count", reading)


def _steps(trace: ProcessTrace, min_step: float) -> list[tuple[ProcessPoint, ProcessPoint]]:
    pairs = []
    prev = None
    for p in trace.points:
        if prev is None:
            prev = p
        elif p.t - prev.t >= min_step:
            pairs.append((prev, p))
            prev = p
    return pairs


def gil_signal(trace: ProcessTrace, *, min_step: float = GIL_MIN_STEP) -> Signal | None:
    """An estimate of GIL contention from per-thread CPU time. Not a measurement of the GIL.

    In each step of the trace, a thread is busy when it used at least THREAD_ACTIVE_CORES of a
    core (and a clock tick). When two or more threads are busy yet the whole process uses at
    most GIL_SERIAL_CORES cores on a machine with a core to spare, the threads are taking turns:
    the GIL, or a lock they share. Steps where other processes left no core free are not
    counted, because the cap could come from them.
    """
    pairs = _steps(trace, min_step)
    if not pairs:
        return None
    multi = serial = crowded = 0.0
    busiest = 0
    for a, b in pairs:
        dt = b.t - a.t
        cores = max(0.0, b.cpu - a.cpu) / dt
        active = sum(1 for tid, c in b.thread_cpu.items()
                     if tid in a.thread_cpu and (d := c - a.thread_cpu[tid]) >= THREAD_ACTIVE_MIN_SECONDS
                     and d >= THREAD_ACTIVE_CORES * dt)
        busiest = max(busiest, active)
        if active < 2:
            continue
        multi += dt
        if a.system_busy is not None and b.system_busy is not None:
            others = max(0.0, (b.system_busy - a.system_busy) / dt - cores)
            if others > trace.cpu_count - GIL_SERIAL_CORES:
                crowded += dt
                continue
        if cores <= GIL_SERIAL_CORES:
            serial += dt
    if multi < 0.2 * trace.wall or multi <= 0:
        return Signal("gil_contention", 0.0, "ratio",
                      f"At most {busiest} thread{'s were' if busiest != 1 else ' was'} busy at a time "
                      f"for most of the run: no GIL contention to see.")
    if trace.cpu_count < 2:
        return Signal("gil_contention", 0.0, "ratio",
                      f"{busiest} threads were busy, but the machine has one CPU core: they take "
                      f"turns whatever the GIL does; contention cannot be told apart here.")
    judged = multi - crowded
    if judged < 0.5 * multi:
        return Signal("gil_contention", 0.0, "ratio",
                      f"{busiest} threads were busy, but other processes kept the machine's cores "
                      f"busy for {_pct(crowded / multi)} of that time: cannot tell GIL contention "
                      f"from a crowded machine. Profile again on a quieter machine.")
    ratio = serial / judged
    if ratio >= GIL_WARN:
        return Signal("gil_contention", ratio, "ratio",
                      f"Estimate: for {_pct(ratio)} of the time when {busiest} threads were busy, the "
                      f"process used at most {GIL_SERIAL_CORES:g} of {trace.cpu_count} cores: the "
                      f"threads take turns on the GIL (or on a lock they share). Threads speed up "
                      f"I/O-bound work only; for CPU-bound work use processes "
                      f"(ProcessPoolExecutor) or code that releases the GIL (numpy, C extensions). "
                      f"Read from per-thread CPU time, not from the GIL itself.", "warn")
    return Signal("gil_contention", ratio, "ratio",
                  f"Estimate: {busiest} threads were busy and the process used more than one core "
                  f"most of that time: little GIL contention (GIL-releasing code, or threads that "
                  f"mostly wait).")


def load_signal(trace: ProcessTrace) -> Signal | None:
    """How much of the machine other processes used while profiling."""
    pts = [(p, p.system_busy) for p in trace.points if p.system_busy is not None]
    if len(pts) < 2 or pts[-1][0].t <= pts[0][0].t:
        return None
    (first, first_busy), (last, last_busy) = pts[0], pts[-1]
    wall = last.t - first.t
    others = max(0.0, (last_busy - first_busy) - (last.cpu - first.cpu)) / wall
    if others >= LOAD_WARN * trace.cpu_count:
        return Signal("machine_load", others, "cores",
                      f"Other processes used {others:.1f} of {trace.cpu_count} cores while profiling: "
                      f"times in this profile are inflated and thread readings less reliable. "
                      f"Compare shares rather than seconds, or profile on a quieter machine.", "warn")
    return Signal("machine_load", others, "cores",
                  f"Other processes used {others:.1f} of {trace.cpu_count} cores while profiling.")


# --------------------------------------------------------------------------------------------
# all of them


def compute_signals(*, trace: ProcessTrace | None = None, runtime: RuntimeStats | None = None,
                    profiler: str = "") -> list[Signal]:
    """Every signal the measurements allow, in a fixed order; missing sources skip signals."""
    out: list[Signal | None] = []
    pts = trace.points if trace else ()
    if runtime is not None and runtime.wall > 0:
        out.append(off_cpu_signal(runtime.wall, runtime.cpu, runtime.runqueue))
    elif len(pts) >= 2:
        queued = (pts[-1].runqueue - pts[0].runqueue
                  if pts[-1].runqueue is not None and pts[0].runqueue is not None else None)
        out.append(off_cpu_signal(pts[-1].t - pts[0].t, pts[-1].cpu - pts[0].cpu, queued))
    if runtime is not None and runtime.gc_time is not None:
        out.append(gc_signal(runtime.gc_time, runtime.wall, runtime.gc_collections))
    if len(pts) >= 3:
        times, rss = [p.t for p in pts], [p.rss for p in pts]
    elif runtime is not None and runtime.rss_start is not None and runtime.rss_end is not None:
        times, rss = [0.0, runtime.wall], [runtime.rss_start, runtime.rss_end]
    else:
        times, rss = [], []
    rss_sig = rss_signal(times, rss)
    out.append(rss_sig)
    if rss_sig is not None and rss_sig.severity == "warn" and runtime is not None:
        # only steady growth needs explaining; warm-up and temporary peaks do not
        out.append(python_memory_signal(rss[-1] - rss[0], runtime.calls,
                                        retained_per_call=runtime.retained_per_call,
                                        sites=runtime.retained_sites,
                                        blocks_start=runtime.blocks_start, blocks_end=runtime.blocks_end))
    max_threads = max([p.threads for p in pts] + [(runtime.threads_max or 0) if runtime else 0])
    if max_threads:
        out.append(thread_signal(max_threads, profiler=profiler))
    if trace is not None:
        out.append(gil_signal(trace))
        out.append(load_signal(trace))
    return [s for s in out if s is not None]
