"""Approvals: reviewed, documented exceptions to the regression gate.

A regression is sometimes the right trade (a correctness fix, a feature worth its cost). The
gate lets it through only when someone has said so, with a reason, on the record:

- ``perfloop approve BENCHMARK --reason "..."`` stores an approval with who (``git config
  user.name``/``user.email``, or ``--author``), why, and the commit it approves (``HEAD``);
- a commit between base and head whose message carries the trailer
  ``Perf-Approved: BENCHMARK: reason`` approves it too. Trailers travel with the code, so they
  work on a fresh CI runner whose store has never seen the approval.

An approval covers a regression of its benchmark (by full name, or by base name for all its
parameter combinations) on its metric (every metric when none is given), when the commit it
names is the head or lies between base and head. An approval of an older commit, already in
the base, does not wave through a new regression. Approvals seen by the gate are stored (those
from trailers too), and an approved regression is written to the journal as a change of
workflow ``regression``, so the history and the audit show what was let through and why.

An approval has a size. It approves the regression that was measured, not any regression of
its benchmark: ``perfloop approve --up-to 25%`` states the largest change it accepts, and the
first gate that uses an approval without one records what it let through (the change and its
confidence interval, per benchmark and metric) in the approval. A later regression that is
clearly larger, its interval entirely above the approved one's (or above the stated limit),
is not covered: it fails the gate again, which says what was approved and what was measured.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import UsageError
from ..store import ApprovalRecord, Store
from ..store.models import utcnow

WORKFLOW = "regression"
TRAILER = "Perf-Approved"
CLI, COMMIT_TRAILER = "cli", "trailer"
#: A reason shorter than this is not a documented exception ("ok", "fine", "wip").
MIN_REASON = 8

_TRAILER_LINE = re.compile(rf"^\s*{TRAILER}\s*:\s*(?P<benchmark>[^:\s][^:]*?)\s*:\s*(?P<reason>\S.*?)\s*$",
                           re.IGNORECASE)


@dataclass(frozen=True)
class Approval:
    """One approval: which benchmark (and metric), which commit, who, why, from where."""

    benchmark: str
    reason: str
    author: str
    commit: str | None
    metric: str | None = None
    source: str = CLI
    id: int | None = None
    created_at: datetime | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def covers(self, benchmark: str, metric: str | None = None) -> bool:
        """True when this approval applies to ``metric`` of ``benchmark`` (by name or base name)."""
        names = {benchmark, benchmark.split("[", 1)[0]}
        if self.benchmark not in names:
            return False
        return self.metric is None or metric is None or self.metric == metric

    @property
    def up_to(self) -> float | None:
        """The largest relative change (worse direction, ``0.25`` = 25%) stated at approval."""
        value = self.data.get("up_to")
        return float(value) if isinstance(value, (int, float)) else None

    def approved_size(self, benchmark: str, metric: str) -> Mapping[str, Any] | None:
        """What this approval let through for ``metric`` of ``benchmark`` (recorded by the gate
        that first used it): ``change``, ``ci_low``, ``ci_high``, ``direction``, ``head``."""
        size = (self.data.get("sizes") or {}).get(f"{benchmark}:{metric}")
        return size if isinstance(size, Mapping) else None

    def exceeded_by(self, benchmark: str, metric: str, change: float | None, ci_low: float | None,
                    ci_high: float | None, direction: str = "lower") -> str | None:
        """Why a measured regression is clearly larger than what this approval approved; None
        when the approval covers it. "Clearly": its whole interval lies beyond the approved
        interval (or beyond the stated ``up_to``), so the difference is not noise."""
        low = _worse_low(ci_low, ci_high, direction)
        if low is None:
            return None
        if self.up_to is not None and low > self.up_to:
            return (f"approved up to {_pct(self.up_to)}, measured {_pct(_worse(change, direction))} "
                    f"(interval from {_pct(low)})")
        size = self.approved_size(benchmark, metric)
        if size is None:
            return None
        approved_high = _worse_high(size.get("ci_low"), size.get("ci_high"), size.get("direction", direction))
        if approved_high is None:
            approved_high = _worse(size.get("change"), size.get("direction", direction))
        if approved_high is not None and low > approved_high:
            return (f"approved {_pct(_worse(size.get('change'), direction))} "
                    f"[{_pct(_worse_low(size.get('ci_low'), size.get('ci_high'), direction))}, "
                    f"{_pct(approved_high)}], measured {_pct(_worse(change, direction))} "
                    f"[{_pct(low)}, {_pct(_worse_high(ci_low, ci_high, direction))}]: clearly larger")
        return None

    def describe(self) -> str:
        """Who, why and how much, for reports: ``reason (author, source, up to +25%)``."""
        extra = [self.author or "unknown", self.source]
        if self.commit:
            extra.append(f"at {self.commit[:10]}")
        if self.up_to is not None:
            extra.append(f"up to {_pct(self.up_to)}")
        return f"{self.reason} ({', '.join(extra)})"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "benchmark": self.benchmark, "metric": self.metric,
                "commit": self.commit, "reason": self.reason, "author": self.author,
                "source": self.source, "up_to": self.up_to,
                "sizes": dict(self.data.get("sizes") or {}),
                "created_at": self.created_at.isoformat() if self.created_at else None}


def _worse(change: Any, direction: str) -> float | None:
    """A relative change as "how much worse" (positive = worse) whatever the metric's direction."""
    if not isinstance(change, (int, float)) or change != change:
        return None
    return float(change) if direction != "higher" else -float(change)


