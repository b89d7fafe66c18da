"""Profiles: the model and its analyses on made-up stacks, then the profilers on real workloads.

The model tests build profiles by hand, so shares are exact. The profiler tests run the
workloads of tests/fixtures/profmod.py for about half a second each and assert only on shapes
that hold on a loaded machine: which function dominates, which one loses time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.dom.minidom
from pathlib import Path

import pytest

from perfloop.analysis.hypothesis import check_hypothesis
from perfloop.analysis.profiles import (
    OUTSIDE_USER_CODE, Frame, Profile, Stack, classify_file, diff_profiles,
    from_cprofile, from_pyinstrument, from_speedscope, hot_spots, module_for_file, to_speedscope,
    top_user_hot_spot,
)
from perfloop.config import BenchmarkSpec, Settings
from perfloop.errors import TargetError, TargetTimeout, UsageError
from perfloop.analysis import profilers
from perfloop.analysis.profilers import commands
from perfloop.analysis.profilers import (
    PY_SPY_INSTALL, PySpyStatus, check_py_spy, profile_callable, profile_command, profile_pid,
)
from perfloop.report.flamegraph import render_svg, write_flamegraph

FIXTURES = Path(__file__).parent / "fixtures"
PROFMOD = str(FIXTURES / "profmod.py")
STDLIB_JSON = os.path.join(os.path.dirname(json.__file__), "encoder.py")
DURATION = 0.6


# -- made-up profiles -------------------------------------------------------------------------

def _profile(calls: int | None = None) -> Profile:
    """app.main -> app.pricing.apply (hot, mostly inside json) + app.io.load; and a thread."""
    frames = (
        Frame("main", "/proj/app/main.py", 1, "app.main", "user"),            # 0
        Frame("apply", "/proj/app/pricing.py", 10, "app.pricing", "user"),    # 1
        Frame("JSONEncoder.encode", STDLIB_JSON, 183, "json.encoder", "stdlib"),  # 2
        Frame("load", "/proj/app/io.py", 5, "app.io", "user"),                # 3
        Frame("sorted", "<built-in>", 0, "", "native"),                       # 4
        Frame("Thread.run", "/usr/lib/python3.11/threading.py", 970, "threading", "stdlib"),  # 5
    )
    stacks = (
        Stack((0, 1, 2), 5.0),      # apply's time spent in json: charged to apply for user code
        Stack((0, 1), 1.0),
        Stack((0, 3), 2.0),
        Stack((0, 3, 4), 1.0),
        Stack((5,), 1.0, "worker"),  # no user frame at all
    )
    return Profile(frames=frames, stacks=stacks, unit="seconds", profiler="test", duration=10.0,
                   calls=calls)


def test_hot_spots_rank_by_self_share_over_all_code() -> None:
    spots = hot_spots(_profile())
    assert [s.function for s in spots[:3]] == ["json.encoder:JSONEncoder.encode", "app.io:load",
                                               "app.pricing:apply"]
    first = spots[0]
    assert first.self_share == pytest.approx(0.5) and first.kind == "stdlib" and not first.user
    assert first.location == f"{STDLIB_JSON}:183"
    assert "app.main:main" not in [s.function for s in spots]     # no self time at all


def test_user_scope_charges_library_time_to_the_innermost_user_frame() -> None:
    spots = hot_spots(_profile(), scope="user")
    assert spots[0].function == "app.pricing:apply"
    assert spots[0].self_share == pytest.approx(0.6)
    assert spots[1].function == "app.io:load" and spots[1].self_share == pytest.approx(0.3)
    outside = next(s for s in spots if s.function == OUTSIDE_USER_CODE)
    assert outside.self_share == pytest.approx(0.1)
    assert top_user_hot_spot(_profile()).function == "app.pricing:apply"


def test_generated_code_is_charged_to_its_user_caller() -> None:
    frames = (Frame("price", "/p/shop/pricing.py", 3, "shop.pricing", "user"),
              Frame("<lambda>", "<string>", 1, "", classify_file("<string>")))   # a namedtuple __new__
    profile = Profile(frames=frames, stacks=(Stack((0, 1), 3.0), Stack((0,), 1.0)))
    assert hot_spots(profile)[0].function == "<lambda>"
    assert hot_spots(profile, scope="user")[0].function == "shop.pricing:price"
    assert hot_spots(profile, scope="user")[0].self_share == pytest.approx(1.0)


def test_hot_spots_by_total_share_and_limit() -> None:
    spots = hot_spots(_profile(), by="total", limit=2)
    assert [s.function for s in spots] == ["app.main:main", "app.pricing:apply"]
    assert spots[0].total_share == pytest.approx(0.9)
    with pytest.raises(ValueError):
        hot_spots(_profile(), by="wall")


def test_seconds_are_per_call_when_calls_are_known() -> None:
    spot = hot_spots(_profile(calls=4), scope="user")[0]
    assert spot.self_seconds == pytest.approx(6.0 / 4)
    samples = Profile(frames=_profile().frames, stacks=_profile().stacks, unit="samples")
    assert hot_spots(samples)[0].self_seconds is None


def test_outside_user_code_is_never_the_first_user_hot_spot() -> None:
    frames = (Frame("main", "/proj/m.py", 1, "m", "user"), Frame("wait", "/usr/lib/python3.11/threading.py",
                                                                    1, "threading", "stdlib"))
    profile = Profile(frames=frames, stacks=(Stack((1,), 9.0), Stack((0,), 1.0)))
    assert hot_spots(profile, scope="user")[0].function == OUTSIDE_USER_CODE
    assert top_user_hot_spot(profile).function == "m:main"


def test_hypothesis_confirmed_when_the_expected_code_holds_the_time() -> None:
    check = check_hypothesis(_profile(), ["app.pricing:apply"])
    assert check.verdict == "confirmed"
    assert check.share == pytest.approx(0.6) and check.first_user
    assert check.matched == ("app.pricing:apply",)
    assert "Confirmed" in check.reading


def test_hypothesis_refuted_names_where_the_time_goes() -> None:
    profile = _profile()
    frames = profile.frames + (Frame("tax", "/proj/app/tax.py", 3, "app.tax", "user"),)
    profile = Profile(frames=frames, stacks=profile.stacks + (Stack((0, 6), 0.2),))
    check = check_hypothesis(profile, ["app.tax:tax"])
    assert check.verdict == "refuted"
    assert check.share < 0.1
    assert "app.pricing:apply" in check.reading
    assert check.top[0].function == "app.pricing:apply"


def test_hypothesis_unclear_between_the_thresholds() -> None:
    # load holds 30% in total; with min_share 0.5 that is above the floor (0.17), below 0.5
    check = check_hypothesis(_profile(), ["app.io:load"], min_share=0.5)
    assert check.verdict == "unclear" and not check.first_user
    assert check_hypothesis(_profile(), ["app.io:load"], min_share=0.3).verdict == "confirmed"


def test_hypothesis_confirmed_when_first_in_user_code_above_the_floor() -> None:
    # the rest of the time runs outside user code (a library's own loop, not waiting)
    frames = (Frame("a", "/p/m.py", 1, "m", "user"), Frame("b", "/p/m.py", 9, "m", "user"),
              Frame("run", "/usr/lib/python3.11/sched.py", 1, "sched", "stdlib"))
    profile = Profile(frames=frames, stacks=(Stack((0,), 2.0), Stack((1,), 1.0), Stack((2,), 7.0)))
    check = check_hypothesis(profile, ["m:a"])
    assert check.share == pytest.approx(0.2) and check.first_user
    assert check.verdict == "confirmed"


def test_a_cpu_hypothesis_is_unclear_when_most_time_is_waiting() -> None:
    # the same shape, but the rest of the time is threads idle in select(): waiting
    frames = (Frame("a", "/p/m.py", 1, "m", "user"), Frame("b", "/p/m.py", 9, "m", "user"),
              Frame("BaseSelector.select", "/usr/lib/python3.11/selectors.py", 1, "selectors", "stdlib"))
    profile = Profile(frames=frames, stacks=(Stack((0,), 2.0), Stack((1,), 1.0), Stack((2,), 7.0)))
    check = check_hypothesis(profile, ["m:a"])
    assert check.first_user and check.verdict == "unclear"
    assert "70% of the recorded thread time is threads waiting for I/O" in check.reading
    # without waiting in the stacks, the process's off-CPU share says the same
    running = Profile(frames=frames[:2], stacks=(Stack((0,), 2.0), Stack((1,), 1.0)))
    assert check_hypothesis(running, ["m:a"]).verdict == "confirmed"
    blind = check_hypothesis(running, ["m:a"], off_cpu=0.8)
    assert blind.verdict == "unclear" and "off-CPU (waiting) for 80%" in blind.reading


def test_hypothesis_module_names_and_unmatched_names() -> None:
    assert check_hypothesis(_profile(), ["app.pricing"]).verdict == "confirmed"
    assert check_hypothesis(_profile(), ["pricing"]).verdict == "confirmed"   # suffix of app.pricing
    check = check_hypothesis(_profile(), ["app.pricing:aply"])
    assert check.verdict == "refuted" and check.unmatched == ("app.pricing:aply",)
    assert "check the spelling" in check.reading
    with pytest.raises(ValueError):
        check_hypothesis(_profile(), [])


def test_hypothesis_on_an_empty_profile_is_unclear() -> None:
    empty = Profile(frames=(), stacks=())
    assert check_hypothesis(empty, ["m:f"]).verdict == "unclear"


def test_profile_checks_its_values() -> None:
    fr = (Frame("f", "/p/m.py", 1, "m"),)
    with pytest.raises(ValueError):
        Profile(frames=fr, stacks=(Stack((0,), -1.0),))
    with pytest.raises(ValueError):
        Profile(frames=fr, stacks=(Stack((3,), 1.0),))
    with pytest.raises(ValueError):
        Profile(frames=fr, stacks=(), unit="ms")
    with pytest.raises(ValueError):
        Frame("f", "/p/m.py", kind="mine")


def test_diff_profiles_per_call() -> None:
    before = _profile(calls=10)
    stacks = tuple(Stack(s.frames, s.weight / 5 if 1 in s.frames else s.weight, s.thread)
                   for s in before.stacks)
    after = Profile(frames=before.frames, stacks=stacks, duration=5.0, calls=10)
    deltas = diff_profiles(before, after)
    apply = next(d for d in deltas if d.function == "app.pricing:apply")
    assert deltas[0].function in ("app.pricing:apply", "app.main:main")
    assert apply.per_call
    assert apply.before_seconds == pytest.approx(0.6) and apply.after_seconds == pytest.approx(0.12)
    assert apply.seconds_change == pytest.approx(-0.48)
    assert apply.share_change < 0
    load = next(d for d in deltas if d.function == "app.io:load")
    assert load.seconds_change == pytest.approx(0.0) and load.share_change > 0


def test_module_and_kind_of_a_file() -> None:
    assert module_for_file("/proj/src/shop/pricing.py", ["/proj/src"]) == "shop.pricing"
    assert module_for_file("/proj/src/shop/__init__.py", ["/proj/src", "/proj"]) == "shop"
    assert module_for_file("/v/lib/python3.11/site-packages/numpy/core/fromnumeric.py") == \
        "numpy.core.fromnumeric"
    assert module_for_file(STDLIB_JSON) == "json.encoder"
    assert module_for_file("<frozen importlib._bootstrap>") == "importlib._bootstrap"
    assert module_for_file("/elsewhere/tool.py") == "tool"
    assert classify_file("/v/lib/python3.11/site-packages/numpy/core/x.py") == "library"
    assert classify_file(STDLIB_JSON) == "stdlib"
    assert classify_file("<built-in>") == "native"
    assert classify_file("<string>") == "generated"
    assert classify_file("/proj/src/shop/pricing.py") == "user"
    assert classify_file(profilers.__file__) == "perfloop"


def test_from_pyinstrument_records() -> None:
    worker = "/x/profile_worker.py"
    records = [
        (["MainThread\x00<thread>\x001", "_profiled_calls\x00" + worker + "\x0110\x01l12",
          "pipeline\x00/p/app.py\x005\x01l6", "total\x00/p/app.py\x009\x01cCart\x01l9"], 0.003),
        (["MainThread\x00<thread>\x001", "_profiled_calls\x00" + worker + "\x0110",
          "pipeline\x00/p/app.py\x005", "sleep\x00<built-in>\x000"], 0.001),
    ]
    profile = from_pyinstrument(records, paths=["/p"], skip_files=[worker], calls=2)
    assert {f.name for f in profile.frames} == {"app:pipeline", "app:Cart.total", "sleep"}
    assert profile.total == pytest.approx(0.004) and profile.calls == 2
    assert profile.threads == ["MainThread"]
    assert hot_spots(profile)[0].function == "app:Cart.total"
    assert check_hypothesis(profile, ["app:total"]).verdict == "confirmed"   # class-less spelling


def test_from_cprofile_rebuilds_stacks_from_caller_edges() -> None:
    # main -> a (self 1) -> c (self 2);  main -> b (self 3) -> c (self 4)
    m, a, b, c = ("/p/m.py", 1, "main"), ("/p/m.py", 5, "a"), ("/p/m.py", 9, "b"), ("/p/m.py", 13, "c")
    sleep = ("~", 0, "<built-in method time.sleep>")
    stats = {
        m: (1, 1, 0.0, 10.5, {}),
        a: (1, 1, 1.0, 3.0, {m: (1, 1, 1.0, 3.0)}),
        b: (1, 1, 3.0, 7.0, {m: (1, 1, 3.0, 7.0)}),
        c: (2, 2, 6.0, 6.0, {a: (1, 1, 2.0, 2.0), b: (1, 1, 4.0, 4.0)}),
        sleep: (1, 1, 0.5, 0.5, {m: (1, 1, 0.5, 0.5)}),
    }
    profile = from_cprofile(stats, paths=["/p"])
    assert profile.meta["approximate"] is True
    assert profile.total == pytest.approx(10.5)
    names = {tuple(profile.frames[i].name for i in s.frames): s.weight for s in profile.stacks}
    assert names[("m:main", "m:a", "m:c")] == pytest.approx(2.0)
    assert names[("m:main", "m:b", "m:c")] == pytest.approx(4.0)
    assert names[("m:main", "time:sleep")] == pytest.approx(0.5)
    assert hot_spots(profile)[0].function == "m:c"


def test_from_speedscope_reads_py_spy_and_evented_documents() -> None:
    py_spy = {"$schema": "https://www.speedscope.app/file-format-schema.json", "exporter": "py-spy@0.4.3",
              "shared": {"frames": [{"name": "hot", "file": "/p/app.py", "line": 4},
                                    {"name": "<module>", "file": "/p/app.py", "line": 1}]},
              "profiles": [{"type": "sampled", "name": 'Thread 7 "MainThread"', "unit": "seconds",
                            "startValue": 0, "endValue": 0.03,
                            "samples": [[1, 0], [1, 0], [1]], "weights": [0.01, 0.01, 0.01]}]}
    profile = from_speedscope(py_spy, paths=["/p"])
    assert profile.profiler == "py-spy" and profile.threads == ["MainThread"]
    assert hot_spots(profile)[0].function == "app:hot"
    assert hot_spots(profile)[0].self_share == pytest.approx(2 / 3)
    evented = {"shared": {"frames": [{"name": "main"}, {"name": "work"}]},
               "profiles": [{"type": "evented", "name": "t", "unit": "milliseconds", "startValue": 0,
                             "endValue": 10, "events": [{"type": "O", "frame": 0, "at": 0},
                                                        {"type": "O", "frame": 1, "at": 2},
                                                        {"type": "C", "frame": 1, "at": 8},
                                                        {"type": "C", "frame": 0, "at": 10}]}]}
    profile = from_speedscope(evented)
    assert profile.total == pytest.approx(0.010)
    assert hot_spots(profile)[0].self_share == pytest.approx(0.6)
    with pytest.raises(ValueError):
        from_speedscope({"frames": []})


def test_speedscope_round_trip_keeps_hot_spots() -> None:
    original = _profile(calls=3)
    doc = json.loads(json.dumps(to_speedscope(original)))
    assert doc["$schema"].startswith("https://www.speedscope.app/")
    back = from_speedscope(doc, calls=3)
    assert back.profiler == "test"
    for scope in ("all", "user"):
        a, b = hot_spots(original, scope=scope), hot_spots(back, scope=scope)
        assert [(s.function, s.kind) for s in a] == [(s.function, s.kind) for s in b]
        assert [s.self_share for s in a] == pytest.approx([s.self_share for s in b])
        assert [s.total_share for s in a] == pytest.approx([s.total_share for s in b])


# -- flame graphs -----------------------------------------------------------------------------

def test_write_flamegraph_writes_offline_files(tmp_path: Path) -> None:
    written = write_flamegraph(_profile(), tmp_path / "out" / "pricing", title="pricing <test>")
    assert set(written) == {"speedscope", "svg", "html"}
    xml.dom.minidom.parse(str(written["svg"]))              # well-formed SVG
    svg = written["svg"].read_text()
    assert "app.pricing:apply" in svg and "pricing &lt;test&gt;" in svg
    page = written["html"].read_text()
    assert "<svg" in page and "Hot spots in user code" in page
    assert "src=" not in page and "<link" not in page      # nothing fetched from anywhere
    back = from_speedscope(json.loads(written["speedscope"].read_text()))
    assert hot_spots(back)[0].function == hot_spots(_profile())[0].function


def test_render_svg_of_an_empty_profile() -> None:
    svg = render_svg(Profile(frames=(), stacks=()))
    assert "no samples" in svg


# -- profiling real workloads -----------------------------------------------------------------

def _spec(function: str, *, setup: str | None = None, **params: object) -> BenchmarkSpec:
    return BenchmarkSpec(name=function, base_name=function, kind="callable", settings=Settings(),
                         metrics=("wall_time",), params=params, callable=f"profmod:{function}",
                         setup=f"profmod:{setup}" if setup else None, pythonpath=(str(FIXTURES),),
                         root=str(FIXTURES.parent))


@pytest.fixture(scope="module")
def slow_pipeline() -> profilers.ProfileResult:
    return profile_callable(_spec("pipeline"), duration=DURATION)


def test_known_hot_spot_ranks_first_and_is_confirmed(slow_pipeline: profilers.ProfileResult) -> None:
    result = slow_pipeline
    assert result.profiler == "pyinstrument" and not result.fallback
    assert result.calls and result.calls >= 1
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["hot_spots_user"][0]["function"] == "profmod:score"
    assert {s["name"] for s in summary["signals"]} >= {"off_cpu", "gc_time", "rss_growth"}
    assert top_user_hot_spot(result.profile).function == "profmod:score"
    assert hot_spots(result.profile, scope="user")[0].self_share > 0.5
    check = check_hypothesis(result.profile, ["profmod:score"])
    assert check.verdict == "confirmed"
    wrong = check_hypothesis(result.profile, ["profmod:parse_rows"])
    assert wrong.verdict == "refuted"
    assert "profmod:score" in wrong.reading


def test_profile_starts_at_the_callable_not_the_worker(slow_pipeline: profilers.ProfileResult) -> None:
    profile = slow_pipeline.profile
    roots = {profile.frames[s.frames[0]] for s in profile.stacks}
    assert "profmod:pipeline" in {f.name for f in roots}
    assert not any(f.file.endswith("profile_worker.py") for f in roots)


def test_setup_context_convention() -> None:
    result = profile_callable(_spec("pipeline_ctx", setup="setup_pipeline", rows=500), duration=DURATION)
    assert top_user_hot_spot(result.profile).function == "profmod:score"


def test_diff_shows_the_hot_function_losing_time(slow_pipeline: profilers.ProfileResult) -> None:
    # 40x less scoring: parse_rows then holds a large share, which sampling cannot miss
    fast = profile_callable(_spec("pipeline", rounds=1), duration=DURATION)
    deltas = diff_profiles(slow_pipeline.profile, fast.profile)
    score = next(d for d in deltas if d.function == "profmod:score")
    assert score.per_call
    assert score.seconds_change is not None and score.seconds_change < 0
    assert score.after_seconds < score.before_seconds / 3      # 40x less work; load varies < 3x
    assert score.share_change < 0
    assert deltas[0].function in ("profmod:score", "profmod:pipeline", "profmod:pipeline_ctx")


def test_real_profile_round_trips_through_speedscope(slow_pipeline: profilers.ProfileResult) -> None:
    doc = json.loads(json.dumps(to_speedscope(slow_pipeline.profile)))
    back = from_speedscope(doc, calls=slow_pipeline.calls)
    a, b = hot_spots(slow_pipeline.profile, limit=5), hot_spots(back, limit=5)
    assert [s.function for s in a] == [s.function for s in b]
    assert [s.self_share for s in a] == pytest.approx([s.self_share for s in b])


def test_cprofile_is_available_and_says_what_it_is() -> None:
    result = profile_callable(_spec("pipeline"), duration=DURATION, profiler="cprofile")
    assert result.profiler == "cprofile"
    assert any("cProfile" in n for n in result.notes)
    assert top_user_hot_spot(result.profile).function == "profmod:score"


def test_a_failing_callable_raises_target_error() -> None:
    with pytest.raises(TargetError, match="RuntimeError: this workload always fails"):
        profile_callable(_spec("broken"), duration=DURATION)
    with pytest.raises(TargetError, match="import failed"):
        profile_callable(_spec("no_such_function"), duration=DURATION)
    with pytest.raises(UsageError):
        profile_callable(_spec("pipeline"), profiler="perf")


def _no_py_spy() -> PySpyStatus:
    return PySpyStatus(False, None, "py-spy is not installed", PY_SPY_INSTALL)


def test_without_py_spy_callables_fall_back_to_pyinstrument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profilers.pyspy, "check_py_spy", _no_py_spy)
    result = profile_callable(_spec("pipeline"), duration=DURATION, profiler="py-spy")
    assert result.profiler == "pyinstrument" and result.requested == "py-spy" and result.fallback
    assert any("py-spy is not usable here" in n and "pip install py-spy" in n for n in result.notes)
    assert top_user_hot_spot(result.profile).function == "profmod:score"


def test_without_py_spy_python_commands_fall_back_to_pyinstrument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profilers.pyspy, "check_py_spy", _no_py_spy)
    result = profile_command([sys.executable, PROFMOD])
    assert result.profiler == "pyinstrument" and result.fallback and result.exit_code == 0
    assert any("ran the Python program under pyinstrument" in n for n in result.notes)
    assert top_user_hot_spot(result.profile).function == "profmod:score"
    with pytest.raises(TargetError) as err:
        profile_command(["/bin/sh", "-c", "true"])
    assert "pip install py-spy" in str(err.value)
    with pytest.raises(TargetError, match="pip install py-spy"):
        profile_pid(os.getpid(), duration=1)


def test_python_program_detection() -> None:
    detect = commands.python_program
    assert detect(["python3", "-u", "-m", "shop.cli", "run"]).mode == "module"
    assert detect(["python", "-X", "dev", "app.py", "--port", "1"]).argv == ("app.py", "--port", "1")
    assert detect([sys.executable, "-c", "print(1)"]).mode == "code"
    assert detect(["/bin/sh", "-c", "true"]) is None
    assert detect(["python"]) is None
    assert commands.command_argv("python -m shop.report --days 3") == ["python", "-m", "shop.report",
                                                                         "--days", "3"]
    assert commands.command_argv("make bench | tee out") == ["/bin/sh", "-c", "make bench | tee out"]
    assert commands.command_argv("FOO=1 python x.py")[:2] == ["/bin/sh", "-c"]


# -- py-spy, where it may attach ----------------------------------------------------------------

def _require_py_spy() -> None:
    status = check_py_spy()
    if not status.ok:
        pytest.skip(f"py-spy cannot attach here: {status.problem} ({status.fix})")


@pytest.mark.slow
def test_py_spy_sees_every_thread_of_a_callable() -> None:
    _require_py_spy()
    result = profile_callable(_spec("contended", n=300_000), duration=DURATION, profiler="py-spy")
    assert result.profiler == "py-spy" and not result.fallback
    names = {f.name for f in result.profile.frames}
    assert "profmod:_spin" in names                 # the worker threads, invisible to pyinstrument
    roots = {result.profile.frames[s.frames[0]] for s in result.profile.stacks}
    assert not any(f.file.endswith("profile_worker.py") for f in roots)


@pytest.mark.slow
def test_py_spy_profiles_a_command() -> None:
    _require_py_spy()
    result = profile_command([sys.executable, PROFMOD])
    assert result.profiler == "py-spy" and result.exit_code == 0
    assert top_user_hot_spot(result.profile).function == "profmod:score"
    assert check_hypothesis(result.profile, ["profmod:score"]).verdict == "confirmed"


@pytest.mark.slow
def test_py_spy_follows_a_shell_into_its_python_child() -> None:
    _require_py_spy()
    result = profile_command(f"cd {FIXTURES} && {sys.executable} profmod.py")
    assert result.profiler == "py-spy" and result.exit_code == 0
    assert top_user_hot_spot(result.profile).function.endswith("profmod:score")
    with pytest.raises(TargetError, match="started no Python process"):
        profile_command("true && true")


@pytest.mark.slow
def test_py_spy_profiles_a_running_process() -> None:
    _require_py_spy()
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import profmod\n"
            "print('ready', flush=True)\nwhile True: profmod.pipeline()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(FIXTURES)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        result = profile_pid(proc.pid, duration=1)
    finally:
        proc.kill()
        proc.wait()
    assert result.profiler == "py-spy" and result.target == f"pid {proc.pid}"
    assert top_user_hot_spot(result.profile).function.endswith("profmod:score")
    assert check_hypothesis(result.profile, ["profmod:score"]).verdict == "confirmed"


def test_profile_pid_of_a_missing_process() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()     # reaped: the pid is gone
    with pytest.raises(TargetError, match="no process"):
        profile_pid(proc.pid, duration=1)


def test_a_callable_past_its_timeout_is_killed() -> None:
    with pytest.raises(TargetTimeout, match="was killed"):
        profile_callable(_spec("pipeline"), duration=60, timeout=1.5)


def test_the_profile_analyses_import_no_cycle() -> None:
    """profile_model < profile_formats, hotspots < waiting < hypothesis, with function-local
    imports counted: none of these modules imports one that imports it back."""
    import ast

    import perfloop.analysis as analysis
    names = ("profile_model", "profile_formats", "hotspots", "profiles", "waiting", "hypothesis",
             "signals", "risk", "imports")
    edges: dict[str, set[str]] = {}
    for name in names:
        tree = ast.parse((Path(analysis.__file__).parent / f"{name}.py").read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                targets = [node.module] if node.module else [a.name for a in node.names]
                found.update(t.split(".")[0] for t in targets if t.split(".")[0] in names)
        edges[name] = found

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in edges[start])

    assert [n for n in names if reaches(n, n)] == []
    assert edges["hypothesis"] >= {"waiting", "hotspots", "profile_model"}
