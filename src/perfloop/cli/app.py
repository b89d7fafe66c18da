"""The ``perfloop`` command: parse, call the library, render. Errors exit 2, gates exit 1."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import __version__
from ..errors import Interrupted, PerfloopError
from ..measure.process import sigterm_as_interrupt, terminated
from .lazy_group import LazyGroup, Listed

# Every command in the order `perfloop --help` lists it: name, the module whose register(app)
# adds it (one module per workflow), and the first paragraph of its help on one line. A command
# is imported and built only when it is run (start-up time); tests/test_startup.py checks this
# table against the commands the modules really register, so a new command or a changed
# docstring fails there until the table says the same.
_TABLE = (
    ("run", "measure_cmds",
     "Run the project's benchmarks and store the run. Exits 1 when every benchmark failed."),
    ("runs", "measure_cmds", "List stored runs, newest first."),
    ("show", "measure_cmds", "Show one run: per benchmark and metric n, median, IQR, p99, warnings."),
    ("compare", "measure_cmds", "Compare two stored runs: a verdict per benchmark and metric."),
    ("gate", "gate_cmds",
     "Gate a change: measure base and head, exit 1 on an unapproved, confirmed regression."),
    ("approve", "gate_cmds",
     "Approve a regression of BENCHMARK: a reviewed, documented exception to the gate."),
    ("approvals", "gate_cmds",
     "List recorded approvals (from perfloop approve and from commit trailers), newest first."),
    ("init", "gate_cmds",
     "Set a project up: perfloop.toml with one benchmark, its module, and a CI workflow."),
    ("history", "history_cmds",
     "Show a benchmark's history: its runs, change points, and the commits and environment "
     "changes behind them."),
    ("detect", "history_cmds", "Find change points across every stored series, newest first."),
    ("doctor", "history_cmds",
     "Check what makes benchmarks lie on this machine, and the smallest change each benchmark's "
     "stored noise lets a comparison see; the drift between separate runs (run_noise, measured "
     "from repeat runs of one commit) and the time metric that decides each benchmark here (CPU "
     "time for CPU-bound code, wall time for code that waits)."),
    ("report", "history_cmds",
     "Write a self-contained HTML report: history charts with change points and environment "
     "changes, a comparison's distributions, the gate's verdicts."),
    ("import", "import_cmds",
     "Import benchmark results written by pytest-benchmark, pyperf or asv: one run per file."),
    ("hypothesis", "incident_cmds",
     "Write down what you expect before profiling (hypothesis first)."),
    ("hypotheses", "incident_cmds",
     "Every hypothesis with its outcome, and the hit rate over time (intuition, measured)."),
    ("baseline", "incident_cmds",
     "Measure the before-state of the incident, with the settings verify will reuse."),
    ("profile", "incident_cmds",
     "Profile: hot spots, flame graph files, systemic signals, and the hypothesis's verdict."),
    ("verify", "incident_cmds",
     "Measure the patched code like the baseline and compare on every metric; attribution check."),
    ("mode", "incident_cmds",
     "Say whether the project is in incident mode or development, and list the open loops."),
    ("audit", "audit_cmds",
     "Name the anti-patterns in the journal, the git history and the store, with evidence."),
    ("risk", "risk_cmds",
     "Score the risk of a change (0-100) from what it touches, with each factor's points."),
    ("advise", "drill_cmds",
     "Say which tuning workflow fits (or that none does), with reasons and the history behind it."),
    ("serve", "server_cmds",
     "Run the team server: runners upload runs to it, everyone reads the same history."),
    ("upload", "server_cmds",
     "Upload a stored run, or the journal, to a perfloop server."),
    ("incident", "incident_cmds",
     "Incident mode: open one for a spike, close it with a journal entry."),
    ("journal", "journal_cmds",
     "The journal of every change, incident, approval and gate failure: why, expected, actual."),
    ("params", "params_cmds",
     "The registry of tuning parameters: each tunable, its value, where it lives, why."),
    ("change", "risk_cmds",
     "Tuning changes of the risk-budgeted workflow: propose, apply, verify, roll back."),
    ("cycle", "risk_cmds", "Release cycles with a risk budget."),
    ("drill", "drill_cmds", "Blind tuning drills: a hidden slowdown is injected; find it."),
    ("token", "server_cmds", "Make, list and revoke the server's API tokens."),
)
COMMANDS: tuple[Listed, ...] = tuple(Listed(name, f"{__package__}.{module}", line)
                                     for name, module, line in _TABLE)


class _Commands(LazyGroup):
    listing = COMMANDS


app = typer.Typer(
    name="perfloop",
    cls=_Commands,
    help="A performance-tuning workbench: measure benchmarks, store runs, compare them honestly.\n\n"
         "Exit codes: 0 ok, 1 a gate or check failed, 2 bad input or usage, 130 interrupted "
         "(Ctrl-C), 143 terminated (SIGTERM).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"perfloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False) -> None:
    """perfloop: measure, store, compare."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one place that turns errors into messages and exit codes.

    Rich is imported only to say an error: ``--help`` is plain click output and needs none."""
    def say(markup: str, detail: str = "") -> None:
        from rich.markup import escape

        from .common import err_console
        err_console.print(markup + escape(detail))

    def interrupted(detail: str = "") -> None:
        # SIGTERM is handled as Ctrl-C (children killed, runs marked interrupted), but said apart.
        what = "terminated (SIGTERM)" if terminated() else "interrupted"
        say(f"[yellow]{what}[/]" + ("[yellow]:[/] " if detail else ""), detail)
        sys.exit(143 if terminated() else 130)

    try:
        with sigterm_as_interrupt():
            code = app(args=argv, standalone_mode=False)
    except Interrupted as exc:
        interrupted(str(exc))
    except PerfloopError as exc:
        say("[bold red]Error:[/] ", str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        interrupted()
    except Exception as exc:
        # click's usage errors (typer may ship its own copy of click, so match by shape)
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        if type(exc).__name__ == "Abort":
            interrupted()
        raise
    if code == 130:
        interrupted()   # typer turned a KeyboardInterrupt into a silent exit code
    if isinstance(code, int) and code:
        sys.exit(code)
