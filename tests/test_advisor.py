"""The advisor: for each situation a senior engineer would recognise, the advice they would give.

Each case states the situation as the flags say it, and the workflow (and its headline words)
that an experienced performance engineer recommends there; the evidence cases check that the
project's history is reported and that it changes the advice where it should.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from perfloop.workflows.advisor import (DATA_DRIVEN, HYBRID, NONE, PROFILE_AND_PATCH, RISK_BUDGETED,
                                        Evidence, Situation, advise, gather_evidence)


@pytest.mark.parametrize("situation, workflow, words", [
    # a rewrite is planned: light profile-and-patch on the old system, benchmarks for the new
    (Situation(rewrite_planned=True), HYBRID, ("old system", "profile-and-patch", "benchmarks")),
    # a team new to the codebase: profile-and-patch first, to build intuition
    (Situation(new_to_codebase=True), PROFILE_AND_PATCH, ("intuition",)),
    # exploring rather than optimizing toward a target: ad-hoc profiling, no rigid workflow
    (Situation(exploring=True), NONE, ("ad-hoc profiling",)),
    # a 1% gain for 10% of engineering time: skip formal tuning, fix egregious bottlenecks only
    (Situation(gain=0.01, cost=0.10), NONE, ("skip formal tuning",)),
    # a financial exchange with strict latency objectives: data-driven, with the tail
    (Situation(strict_latency=True, contributors=30), DATA_DRIVEN, ("tail",)),
    # a startup shipping features: profile-and-patch
    (Situation(shipping_features=True, contributors=4), PROFILE_AND_PATCH, ("slow",)),
    # a long-lived project with many contributors: data-driven, profile-and-patch for incidents
    (Situation(contributors=40), HYBRID, ("data-driven", "incidents")),
    # a live system tuned steadily: risk-budgeted
    (Situation(live_system=True, contributors=12), RISK_BUDGETED, ("risk-budgeted",)),
])
def test_each_situation_gets_the_advice_a_senior_engineer_would_give(
        situation: Situation, workflow: str, words: tuple[str, ...]) -> None:
    advice = advise(situation)
    assert advice.workflow == workflow, advice
    text = " ".join((advice.headline, *advice.reasons, advice.also or "")).lower()
    for word in words:
        assert word in text, (word, text)
    assert advice.next_steps, "every piece of advice says what to do next"


def test_the_new_systems_gate_is_named_when_a_rewrite_is_planned() -> None:
    advice = advise(Situation(rewrite_planned=True))
    assert advice.also == f"{DATA_DRIVEN} for the new system"
    assert any("perfloop init" in step for step in advice.next_steps)


def test_a_gain_worth_its_cost_is_not_skipped() -> None:
    advice = advise(Situation(gain=0.20, cost=0.05, contributors=40))
    assert advice.workflow == HYBRID


def test_many_contributors_from_git_history_count_when_not_said() -> None:
    advice = advise(Situation(), Evidence(contributors=25))
    assert advice.workflow == HYBRID
    assert any("25 contributors" in r for r in advice.reasons)
    assert "25 git authors in the last 90 days" in advice.evidence


def test_a_costly_gate_that_caught_nothing_is_called_out() -> None:
    evidence = Evidence(runs=400, gate_runs=300, gate_seconds=40 * 3600, regressions_caught=0,
                        months=6, contributors=20)
    advice = advise(Situation(), evidence)
    assert any("40.0 h of CI time and caught no regression" in c for c in advice.cautions)
    assert any("gate: 300 runs" in fact for fact in advice.evidence)


def test_a_low_hit_rate_calls_for_profiling_before_patching() -> None:
    advice = advise(Situation(new_to_codebase=True), Evidence(hypotheses_decided=8, hit_rate=0.25))
    assert any("right 25% of the time" in c for c in advice.cautions)


def test_frequent_incidents_in_a_small_team_suggest_gating_what_breaks() -> None:
    advice = advise(Situation(shipping_features=True),
                    Evidence(incidents=9, months=3.0, contributors=3))
    assert advice.workflow == PROFILE_AND_PATCH
    assert any("3.0 incidents a month" in r for r in advice.reasons)


def test_evidence_is_read_from_the_store(store, tmp_path) -> None:
    from perfloop.workflows import incident as inc
    project = tmp_path / "proj"
    project.mkdir()
    for title in ("slow checkout", "slow report"):
        inc.open_incident(store, project, title)
        inc.close_incident(store, project, note="done")
    store.add_change(title="cache the rules", workflow="manual", status="verified", hypothesis="h")
    store.add_change(title="gate failed: checkout", workflow="regression", status="failed",
                     data={"gate": True})
    store.add_change(title="gate inconclusive: checkout", workflow="regression",
                     status="inconclusive", data={"gate": True})
    evidence = gather_evidence(store, project, now=datetime.now(timezone.utc) + timedelta(days=61))
    assert evidence.incidents == 2
    # the gate caught one regression (the failed gate, not the inconclusive one); one verified
    # improvement (an incident closed without verification is not one)
    assert (evidence.regressions_caught, evidence.improvements) == (1, 1)
    assert "improvements delivered, verified by a measurement: 1" in evidence.facts()
    assert evidence.runs == 0 and evidence.gate_runs == 0
    assert evidence.contributors is None       # not a git repository


def test_the_questionnaire_asks_and_advises(tmp_path, monkeypatch) -> None:
    """--ask on a terminal: the answers (new to the codebase, 3 people) give profile-and-patch."""
    from typer.testing import CliRunner
    from perfloop.cli import drill_cmds
    from perfloop.cli.app import app
    monkeypatch.setattr(drill_cmds, "_interactive", lambda: True)
    (tmp_path / "perfloop.toml").write_text('[[benchmark]]\nname = "x"\ncallable = "m:f"\n')
    answers = "n\nn\ny\nn\nn\nn\n3\n\n"        # the six questions, contributors, no gain
    result = CliRunner().invoke(app, ["advise", "--ask", "-C", str(tmp_path)], input=answers)
    assert result.exit_code == 0, result.output
    assert "Recommended: profile-and-patch" in result.output and "intuition" in result.output


def test_the_questionnaire_needs_a_terminal(tmp_path) -> None:
    from typer.testing import CliRunner
    from perfloop.cli.app import app
    (tmp_path / "perfloop.toml").write_text('[[benchmark]]\nname = "x"\ncallable = "m:f"\n')
    result = CliRunner().invoke(app, ["advise", "--ask", "-C", str(tmp_path)])
    assert result.exit_code != 0 and "needs a terminal" in str(result.exception or result.output)
