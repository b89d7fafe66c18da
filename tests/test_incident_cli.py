"""The profile-and-patch loop through the CLI, in real processes, on a copy of the example shop.

The shop's hot spot is known (``shop.pricing:apply_discounts`` prepares every rule once per cart
line); its fix makes checkout several times faster, far above the noise of a shared machine, so
the verdicts asserted here are the ones no noise can flip. Measurements use few processes and
values to stay fast; the tests are marked slow (each step is a perfloop process of its own).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitutil import git

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"
# six workers: the verdict engine needs a few units per side to call even a several-fold change
SMALL = ("--processes", "6", "--values", "3")


def perfloop(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PERFLOOP_STORE"}
    env["COLUMNS"] = "200"      # Rich wraps long lines at the terminal width; keep messages whole
    # options go before "--": whatever follows it is the command to profile
    cut = args.index("--") if "--" in args else len(args)
    argv = [*args[:cut], "-C", str(project), *args[cut:]]
    return subprocess.run([sys.executable, "-m", "perfloop", *argv],
                          capture_output=True, text=True, env=env, timeout=timeout)


def ok(project: Path, *args: str) -> subprocess.CompletedProcess:
    proc = perfloop(project, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def data(project: Path, *args: str) -> dict:
    return json.loads(ok(project, *args, "--json").stdout)




@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A copy of the example shop, committed in a git repository of its own."""
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".perfloop", "__pycache__"))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the shop")
    return root


def apply_patch(root: Path, name: str) -> None:
    subprocess.run(["patch", "-p1", "-s", "-i", f"patches/{name}"], cwd=root, check=True)


@pytest.mark.slow   # a perfloop process per step
def test_refusals_say_what_to_run(shop: Path) -> None:
    state = data(shop, "mode")
    assert state["mode"] == "development" and state["incident"] is None and state["open_loops"] == []
    refused = perfloop(shop, "baseline")
    assert refused.returncode == 2 and "perfloop incident open" in refused.stderr
    ok(shop, "incident", "open", "checkout p99 spike", "--benchmark", "checkout", "--metric", "p99")
    no_hypothesis = perfloop(shop, "profile")
    assert no_hypothesis.returncode == 2
    assert "has no hypothesis yet" in no_hypothesis.stderr and 'perfloop hypothesis "' in no_hypothesis.stderr
    assert "INCIDENT MODE: #1" in no_hypothesis.stderr
    ok(shop, "hypothesis", "discount rules are recomputed for every line item",
       "--expect", "shop.pricing:apply_discounts")
    no_baseline = perfloop(shop, "verify")
    assert no_baseline.returncode == 2
    assert "has no baseline" in no_baseline.stderr and "perfloop baseline" in no_baseline.stderr
    unprofiled = perfloop(shop, "profile")
    assert unprofiled.returncode == 2
    assert "has no baseline yet" in unprofiled.stderr and "run perfloop baseline" in unprofiled.stderr
    assert data(shop, "mode")["next"] == "perfloop baseline (before you patch)"
    again = perfloop(shop, "incident", "open", "another")
    assert again.returncode == 2 and "already open" in again.stderr


