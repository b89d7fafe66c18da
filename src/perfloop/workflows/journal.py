"""The journal: the single record of what the team changed for performance, why, expected, actual.

Every workflow writes to it: closing an incident journals the change it made, the regression
gate journals the regressions it let through (approved) and its failures, and a change made
outside perfloop is written with :func:`add_entry` (``perfloop journal add``). An entry whose
*actual* effect was never recorded is an **open loop**: somebody expected something and nobody
checked.

Entries come from *sources*, each a function ``(store, since) -> entries``: the ``changes``
table, incidents still open, approvals no gate has used yet. Release cycles and drills write
their entries into the ``changes`` table (workflows ``risk-budget`` and ``drill``); a workflow
with entries of another kind adds them with :func:`register_source`, and the journal, its search
and its export show them with no other change.

A commit links itself to an entry with a trailer line ``Perf-Change: 12`` (several ids may be
given, separated by commas); :func:`trailer_links` reads them from git.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import UsageError
from ..records import CHANGE_KINDS
from ..store import ChangeRecord, Store
from ..store.models import utcnow
from .incident import METRIC_ALIASES, normalize_metric

MANUAL = "manual"
GATE = "regression"
TRAILER = "Perf-Change"
KINDS = CHANGE_KINDS
_TRAILER_LINE = re.compile(rf"^\s*{TRAILER}\s*:\s*(?P<ids>[#\d\s,]+)\s*$", re.IGNORECASE | re.MULTILINE)
_EXPECT = re.compile(r"^\s*(?P<bench>\S+)\s+(?P<metric>\S+)\s+(?P<sign>[-+])\s*(?P<size>\d+(?:\.\d+)?)\s*%\s*$")
_SINCE = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[hdwmy])\s*$")
_UNIT_DAYS = {"h": 1 / 24, "d": 1, "w": 7, "m": 30, "y": 365}


@dataclass(frozen=True)
class Entry:
    """One journal entry, whatever wrote it."""

    id: str                           # "12" for a change; "incident-3", "approval-5" otherwise
    source: str                       # change | incident | approval | (a registered source)
    title: str
    workflow: str
    status: str
    created_at: datetime
    kind: str | None = None
    why: str | None = None
    expected: Mapping[str, Any] = field(default_factory=dict)
    actual: Mapping[str, Any] = field(default_factory=dict)
    commits: tuple[str, ...] = ()
    baseline_run_id: int | None = None
    verification_run_ids: tuple[int, ...] = ()
    notes: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def open_loop(self) -> bool:
        """True when nobody recorded what actually happened (or it was closed unmeasured)."""
        return not self.actual or self.actual.get("verdict") == "not verified"

    def text(self) -> str:
        """Everything a search looks through, lower-cased."""
        return " ".join(str(x) for x in (self.id, self.title, self.kind, self.workflow, self.status,
                                         self.why, describe(self.expected), describe(self.actual),
                                         self.notes, *self.commits) if x).lower()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "title": self.title, "kind": self.kind,
                "workflow": self.workflow, "status": self.status,
                "created_at": self.created_at.isoformat(), "why": self.why,
                "expected": dict(self.expected), "actual": dict(self.actual),
                "expected_text": describe(self.expected), "actual_text": describe(self.actual),
                "open_loop": self.open_loop, "commits": list(self.commits),
                "baseline_run_id": self.baseline_run_id,
                "verification_run_ids": list(self.verification_run_ids), "notes": self.notes}


def describe(effect: Mapping[str, Any]) -> str:
    """An expected or actual effect in one line: ``checkout latency_p99 -20%``, a verdict, text."""
    if not effect:
        return ""
    if effect.get("text"):
        return str(effect["text"])
    parts = [str(effect[k]) for k in ("benchmark", "metric") if effect.get(k)]
    change = effect.get("change", effect.get("effect"))
    if isinstance(change, (int, float)):
        parts.append(f"{change * 100:+.0f}%")
    if effect.get("verdict"):
        parts.append(str(effect["verdict"]))
    elif effect.get("status"):
        parts.append(str(effect["status"]))
    if effect.get("reading"):
        parts.append(f"({effect['reading']})")
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# parsing what people type


def parse_since(text: str | None, *, now: datetime | None = None, option: str = "--since") -> datetime | None:
    """``30d``, ``12h``, ``6w``, ``3m``, ``1y`` or an ISO date, as the moment it names."""
    if text is None or not text.strip():
        return None
    now = now or utcnow()
    match = _SINCE.match(text.lower())
    if match:
        return now - timedelta(days=float(match["n"]) * _UNIT_DAYS[match["unit"]])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option} {text!r}: not a duration or a date",
                         hint=f"e.g. {option} 30d, {option} 12h, {option} 6w or {option} 2026-11-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_effect(text: str, option: str = "--expect") -> dict[str, Any]:
    """``"checkout p99 -20%"`` -> benchmark, metric (aliases resolved), relative change, text."""
    match = _EXPECT.match(text)
    if not match:
        raise UsageError(f"{option} {text!r}: expected BENCHMARK METRIC CHANGE%",
                         hint=f'e.g. {option} "checkout p99 -20%" (metric aliases: '
                              f'{", ".join(sorted(METRIC_ALIASES)[:6])}, ...)')
    size = float(match["size"]) / 100 * (-1 if match["sign"] == "-" else 1)
    metric = normalize_metric(match["metric"])
    return {"benchmark": match["bench"], "metric": metric, "change": size,
            "text": f"{match['bench']} {metric} {size * 100:+g}%"}


# --------------------------------------------------------------------------------------------
# sources of entries

EntrySource = Callable[[Store, "datetime | None"], Iterable[Entry]]
_SOURCES: dict[str, EntrySource] = {}


def register_source(name: str, source: EntrySource) -> None:
    """Add a source of journal entries (release cycles, drills): shown, searched and exported."""
    _SOURCES[name] = source


def sources() -> Mapping[str, EntrySource]:
    return dict(_SOURCES)


def entry_of_change(change: ChangeRecord) -> Entry:
    """The journal entry of a stored change."""
    expected = dict(change.expected or {})
    return Entry(id=str(change.id), source="change", title=change.title,
                 workflow=change.workflow, status=change.status, created_at=change.created_at,
                 kind=change.kind, why=change.hypothesis,
                 expected={k: v for k, v in expected.items() if v not in (None, [], {})},
                 actual=dict(change.actual or {}), commits=tuple(str(c) for c in change.commits),
                 baseline_run_id=change.baseline_run_id,
                 verification_run_ids=tuple(int(i) for i in change.verification_run_ids),
                 notes=change.notes, data=dict(change.data or {}))


def _changes(store: Store, since: datetime | None) -> Iterable[Entry]:
    return [entry_of_change(c) for c in store.changes(since=since)]


def _open_incidents(store: Store, since: datetime | None) -> Iterable[Entry]:
    # A closed incident is journaled as a change; an open one is an entry still in progress.
    out = []
    for i in store.incidents(status="open", since=since):
        out.append(Entry(id=f"incident-{i.id}", source="incident", title=i.title,
                         workflow="profile-and-patch", status="open", created_at=i.opened_at,
                         expected={"metric": i.metric} if i.metric else {},
                         commits=tuple(c for c in (i.commit_at_open,) if c),
                         baseline_run_id=i.baseline_run_id, data=dict(i.data)))
    return out


def _approvals(store: Store, since: datetime | None) -> Iterable[Entry]:
    # Approvals the gate has used are inside its journal entries; the others stand alone.
    used = {a.get("id") for c in store.changes(workflow=GATE, since=since)
            for a in (c.data or {}).get("approvals", [])}
    return [Entry(id=f"approval-{a.id}", source="approval", title=f"approval of {a.benchmark}",
                  workflow=GATE, status="approved", created_at=a.created_at, why=a.reason,
                  actual={"text": f"exception approved by {a.author or 'unknown'} ({a.source})"},
                  commits=tuple(c for c in (a.commit,) if c), notes=a.reason,
                  data={"benchmark": a.benchmark, "metric": a.metric, **dict(a.data)})
            for a in store.approvals(since=since) if a.id not in used]


register_source("changes", _changes)
register_source("incidents", _open_incidents)
register_source("approvals", _approvals)


# --------------------------------------------------------------------------------------------
# reading


def trailer_links(root: str | Path, since: datetime | None = None) -> dict[str, list[tuple[str, str]]]:
    """Entry id -> ``(sha, subject)`` of every commit whose message says ``Perf-Change: ID``."""
    args = ["git", "log", "--all", f"--grep={TRAILER}", "-i", "--format=%H%x1f%s%x1f%B%x1e"]
    if since is not None:
        args.append(f"--since={since.isoformat()}")
    try:
        out = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    links: dict[str, list[tuple[str, str]]] = {}
    for record in out.stdout.split("\x1e") if out.returncode == 0 else []:
        parts = record.strip("\n").split("\x1f")
        if len(parts) != 3:
            continue
        sha, subject, body = parts
        for match in _TRAILER_LINE.finditer(body):
            for ref in re.findall(r"\d+", match["ids"]):
                links.setdefault(ref, []).append((sha.strip(), subject))
    return links


def entries(store: Store, *, since: datetime | None = None, search: str | None = None,
            workflow: str | None = None, root: str | Path | None = None) -> list[Entry]:
    """Journal entries from every source, newest first, filtered; with ``root``, commits that
    name an entry in a ``Perf-Change`` trailer are added to its commits."""
    found: list[Entry] = []
    for source in _SOURCES.values():
        found.extend(source(store, since))
    if root is not None:
        links = trailer_links(root)
        found = [replace(e, commits=tuple(dict.fromkeys([*e.commits, *(s for s, _ in links.get(e.id, []))])))
                 if e.id in links else e for e in found]
    if workflow:
        found = [e for e in found if e.workflow == workflow]
    if search:
        needle = search.lower()
        found = [e for e in found if needle in e.text()]
    return sorted(found, key=lambda e: (e.created_at, e.id), reverse=True)


def open_loops(found: Sequence[Entry]) -> list[Entry]:
    """The entries whose actual effect nobody recorded."""
    return [e for e in found if e.open_loop]


def get_entry(store: Store, ref: str, *, root: str | Path | None = None) -> Entry:
    """The entry ``ref`` names: ``12``, ``#12``, ``incident-3``, ``approval-5``."""
    key = ref.strip().lstrip("#")
    for entry in entries(store, root=root):
        if entry.id == key:
            return entry
    raise UsageError(f"no journal entry {ref!r}", hint="`perfloop journal` lists entries and their ids")


