"""Builders shared by the journal, registry and audit tests: dated git commits, stored runs."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

from gitutil import IDENTITY, git

from perfloop.cli.app import main
from perfloop.records import BenchmarkResult, ResultStatus, RunStatus, Sample
from perfloop.store import Store

NOW = datetime.now(timezone.utc)


def commit(repo: Path, message: str, files: dict[str, str], *, days_ago: float = 0) -> str:
    """Write ``files``, commit them with ``message`` dated ``days_ago``; the new sha."""
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    when = (NOW - timedelta(days=days_ago)).isoformat()
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message], cwd=repo, check=True,
                   env={**os.environ, **IDENTITY, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when})
    return git(repo, "rev-parse", "HEAD")


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return path


def add_run(store: Store, *, commit: str | None, benchmark: str = "fast", kind: str = "callable",
            metrics: dict[str, Sequence[float]] | None = None, label: str | None = None,
            duration: float = 1.0, environment: str = "env-a") -> int:
    """A complete stored run of one benchmark with the given samples per metric."""
    metrics = metrics or {"wall_time": [1.0, 1.01, 0.99, 1.0]}
    run_id = store.begin_run(label=label, commit=commit, branch="main", dirty=False,
                             environment={"fingerprint": environment}, settings={}, project="p")
    samples = tuple(Sample(metric=m, value=v, worker=i, index=0)
                    for m, values in metrics.items() for i, v in enumerate(values))
    store.add_result(run_id, BenchmarkResult(name=benchmark, kind=kind, status=ResultStatus.OK,
                                             samples=samples, duration=duration))
    store.finish_run(run_id, RunStatus.COMPLETE)
    return run_id


def cli(capsys, *args: str) -> tuple[int, str]:
    """Run the perfloop command in this process: (exit code, stdout)."""
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().out