def _worse_low(ci_low: Any, ci_high: Any, direction: str) -> float | None:
    return _worse(ci_low if direction != "higher" else ci_high, direction)


def _worse_high(ci_low: Any, ci_high: Any, direction: str) -> float | None:
    return _worse(ci_high if direction != "higher" else ci_low, direction)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


# --------------------------------------------------------------------------------------------
# git


def _git(root: str | Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def git_author(root: str | Path) -> str:
    """``Name <email>`` from git config, or what part of it is set ('' outside git)."""
    name = (_git(root, "config", "user.name") or "").strip()
    email = (_git(root, "config", "user.email") or "").strip()
    if name and email:
        return f"{name} <{email}>"
    return name or email


def commits_in_range(root: str | Path, base: str, head: str) -> list[str]:
    """Full shas of the commits reachable from ``head`` but not from ``base`` (newest first)."""
    out = _git(root, "rev-list", f"{base}..{head}")
    return [line.strip() for line in (out or "").splitlines() if line.strip()]


def parse_trailers(message: str) -> list[tuple[str, str]]:
    """``(benchmark, reason)`` of every ``Perf-Approved: BENCHMARK: reason`` line in a message."""
    found = []
    for line in message.splitlines():
        match = _TRAILER_LINE.match(line)
        if match:
            found.append((match["benchmark"], match["reason"]))
    return found


_UP_TO = re.compile(r"\bup to \+?(?P<pct>\d+(?:\.\d+)?)\s*%", re.IGNORECASE)


def parse_up_to(text: str) -> float | None:
    """The limit in a reason such as ``"needs the extra copy, up to 25%"`` (0.25), or None."""
    match = _UP_TO.search(text)
    return float(match["pct"]) / 100 if match else None


def trailer_approvals(root: str | Path, base: str, head: str) -> list[Approval]:
    """Approvals written as commit trailers in the commits between ``base`` and ``head``."""
    # Unit and record separators: a commit message may hold any printable text.
    out = _git(root, "log", "--format=%H%x1f%an <%ae>%x1f%B%x1e", f"{base}..{head}")
    approvals = []
    for record in (out or "").split("\x1e"):
        parts = record.strip("\n").split("\x1f")
        if len(parts) != 3:
            continue
        sha, author, message = parts
        for benchmark, reason in parse_trailers(message):
            up_to = parse_up_to(reason)
            approvals.append(Approval(benchmark=benchmark, reason=reason, author=author.strip(),
                                      commit=sha.strip(), source=COMMIT_TRAILER,
                                      data={"up_to": up_to} if up_to is not None else {}))
    return approvals


# --------------------------------------------------------------------------------------------
# the store


def _approval(row: ApprovalRecord) -> Approval:
    return Approval(benchmark=row.benchmark, reason=row.reason, author=row.author, commit=row.commit,
                    metric=row.metric, source=row.source, id=row.id, created_at=row.created_at,
                    data=dict(row.data or {}))


def record_approval(store: Store, approval: Approval) -> Approval:
    """Store ``approval`` and return it with its id. Checks that it is documented."""
    if not approval.benchmark.strip():
        raise UsageError("an approval needs a benchmark name", hint="perfloop approve NAME --reason ...")
    if len(approval.reason.strip()) < MIN_REASON:
        raise UsageError(f"the reason {approval.reason.strip()!r} does not document the exception",
                         hint='say why the regression is acceptable, e.g. --reason "correctness fix '
                              'for #123; the extra copy is needed"')
    row = store.add_approval(benchmark=approval.benchmark.strip(), metric=approval.metric,
                             commit=approval.commit, reason=approval.reason.strip(),
                             author=approval.author, source=approval.source,
                             created_at=approval.created_at or utcnow(), data=dict(approval.data))
    return _approval(row)


def list_approvals(store: Store, *, benchmark: str | None = None,
                   commits: Iterable[str] | None = None, limit: int | None = None) -> list[Approval]:
    """Stored approvals, newest first; only those of ``benchmark`` (name or base name) or
    of the given commits when asked."""
    names = {benchmark, benchmark.split("[", 1)[0]} if benchmark else None
    wanted = list(commits) if commits is not None else None
    if wanted is not None and not wanted:
        return []
    return [_approval(row) for row in store.approvals(benchmarks=names, commits=wanted, limit=limit)]


def remember(store: Store, approvals: Sequence[Approval]) -> list[Approval]:
    """Store trailer approvals not stored yet (same benchmark, commit and source); all of them,
    with ids, in the order given."""
    if not approvals:
        return []
    known = {(a.benchmark, a.commit, a.source, a.metric): a
             for a in list_approvals(store, commits={a.commit for a in approvals if a.commit})}
    out = []
    for a in approvals:
        key = (a.benchmark, a.commit, a.source, a.metric)
        if a.id is None and key not in known:
            known[key] = record_approval(store, a)
        out.append(known.get(key, a))
    return out


def applicable(approvals: Iterable[Approval], *, head: str | None,
               in_range: Iterable[str]) -> list[Approval]:
    """The approvals that count for a change from base to ``head``.

    An approval counts when it names no commit (made outside git), names the head, or names a
    commit between base and head. One made for an earlier change already in the base does not.
    """
    commits = set(in_range)
    if head:
        commits.add(head)
    return [a for a in approvals if a.commit is None or a.commit in commits]


def record_size(store: Store, approval: Approval, benchmark: str, metric: str,
                size: Mapping[str, Any]) -> Approval:
    """Record in a stored approval what it let through for ``metric`` of ``benchmark`` (only
    the first time: the size is what was reviewed). Returns the approval as stored."""
    if approval.id is None or approval.approved_size(benchmark, metric) is not None:
        return approval
    key = f"{benchmark}:{metric}"

    def edit(data: dict[str, Any]) -> dict[str, Any]:
        sizes = dict(data.get("sizes") or {})
        sizes.setdefault(key, dict(size))
        return {**data, "sizes": sizes}

    if not store.update_approval(approval.id, edit=edit):
        return approval
    stored = store.approval(approval.id)
    return _approval(stored) if stored is not None else approval


def journal_approved(store: Store, *, benchmark: str, approvals: Sequence[Approval],
                     actual: Mapping[str, Any], base: str | None, head: str | None,
                     base_run_id: int | None, head_run_id: int | None) -> int:
    """Write (or refresh) the journal entry of an approved regression; its change id.

    One entry per benchmark and head commit: running the gate again on the same head updates it
    instead of adding another.
    """
    reasons = "; ".join(a.describe() for a in approvals)
    data = {"benchmark": benchmark, "approvals": [a.to_dict() for a in approvals],
            "base": base, "head": head}
    now = utcnow()
    for row in store.changes(workflow=WORKFLOW, status="approved", limit=500):
        d = row.data or {}
        if d.get("benchmark") == benchmark and d.get("head") == head:
            store.update_change(row.id, actual=dict(actual), notes=reasons, data=data,
                                updated_at=now, baseline_run_id=base_run_id,
                                verification_run_ids=[i for i in (head_run_id,) if i is not None])
            return row.id
    return store.add_change(
        title=f"approved regression of {benchmark}", kind=None, workflow=WORKFLOW,
        status="approved", hypothesis=None, expected={}, actual=dict(actual), risk_factors={},
        rollback_plan=None, baseline_run_id=base_run_id,
        verification_run_ids=[i for i in (head_run_id,) if i is not None],
        commits=[c for c in (base, head) if c], notes=reasons, created_at=now, updated_at=now,
        data=data)


__all__ = ["Approval", "CLI", "COMMIT_TRAILER", "TRAILER", "WORKFLOW", "applicable",
           "commits_in_range", "git_author", "journal_approved", "list_approvals", "parse_trailers",
           "parse_up_to",
           "record_approval", "record_size", "remember", "trailer_approvals"]
