"""Blind tuning drills: the survey, the choice, the injected slowdown, scoring, and isolation.

The injection is checked in real child processes (a wrapped function still returns its result,
spends at least ``factor`` times its own duration more, and a profiler charges that time to the
function itself). The whole drill is checked end to end on a copy of the example shop, with a
slowdown (+300%) far above a shared machine's noise, so the verdicts asserted are known answers.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perfloop.analysis.profiles import HotSpot
from perfloop.config import load_config
from perfloop.errors import UsageError
from perfloop.workflows import drills

from test_incident_cli import SHOP, data, ok, perfloop, shop  # noqa: F401  (the fixture)


def _spot(function: str, total: float, self_share: float = 0.1) -> HotSpot:
    return HotSpot(rank=1, function=function, location="x.py:1", kind="user", self_share=self_share,
                   total_share=total, self_seconds=None, total_seconds=None)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A tiny project: a package with a function, a method and a helper, and a benchmark."""
    root = tmp_path / "proj"
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "work.py").write_text(textwrap.dedent('''
        import time

        class Parser:
            def parse(self, text):
                return text.split(",")

        def helper(n):
            time.sleep(n)
            return n * 2

        def entry(ctx):
            return helper(0.0)
    '''))
    (root / "perfloop.toml").write_text(textwrap.dedent('''
        [[benchmark]]
        name = "entry"
        callable = "app.work:entry"
    '''))
    return root


def test_the_survey_keeps_the_projects_own_functions_with_a_share_that_can_show(project: Path) -> None:
    config = load_config(project)
    spots = [_spot("app.work:entry", 1.0), _spot("app.work:helper", 0.6),
             _spot("app.work:parse", 0.3), _spot("json.decoder:decode", 0.5),
             _spot("app.work:<listcomp>", 0.2), _spot("app.work:missing", 0.2)]
    found = drills.survey(config, profiler=lambda spec: spots)
    # the benchmark's own entry point, the standard library, comprehensions and names that are
    # not defined in the module are left out; a method gets its class in the qualname
    assert [c.function for c in found] == ["app.work:helper", "app.work:Parser.parse"]
    assert found[0].benchmark == "entry" and found[0].total_share == 0.6


def test_the_choice_respects_the_difficulty() -> None:
    cands = [drills.Candidate(f"m:f{i}", "b", share, 0.1)
             for i, share in enumerate((0.8, 0.5, 0.2, 0.05, 0.04))]
    easy = {drills.choose(cands, "easy", random.Random(s)).function for s in range(50)}
    assert easy == {"m:f0", "m:f1", "m:f2"}                    # 10% of the time at least
    hard = {drills.choose(cands, "hard", random.Random(s)).function for s in range(50)}
    assert hard == {"m:f4", "m:f3", "m:f2"}                    # the smaller half of >= 3%
    with pytest.raises(UsageError, match="enough of any callable"):
        drills.choose([drills.Candidate("m:tiny", "b", 0.01, 0.01)], "easy", random.Random(0))


