"""The first loop's commands: ``run``, ``runs``, ``show``, ``compare``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import GateFailed, Interrupted, PerfloopError, UsageError
from .common import (JsonFlag, ProjectDir, StoreUrl, console, err_console, list_runs, open_store,
                     print_json, project_root)
from .server_cmds import UploadProject, UploadToken, UploadUrl, report_upload, upload_stored


def _result_dict(result) -> dict:
    from ..analysis.summary import summarize
    return {"name": result.name, "kind": result.kind, "status": result.status.value,
            "params": dict(result.params), "error": result.error, "stderr_tail": result.stderr_tail,
            "warnings": list(result.warnings), "duration": result.duration,
            "metrics": [s.to_dict() for s in summarize(result)]}


def run(
    benchmark: Annotated[Optional[list[str]], typer.Argument(
        help="Benchmarks to run (name or base name); all when omitted.", show_default=False)] = None,
    label: Annotated[Optional[str], typer.Option("--label", "-l", help="Name this run, to refer to it later.")] = None,
    processes: Annotated[Optional[int], typer.Option(help="Override worker processes per benchmark.", min=1)] = None,
    values: Annotated[Optional[int], typer.Option(help="Override values per worker.", min=1)] = None,
    warmup: Annotated[Optional[int], typer.Option(help="Override warmup values per worker.", min=0)] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Override the per-benchmark timeout (s).", min=0.1)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Every measurement warning in "
                                          "full (default: one line per benchmark).")] = False,
    upload: UploadUrl = None,
    token: UploadToken = None,
    project: UploadProject = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Run the project's benchmarks and store the run. Exits 1 when every benchmark failed.

    With --upload URL (or PERFLOOP_SERVER) the stored run is then uploaded to a perfloop
    server with a write token; a failed upload exits 1 and keeps the run in the local store
    (`perfloop upload RUN` sends it later).

    Measurement warnings are grouped, one line per benchmark and each piece of advice once;
    --verbose or `perfloop show RUN` gives them in full.

    Example: `perfloop run --label before` then, after a change, `perfloop run --label after`
    and `perfloop compare before after`.
    """
    from ..config import load_config
    from ..measure.runner import RunInterrupted
    from ..report.text import render_results
    from ..workflows.run import run_project
    from .progress import RichProgress
    config = load_config(project_root(directory))
    with open_store(directory, store, config=config) as db:
        progress = None if json else RichProgress(err_console)
        try:
            outcome = run_project(config, db, label=label, names=benchmark, progress=progress,
                                  processes=processes, values=values, warmup=warmup, timeout=timeout)
        except RunInterrupted as exc:
            if progress:
                progress.close()
            done = len(getattr(exc, "results", []) or [])
            raise Interrupted(f"the run kept {done} finished benchmark(s) and is stored with status "
                              "interrupted (see `perfloop runs`).") from None
        uploaded: dict | None = None
        upload_error: PerfloopError | None = None
        if upload:
            try:
                uploaded = upload_stored(db, outcome.run_id, server=upload, token=token,
                                         project=project or config.root.name)
            except PerfloopError as e:
                upload_error = e   # reported after the results: the local run is kept
    failed = sum(1 for r in outcome.results if r.status.value != "ok")
    if json:
        print_json({"run_id": outcome.run_id, "status": outcome.status.value,
                    "commit": outcome.git.commit, "branch": outcome.git.branch,
                    "dirty": outcome.git.dirty, "environment": outcome.environment_hash,
                    "results": [_result_dict(r) for r in outcome.results],
                    **({"upload": {"server_run_id": uploaded.get("run_id") if uploaded else None,
                                   "created": uploaded.get("created") if uploaded else None,
                                   "error": str(upload_error) if upload_error else None}}
                       if upload else {})})
    else:
        render_results(console, outcome.results, title=f"run #{outcome.run_id}", detail=verbose,
                       more=f"in full: perfloop show {outcome.run_id}, or run --verbose")
        console.print(f"Stored run #{outcome.run_id}" + (f" with {failed} failed benchmark(s)" if failed else "")
                      + ". Compare it with another: perfloop compare BASE " + str(outcome.run_id))
        if uploaded is not None:
            report_upload(outcome.run_id, uploaded, json=False)
    if upload_error is not None:
        raise upload_error
    if outcome.results and failed == len(outcome.results):
        # Nothing was measured: a CI step must not pass on it.
        raise GateFailed(f"every benchmark of run #{outcome.run_id} failed ({failed} of {failed})",
                         hint="the errors above say why; `perfloop show "
                              f"{outcome.run_id}` shows them again")


