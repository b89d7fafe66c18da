"""The journal as Markdown: a knowledge base a team keeps in its repository (``TUNING.md``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

from ..workflows.journal import Entry, describe


def _line(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def entry_markdown(entry: Entry) -> list[str]:
    """One entry as a Markdown section."""
    date = entry.created_at.strftime("%Y-%m-%d")
    head = f"### {entry.id}: {_line(entry.title)}"
    facts = [f"{date}", entry.workflow, entry.status] + ([entry.kind] if entry.kind else [])
    out = [head, "", f"*{' · '.join(facts)}*", ""]
    out.append(f"- **Why:** {_line(entry.why) or '(not written down)'}")
    out.append(f"- **Expected:** {_line(describe(entry.expected)) or '(not written down)'}")
    actual = _line(describe(entry.actual))
    out.append(f"- **Actual:** {actual or '**open loop**: not measured yet'}")
    if entry.commits:
        out.append(f"- **Commits:** {', '.join(f'`{c[:12]}`' for c in entry.commits)}")
    runs = ([f"baseline #{entry.baseline_run_id}"] if entry.baseline_run_id else []) + \
        [f"#{r}" for r in entry.verification_run_ids]
    if runs:
        out.append(f"- **Runs:** {', '.join(runs)}")
    if entry.notes:
        out.append(f"- **Notes:** {_line(entry.notes)}")
    return out + [""]


def journal_markdown(entries: Sequence[Entry], *, title: str = "Performance tuning journal",
                     now: datetime | None = None) -> str:
    """The whole journal: open loops first, then every entry by month, newest first."""
    now = now or datetime.now(timezone.utc)
    lines = [f"# {title}", "",
             f"Written by `perfloop journal export` on {now:%Y-%m-%d %H:%M} UTC: "
             f"{len(entries)} entries. Each says why a change was made, what it was expected "
             "to do, and what it did.", ""]
    loops = [e for e in entries if e.open_loop]
    if loops:
        lines += ["## Open loops", "", "Expected effects nobody has measured yet:", ""]
        lines += [f"- {e.id}: {_line(e.title)} (expected: {_line(describe(e.expected)) or '?'})"
                  for e in loops]
        lines.append("")
    month = None
    for entry in entries:
        this = entry.created_at.strftime("%Y-%m")
        if this != month:
            month = this
            lines += [f"## {this}", ""]
        lines += entry_markdown(entry)
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["entry_markdown", "journal_markdown"]