# --------------------------------------------------------------------------------------------
# writing


def add_entry(store: Store, title: str, *, why: str, expect: str | None = None,
              kind: str | None = None, commits: Sequence[str] = (), workflow: str = MANUAL,
              actual: str | None = None, notes: str | None = None,
              baseline_run_id: int | None = None) -> Entry:
    """Journal a change made outside perfloop's workflows; ``why`` is required."""
    title, why = title.strip(), (why or "").strip()
    if not title:
        raise UsageError("a journal entry needs a title", hint='e.g. perfloop journal add "raise cache to 4096"')
    if not why:
        raise UsageError("--why is required: an entry without a reason teaches nobody anything",
                         hint='e.g. --why "product lookups miss the cache on the checkout path"')
    if kind is not None and kind not in KINDS:
        raise UsageError(f"--kind {kind!r}: unknown kind", hint=f"one of: {', '.join(KINDS)}")
    expected = parse_effect(expect) if expect else {}
    measured = parse_effect(actual, "--actual") if actual else {}
    change_id = store.add_change(
        title=title, kind=kind, workflow=workflow, status="done" if measured else "open",
        hypothesis=why, expected=expected, actual=measured, commits=list(commits), notes=notes,
        baseline_run_id=baseline_run_id, data={"source": "journal add"})
    change = store.change(change_id)
    assert change is not None
    return entry_of_change(change)


