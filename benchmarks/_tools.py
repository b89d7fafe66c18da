"""The three tools under test, each driven the way its users drive it from a shell.

Each driver measures base (no slowdown) then head (slowdown ``s``) in two separate runs,
compares them with the tool's own comparison, and returns a :class:`Verdict`: what the tool
said, normalised to ``slower``, ``faster``, ``same``, ``inconclusive`` or ``error``, with the
wall seconds the whole verdict took (both runs and the comparison) and what the tool
reported about the spread of its values.

- perfloop: ``perfloop run --label`` twice, then ``perfloop compare --json``; verdicts
  (regressed / improved / unchanged / inconclusive) of ``wall_time`` and of the deciding time
  metric: the one the verdict JSON names (``deciding_metric``), else ``cpu_time``.
- pyperf: ``python bench.py -o X.json`` twice (``pyperf.Runner`` defaults), then
  ``python -m pyperf compare_to``; "not significant" or "N.NNx slower/faster".
- pytest-benchmark: ``pytest --benchmark-save`` then ``pytest --benchmark-compare
  --benchmark-compare-fail=mean:5%``; a non-zero exit with "Performance has regressed" is a
  flagged regression. The check is one-sided: it can only say ``slower`` or ``same``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from _workload import BENCH_NAME, ENV_VAR, SLOWDOWN_FILE

PYTHON = sys.executable
BIN = Path(sys.executable).parent
STEP_TIMEOUT = 600.0


@dataclass
class Verdict:
    tool: str
    call: str                      # slower | faster | same | inconclusive | error
    raw: str                       # the tool's own word for it
    seconds: float                 # wall seconds for base run + head run + comparison
    ratio: float | None = None     # head / base, as the tool computed its centre
    base_spread: float | None = None   # stdev / mean of the base run's values
    head_spread: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StepFailed(RuntimeError):
    """A tool's subprocess failed in a way that is not a verdict."""


def _env(slowdown: float, project: Path) -> dict[str, str]:
    env = dict(os.environ)
    env[ENV_VAR] = repr(slowdown)
    env["PYTHONPATH"] = str(project) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONHASHSEED", None)
    return env


def _run(argv: Sequence[str], *, cwd: Path, env: dict[str, str], ok: Sequence[int] = (0,)
         ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=STEP_TIMEOUT)
    if proc.returncode not in ok:
        tail = (proc.stderr or proc.stdout)[-1500:]
        raise StepFailed(f"{' '.join(argv[:4])}... exited {proc.returncode}: {tail}")
    return proc


