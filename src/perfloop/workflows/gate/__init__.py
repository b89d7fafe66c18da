"""The regression gate: does this change make a benchmark worse, beyond its tolerance, unapproved?

How it decides (``docs/gate.md`` says why each step is there):

1. **Measure both sides on this machine, interleaved.** The base is checked out in a git
   worktree (``.perfloop/worktrees/``, removed afterwards, on error and Ctrl-C too; see
   :mod:`.worktrees`); base and head are measured in balanced ``A B B A`` blocks of
   single-process calls (:mod:`perfloop.workflows.interleave`, :mod:`.sampling`), adding
   blocks while a verdict is inconclusive, up to a cost limit. With ``reuse_base``, a stored
   run of the base commit from the same environment class may stand in for the base; it can
   only clear a benchmark: anything else is measured interleaved after all.
2. **Control the false discovery rate across the suite.** The p-values of every benchmark and
   metric go through Benjamini-Hochberg at ``q``; a regression that is not significant among
   all of them becomes ``inconclusive`` (:mod:`.confirm`).
3. **Confirm.** Each remaining regression is measured again, afresh and with more blocks; it
   fails the gate only if the confirmation says ``regressed`` too (:mod:`.confirm`).
4. **Approvals.** A confirmed regression covered by an approval (``perfloop approve`` or a
   ``Perf-Approved:`` commit trailer between base and head) passes, and is journaled
   (:mod:`.judging`).
5. **Inconclusive** verdicts follow ``on_inconclusive``: ``warn`` (default: pass, and say so
   in every output), ``pass`` or ``fail`` (:mod:`.options`).

A benchmark that fails to run at head fails the gate (a benchmark that no longer runs is worse
than a slow one); one that fails at base is new (nothing to compare with). Side effects are
reported per benchmark (:mod:`perfloop.analysis.side_effects`): one metric improved while
another regressed (metric myopia), a better median with a worse tail.

The measured base and head are stored as runs labelled ``gate-base`` and ``gate-head`` (and
``gate-confirm-base`` / ``gate-confirm-head`` for confirmations), so the history grows with
every gate (:mod:`.runs`). What the gate decided is a :class:`GateReport` (:mod:`.outcome`).

The options, outcomes and worktrees load with the package; the course of the gate (which needs
the store and, when it decides, the statistics) loads on first use of its names, so that the
``gate`` command's ``--help`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .options import (DEFAULT_CONFIDENCE, DEFAULT_CONFIRM_BLOCKS, DEFAULT_MAX_BASE_AGE_HOURS,
                      DEFAULT_ON_INCONCLUSIVE, DEFAULT_SAMPLING, FAIL, INCONCLUSIVE_POLICIES,
                      PASS, WARN, GateOptions)
from .outcome import (APPROVED, NEW, STATUS_ORDER, STATUS_WORDS, BenchmarkOutcome, GateReport,
                      MetricOutcome, in_github_actions)
from .worktrees import WORKTREES, git_toplevel, prune_worktrees, rooted, worktree

if TYPE_CHECKING:
    from ...analysis.side_effects import side_effects
    from .run import run_gate
    from .runs import (LABEL_BASE, LABEL_CONFIRM_BASE, LABEL_CONFIRM_HEAD, LABEL_HEAD,
                       interleaved_pair, stored_base)
    from .sampling import EventFunction, make_decide

_LAZY: dict[str, str] = {
    "run_gate": "perfloop.workflows.gate.run",
    "make_decide": "perfloop.workflows.gate.sampling",
    "EventFunction": "perfloop.workflows.gate.sampling",
    "stored_base": "perfloop.workflows.gate.runs",
    "interleaved_pair": "perfloop.workflows.gate.runs",
    "LABEL_BASE": "perfloop.workflows.gate.runs",
    "LABEL_HEAD": "perfloop.workflows.gate.runs",
    "LABEL_CONFIRM_BASE": "perfloop.workflows.gate.runs",
    "LABEL_CONFIRM_HEAD": "perfloop.workflows.gate.runs",
    "side_effects": "perfloop.analysis.side_effects",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = ["APPROVED", "BenchmarkOutcome", "DEFAULT_CONFIDENCE", "DEFAULT_CONFIRM_BLOCKS",
           "DEFAULT_MAX_BASE_AGE_HOURS", "DEFAULT_ON_INCONCLUSIVE", "DEFAULT_SAMPLING",
           "EventFunction", "FAIL", "GateOptions", "GateReport", "INCONCLUSIVE_POLICIES",
           "LABEL_BASE", "LABEL_CONFIRM_BASE", "LABEL_CONFIRM_HEAD", "LABEL_HEAD",
           "MetricOutcome", "NEW", "PASS", "STATUS_ORDER", "STATUS_WORDS", "WARN", "WORKTREES",
           "git_toplevel", "in_github_actions", "interleaved_pair", "make_decide",
           "prune_worktrees", "rooted", "run_gate", "side_effects", "stored_base", "worktree"]