def runs(
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs to list, newest first.", min=1)] = 20,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """List stored runs, newest first.

    Example: `perfloop runs -n 5 --json`
    """
    from ..report.text import render_runs
    items = list_runs(directory, store, limit=limit)
    if json:
        print_json([{"id": r.id, "label": r.label, "commit": r.commit, "branch": r.branch,
                     "dirty": r.dirty, "environment": r.environment_hash,
                     "status": getattr(r.status, "value", r.status), "results": r.n_results,
                     "failed": r.n_failed, "started_at": r.started_at, "finished_at": r.finished_at}
                    for r in items])
        return
    render_runs(console, items)


def _resolve(db, ref: str, root: Path) -> int:
    from ..measure.git import resolve_commit
    return db.resolve(ref, commit_of=lambda r: resolve_commit(root, r))


def show(
    ref: Annotated[str, typer.Argument(help="A run id, a label, or a git ref (latest run at that commit).")],
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Show one run: per benchmark and metric n, median, IQR, p99, warnings.

    Example: `perfloop show before` or `perfloop show HEAD~1`
    """
    from ..report.text import render_results, run_title
    root = project_root(directory)
    with open_store(directory, store) as db:
        stored = db.get_run(_resolve(db, ref, root))
    if json:
        print_json({"id": stored.id, "label": stored.label, "commit": stored.commit,
                    "branch": stored.branch, "dirty": stored.dirty,
                    "status": getattr(stored.status, "value", stored.status),
                    "started_at": stored.started_at, "finished_at": stored.finished_at,
                    "environment": stored.environment,
                    "results": [_result_dict(r) for r in stored.results]})
        return
    render_results(console, stored.results, title=run_title(stored))


def compare(
    base: Annotated[str, typer.Argument(help="Base run: id, label or git ref.")],
    head: Annotated[str, typer.Argument(help="Head run: id, label or git ref.")],
    benchmark: Annotated[Optional[list[str]], typer.Option("--benchmark", "-b", help="Only these benchmarks.")] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="Only these metrics.")] = None,
    tolerance: Annotated[Optional[float], typer.Option(
        help="Relative change that matters, e.g. 0.05 (default: each benchmark's own, 5%).")] = None,
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.99,
    run_noise: Annotated[Optional[float], typer.Option(
        help="Drift of time metrics between two separate runs, as a relative sd (default: "
             "measured from stored repeat runs of one commit, else each benchmark's run_noise, "
             "3%); 0 for runs known to be steady.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when any verdict is regressed, or "
                                                      "when the runs share no benchmark.")] = False,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Compare two stored runs: a verdict per benchmark and metric.

    Verdicts: regressed (the interval clears half the tolerance), improved, unchanged (the
    interval lies within the tolerance) or inconclusive. One time metric decides each
    benchmark: CPU time for CPU-bound code, wall time for code that waits (the other is shown
    as context). Two separate runs also differ by drift of the shared machine: it is added to
    time intervals, measured from stored repeat runs of one commit (`perfloop doctor
    --calibrate`) or 3% by default. A gate's base and head runs were measured interleaved and
    are compared block by block, as the gate did.

    Example: `perfloop compare main HEAD --tolerance 0.03 --check`
    """
    from ..analysis.compare import VerdictKind
    from ..analysis.comparison import DRIFTING_METRICS, compare_runs, interleaved_with
    from ..analysis.drift import measured_run_noise
    from ..config import DEFAULT_RUN_NOISE, check_setting
    from ..report.text import render_comparison
    if tolerance is not None:
        check_setting("tolerance", tolerance, option="--tolerance")
    check_setting("confidence", confidence, option="--confidence")
    if run_noise is not None:
        check_setting("run_noise", run_noise, option="--run-noise")
    root = project_root(directory)
    with open_store(directory, store) as db:
        base_run = db.get_run(_resolve(db, base, root))
        head_run = db.get_run(_resolve(db, head, root))
        drift = None
        if run_noise is None and not interleaved_with(base_run, head_run):
            # Drift measured from repeat runs of one commit in head's environment class.
            drift = measured_run_noise(db, head_run.environment_hash, sorted(DRIFTING_METRICS),
                                       fallback=DEFAULT_RUN_NOISE)
    cmp = compare_runs(base_run, head_run, tolerance=tolerance, confidence=confidence,
                       benchmarks=benchmark, metrics=metric, run_noise=run_noise, drift=drift)
    if json:
        print_json(cmp.to_dict())
    else:
        render_comparison(console, cmp)
    if check and not cmp.verdicts:
        raise GateFailed("--check compared nothing: the two runs share no measured benchmark"
                         + (f" (only in base: {len(cmp.only_in_base)}, only in head: "
                            f"{len(cmp.only_in_head)}, failed: {len(cmp.failed)})"),
                         hint="compare runs of the same benchmarks, or pick them with --benchmark")
    if check and cmp.count(VerdictKind.REGRESSED):
        raise GateFailed(f"{cmp.count(VerdictKind.REGRESSED)} metric(s) regressed beyond tolerance")


def register(app: typer.Typer) -> None:
    for fn in (run, runs, show, compare):
        app.command()(fn)
