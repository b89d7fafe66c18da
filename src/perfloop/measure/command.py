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
  :func:`perfloop.measure.rss.maxrss_floor`). A run that ends before the first poll (a millisecond or two) has
  no trustworthy figure: its ``peak_rss`` sample is left out and counted in
  ``extra["peak_rss_unmeasured"]``;
- ``instructions``, only when the benchmark asks for it: the whole process tree's, counted under
  valgrind in runs of their own after the timed ones (:mod:`perfloop.measure.instructions`).

The command's stdout is discarded (as hyperfine does by default: a terminal or a pipe that
must be read would be part of the measurement); the tail of its stderr is kept for the error
message. A non-zero exit fails the benchmark; a run past the deadline has its whole process
group killed and records ``timeout``. Every process runs in a new session, and whatever it
leaves behind in that session is killed when it exits, so one benchmark cannot disturb the
next with stray processes. Spawning and supervising each run is
:func:`perfloop.measure.process.run_child`, as for every other child of perfloop.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ..config import BenchmarkSpec
from ..records import BenchmarkResult, ResultStatus, Sample
from .instructions import count_command
from .outcome import failed_result, missing_cwd, ok_result, resolve_dir, timeout_message
from .process import ChildExit, child_env, describe_exit, run_child, stderr_note
from .rss import RSS_INTERVAL, maxrss_floor


class _Runs:
    """The runs of one command benchmark, one after another, and the samples they gave."""

    def __init__(self, spec: BenchmarkSpec, deadline: float | None,
                 on_progress: Callable[[float], None] | None, rss_interval: float,
                 clock: Callable[[], float]) -> None:
        assert spec.command is not None
        settings = spec.settings
        self.spec, self.deadline, self.on_progress, self.clock = spec, deadline, on_progress, clock
        self.rss_interval = rss_interval
        self.shell = isinstance(spec.command, str)
        self.args: str | list[str] = spec.command if isinstance(spec.command, str) else list(spec.command)
        self.cwd = resolve_dir(spec, spec.cwd)
        self.env = child_env(spec.env)
        self.metrics = set(spec.metrics)
        self.counting = "instructions" in self.metrics   # valgrind's runs come after the timed ones
        self.runs = (settings.warmup + settings.processes) if self.metrics - {"instructions"} else 0
        self.total = self.runs + (settings.warmup + settings.processes) * self.counting
        self.extra: dict[str, Any] = {
            "loops": 1, "runs": settings.processes, "warmup_runs": settings.warmup,
            "timer_resolution": time.get_clock_info("perf_counter").resolution,
            "rss_interval": rss_interval}
        self.samples: list[Sample] = []
        self.started = time.perf_counter()

    def fail(self, status: ResultStatus, error: str, stderr_tail: str | None = None) -> BenchmarkResult:
        return failed_result(self.spec, status, error, self.samples, stderr_tail=stderr_tail,
                             duration=time.perf_counter() - self.started, extra=self.extra)

    def progress(self, done: int) -> None:
        if self.on_progress is not None:
            self.on_progress(done / self.total)

    def run(self, run: int) -> BenchmarkResult | None:
        """Timed run ``run`` (warmup runs first); a failed result when it stops the benchmark."""
        settings = self.spec.settings
        warmup = run < settings.warmup
        done = f"{max(run - settings.warmup, 0)} of {settings.processes} measured runs"
        if self.deadline is not None and self.clock() >= self.deadline:
            return self.fail(ResultStatus.TIMEOUT, timeout_message(self.spec, done))
        try:
            child = run_child(self.args, shell=self.shell, cwd=self.cwd, env=self.env,
                              deadline=self.deadline, sample_rss="peak_rss" in self.metrics,
                              rss_interval=self.rss_interval, clock=self.clock)
        except OSError as exc:
            what = self.args if self.shell else self.args[0]
            return self.fail(ResultStatus.FAILED,
                             f"could not start {what!r}: {exc.strerror or exc}; check the command "
                             f"of {self.spec.base_name!r} in perfloop.toml and the PATH")
        label = f"warmup run {run + 1}" if warmup else f"run {run - settings.warmup + 1}"
        if child.timed_out:
            return self.fail(ResultStatus.TIMEOUT, timeout_message(self.spec, done), child.stderr_tail)
        if child.returncode != 0:
            return self.fail(ResultStatus.FAILED,
                             f"the command {describe_exit(child.returncode)} ({label} of "
                             f"{settings.processes}); {stderr_note(child.stderr_tail)}", child.stderr_tail)
        self._record(run, warmup, child)
        self.progress(run + 1)
        return None

    def _record(self, run: int, warmup: bool, child: ChildExit) -> None:
        values = {"wall_time": child.wall_time, "cpu_time": child.cpu_time}
        if "peak_rss" in self.metrics:
            peak = max(child.peak_tree_rss, maxrss_floor(child.maxrss))
            if peak > 0:
                values["peak_rss"] = float(peak)
            else:
                # Exited before the first poll, and wait4's figure is the parent's: unknown,
                # which is better left out than recorded as 0 bytes.
                self.extra["peak_rss_unmeasured"] = int(self.extra.get("peak_rss_unmeasured", 0)) + 1
        for metric, value in values.items():
            if metric in self.metrics:
                self.samples.append(Sample(metric, value, worker=run, index=0, warmup=warmup))

    def count(self, valgrind: str | None) -> BenchmarkResult | None:
        """The instruction counts under valgrind, after the timed runs."""
        steps = [self.runs]

        def on_step() -> None:
            steps[0] += 1
            self.progress(steps[0])

        counted = count_command(self.spec, self.args, shell=self.shell, cwd=self.cwd, env=self.env,
                                deadline=self.deadline, valgrind=valgrind, on_step=on_step, clock=self.clock)
        self.samples.extend(counted.samples)
        self.extra.update(counted.extra)
        if counted.error:
            return self.fail(counted.status, counted.error, counted.stderr_tail)
        return None


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
    runs = _Runs(spec, deadline, on_progress, rss_interval, clock)
    error = missing_cwd(spec, runs.cwd)
    if error is not None:
        return failed_result(spec, ResultStatus.FAILED, error, (), extra=runs.extra)
    for run in range(runs.runs):
        failed = runs.run(run)
        if failed is not None:
            return failed
    if runs.counting:
        failed = runs.count(valgrind)
        if failed is not None:
            return failed
    return ok_result(spec, runs.samples, duration=time.perf_counter() - runs.started, extra=runs.extra)
