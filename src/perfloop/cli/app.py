"""The ``perfloop`` command: parse, call the library, render. Errors exit 2, gates exit 1."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import __version__
from ..errors import Interrupted, PerfloopError
from ..measure.process import sigterm_as_interrupt, terminated
from . import (audit_cmds, drill_cmds, gate_cmds, history_cmds, import_cmds, incident_cmds,
               journal_cmds, measure_cmds, params_cmds, risk_cmds, server_cmds)

app = typer.Typer(
    name="perfloop",
    help="A performance-tuning workbench: measure benchmarks, store runs, compare them honestly.\n\n"
         "Exit codes: 0 ok, 1 a gate or check failed, 2 bad input or usage, 130 interrupted "
         "(Ctrl-C), 143 terminated (SIGTERM).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
# One module per workflow; each adds its commands.
for _module in (measure_cmds, gate_cmds, history_cmds, import_cmds, incident_cmds, journal_cmds,
                params_cmds, audit_cmds, risk_cmds, drill_cmds, server_cmds):
    _module.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"perfloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False) -> None:
    """perfloop: measure, store, compare."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one place that turns errors into messages and exit codes."""
    from rich.markup import escape

    from .common import err_console

    def interrupted(detail: str = "") -> None:
        # SIGTERM is handled as Ctrl-C (children killed, runs marked interrupted), but said apart.
        what = "terminated (SIGTERM)" if terminated() else "interrupted"
        err_console.print(f"[yellow]{what}[/]" + (f"[yellow]:[/] {escape(detail)}" if detail else ""))
        sys.exit(143 if terminated() else 130)

    try:
        with sigterm_as_interrupt():
            code = app(args=argv, standalone_mode=False)
    except Interrupted as exc:
        interrupted(str(exc))
    except PerfloopError as exc:
        err_console.print(f"[bold red]Error:[/] {escape(str(exc))}")
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
