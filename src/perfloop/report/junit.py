"""The regression gate's report as JUnit XML, the format every CI system can display.

One test case per benchmark (class ``perfloop.gate``): an unapproved regression or a benchmark
that fails at head is a ``<failure>``; an inconclusive benchmark under the ``warn`` policy is
``<skipped>`` (the gate could not tell, which a CI display should not show as green); approved,
new and passing benchmarks pass, with their numbers in ``<system-out>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .units import format_change, format_value

if TYPE_CHECKING:
    from ..workflows.gate import BenchmarkOutcome, GateReport, MetricOutcome


def _line(m: MetricOutcome) -> str:
    ci = (f" CI [{format_change(m.ci_low)}, {format_change(m.ci_high)}]"
          if m.ci_low is not None and m.ci_high is not None else "")
    change = format_change(m.change) if m.change is not None else "-"
    text = (f"{m.metric}: {format_value(m.base, m.unit)} -> {format_value(m.head, m.unit)} "
            f"({change}{ci}) {m.verdict} [{m.status}]")
    for a in m.approvals:
        text += f"\n  approved by {a.author or 'unknown'} ({a.source}): {a.reason}"
    for note in m.notes:
        text += f"\n  {note}"
    return text


def _details(b: BenchmarkOutcome) -> str:
    lines = [_line(m) + (" (context)" if m.role == "context" else "") for m in b.metrics]
    why = next((m for m in b.metrics if m.deciding_metric and m.deciding_reason), None)
    if why is not None:
        lines.append(f"deciding metric: {why.deciding_metric}, {why.deciding_reason}")
    if b.error:
        lines.append(f"error: {b.error}")
    lines += [f"note: {n}" for n in b.notes]
    lines += [f"side effect: {e}" for e in b.side_effects]
    return "\n".join(lines)


def render_junit(report: GateReport) -> str:
    """The gate's report as a JUnit XML document (a string with an XML declaration)."""
    cases = list(report.benchmarks)
    failures = sum(1 for b in cases if b.status == "fail")
    skipped = sum(1 for b in cases if b.status == "warn")
    suites = ET.Element("testsuites", name="perfloop", tests=str(len(cases)), failures=str(failures),
                        errors="0", skipped=str(skipped), time=f"{report.seconds:.3f}")
    suite = ET.SubElement(suites, "testsuite", name="perfloop gate", tests=str(len(cases)),
                          failures=str(failures), errors="0", skipped=str(skipped),
                          time=f"{report.seconds:.3f}",
                          timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
    props = ET.SubElement(suite, "properties")
    for name, value in (("base", f"{report.base_ref} {report.base_commit}"),
                        ("head", f"{report.head_ref} {report.head_commit or ''}".strip()),
                        ("fdr_q", f"{report.options.q:g}"),
                        ("on_inconclusive", report.options.on_inconclusive)):
        ET.SubElement(props, "property", name=name, value=value)
    for b in cases:
        case = ET.SubElement(suite, "testcase", classname="perfloop.gate", name=b.name,
                             time=f"{b.seconds:.3f}")
        details = _details(b)
        if b.status == "fail":
            bad = [m for m in b.metrics if m.status == "fail"]
            message = ("; ".join(f"{m.metric} {m.verdict} "
                                 f"{format_change(m.change) if m.change is not None else ''}".strip()
                                 for m in bad) or b.error or "failed")
            failure = ET.SubElement(case, "failure", message=message,
                                    type="regression" if bad else "error")
            failure.text = details
        elif b.status == "warn":
            ET.SubElement(case, "skipped", message="inconclusive: the gate could not tell within "
                                                   "its cost limit")
        if details:
            ET.SubElement(case, "system-out").text = details
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


__all__ = ["render_junit"]
