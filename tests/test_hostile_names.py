"""Names that try to break outputs: control characters, ANSI escapes, newlines, HTML, Markdown.

They are refused where they enter (configuration, imports) and escaped where they leave (a store
may hold rows another tool wrote): the gate's JUnit XML stays well-formed, its Markdown shows
names as text, its GitHub annotations and terminal lines cannot start a new line or recolour the
terminal.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from perfloop.config import load_config
from perfloop.errors import ConfigError, PerfloopError
from perfloop.importers import read_results
from perfloop.records import BenchmarkResult, ResultStatus, Sample
from perfloop.report.escape import markdown, printable, terminal, xml_text
from perfloop.report.github import render_annotations
from perfloop.report.junit import render_junit
from perfloop.report.markdown import render_markdown
from perfloop.report.text import render_results
from perfloop.workflows.gate import BenchmarkOutcome, GateOptions, GateReport, MetricOutcome

HOSTILE = ["bad\x1b[31mred\x1b[0m", "two\n::error::forged", "nul\x00bell\x07", "<img src=x onerror=alert(1)>",
           "**bold** [link](http://evil) `code` | pipe", "rtl\u202eevil", "quote[items=10]"]


def report(name: str) -> GateReport:
    metric = MetricOutcome(benchmark=name, metric="wall_time", verdict="regressed", status="fail",
                           change=0.2, ci_low=0.1, ci_high=0.3, base=1.0, head=1.2, unit="s")
    return GateReport(base_ref="main", base_commit="a" * 40, head_ref="HEAD", head_commit="b" * 40,
                      head_dirty=False, project="p", options=GateOptions(base="main"),
                      benchmarks=(BenchmarkOutcome(name=name, status="fail", metrics=(metric,),
                                                   error=f"{name} broke", notes=(name,)),))


@pytest.mark.parametrize("name", HOSTILE)
def test_junit_is_well_formed_and_keeps_the_name_readable(name: str) -> None:
    document = render_junit(report(name))
    case = ET.fromstring(document).find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == xml_text(name)


@pytest.mark.parametrize("name", HOSTILE)
def test_annotations_are_one_line_each_without_raw_control_characters(name: str) -> None:
    lines = render_annotations(report(name)).splitlines()
    assert len(lines) == 1 and lines[0].startswith("::error ")
    assert printable(lines[0]) == lines[0]


@pytest.mark.parametrize("name", HOSTILE)
def test_markdown_shows_names_as_text(name: str) -> None:
    md = render_markdown(report(name))
    assert "<img" not in md and "\x1b" not in md
    assert "[link](http://evil)" not in md and "**bold**" not in md
    for line in md.splitlines():
        assert not line.startswith("::")


def test_terminal_output_has_no_raw_escapes_and_no_forged_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=False, color_system=None)
    results = [BenchmarkResult(name=name, kind="callable", status=ResultStatus.FAILED,
                               samples=(Sample("wall_time", 1.0),), error=f"{name} broke")
               for name in HOSTILE]
    render_results(console, results, title="run #1")
    text = out.getvalue()
    assert "\x1b" not in text and "\x00" not in text and "\u202e" not in text
    assert not any(line.lstrip().startswith("::error") for line in text.splitlines())
    assert "quote[items=10]" in text and "quote\\[" not in text


def test_escapes_are_visible_and_reversible_enough_to_read() -> None:
    assert printable("a\nb\x1b[0m") == "a\\nb\\x1b[0m"
    assert terminal("q[items=10]") == "q\\[items=10]"        # Rich shows it as q[items=10]
    assert markdown("<b>a_b</b>") == "&lt;b&gt;a\\_b&lt;/b&gt;"
    assert xml_text("a\x00b\tc") == "a\\x00b\tc"


# -- refused where they enter ------------------------------------------------------------------

@pytest.mark.parametrize("field", ["name", "params"])
def test_config_refuses_control_characters_in_names(tmp_path: Path, field: str) -> None:
    name, params = ("a\\u001b[31m", "") if field == "name" else ("a", 'params = { s = ["x\\ny"] }')
    (tmp_path / "perfloop.toml").write_text(f'[[benchmark]]\nname = "{name}"\ncallable = "m:f"\n{params}\n')
    with pytest.raises(ConfigError, match="control characters") as raised:
        load_config(tmp_path)
    assert "perfloop.toml" in str(raised.value) and "[benchmark." in str(raised.value)


def test_import_refuses_control_characters_in_names(tmp_path: Path) -> None:
    file = tmp_path / "results.json"
    file.write_text(json.dumps({
        "machine_info": {}, "commit_info": {},
        "benchmarks": [{"name": "x", "fullname": "t.py::x\n::error::forged", "params": None,
                        "stats": {"data": [1e-6, 2e-6], "iterations": 1}}]}))
    with pytest.raises(PerfloopError, match="control characters") as raised:
        read_results(file)
    assert str(file) in str(raised.value)


def test_the_gate_failure_line_shows_a_parametrised_name_as_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from perfloop.cli.app import main

    (tmp_path / "perfloop.toml").write_text('[[benchmark]]\nname = "quote"\ncallable = "m:f"\n'
                                            'params = { items = [10] }\n')
    monkeypatch.setattr("perfloop.workflows.gate.run_gate",   # imported where used
                        lambda *args, **kwargs: report("quote[items=10]\n::error::x"))
    with pytest.raises(SystemExit) as exited:
        main(["gate", "--base", "main", "-C", str(tmp_path), "--store", str(tmp_path / "s.db"),
              "--no-github"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    error_line = next(line for line in err.splitlines() if line.startswith("Error:"))
    assert "quote[items=10]\\n::error::x" in error_line and "quote\\[" not in error_line