@pytest.mark.slow
def test_the_whole_loop_on_the_shop_hot_spot(shop: Path) -> None:
    ok(shop, "incident", "open", "checkout p99 spike", "--benchmark", "checkout[items=20]", "--metric", "p99")
    ok(shop, "hypothesis", "discount rule conditions are parsed again for every line item",
       "--expect", "shop.pricing:parse_condition", "--effect", "-50%")
    baseline = data(shop, "baseline", *SMALL)
    assert baseline["snapshot"]["commit"] == git(shop, "rev-parse", "HEAD")

    profiled = data(shop, "profile", "--duration", "1")
    [target] = profiled["targets"]
    first = target["hot_spots"][0]
    assert first["function"] == "shop.pricing:parse_condition" and first["rank"] == 1
    assert first["self_share"] > 0.4 and first["location"].endswith("pricing.py:43")
    assert profiled["outcome"] == "confirmed"
    assert all(Path(p).is_file() for p in target["files"].values())
    assert target["files"]["html"].endswith(".html") and target["files"]["speedscope"].endswith(".speedscope.json")

    apply_patch(shop, "fix-hot-spot.patch")
    report = data(shop, "verify")
    [row] = report["target"]
    assert row["metric"] == "wall_time" and row["verdict"] == "improved" and row["change"] < -0.5
    assert row["as_expected"] is True
    measured = {(v["benchmark"], v["metric"]) for v in report["comparison"]["verdicts"]}
    assert measured == {("checkout[items=20]", m)
                        for m in ("wall_time", "cpu_time", "cpu_norm", "peak_rss")}
    # the fix only moves work out of a loop: nothing else gets worse (README: same peak RSS)
    assert report["side_effects"] == [] and report["tradeoffs"] == []
    assert report["verdict"] == "verified", report["reading"]
    assert report["attribution"]["attributable"] is True
    assert "apply_discounts" in report["attribution"]["summary"]

    # the same fix with a cache-size change on top: the effect can no longer be attributed
    settings = shop / "shop" / "settings.py"
    settings.write_text(settings.read_text().replace("DEFAULT_CACHE_SIZE = 128", "DEFAULT_CACHE_SIZE = 4096"))
    git(shop, "commit", "-qam", "prepare rules once per cart; bigger cache")
    mixed = ok(shop, "verify")
    assert "cannot attribute the effect to one change" in mixed.stdout
    assert "split into 2 changes" in mixed.stdout and "DEFAULT_CACHE_SIZE" in mixed.stdout

    ok(shop, "incident", "close", "--note", "prepare the rules once per cart")
    assert data(shop, "mode")["mode"] == "development"
    shown = data(shop, "incident", "show", "1")
    journal = shown["data"]["journal"]
    assert shown["status"] == "closed" and journal["note"] == "prepare the rules once per cart"
    assert journal["hypotheses"][0]["outcome"] == "confirmed"
    assert journal["expected"]["effect"] == -0.5 and journal["expected"]["metric"] == "latency_p99"
    assert journal["actual"]["attributable"] is False
    assert [c["subject"] for c in journal["commits"]] == ["prepare rules once per cart; bigger cache"]
    assert journal["profiles"][0]["top_hot_spot"]["function"] == "shop.pricing:parse_condition"
    assert len(journal["verifications"]) == 2
    text = ok(shop, "incident", "show", "1").stdout
    assert "Journal entry" in text and "prepare the rules once per cart" in text
    assert data(shop, "hypotheses")["hit_rate"] == 1.0


@pytest.mark.slow
def test_a_patch_that_trades_latency_for_memory_is_reported_as_such(shop: Path) -> None:
    """cache-everything memoizes every priced cart: the repeated checkout becomes almost free,
    the report (200 distinct carts) only holds more memory."""
    ok(shop, "incident", "open", "checkout slow", "--benchmark", "checkout[items=20]", "--benchmark", "report",
       "--metric", "wall_time")
    ok(shop, "hypothesis", "pricing is recomputed", "--expect", "shop.pricing:apply_discounts")
    ok(shop, "baseline", "--processes", "4", "--values", "3")
    apply_patch(shop, "cache-everything.patch")
    report = data(shop, "verify")
    rows = {r["benchmark"]: r for r in report["target"]}
    assert rows["checkout[items=20]"]["verdict"] == "improved" and rows["checkout[items=20]"]["change"] < -0.9
    verdicts = {(v["benchmark"], v["metric"]): v for v in report["comparison"]["verdicts"]}
    assert verdicts[("report", "peak_rss")]["verdict"] == "regressed"
    assert any("trades latency for memory" in t for t in report["tradeoffs"]), report["tradeoffs"]
    # never "verified": a trade-off while the report's time holds, "regressed" when the report,
    # which pays for the memo's keys and never hits it, is slower as well
    slower_report = rows["report"]["verdict"] == "regressed"
    assert report["verdict"] == ("regressed" if slower_report else "trade-off"), report["reading"]
    assert any(s.startswith("peak_rss of report regressed") for s in report["side_effects"])


@pytest.mark.slow
def test_profile_alone_explore_a_command_and_a_running_process(shop: Path, tmp_path: Path) -> None:
    explored = data(shop, "profile", "--explore", "--benchmark", "checkout[items=5]", "--duration", "1")
    assert explored["purpose"] == "exploration" and explored["incident_id"] is None
    assert explored["targets"][0]["hot_spots"][0]["function"] == "shop.pricing:parse_condition"

    from perfloop.analysis.profilers import check_py_spy
    if not check_py_spy().ok:
        pytest.skip(f"py-spy cannot attach here: {check_py_spy().problem}")
    script = tmp_path / "busy.py"
    script.write_text("import time\n\ndef spin(n):\n    total = 0\n    for i in range(n):\n"
                      "        total += i * i\n    return total\n\n"
                      "end = time.time() + 60\nwhile time.time() < end:\n    spin(10000)\n")
    command = json.loads(ok(shop, "profile", "--duration", "1", "--json", "--", sys.executable,
                            str(script)).stdout)
    assert command["targets"][0]["hot_spots"][0]["function"].endswith("spin")
    proc = subprocess.Popen([sys.executable, str(script)])
    try:
        time.sleep(0.5)
        live = data(shop, "profile", "--pid", str(proc.pid), "--duration", "1s")
        assert live["targets"][0]["target"] == f"pid {proc.pid}"
        assert any(h["function"].endswith("spin") for h in live["targets"][0]["hot_spots"][:3])
    finally:
        proc.kill()
        proc.wait()
