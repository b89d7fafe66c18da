"""Shell-command targets, and the supervision of one child process under a deadline.

A command benchmark runs its command as fresh processes: ``settings.warmup`` runs first
(recorded as warmup samples, left out of the statistics), then ``settings.processes`` measured
runs. Each run is its own process and so its own statistical unit: ``Sample.worker`` is the run
number (warmup runs included, in the order they ran). ``settings.values`` does not apply to
commands, since one process gives exactly one value of each metric.

Per run it measures:

- ``wall_time``: from just before the process is spawned to the moment it exits;
- ``cpu_time``: user + system CPU of the process and of the descendants it waited for
  (``os.wait4``);
- ``peak_rss``: the largest sum of resident memory over the process tree, polled about every
  10 ms, floored by the largest single-process high-water mark seen (``VmHWM``, which catches
  peaks between polls) and by ``wait4``'s ``ru_maxrss`` when that is trustworthy (see
  :func:`_maxrss_floor`). A run that ends before the first poll (a millisecond or two) has
  no trustworthy figure: its ``peak_rss`` sample is left out and counted in
  ``extra["peak_rss_unmeasured"]``;
- ``instructions``, only when the benchmark asks for it: the whole process tree's, counted under
  valgrind in runs of their own after the timed ones (:mod:`perfloop.measure.instructions`).

The command's stdout is discarded (as hyperfine does by default: a terminal or a pipe that
must be read would be part of the measurement); the tail of its stderr is kept for the error
message. A non-zero exit fails the benchmark; a run past the deadline has its whole process
group killed and records ``timeout``. Every process runs in a new session, and whatever it
leaves behind in that session is killed when it exits, so one benchmark cannot disturb the
next with stray processes.

:func:`run_child` is the supervision both target kinds share: the callable workers of
:mod:`perfloop.measure.callable` are child processes like any command.
"""

from __future__ import annotations

import os
import resource
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..config import BenchmarkSpec, DeclaredMetrics
from ..records import BenchmarkResult, ResultStatus, Sample
from .childenv import child_env
from .process import kill_group, release, spawn

TAIL_LINES = 40
#: Bytes of stderr kept while a child runs: enough for TAIL_LINES long lines, and bounded so a
#: chatty target cannot fill the parent's memory.
TAIL_BYTES = 64 * 1024
#: After a child exits, how long to keep reading pipes that something outside its process
#: group may still hold open.
DRAIN_GRACE = 1.0
RSS_INTERVAL = 0.01


class StderrTail:
    """The last TAIL_BYTES of a stream, rendered as its last ``lines`` lines."""

    def __init__(self, limit: int = TAIL_BYTES) -> None:
        self.limit = limit
        self.buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > self.limit:
            del self.buffer[:-self.limit]

    def text(self, lines: int = TAIL_LINES) -> str:
        decoded = self.buffer.decode("utf-8", errors="replace")
        return "\n".join(decoded.rstrip("\n").splitlines()[-lines:])


class TreeRssSampler:
    """Polls the resident memory of a process tree from a background thread.

    On Linux the tree is walked through ``/proc/PID/task/TID/children`` and memory read from
    ``/proc/PID/status``, about 0.4 ms per poll; psutil's recursive ``children()`` scans every
    process on the machine and costs over 5 ms, which at a 10 ms interval would take half a
    core away from the benchmark on a 2-core machine. Elsewhere psutil is used, less often.
    """

    def __init__(self, pid: int, interval: float = RSS_INTERVAL) -> None:
        self.pid = pid
        self.peak = 0
        self._proc_children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()
        self.interval = interval if self._proc_children else max(interval, 0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"perfloop-rss-{pid}", daemon=True)

    def start(self) -> "TreeRssSampler":
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        return self.peak

    def _run(self) -> None:
        poll = self._poll_proc if self._proc_children else self._poll_psutil
        while True:
            try:
                self.peak = max(self.peak, poll())
            except Exception:  # a vanished process mid-walk; the next poll sees the new tree
                pass
            if self._stop.wait(self.interval):
                return

    def _poll_proc(self) -> int:
        total = single = 0
        todo = [self.pid]
        while todo:
            pid = todo.pop()
            rss, hwm = _proc_status_memory(pid)
            total += rss
            single = max(single, hwm)
            todo.extend(_proc_children(pid))
        return max(total, single)

    def _poll_psutil(self) -> int:
        import psutil
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total


