"""A Rich progress bar with an ETA on the runner's Progress protocol."""

from __future__ import annotations

from typing import Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from ..config import BenchmarkSpec
from ..measure.progress import estimate_seconds
from ..records import BenchmarkResult, ResultStatus


class RichProgress:
    """Progress across the whole run, weighted by each benchmark's estimated duration."""

    def __init__(self, console: Console) -> None:
        from .common import real_console
        self.console = console = real_console(console)
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=console, transient=True)
        # its clock starts with the run (run_started)
        self.task = self.bar.add_task("starting", total=1.0, start=False)
        self.weights: dict[str, float] = {}
        self.done = 0.0

    def run_started(self, specs: Sequence[BenchmarkSpec], estimated_seconds: float) -> None:
        self.weights = {s.name: max(estimate_seconds(s), 0.1) for s in specs}
        self.bar.update(self.task, total=sum(self.weights.values()) or 1.0)
        self.bar.start()
        self.bar.start_task(self.task)

    def benchmark_started(self, spec: BenchmarkSpec, index: int, total: int) -> None:
        self.bar.update(self.task, description=f"\\[{index + 1}/{total}] {escape(spec.name)}")

    def update(self, spec: BenchmarkSpec, fraction: float) -> None:
        w = self.weights.get(spec.name, 0.1)
        self.bar.update(self.task, completed=self.done + w * min(max(fraction, 0.0), 1.0))

    def benchmark_finished(self, result: BenchmarkResult) -> None:
        self.done += self.weights.get(result.name, 0.1)
        self.bar.update(self.task, completed=self.done)
        mark = "[green]ok[/]" if result.status is ResultStatus.OK else f"[red]{result.status.value}[/]"
        # escaped: a parametrised name such as ``quote[items=10]`` is not Rich markup
        self.console.print(f"  {mark} {escape(result.name)} ({result.duration:.1f} s)")

    def run_finished(self, summary: object) -> None:
        self.bar.stop()

    def close(self) -> None:
        self.bar.stop()