def _child(project: Path, code: str, env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=project,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_hook_slows_the_target_in_a_new_process_and_a_profile_blames_the_target(
        project: Path, store) -> None:
    config = load_config(project)
    drill = drills.start(store, config, slowdown=1.5,
                         profiler=lambda spec: [_spot("app.work:helper", 0.5)])
    state = drills.active(project)
    assert state is not None and state["target"] == "app.work:helper" and state["factor"] == 3.0
    probe = '''
        import cProfile, json, pstats, time
        import app.work as w
        t0 = time.perf_counter(); out = w.helper(0.05); took = time.perf_counter() - t0
        prof = cProfile.Profile(); prof.enable(); w.entry(None); w.helper(0.01); prof.disable()
        names = sorted({fn for (_file, _line, fn) in pstats.Stats(prof).stats})
        print(json.dumps({"out": out, "took": took, "names": names,
                          "wrapped": getattr(w.helper, "__perfloop_drill__", False),
                          "parse": getattr(w.Parser.parse, "__perfloop_drill__", False)}))
    '''
    seen = _child(project, probe, drills.drill_env(project))
    assert seen["out"] == 0.1 and seen["wrapped"] is True and seen["parse"] is False
    assert seen["took"] >= 0.05 * (1 + 3.0)       # the spin is at least factor x the call
    # the wrapper and its busy loop carry the target's name: nothing gives the drill away
    assert "helper" in seen["names"]
    assert not {"slowed", "spin", "_wrap"} & set(seen["names"])
    # stopped: the next process runs the code as it is
    stopped = drills.stop(store, project)
    assert stopped.target == "app.work:helper" and stopped.status == "stopped"
    assert drills.drill_env(project) == {}
    plain = _child(project, probe, {})
    assert plain["wrapped"] is False and plain["took"] < 0.05 * 4
    assert drill.id == stopped.id


def test_answers_are_scored_and_a_right_one_ends_the_drill(project: Path, store) -> None:
    config = load_config(project)
    drills.start(store, config, profiler=lambda spec: [_spot("app.work:Parser.parse", 0.5)])
    with pytest.raises(UsageError, match="already running"):
        drills.start(store, config, profiler=lambda spec: [_spot("app.work:helper", 0.5)])
    wrong = drills.answer(store, project, "app.work:helper")
    assert not wrong.right and wrong.drill.status == "running" and wrong.drill.target is None
    right = drills.answer(store, project, "app.work.Parser.parse")   # dots name it too
    assert right.right and right.drill.solved and right.drill.target == "app.work:Parser.parse"
    assert len(right.drill.attempts) == 2 and right.drill.seconds is not None
    assert drills.active(project) is None
    [past] = drills.history(store, project)
    assert past.solved and past.difficulty == "easy"
    # the drill is in the journal, found by its workflow, and not an open loop once solved
    from perfloop.workflows import journal
    [entry] = journal.entries(store, workflow="drill")
    assert entry.id == str(past.id) and entry.status == "solved"
    assert journal.open_loops(journal.entries(store)) == []
    with pytest.raises(UsageError, match="no drill is running"):
        drills.answer(store, project, "app.work:helper")


def test_runs_during_a_drill_are_marked_and_never_a_baseline_or_a_commits_run(
        project: Path, store) -> None:
    from perfloop.measure.environment import fingerprint
    from perfloop.records import RunStatus
    from perfloop.workflows import gate, verify
    config = load_config(project)
    env = fingerprint()
    clean = store.begin_run(label="clean", commit="a" * 40, branch="main", dirty=False,
                            environment=env, settings={}, project=str(project))
    store.finish_run(clean, RunStatus.COMPLETE)
    drills.start(store, config, profiler=lambda spec: [_spot("app.work:helper", 0.5)])
    marked = store.begin_run(label="during", commit="a" * 40, branch="main", dirty=False,
                             environment=env, settings={"drill": 1}, project=str(project))
    store.finish_run(marked, RunStatus.COMPLETE)
    # the commit names the clean run although the drill run is newer; a label still finds it
    assert store.resolve("a" * 12) == clean
    assert store.resolve("during") == marked
    for doing in (lambda: verify.capture_baseline(config, store),
                  lambda: gate.run_gate(config, store, gate.GateOptions(base="HEAD"))):
        with pytest.raises(UsageError, match="drill #1 is running"):
            doing()


@pytest.mark.slow
def test_a_drill_on_the_example_shop_end_to_end(shop: Path) -> None:  # noqa: F811
    # separate runs on a shared host drift by tens of percent: ten workers a side, and a
    # slowdown (4x) that no such drift can hide
    small = ("--processes", "10", "--values", "3")
    ok(shop, "run", "checkout", "--label", "before", *small)
    config = load_config(shop)
    from perfloop.store import Store, resolve_store_url
    with Store.open(resolve_store_url(None, root=shop)) as db:
        drill = drills.start(db, config, seed=3, names=["checkout"], slowdown=3.0)
    state = drills.active(shop)
    target, bench = state["target"], state["benchmark"]
    assert drill.benchmarks == (bench,)
    # every command says a drill is running
    assert "DRILL #" in perfloop(shop, "runs").stderr
    ok(shop, "run", bench, "--label", "during", *small)
    slowed = data(shop, "compare", "before", "during")
    cpu = {v["metric"]: v for v in slowed["verdicts"] if v["benchmark"] == bench}["cpu_time"]
    assert cpu["verdict"] == "regressed", json.dumps(cpu, indent=1)
    # a profile of the slowed benchmark puts the target first by self time
    prof = data(shop, "profile", "--benchmark", bench, "--explore", "--duration", "2")
    spots = prof["targets"][0]["hot_spots"] if "targets" in prof else prof["hot_spots"]
    top = max(spots, key=lambda s: s["self_share"])
    assert top["function"].split(":")[1] == target.split(":")[1].split(".")[-1], spots[:3]
    # the gate and a baseline refuse while it runs
    refused = perfloop(shop, "gate", "--base", "HEAD")
    assert refused.returncode == 2 and "drill" in refused.stderr
    wrong = perfloop(shop, "drill", "answer", "shop.serialize:dumps")
    assert wrong.returncode == 1
    right = data(shop, "drill", "answer", target)
    assert right["right"] is True and right["drill"]["solved"] is True
    # both answers are kept with the drill; only the right one scored, with the time it took
    assert [a["right"] for a in right["drill"]["attempts"]] == [False, True], right["drill"]
    assert right["drill"]["seconds"] > 0
    ok(shop, "run", bench, "--label", "after", *small)
    restored = data(shop, "compare", "during", "after")
    cpu = {v["metric"]: v for v in restored["verdicts"] if v["benchmark"] == bench}["cpu_time"]
    assert cpu["verdict"] == "improved", json.dumps(cpu, indent=1)
    # and back where it was: nothing of a 4x slowdown is left against the run before the drill
    back = data(shop, "compare", "before", "after")
    cpu = {v["metric"]: v for v in back["verdicts"] if v["benchmark"] == bench}["cpu_time"]
    assert cpu["verdict"] != "regressed", json.dumps(cpu, indent=1)
    # history leaves the drill's run out: before and after are its points, during is not
    series = data(shop, "history", bench, "--metric", "cpu_time")
    labels = {p.get("label") for s in series.get("series", []) for p in s.get("points", [])}
    assert "during" not in labels and {"before", "after"} <= labels, labels
    history = data(shop, "drill", "history")
    assert history[0]["solved"] and history[0]["target"] == target


def test_a_running_drill_is_an_open_loop_of_the_mode(project: Path, store) -> None:
    from perfloop.workflows.modes import project_mode
    assert project_mode(store, project)["open_loops"] == []
    drills.start(store, load_config(project), profiler=lambda spec: [_spot("app.work:helper", 0.5)])
    state = project_mode(store, project)
    assert state["mode"] == "development" and state["drill"]["id"] == 1
    [loop] = state["open_loops"]
    assert loop["kind"] == "drill" and "drill answer" in loop["closes_with"]
    drills.stop(store, project)
    # a stopped drill is settled, not an open loop of the journal
    assert project_mode(store, project)["open_loops"] == []