def _spread(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean else None


class Tool:
    name = "tool"

    def __init__(self, project: Path, scratch: Path) -> None:
        self.project = project
        self.scratch = scratch / self.name
        self.scratch.mkdir(parents=True, exist_ok=True)

    def verdict(self, pair: int, slowdown: float) -> Verdict:
        """Measure base then head, compare; errors become an ``error`` verdict, never a crash."""
        start = time.perf_counter()
        try:
            return self._verdict(pair, slowdown, start)
        except (StepFailed, subprocess.TimeoutExpired, ValueError, KeyError, OSError) as exc:
            return Verdict(self.name, "error", f"{type(exc).__name__}: {exc}"[:2000],
                           time.perf_counter() - start)

    def _verdict(self, pair: int, slowdown: float, start: float) -> Verdict:
        raise NotImplementedError


class Perfloop(Tool):
    """perfloop with the project's settings (its defaults), plus any extra ``run`` options."""

    name = "perfloop"

    def __init__(self, project: Path, scratch: Path, run_args: Sequence[str] = ()) -> None:
        super().__init__(project, scratch)
        self.run_args = list(run_args)
        self.exe = str(BIN / "perfloop") if (BIN / "perfloop").exists() else "perfloop"

    def _one_run(self, label: str, slowdown: float) -> dict[str, Any]:
        proc = _run([self.exe, "run", "-C", str(self.project), "--label", label, "--json",
                     *self.run_args], cwd=self.project, env=_env(slowdown, self.project))
        return json.loads(proc.stdout)

    def _verdict(self, pair: int, slowdown: float, start: float) -> Verdict:
        base = self._one_run(f"p{pair}-base", 0.0)
        head = self._one_run(f"p{pair}-head", slowdown)
        proc = _run([self.exe, "compare", str(base["run_id"]), str(head["run_id"]), "-C",
                     str(self.project), "--json"],
                    cwd=self.project, env=_env(0.0, self.project))
        seconds = time.perf_counter() - start
        cmp = json.loads(proc.stdout)
        by_metric = _by_metric(cmp.get("verdicts", []), proc.stdout)
        b, h = _perfloop_summary(base), _perfloop_summary(head)
        for name, cell in by_metric["metrics"].items():
            if b.get(name, {}).get("median") and h.get(name, {}).get("median"):
                cell["ratio"] = h[name]["median"] / b[name]["median"]
        decides = by_metric["metrics"][by_metric["decides"]]
        return Verdict(self.name, decides["call"], decides["raw"], seconds, decides.get("ratio"),
                       b[by_metric["decides"]].get("cv"), h[by_metric["decides"]].get("cv"),
                       {**by_metric, "base": b, "head": h,
                        "run_seconds": [base.get("results", [{}])[0].get("duration"),
                                        head.get("results", [{}])[0].get("duration")]})


TIME_METRICS = ("wall_time", "cpu_time", "cpu_norm", "instructions")
_CALL = {"regressed": "slower", "improved": "faster", "unchanged": "same",
         "inconclusive": "inconclusive"}


def _by_metric(verdicts: Sequence[dict[str, Any]], text: str) -> dict[str, Any]:
    """Each time metric's verdict, and which of them decides.

    The deciding metric is the one perfloop names (``deciding_metric``, or the verdict whose
    ``role`` is ``decides``); perfloop versions that name none are judged on ``cpu_time``,
    the right metric for this CPU-bound workload.
    """
    metrics: dict[str, Any] = {}
    named = None
    for v in verdicts:
        name = v.get("metric")
        if name not in TIME_METRICS:
            continue
        raw = str(v.get("verdict"))
        metrics[name] = {"call": _CALL.get(raw, "error"), "raw": raw, "verdict": v,
                         "role": v.get("role")}
        named = named or v.get("deciding_metric")
    if named not in metrics:
        named = next((m for m, c in metrics.items() if c["role"] == "decides" and m != "wall_time"),
                     None)
    decides = named if named in metrics else "cpu_time"
    if decides not in metrics or "wall_time" not in metrics:
        raise ValueError(f"no {decides} and wall_time verdicts in perfloop output: {text[:500]}")
    return {"decides": decides, "decides_named": named is not None, "metrics": metrics}


def _perfloop_summary(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{metric: summary} of the run's one benchmark, for its time metrics."""
    for result in run.get("results", []):
        if result.get("status") != "ok":
            raise StepFailed(f"perfloop benchmark {result.get('name')} {result.get('status')}: "
                             f"{result.get('error')} {result.get('stderr_tail') or ''}"[:1500])
        out = {m["metric"]: m for m in result.get("metrics", []) if m.get("metric") in TIME_METRICS}
        if "wall_time" in out:
            return out
    raise ValueError("no wall_time summary in perfloop run output")


class Pyperf(Tool):
    """pyperf.Runner defaults; the workers inherit the slowdown variable (``--inherit-environ``
    only widens which environment variables reach them, it changes no run setting)."""

    name = "pyperf"

    def _one_run(self, out: Path, slowdown: float) -> list[float]:
        out.unlink(missing_ok=True)
        _run([PYTHON, str(self.project / "bench_pyperf.py"), "--quiet", "-o", str(out),
              "--inherit-environ", ENV_VAR], cwd=self.project, env=_env(slowdown, self.project))
        data = json.loads(out.read_text())
        values: list[float] = []
        for bench in data["benchmarks"]:
            for run in bench["runs"]:
                values.extend(run.get("values", []))
        return values

    def _verdict(self, pair: int, slowdown: float, start: float) -> Verdict:
        a, b = self.scratch / f"p{pair}-base.json", self.scratch / f"p{pair}-head.json"
        base = self._one_run(a, 0.0)
        head = self._one_run(b, slowdown)
        proc = _run([PYTHON, "-m", "pyperf", "compare_to", str(a), str(b)], cwd=self.project,
                    env=_env(0.0, self.project))
        seconds = time.perf_counter() - start
        text = proc.stdout + proc.stderr
        lowered = text.lower()
        if "error" in lowered:
            call, raw = "error", text.strip()[-300:]
        elif "not significant" in lowered:
            call, raw = "same", "not significant"
        elif "slower" in lowered:
            call, raw = "slower", _last_word(text, "slower")
        elif "faster" in lowered:
            call, raw = "faster", _last_word(text, "faster")
        else:
            call, raw = "error", text.strip()[-300:]
        ratio = statistics.fmean(head) / statistics.fmean(base) if base and head else None
        for f in (a, b):
            f.unlink(missing_ok=True)
        return Verdict(self.name, call, raw, seconds, ratio, _spread(base), _spread(head),
                       {"n_base": len(base), "n_head": len(head), "output": text.strip()[-400:]})


def _last_word(text: str, word: str) -> str:
    for line in text.splitlines():
        if word in line:
            return line.rsplit(":", 1)[-1].strip()
    return word


class PytestBenchmark(Tool):
    """pytest-benchmark defaults, regression gate ``--benchmark-compare-fail=mean:5%``."""

    name = "pytest-benchmark"

    def _pytest(self, slowdown: float, storage: Path, out: Path, *extra: str,
                ok: Sequence[int] = (0,)) -> subprocess.CompletedProcess[str]:
        return _run([PYTHON, "-m", "pytest", "-q", f"test_{BENCH_NAME}.py",
                     f"--benchmark-storage=file://{storage}", f"--benchmark-json={out}", *extra],
                    cwd=self.project, env=_env(slowdown, self.project), ok=ok)

    def _verdict(self, pair: int, slowdown: float, start: float) -> Verdict:
        storage = self.scratch / f"p{pair}-storage"
        shutil.rmtree(storage, ignore_errors=True)
        a, b = self.scratch / f"p{pair}-base.json", self.scratch / f"p{pair}-head.json"
        self._pytest(0.0, storage, a, "--benchmark-save=base")
        proc = self._pytest(slowdown, storage, b, "--benchmark-compare",
                            "--benchmark-compare-fail=mean:5%", ok=(0, 1))
        seconds = time.perf_counter() - start
        text = proc.stdout + proc.stderr
        if proc.returncode == 0:
            call, raw = "same", "pass"
        elif "Performance has regressed" in text:
            call, raw = "slower", "fail"
        else:
            raise StepFailed(f"pytest exited {proc.returncode} without a regression: {text[-1500:]}")
        sa, sb = _pytest_stats(a), _pytest_stats(b)
        ratio = sb["mean"] / sa["mean"] if sa.get("mean") and sb.get("mean") else None
        shutil.rmtree(storage, ignore_errors=True)
        for f in (a, b):
            f.unlink(missing_ok=True)
        return Verdict(self.name, call, raw, seconds, ratio,
                       sa["stddev"] / sa["mean"], sb["stddev"] / sb["mean"],
                       {"rounds": [sa.get("rounds"), sb.get("rounds")]})


def _pytest_stats(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    return data["benchmarks"][0]["stats"]


class PerfloopGate(Tool):
    """``perfloop gate``: base and head measured interleaved (A B B A) in one command, blocks
    added while the verdict is inconclusive, up to its cost limit. The slowdown is carried by
    a committed file (base) and an uncommitted edit of it (head, the working tree)."""

    name = "perfloop-gate"

    def __init__(self, project: Path, scratch: Path, run_args: Sequence[str] = ()) -> None:
        super().__init__(project, scratch)
        self.run_args = list(run_args)
        self.exe = str(BIN / "perfloop") if (BIN / "perfloop").exists() else "perfloop"
        self.repo = self.scratch / "repo"
        if not self.repo.exists():
            shutil.copytree(project, self.repo)
            (self.repo / SLOWDOWN_FILE).write_text("0\n")
            (self.repo / ".gitignore").write_text(".perfloop/\n.benchmarks/\n__pycache__/\n")
            git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
            for argv in (["git", "init", "-q"], ["git", "add", "-A"],
                         [*git, "commit", "-q", "-m", "base"]):
                _run(argv, cwd=self.repo, env=dict(os.environ))

    def _verdict(self, pair: int, slowdown: float, start: float) -> Verdict:
        env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
        (self.repo / SLOWDOWN_FILE).write_text(f"{slowdown!r}\n")
        try:
            proc = _run([self.exe, "gate", "--base", "HEAD", "-C", str(self.repo), "--json",
                         *self.run_args], cwd=self.repo, env=env, ok=(0, 1))
        finally:
            (self.repo / SLOWDOWN_FILE).write_text("0\n")
        seconds = time.perf_counter() - start
        report = json.loads(proc.stdout)
        bench = report["benchmarks"][0]
        by_metric = _by_metric(bench.get("metrics", []), proc.stdout)
        for cell in by_metric["metrics"].values():
            m = cell["verdict"]
            cell["ratio"] = m["head"] / m["base"] if m.get("base") and m.get("head") else None
        decides = by_metric["metrics"][by_metric["decides"]]
        return Verdict(self.name, decides["call"], decides["raw"], seconds, decides.get("ratio"),
                       None, None,
                       {**by_metric, "status": bench.get("status"), "blocks": bench.get("blocks"),
                        "workers_per_side": bench.get("workers_per_side"),
                        "stopped": bench.get("stopped"), "confirmation": bench.get("confirmation"),
                        "exit_code": proc.returncode})


TOOLS = {"perfloop": Perfloop, "pyperf": Pyperf, "pytest-benchmark": PytestBenchmark,
         "perfloop-gate": PerfloopGate}


def make_tool(name: str, project: Path, scratch: Path, perfloop_args: Sequence[str] = ()) -> Tool:
    if name not in TOOLS:
        raise SystemExit(f"unknown tool {name!r}: choose from {', '.join(TOOLS)}")
    if name in ("perfloop", "perfloop-gate"):
        return TOOLS[name](project, scratch, perfloop_args)
    return TOOLS[name](project, scratch)
