"""The ``instructions`` metric: instructions executed, counted by valgrind's cachegrind.

Why: on a shared CI runner wall time varies by percents from run to run, so a gate on it cannot
see a 1% regression; the number of instructions a CPU-bound function executes varies by about a
thousandth (``benchmarks/instructions.py``), so a gate on it can. It is a proxy: it does not see
cache misses, branch mispredictions, I/O or waiting, and a change that trades instructions for
memory traffic can move it the wrong way. Off by default; a benchmark asks for it with
``metrics = ["wall_time", "instructions"]``.

Counting runs in processes of its own, after the timed ones (valgrind slows code 20-50x), as
``valgrind --tool=cachegrind --cache-sim=no --branch-sim=no`` with ``PYTHONHASHSEED=0``: a
fixed hash seed makes CPython's start-up and dict/set layouts the same in every process, and
then the count repeats to the instruction (39,433,518 for ``python -c pass`` three times out of
three here).

- **Callables**: valgrind 3.19's cachegrind cannot switch counting on and off inside a process
  (client requests for that came in 3.22), so interpreter start-up, imports, setup and warmup
  are cancelled by subtraction. A *baseline* worker imports, sets up and makes the warmup calls
  (``settings.warmup`` x ``loops``) and then a timer loop of 0 calls; each *counting* worker does
  the same and then ``loops`` calls. A sample is ``(count - baseline) / loops``: instructions per
  call, including the per-call overhead of the loop, as the timed values include it. One baseline
  per benchmark (its start-up is deterministic), then one sample per counting worker, so
  ``settings.processes`` samples. ``loops`` is the timed workers' calibration (each value lasts at
  least ``min_time``), or, with no timed metric, one native calibration worker's.
- **Commands**: ``--trace-children=yes`` counts the whole process tree, one output file per
  process, summed: one sample per run; ``settings.warmup`` runs first are recorded as warmup.

Valgrind missing (or unusable) gives a ``failed`` result whose error names the fix:
``apt-get install valgrind``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..config import BenchmarkSpec
from ..records import ResultStatus, Sample
from .outcome import timeout_message
from .process import ChildExit, describe_exit, run_child, stderr_note
from .protocol import ProtocolError, WorkerSession, new_token, run_worker, worker_error, worker_task

METRIC = "instructions"
HASH_SEED = "0"
INSTALL_HINT = ("install valgrind to count instructions: apt-get install valgrind (Debian, Ubuntu), "
                "dnf install valgrind (Fedora), brew install valgrind (Linux Homebrew); or drop "
                "\"instructions\" from the benchmark's metrics")
#: Valgrind's own options: instruction counts only, no cache or branch simulation (faster, and
#: the simulated caches model no real machine anyway).
CACHEGRIND = ("--tool=cachegrind", "--cache-sim=no", "--branch-sim=no")


@dataclass
class Counted:
    """What counting produced for one benchmark: samples, facts, and an error if it stopped."""

    samples: list[Sample] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    status: ResultStatus = ResultStatus.OK
    error: str | None = None
    stderr_tail: str | None = None

    def fail(self, error: str, stderr_tail: str | None = None,
             status: ResultStatus = ResultStatus.FAILED) -> "Counted":
        self.status, self.error, self.stderr_tail = status, error, stderr_tail or None
        return self


def find_valgrind(valgrind: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The valgrind executable: ``valgrind`` if given (a path or a name), else from ``PATH``."""
    path = (env if env is not None else os.environ).get("PATH")
    return shutil.which(valgrind or "valgrind", path=path)


def missing_message(valgrind: str | None) -> str:
    what = f"valgrind ({valgrind}) was not found" if valgrind else "valgrind is not on PATH"
    return f"the instructions metric needs valgrind, and {what}; {INSTALL_HINT}"


def cachegrind_argv(valgrind: str, out_pattern: str, *, children: bool) -> list[str]:
    """valgrind's command line up to the program it runs. ``out_pattern`` may hold ``%p`` (pid)."""
    argv = [valgrind, *CACHEGRIND, "--quiet", f"--cachegrind-out-file={out_pattern}"]
    if children:
        argv.append("--trace-children=yes")
    return argv


def read_count(path: Path) -> int:
    """The total instruction count (``Ir``) of one cachegrind output file."""
    events: list[str] = []
    summary: list[str] | None = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("summary:"):
                summary = line.split()[1:]
    if summary is None or "Ir" not in events:
        raise ValueError(f"{path} has no instruction summary (events: {' '.join(events) or 'none'})")
    return int(summary[events.index("Ir")])