def record_actual(store: Store, ref: str, actual: str, *, run_id: int | None = None,
                  notes: str | None = None) -> Entry:
    """Close an open loop: what the change actually did (``"checkout p99 -18%"``)."""
    key = ref.strip().lstrip("#")
    change = store.change(int(key)) if key.isdigit() else None
    if change is None:
        raise UsageError(f"no journal change {ref!r}", hint="give the number `perfloop journal` shows")
    measured = parse_effect(actual, "--actual")
    store.update_change(change.id, actual=measured, status="done",
                        verification_run_ids=[*change.verification_run_ids,
                                              *([run_id] if run_id else [])],
                        notes="\n".join(n for n in (change.notes, notes) if n) or None)
    updated = store.change(change.id)
    assert updated is not None
    return entry_of_change(updated)


def journal_gate(store: Store, outcomes: Sequence[Any], *, base: str | None, head: str | None,
                 run_ids: Mapping[str, int]) -> int | None:
    """Journal a gate that failed or stayed inconclusive (a pass is history, not news).

    ``outcomes`` are the gate's per-benchmark outcomes (``name``, ``status``, ``to_dict()``).
    Returns the change id, or None when nothing was worth journaling.
    """
    failed = [o for o in outcomes if o.status == "fail"]
    unsure = [o for o in outcomes if o.status == "warn"]
    if not failed and not unsure:
        return None
    status = "failed" if failed else "inconclusive"
    names = [o.name for o in (failed or unsure)]
    return store.add_change(
        title=f"gate {status}: {', '.join(names[:4])}{' ...' if len(names) > 4 else ''}",
        workflow=GATE, status=status, hypothesis=None,
        actual={"status": status, "benchmarks": {o.name: o.status for o in outcomes}},
        baseline_run_id=run_ids.get("gate-base"),
        verification_run_ids=[i for i in (run_ids.get("gate-head"),) if i is not None],
        commits=[c for c in (base, head) if c],
        data={"gate": True, "base": base, "head": head,
              "outcomes": [o.to_dict() for o in (failed or unsure)]})


__all__ = ["Entry", "KINDS", "MANUAL", "TRAILER", "add_entry", "describe", "entries",
           "entry_of_change", "get_entry", "journal_gate", "open_loops", "parse_effect",
           "parse_since", "record_actual", "register_source", "sources", "trailer_links"]