def _proc_status_memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a live process in bytes; zeros for a zombie or a vanished one."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss, hwm


def _proc_children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                    found.extend(int(x) for x in f.read().split())
            except OSError:
                continue
    except OSError:
        pass
    return found


@dataclass(frozen=True)
class ChildExit:
    """How one supervised child process ended."""

    returncode: int
    timed_out: bool
    wall_time: float            # seconds from spawn to exit
    cpu_time: float             # user + sys of the process and the descendants it waited for
    maxrss: int                 # wait4's ru_maxrss in bytes (see _maxrss_floor before using it)
    peak_tree_rss: int          # polled; 0 when not sampled
    stderr_tail: str


def _ru_maxrss_bytes(maxrss: int) -> int:
    return int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024


def run_child(args: Sequence[str] | str, *, shell: bool = False, cwd: str | None = None,
              env: Mapping[str, str] | None = None, deadline: float | None = None,
              pass_fds: Sequence[int] = (), readers: Mapping[int, Callable[[bytes], None]] | None = None,
              sample_rss: bool = False, rss_interval: float = RSS_INTERVAL,
              stdin_data: bytes | None = None,
              clock: Callable[[], float] = time.monotonic) -> ChildExit:
    """Run one child process in a new session until it exits or ``deadline`` passes.

    ``pass_fds`` are handed to the child and closed in the parent once it is spawned;
    ``readers`` maps file descriptors the parent reads while the child runs (the read ends of
    those pipes) to callbacks receiving each chunk. The caller closes the reader fds.
    ``stdin_data`` (at most a pipe's buffer, 4 KiB) is the child's whole stdin; without it stdin
    is ``/dev/null``. The child is spawned through :func:`perfloop.measure.process.spawn`, so a
    SIGKILL of perfloop does not leave it running.

    The exit is detected by a thread blocked in ``waitid(WNOWAIT)``, which timestamps it at
    once without reaping the process: while the zombie holds the process group, whatever the
    child left behind in it is killed, and ``wait4`` then reaps it with its resource usage.
    On the deadline the whole process group is killed and ``timed_out`` is set. On any
    exception (KeyboardInterrupt included) the group is killed and reaped before re-raising.
    """
    readers = dict(readers or {})
    wake_r, wake_w = os.pipe()
    stdin: int = subprocess.DEVNULL
    feed_w: int | None = None
    if stdin_data is not None:
        stdin, feed_w = os.pipe()
    try:
        start = time.perf_counter()
        proc = spawn(args, shell=shell, cwd=cwd, env=dict(env) if env is not None else None,
                     stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                     pass_fds=tuple(pass_fds))
    except BaseException:
        for fd in (wake_r, wake_w) if feed_w is None else (wake_r, wake_w, feed_w):
            os.close(fd)
        raise
    finally:
        for fd in pass_fds:
            os.close(fd)
        if feed_w is not None:
            os.close(stdin)
    if feed_w is not None:
        try:
            os.write(feed_w, stdin_data or b"")   # fits the pipe's buffer: never blocks
        except OSError:
            pass   # the child is gone already; its exit says why
        finally:
            os.close(feed_w)

    exit_times: list[float] = []

    def wait_for_exit() -> None:
        try:
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass
        exit_times.append(time.perf_counter())
        os.write(wake_w, b"x")

    waiter = threading.Thread(target=wait_for_exit, name=f"perfloop-wait-{proc.pid}", daemon=True)
    waiter.start()
    sampler = TreeRssSampler(proc.pid, rss_interval).start() if sample_rss else None
    tail = StderrTail()
    assert proc.stderr is not None
    callbacks: dict[int, Callable[[bytes], None]] = {proc.stderr.fileno(): tail.feed, **readers}
    selector = selectors.DefaultSelector()
    for fd in callbacks:
        selector.register(fd, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    timed_out = exited = False
    drain_until = 0.0
    reaped = False
    try:
        while True:
            if exited:
                left = drain_until - time.monotonic()
                if not selector.get_map() or left <= 0:
                    break
                timeout = left
            elif deadline is not None:
                left = deadline - clock()
                if left <= 0 and not timed_out:
                    timed_out = True
                    kill_group(proc.pid)
                # Bounded so an injected or adjusted clock is re-read now and then.
                timeout = 0.1 if timed_out else min(max(left, 0.0), 0.25)
            else:
                timeout = 1.0
            for key, _ in selector.select(timeout):
                fd = key.fd
                if fd == wake_r:
                    os.read(wake_r, 1)
                    selector.unregister(wake_r)
                    exited = True
                    # The zombie still holds the group id, so this reaches only its leftovers.
                    kill_group(proc.pid)
                    drain_until = time.monotonic() + DRAIN_GRACE
                    continue
                data = os.read(fd, 65536)
                if data:
                    callbacks[fd](data)
                else:
                    selector.unregister(fd)
        _, status, usage = os.wait4(proc.pid, 0)
        reaped = True
        proc.returncode = os.waitstatus_to_exitcode(status)
    except BaseException:
        kill_group(proc.pid)
        if not reaped:
            try:
                proc.wait(timeout=5.0)
            except (subprocess.TimeoutExpired, ChildProcessError):
                pass
        raise
    finally:
        peak = sampler.stop() if sampler is not None else 0
        release(proc.pid)
        selector.close()
        proc.stderr.close()
        waiter.join(timeout=5.0)
        if not waiter.is_alive():   # never close a pipe the waiter may still write to
            os.close(wake_r)
            os.close(wake_w)
    return ChildExit(returncode=proc.returncode, timed_out=timed_out,
                     wall_time=(exit_times[0] if exit_times else time.perf_counter()) - start,
                     cpu_time=usage.ru_utime + usage.ru_stime,
                     maxrss=_ru_maxrss_bytes(usage.ru_maxrss), peak_tree_rss=peak,
                     stderr_tail=tail.text())


def _maxrss_floor(child_maxrss: int) -> int:
    """wait4's ru_maxrss when it can be trusted, else 0.

    On Linux a child's ru_maxrss starts from its parent's peak RSS (it is inherited across
    fork/vfork + exec), so a 2 MB command spawned by a 100 MB perfloop reports 100 MB. Only a
    value above our own peak must come from the child itself.
    """
    own = _ru_maxrss_bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return child_maxrss if child_maxrss > own else 0


def describe_exit(returncode: int) -> str:
    """``exited with code 2`` or ``was killed by signal SIGSEGV``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"was killed by signal {name}"
    return f"exited with code {returncode}"


def stderr_note(tail: str | None) -> str:
    """How an error message points at the stderr tail: only when there are lines to show."""
    if tail and tail.strip():
        return "its stderr ends with the lines shown"
    return "it wrote nothing on stderr"


def resolve_dir(spec: BenchmarkSpec, path: str | None) -> str:
    """``path`` relative to the project root (the root itself when ``path`` is None)."""
    root = Path(spec.root)
    return str(root / path) if path else str(root)


def failed_result(spec: BenchmarkSpec, status: ResultStatus, error: str, samples: Sequence[Sample],
                  *, stderr_tail: str | None = None, duration: float = 0.0,
                  extra: Mapping[str, object] | None = None) -> BenchmarkResult:
    """A failed or timed-out result that keeps the samples measured before the failure."""
    return BenchmarkResult(name=spec.name, kind=spec.kind, status=status, samples=tuple(samples),
                           params=spec.params, error=error, stderr_tail=stderr_tail or None,
                           duration=duration, extra=extra or {}, **_declared(spec))


def _declared(spec: BenchmarkSpec) -> DeclaredMetrics:
    return {"units": {m: unit for m, (unit, _) in spec.custom_metrics.items()},
            "directions": {m: direction for m, (_, direction) in spec.custom_metrics.items()}}


def timeout_message(spec: BenchmarkSpec, done: str) -> str:
    return (f"killed at the benchmark's timeout ({spec.settings.timeout:g} s) after {done}; "
            f"raise timeout for {spec.base_name!r} in perfloop.toml, or lower processes/values")


def measure_command(spec: BenchmarkSpec, *, deadline: float | None = None,
                    on_progress: Callable[[float], None] | None = None,
                    rss_interval: float = RSS_INTERVAL, valgrind: str | None = None,
                    clock: Callable[[], float] = time.monotonic) -> BenchmarkResult:
    """Measure a command target: ``settings.warmup`` runs, then ``settings.processes`` runs.

    ``settings.values`` is not used: each run is one fresh process giving one value per
    metric, so the number of values is the number of processes. A shell string runs with
    ``shell=True``, an argv list without a shell. ``cwd`` is relative to the project root;
    ``env`` is merged over the current environment.

    Never raises for a failing command: a non-zero exit gives a ``failed`` result, the
    deadline a ``timeout`` result, both with the samples of the runs before and the tail of
    the failing run's stderr. KeyboardInterrupt kills the running command and propagates.
    """
    if spec.command is None:
        raise ValueError(f"benchmark {spec.name!r} has no command (kind {spec.kind!r})")
    settings = spec.settings
    shell = isinstance(spec.command, str)
    args: str | list[str] = spec.command if isinstance(spec.command, str) else list(spec.command)
    cwd = resolve_dir(spec, spec.cwd)
    env = child_env(spec.env)
    metrics = set(spec.metrics)
    counting = "instructions" in metrics          # valgrind's runs come after the timed ones
    runs = (settings.warmup + settings.processes) if metrics - {"instructions"} else 0
    total = runs + (settings.warmup + settings.processes) * counting
    extra: dict[str, Any] = {"loops": 1, "runs": settings.processes, "warmup_runs": settings.warmup,
             "timer_resolution": time.get_clock_info("perf_counter").resolution,
             "rss_interval": rss_interval}
    samples: list[Sample] = []
    started = time.perf_counter()

    def elapsed() -> float:
        return time.perf_counter() - started

    if not Path(cwd).is_dir():
        return failed_result(spec, ResultStatus.FAILED, f"cwd {cwd} is not a directory; fix cwd for "
                             f"{spec.base_name!r} in perfloop.toml (it is relative to the project)",
                             samples, extra=extra)
    for run in range(runs):
        warmup = run < settings.warmup
        done = f"{max(run - settings.warmup, 0)} of {settings.processes} measured runs"
        if deadline is not None and clock() >= deadline:
            return failed_result(spec, ResultStatus.TIMEOUT, timeout_message(spec, done), samples,
                                 duration=elapsed(), extra=extra)
        try:
            child = run_child(args, shell=shell, cwd=cwd, env=env, deadline=deadline,
                              sample_rss="peak_rss" in metrics, rss_interval=rss_interval, clock=clock)
        except OSError as exc:
            what = args if shell else args[0]
            return failed_result(spec, ResultStatus.FAILED,
                                 f"could not start {what!r}: {exc.strerror or exc}; check the command "
                                 f"of {spec.base_name!r} in perfloop.toml and the PATH",
                                 samples, duration=elapsed(), extra=extra)
        label = f"warmup run {run + 1}" if warmup else f"run {run - settings.warmup + 1}"
        if child.timed_out:
            return failed_result(spec, ResultStatus.TIMEOUT, timeout_message(spec, done), samples,
                                 stderr_tail=child.stderr_tail, duration=elapsed(), extra=extra)
        if child.returncode != 0:
            return failed_result(spec, ResultStatus.FAILED,
                                 f"the command {describe_exit(child.returncode)} ({label} of "
                                 f"{settings.processes}); {stderr_note(child.stderr_tail)}",
                                 samples, stderr_tail=child.stderr_tail, duration=elapsed(), extra=extra)
        values = {"wall_time": child.wall_time, "cpu_time": child.cpu_time}
        if "peak_rss" in metrics:
            peak = max(child.peak_tree_rss, _maxrss_floor(child.maxrss))
            if peak > 0:
                values["peak_rss"] = float(peak)
            else:
                # Exited before the first poll, and wait4's figure is the parent's: unknown,
                # which is better left out than recorded as 0 bytes.
                extra["peak_rss_unmeasured"] = int(extra.get("peak_rss_unmeasured", 0)) + 1
        for metric, value in values.items():
            if metric in metrics:
                samples.append(Sample(metric, value, worker=run, index=0, warmup=warmup))
        if on_progress is not None:
            on_progress((run + 1) / total)
    if counting:
        from .instructions import count_command
        steps = [runs]

        def on_step() -> None:
            steps[0] += 1
            if on_progress is not None:
                on_progress(steps[0] / total)

        counted = count_command(spec, args, shell=shell, cwd=cwd, env=env, deadline=deadline,
                                valgrind=valgrind, on_step=on_step, clock=clock)
        samples.extend(counted.samples)
        extra.update(counted.extra)
        if counted.error:
            return failed_result(spec, counted.status, counted.error, samples,
                                 stderr_tail=counted.stderr_tail, duration=elapsed(), extra=extra)
    return BenchmarkResult(name=spec.name, kind=spec.kind, status=ResultStatus.OK, samples=tuple(samples),
                           params=spec.params, duration=elapsed(), extra=extra, **_declared(spec))
