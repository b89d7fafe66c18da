"""The regression gate's report as Markdown: a pull-request comment or a CI job summary.

GitHub-flavoured Markdown (tables, ``<details>``), readable as plain text elsewhere. The
failing benchmarks come first, with what to do about them; the full table and how the gate
decided follow, folded.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from .units import format_change, format_value
from .escape import markdown, printable

if TYPE_CHECKING:
    from ..workflows.approvals import Approval
    from ..workflows.gate import BenchmarkOutcome, GateReport, MetricOutcome

#: Why the sampling of a benchmark stopped, in words.
STOP_WORDS = {"decided": "decided",
              "max_blocks": "reached the block limit",
              "max_seconds": "reached the time limit",
              "hopeless": "stopped early: deciding would take far more blocks than the limit allows",
              "failed": "a side failed to run"}

ICON = {"fail": "❌", "warn": "⚠️", "approved": "☑️", "new": "🆕", "pass": "✅"}


def _cell(text: object) -> str:
    """Table cell text: pipes and newlines would break the row, HTML would be rendered."""
    return html.escape(printable(str(text).replace("\n", " ")), quote=False).replace("|", "\\|")


def _short(commit: str | None) -> str:
    return commit[:10] if commit else "-"


def _ci(m: MetricOutcome) -> str:
    if m.ci_low is None or m.ci_high is None:
        return "-"
    return f"[{format_change(m.ci_low)}, {format_change(m.ci_high)}]"


def _verdict(m: MetricOutcome) -> str:
    text = m.verdict
    if m.confirmed:
        text += ", confirmed"
    elif m.confirmed is False:
        text += " (regression not confirmed)"
    if m.status == "approved":
        text += ", approved"
    if m.role == "context":
        text += " (context)"
    elif m.verdict == "inconclusive" and m.more_workers:
        text += f" (~{m.more_workers} more workers)"
    return text


def _change(value: float | None) -> str:
    return format_change(value) if value is not None else "-"


def _row(b: BenchmarkOutcome, m: MetricOutcome | None) -> str:
    if m is None:
        detail = b.error or "; ".join(b.notes) or "-"
        return (f"| {ICON.get(b.status, '')} | {markdown(b.name)} | - | - | - | - | - | "
                f"{_cell(b.status)}: {_cell(detail)} |")
    return (f"| {ICON.get(m.status, '')} | {markdown(b.name)} | {_cell(m.metric)} | "
            f"{format_value(m.base, m.unit)} | {format_value(m.head, m.unit)} | {_change(m.change)} | "
            f"{_ci(m)} | {_cell(_verdict(m))} |")


def _table(benchmarks: list[BenchmarkOutcome], confidence: float) -> list[str]:
    lines = [f"| | benchmark | metric | base | head | change | {confidence * 100:g}% CI | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for b in benchmarks:
        if not b.metrics:
            lines.append(_row(b, None))
        for m in b.metrics:
            lines.append(_row(b, m))
    return lines


def render_markdown(report: GateReport) -> str:
    """The gate's report as a Markdown document."""
    opts = report.options
    title = "passed" if report.passed else "failed"
    icon = ICON["pass"] if report.passed else ICON["fail"]
    dirty = ", with uncommitted changes" if report.head_dirty else ""
    out = [f"## {icon} perfloop gate {title}", "",
           f"Base `{_cell(report.base_ref)}` ({_short(report.base_commit)}) → head "
           f"`{_cell(report.head_ref)}` ({_short(report.head_commit)}{dirty}). {report.summary()}.", ""]

    failures = [b for b in report.benchmarks if b.status == "fail"]
    if failures:
        out += ["### Unapproved regressions", ""]
        out += _table(failures, opts.confidence)
        out += ["", "Fix the regression, or, if it is the right trade, approve it with a reason: "
                    "`perfloop approve BENCHMARK --reason \"...\"`, or a commit trailer "
                    "`Perf-Approved: BENCHMARK: reason` in this change.", ""]
    # Every approval that let something through, whatever the benchmark's overall status
    # (an inconclusive metric beside an approved one must not hide the approval).
    approved: list[tuple[str, str | None, MetricOutcome | None, Approval]] = [
        (b.name, m.metric, m, a) for b in report.benchmarks for m in b.metrics
        if m.status == "approved" for a in m.approvals]
    approved += [(b.name, None, None, a) for b in report.benchmarks if b.status == "approved"
                 for a in b.approvals]
    if approved:
        out += ["### Approved regressions", ""]
        for name, metric, m, a in approved:
            what = f" {_cell(metric)} {_change(m.change)} {_ci(m)}" if m is not None else ""
            out.append(f"- **{markdown(name)}**{what}: {_cell(a.describe())}")
        out.append("")
    warnings = [b for b in report.benchmarks if b.status == "warn"]
    if warnings:
        out += ["### Inconclusive", "",
                "These could not be decided within the cost limit; the gate lets them pass "
                f"(`on_inconclusive = {opts.on_inconclusive}`). A narrower question helps: a CPU-bound "
                "benchmark measured in instructions, a larger tolerance, or more blocks.", ""]
        for b in warnings:
            for m in b.metrics:
                if m.status == "warn":
                    note = f" {m.notes[-1]}" if m.notes else ""
                    out.append(f"- **{markdown(b.name)}** {m.metric}: {_change(m.change)} {_ci(m)}.{_cell(note)}")
        out.append("")
    effects = [(b.name, e) for b in report.benchmarks for e in b.side_effects]
    if effects:
        out += ["### Side effects", ""]
        out += [f"- **{markdown(name)}**: {_cell(e)}" for name, e in effects]
        out.append("")
    for note in report.notes:
        out.append(f"> {note}")
    if report.notes:
        out.append("")

    out += ["<details><summary>All benchmarks</summary>", ""]
    out += _table(list(report.benchmarks), opts.confidence)
    deciding = [(b.name, m) for b in report.benchmarks
                for m in b.metrics[:1] if m.deciding_metric and m.deciding_reason]
    if deciding:
        out += ["", "Deciding time metric (the others are context: they neither fail nor warn):", ""]
        out += [f"- **{_cell(name)}**: {_cell(m.deciding_metric)}, {_cell(m.deciding_reason)}"
                for name, m in deciding]
    out += ["", "</details>", ""]
    out += _how_decided(report)
    return "\n".join(out)


