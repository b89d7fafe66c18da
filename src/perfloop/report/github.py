"""The regression gate's report for GitHub Actions: workflow-command annotations and the job
summary.

Annotations (``::error``, ``::warning``, ``::notice`` lines on stdout) show on the pull request's
checks page; the Markdown report appended to ``$GITHUB_STEP_SUMMARY`` shows on the run's
summary page. Both only mean something inside GitHub Actions (``GITHUB_ACTIONS=true``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from .units import format_change
from .escape import printable

if TYPE_CHECKING:
    from ..workflows.gate import GateReport, MetricOutcome


def _data(text: str) -> str:
    """Escape a workflow command's message (GitHub's own escaping rules)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    """Escape a workflow command's property value."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, title: str, message: str, file: str | None = None) -> str:
    props = f"title={_prop(title)}"
    if file:
        props = f"file={_prop(file)},{props}"
    return f"::{kind} {props}::{_data(message)}"


def _metric(m: MetricOutcome) -> str:
    change = format_change(m.change) if m.change is not None else "-"
    ci = (f" (CI {format_change(m.ci_low)} to {format_change(m.ci_high)})"
          if m.ci_low is not None and m.ci_high is not None else "")
    return f"{m.metric} {change}{ci}"


def render_annotations(report: GateReport, *, config_file: str | None = None) -> str:
    """``::error``/``::warning``/``::notice`` lines for the gate's findings ('' when none)."""
    lines: list[str] = []
    for b in report.benchmarks:
        b = replace(b, name=printable(b.name))   # one line per annotation, whatever the name
        title = f"perfloop gate: {b.name}"
        if b.status == "fail":
            bad = [m for m in b.metrics if m.status == "fail"]
            what = (f"regressed: {', '.join(_metric(m) for m in bad)}" if bad
                    else f"does not run: {b.error}")
            lines.append(_command("error", title, f"{b.name} {what}. Fix it, or approve it with "
                                  f"`perfloop approve {b.name} --reason ...` or a commit trailer "
                                  f"`Perf-Approved: {b.name}: reason`.", config_file))
        elif b.status == "warn":
            undecided = [m for m in b.metrics if m.status == "warn"]
            lines.append(_command("warning", title, f"{b.name} inconclusive: "
                                  f"{', '.join(_metric(m) for m in undecided)}; the gate could not "
                                  "tell within its cost limit.", config_file))
        elif b.status == "approved":
            used = {a.id or id(a): a for m in b.metrics for a in m.approvals}
            used.update({a.id or id(a): a for a in b.approvals})
            reasons = "; ".join(f"{a.reason} ({a.author or 'unknown'})" for a in used.values())
            lines.append(_command("notice", title, f"{b.name} regressed, approved: {reasons}",
                                  config_file))
        for effect in b.side_effects:
            lines.append(_command("warning", f"perfloop side effect: {b.name}", f"{b.name}: {effect}",
                                  config_file))
    return "\n".join(lines) + ("\n" if lines else "")


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append ``markdown`` to the file named by ``$GITHUB_STEP_SUMMARY``; the file, or None."""
    target = (environ if environ is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as f:
        f.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return path


__all__ = ["append_step_summary", "render_annotations"]