def counting_env(env: Mapping[str, str], own: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the hash seed fixed: the benchmark's own ``env`` may choose one, an
    inherited ``PYTHONHASHSEED=random`` may not (it would make the counts vary)."""
    return {**env, "PYTHONHASHSEED": own.get("PYTHONHASHSEED", HASH_SEED)}


def _cleanup(files: Sequence[Path]) -> None:
    for f in files:
        try:
            f.unlink()
        except OSError:
            pass


# -- callables -------------------------------------------------------------------------------

class _CountingWorkers:
    """The worker processes that count one callable's instructions, natively or under valgrind."""

    def __init__(self, spec: BenchmarkSpec, counted: Counted, *, cwd: str, env: Mapping[str, str],
                 deadline: float | None, python: str, clock: Callable[[], float]) -> None:
        self.spec, self.counted = spec, counted
        self.cwd, self.env, self.deadline, self.python, self.clock = cwd, env, deadline, python, clock

    def run(self, label: int, task: dict[str, Any], prefix: Sequence[str]) -> tuple[WorkerSession, ChildExit]:
        expected = 0 if task.get("count_calls") is not None else task["warmup"] + task["values"]
        session = WorkerSession(label, frozenset(), lambda: None, token=new_token(), values=expected)
        child = run_worker(session, json.dumps(task), python=self.python, cwd=self.cwd, env=self.env,
                           deadline=self.deadline, clock=self.clock, prefix=prefix)
        return session, child

    def failed(self, session: WorkerSession, child: ChildExit, what: str) -> Counted | None:
        """The counting's failure when the worker did not end well, else None."""
        if child.timed_out:
            error = timeout_message(self.spec, what)
        elif child.returncode != 0:
            error = f"counting instructions: {worker_error(session, child.returncode, child.stderr_tail)}"
        elif not session.ended:
            error = (f"counting instructions: worker {session.worker} exited with code 0 before it "
                     "finished; does the benchmarked code call sys.exit() or os._exit()?")
        else:
            return None
        return self.counted.fail(error, child.stderr_tail,
                                 ResultStatus.TIMEOUT if child.timed_out else ResultStatus.FAILED)

    def calibrate(self) -> tuple[int | None, Counted | None]:
        """The loop count, from one native worker: under valgrind the clock runs 20-50x slow."""
        task = {**worker_task(self.spec, None), "values": 1, "warmup": 0, "tracemalloc": False}
        session, child = self.run(0, task, ())
        failed = self.failed(session, child, "calibrating the loop count")
        return (None, failed) if failed is not None else (session.loops or 1, None)

    def count(self, exe: str, loops: int, tmp: Path, on_step: Callable[[], None]) -> Counted:
        """A baseline worker, then ``settings.processes`` counting workers under valgrind."""
        counted, processes = self.counted, self.spec.settings.processes
        baseline: int | None = None
        for worker in range(-1, processes):
            if self.deadline is not None and self.clock() >= self.deadline:
                done = f"{len(counted.samples)} of {processes} instruction counts"
                return counted.fail(timeout_message(self.spec, done), status=ResultStatus.TIMEOUT)
            out = tmp / f"cachegrind.{worker + 1}"
            task = {**worker_task(self.spec, loops), "values": 1, "tracemalloc": False,
                    "count_calls": 0 if worker < 0 else loops}
            try:
                session, child = self.run(max(worker, 0), task, cachegrind_argv(exe, str(out), children=False))
            except OSError as exc:
                return counted.fail(f"could not start valgrind ({exe}): {exc.strerror or exc}; {INSTALL_HINT}")
            what = "the baseline" if worker < 0 else f"{worker} of {processes} counts"
            failed = self.failed(session, child, what)
            if failed is not None:
                return failed
            try:
                total = read_count(out)
            except (OSError, ValueError) as exc:
                return counted.fail(f"valgrind ran but left no instruction count ({exc}); "
                                    "check that it works: valgrind --tool=cachegrind true", child.stderr_tail)
            _cleanup([out])
            on_step()
            if baseline is None:
                baseline = total
                counted.extra["instructions_baseline"] = baseline
                continue
            per_call = (total - baseline) / loops
            if per_call <= 0:
                return counted.fail(
                    f"worker {worker} executed no more instructions with {loops} calls than the "
                    f"baseline with none ({total} vs {baseline}); the target's setup or start-up "
                    "is not repeatable from one process to the next")
            counted.samples.append(Sample(METRIC, per_call, worker=worker, index=0, loops=loops))
        return counted


def count_callable(spec: BenchmarkSpec, *, loops: int | None, cwd: str, env: Mapping[str, str],
                   deadline: float | None = None, python: str = sys.executable,
                   valgrind: str | None = None, on_step: Callable[[], None] | None = None,
                   clock: Callable[[], float] = time.monotonic) -> Counted:
    """Instructions per call of a callable target: ``settings.processes`` samples.

    ``loops`` is the calls per counting worker (the timed workers' calibration); ``None`` runs
    one native worker to calibrate it first. Never raises for a failing target or a missing
    valgrind: the returned :class:`Counted` carries the error.
    """
    counted = Counted(extra={"instructions_loops": None, "instructions_baseline": None,
                             "instructions_hash_seed": None})
    exe = find_valgrind(valgrind, env)
    if exe is None:
        return counted.fail(missing_message(valgrind))
    env = counting_env(env, spec.env)
    counted.extra["instructions_hash_seed"] = env["PYTHONHASHSEED"]
    workers = _CountingWorkers(spec, counted, cwd=cwd, env=env, deadline=deadline, python=python,
                               clock=clock)
    try:
        if not loops:
            loops, failed = workers.calibrate()
            if failed is not None or loops is None:
                return failed or counted
        counted.extra["instructions_loops"] = loops
        with tempfile.TemporaryDirectory(prefix="perfloop-cachegrind-") as tmp:
            return workers.count(exe, loops, Path(tmp), on_step or (lambda: None))
    except ProtocolError as exc:
        return counted.fail(str(exc))
    except OSError as exc:
        return counted.fail(f"could not start a worker with {python}: {exc}")


# -- commands --------------------------------------------------------------------------------

def count_command(spec: BenchmarkSpec, args: str | Sequence[str], *, shell: bool, cwd: str,
                  env: Mapping[str, str], deadline: float | None = None, valgrind: str | None = None,
                  on_step: Callable[[], None] | None = None,
                  clock: Callable[[], float] = time.monotonic) -> Counted:
    """Instructions of a command's whole process tree: ``settings.warmup`` warmup runs, then
    ``settings.processes`` runs, one sample each. Never raises for a failing command."""

    counted = Counted(extra={"instructions_hash_seed": None, "instructions_processes": []})
    exe = find_valgrind(valgrind, env)
    if exe is None:
        return counted.fail(missing_message(valgrind))
    env = counting_env(env, spec.env)
    counted.extra["instructions_hash_seed"] = env["PYTHONHASHSEED"]
    settings = spec.settings
    program = ["/bin/sh", "-c", args] if shell else list(args)   # as run_child's shell=True would
    with tempfile.TemporaryDirectory(prefix="perfloop-cachegrind-") as tmp:
        for run in range(settings.warmup + settings.processes):
            warmup = run < settings.warmup
            done = f"{max(run - settings.warmup, 0)} of {settings.processes} counted runs"
            if deadline is not None and clock() >= deadline:
                return counted.fail(timeout_message(spec, done), status=ResultStatus.TIMEOUT)
            run_dir = Path(tmp) / str(run)
            run_dir.mkdir()
            argv = [*cachegrind_argv(exe, str(run_dir / "cachegrind.%p"), children=True), *program]
            try:
                child = run_child(argv, cwd=cwd, env=env, deadline=deadline, clock=clock)
            except OSError as exc:
                return counted.fail(f"could not start valgrind ({exe}): {exc.strerror or exc}; {INSTALL_HINT}")
            label = f"warmup run {run + 1}" if warmup else f"run {run - settings.warmup + 1}"
            if child.timed_out:
                return counted.fail(timeout_message(spec, done), child.stderr_tail, ResultStatus.TIMEOUT)
            if child.returncode != 0:
                return counted.fail(f"the command {describe_exit(child.returncode)} under valgrind "
                                    f"({label} of the instruction count); "
                                    f"{stderr_note(child.stderr_tail)}", child.stderr_tail)
            files = sorted(run_dir.glob("cachegrind.*"))
            try:
                counts = [read_count(f) for f in files]
            except (OSError, ValueError) as exc:
                return counted.fail(f"valgrind ran but left an unreadable count ({exc})", child.stderr_tail)
            if not counts:
                return counted.fail("valgrind ran but wrote no instruction count; check that it works: "
                                    "valgrind --tool=cachegrind true", child.stderr_tail)
            _cleanup(files)
            counted.extra["instructions_processes"].append(len(counts))
            counted.samples.append(Sample(METRIC, float(sum(counts)), worker=run, index=0, warmup=warmup))
            if on_step is not None:
                on_step()
    return counted