def _how_decided(report: GateReport) -> list[str]:
    """The collapsed section that says how the gate measured and decided, benchmark by benchmark."""
    opts = report.options
    out = ["<details><summary>How the gate decided</summary>", ""]
    s = opts.sampling
    own = sorted({m.tolerance for b in report.benchmarks for m in b.metrics if m.tolerance is not None})
    tol = (f"{opts.tolerance * 100:g}%" if opts.tolerance is not None else
           ", ".join(f"{t * 100:g}%" for t in own) + " (each benchmark's own)" if own else
           "each benchmark's own")
    out += [f"- Base and head measured on this machine in balanced A B B A blocks of one worker "
            f"process each: {s.blocks} blocks first, more while inconclusive, up to {s.max_blocks} "
            f"blocks or {s.max_seconds:g} s per benchmark.",
            f"- Tolerance: {tol}; {opts.confidence * 100:g}% confidence intervals.",
            f"- False discovery rate controlled at q = {opts.q:g} (Benjamini-Hochberg) across "
            f"{report.comparisons} benchmark-metric comparisons.",
            f"- Each regression re-measured with {opts.confirm_blocks} fresh blocks; only a "
            "confirmed one fails.",
            f"- Inconclusive: {opts.on_inconclusive}."]
    for b in report.benchmarks:
        how = (f"{b.blocks} blocks ({2 * b.blocks} workers per side), {b.seconds:.1f} s, "
               f"{STOP_WORDS.get(b.stopped or '', b.stopped)}" if b.source == "interleaved" else f"head against {b.source}")
        conf = ""
        if b.confirmation:
            conf = f"; confirmation {b.confirmation.get('blocks')} blocks"
        out.append(f"- {markdown(b.name)}: {how}{conf}")
    return out + ["", "</details>", ""]


__all__ = ["render_markdown"]
