"""``perfloop risk``: the risk score of a change, factor by factor.

Thin: parse, call :func:`perfloop.workflows.risk.assess`, render as text or ``--json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional, Sequence

import typer

from .common import JsonFlag, ProjectDir, StoreUrl, console, open_store, print_json, project_root

LEVEL_STYLE = {"low": "bold green", "medium": "bold yellow", "high": "bold red"}


def risk(
    diff: Annotated[Optional[str], typer.Option(
        "--diff", metavar="REV..REV", help="A commit range (default: the working tree against HEAD).")] = None,
    kind: Annotated[Optional[str], typer.Option(
        "--kind", help="config, index, cache, code path, dependency, algorithm, concurrency, "
                       "infrastructure.")] = None,
    coverage: Annotated[bool, typer.Option(
        "--coverage/--no-coverage", help="Check which touched files a benchmark exercises "
                                         "(profiles each callable benchmark once per commit).")] = True,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Score the risk of a change (0-100) from what it touches, with each factor's points.

    Factors: kind, size, diffusion, blast radius in the import graph, declared fault
    boundaries crossed, reversibility, history of the touched files, benchmark coverage.

    Example: `perfloop risk --diff main..HEAD --kind algorithm`
    """
    from ..config import load_config
    from rich.table import Table
    from rich.text import Text
    from ..workflows.risk import assess
    root = project_root(directory)
    config = load_config(root)
    with open_store(directory, store, config=config) as db:
        found = assess(config, diff=diff, kind=kind, store=db,
                       **({} if coverage else {"coverage": None}))
    if json:
        print_json(found.to_dict())
        return
    s = found.score
    console.print(Text.assemble(("risk ", "bold"), (f"{s.score:.0f}/100 {s.level}", LEVEL_STYLE[s.level]),
                                f"  {found.diff.spec}: {len(found.diff.files)} files, "
                                f"+{found.diff.added} -{found.diff.deleted}"))
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    table.add_column("factor", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("why", overflow="fold")
    for f in s.factors:
        table.add_row(f.name, f"{f.points:.1f}", Text(f.detail))
    console.print(table)




# --------------------------------------------------------------------------------------------
# change and cycle: the risk-budgeted workflow

change_app = typer.Typer(help="Tuning changes of the risk-budgeted workflow: propose, apply, "
                              "verify, roll back.", no_args_is_help=True, rich_markup_mode=None)
cycle_app = typer.Typer(help="Release cycles with a risk budget.", no_args_is_help=True,
                        rich_markup_mode=None)


def _render_change(c: Any) -> None:
    from rich.text import Text
    console.print(Text.assemble((f"change #{c.id} ", "bold"), f"{c.title}  ",
                                (f"{c.score:.0f} {c.level}", LEVEL_STYLE.get(c.level, "")),
                                f"  {c.status}"))


@change_app.command("propose")
def change_propose(
    title: Annotated[str, typer.Argument(help="What the change does, e.g. 'raise DB pool 10 -> 32'.")],
    kind: Annotated[str, typer.Option("--kind", help="config, index, cache, code path, dependency, "
                                                     "algorithm, concurrency, infrastructure.")],
    hypothesis: Annotated[Optional[str], typer.Option("--hypothesis", help="Why it should help.")] = None,
    expect: Annotated[Optional[str], typer.Option("--expect", help="e.g. 'checkout-api p99 -30%'.")] = None,
    rollback: Annotated[Optional[str], typer.Option("--rollback", help="The rollback plan, as a checklist.")] = None,
    rollback_cmd: Annotated[Optional[str], typer.Option(
        "--rollback-cmd", help="A shell command that rolls it back (run by perfloop change rollback).")] = None,
    tail_test: Annotated[Optional[str], typer.Option(
        "--tail-test", help="A benchmark with a tail metric (p99, p99.9, max) that exercises the change.")] = None,
    diff: Annotated[Optional[str], typer.Option(
        "--diff", metavar="REV..REV", help="The change as a commit range (default: the working tree).")] = None,
    benchmark: Annotated[Optional[list[str]], typer.Option(
        "--benchmark", "-b", help="Benchmarks to verify it on, besides the tail test (repeat).")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Propose a tuning change: it is scored now, from what it touches.

    Example: `perfloop change propose "raise DB pool 10 -> 32" --kind config --hypothesis "checkout waits on the pool" --expect "api-checkout p99 -30%" --rollback "set SHOP_POOL_SIZE=10"`
    """
    from ..config import load_config
    from rich.text import Text
    from ..workflows import cycles
    root = project_root(directory)
    config = load_config(root)
    with open_store(directory, store, config=config) as db:
        change, found = cycles.propose(db, config, title, kind=kind, hypothesis=hypothesis,
                                       expect=expect, rollback=rollback, rollback_command=rollback_cmd,
                                       tail_test=tail_test, diff=diff, benchmarks=benchmark or ())
        blockers = cycles.status(db, root)["queue"]
    if json:
        print_json({**change.to_dict(), "risk": found.to_dict()})
        return
    _render_change(change)
    for q in blockers:
        if q["id"] == change.id and q["blocked_by"]:
            for b in q["blocked_by"]:
                console.print(Text(f"  to apply: {b}", style="yellow"))


@change_app.command("apply")
def change_apply(
    change_id: Annotated[int, typer.Argument(help="The change's id.")],
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", help="The floor: a run (id, label or git ref) measured before the change.")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Apply a change: low risk now; medium and high risk only inside the open cycle.

    Example: `perfloop change apply 3 --baseline floor`
    """
    from rich.text import Text
    from ..workflows import cycles
    root = project_root(directory)
    with open_store(directory, store) as db:
        floor = db.resolve(baseline) if baseline else None
        change = cycles.apply(db, root, change_id, baseline_run_id=floor)
    if json:
        print_json(change.to_dict())
        return
    _render_change(change)
    console.print(Text(f"floor: run #{change.baseline_run_id}. Make the change, then: "
                       f"perfloop change verify {change.id}"))


@change_app.command("verify")
def change_verify(
    change_id: Annotated[int, typer.Argument(help="The change's id.")],
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Measure the change's benchmarks and compare them with the floor, the tail included.

    Exit code 1 when the change breaks the floor (roll it back: perfloop change rollback ID).

    Example: `perfloop change verify 3`
    """
    from ..config import load_config
    from rich.text import Text
    from ..analysis.comparison import compare_runs
    from ..workflows import cycles
    from ..workflows.run import run_project
    root = project_root(directory)
    config = load_config(root)
    with open_store(directory, store, config=config) as db:

        def measure(names: Sequence[str], label: str) -> int:
            return run_project(config, db, label=label, names=list(names)).run_id

        def compare(floor: int, after: int) -> Sequence[Any]:
            return compare_runs(db.get_run(floor), db.get_run(after)).verdicts

        change = cycles.verify(db, config, change_id, measure=measure, compare=compare)
    if json:
        print_json(change.to_dict())
    else:
        _render_change(change)
        for v in (change.data.get("verification") or {}).get("broken", []):
            console.print(Text(f"  breaks the floor: {v['benchmark']} {v['metric']} "
                               f"{v['change']:+.1%}", style="bold red"))
    if change.status == "breaks-floor":
        raise typer.Exit(1)


@change_app.command("rollback")
def change_rollback(
    change_id: Annotated[int, typer.Argument(help="The change's id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm a checklist plan was carried out.")] = False,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Roll a change back by its plan: its command is run and recorded; a checklist is confirmed.

    Exit code 1 when the rollback command fails (recorded as rollback-failed).

    Example: `perfloop change rollback 3`
    """
    from rich.text import Text
    from ..workflows import cycles
    with open_store(directory, store) as db:
        change = cycles.rollback(db, project_root(directory), change_id, confirmed=yes)
    if json:
        print_json(change.to_dict())
    else:
        _render_change(change)
        last = (change.data.get("rollbacks") or [{}])[-1]
        if "exit_code" in last:
            console.print(Text(f"  ran: {last['command']} (exit {last['exit_code']})"))
    if change.status == "rollback-failed":
        raise typer.Exit(1)


@cycle_app.command("open")
def cycle_open(
    name: Annotated[str, typer.Argument(help="The cycle's name, e.g. 2026.12.")],
    budget: Annotated[float, typer.Option("--budget", help="Risk points the cycle may spend.")],
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", help="The floor run (id, label or git ref) every change is verified against.")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Open a release cycle with a risk budget (one at a time).

    Example: `perfloop cycle open 2026.12 --budget 100 --baseline floor`
    """
    from rich.text import Text
    from ..workflows import cycles
    with open_store(directory, store) as db:
        floor = db.resolve(baseline) if baseline else None
        cycle = cycles.open_cycle(db, project_root(directory), name, budget, baseline_run_id=floor)
    if json:
        print_json(cycle.to_dict())
        return
    console.print(Text(f"cycle {cycle.name!r} open: budget {cycle.budget:.0f} risk points, floor "
                       f"{'run #' + str(cycle.baseline_run_id) if cycle.baseline_run_id else 'none yet'}"))


@cycle_app.command("status")
def cycle_status(
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Budget spent and left, the queue and its ages, what blocks each change, stagnation and chaos.

    Example: `perfloop cycle status --json`
    """
    from rich.text import Text
    from ..workflows import cycles
    root = project_root(directory)
    with open_store(directory, store) as db:
        state = cycles.status(db, root)
        state["calibration"] = cycles.calibration(db, root)
    if json:
        print_json(state)
        return
    cycle = state["cycle"]
    if cycle is None:
        console.print("no cycle open (perfloop cycle open NAME --budget N)")
    else:
        console.print(Text(f"cycle {cycle['name']!r}: spent {cycle['spent']:.0f} of "
                           f"{cycle['budget']:.0f}, {cycle['left']:.0f} left", style="bold"))
        for c in cycle["changes"]:
            console.print(Text(f"  #{c['id']} {c['status']:<14} {c['score']:5.1f} {c['title']}"))
        h = state["health"]
        console.print(Text(f"stagnation: {'YES' if h['stagnation'] else 'no'} ({h['unspent_share']:.0%} "
                           f"unspent, oldest proposal {h['oldest_queued_days']:.1f} days)"))
        console.print(Text(f"chaos: {'YES' if h['chaos'] else 'no'} ({h['rolled_back_or_broken']} of "
                           f"{h['verified']} rolled back or broken, {h['effects_outside_expected']} "
                           "with effects outside their benchmarks)"))
    for q in state["queue"]:
        console.print(Text(f"queued #{q['id']} {q['score']:.0f} {q['level']} {q['title']} "
                           f"({q['age_days']:.1f} days)"))
        for b in q["blocked_by"]:
            console.print(Text(f"    blocked: {b}", style="yellow"))
    console.print(Text(f"calibration: {state['calibration']['reading']}", style="dim"))


@cycle_app.command("close")
def cycle_close(
    yes: Annotated[bool, typer.Option("--yes", help="Confirm checklist rollback plans.")] = False,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Close the cycle: roll back what broke the floor, and report the outcome.

    Example: `perfloop cycle close`
    """
    from rich.text import Text
    from ..workflows import cycles
    with open_store(directory, store) as db:
        cycle = cycles.close_cycle(db, project_root(directory), confirmed=yes)
    if json:
        print_json(cycle.to_dict())
        return
    out = cycle.data.get("outcome") or {}
    console.print(Text(f"cycle {cycle.name!r} closed: {len(out.get('verified', []))} verified, "
                       f"{len(out.get('rolled_back', []))} rolled back, spent {cycle.spent:.0f} "
                       f"of {cycle.budget:.0f}"))


def register(app: typer.Typer) -> None:
    app.command()(risk)
    app.add_typer(change_app, name="change")
    app.add_typer(cycle_app, name="cycle")


__all__: Sequence[str] = ["register"]
