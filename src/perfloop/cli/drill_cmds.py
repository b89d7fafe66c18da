"""``perfloop advise`` (which workflow fits) and ``perfloop drill`` (blind tuning drills).

Thin: parse, call :mod:`perfloop.workflows.advisor` and :mod:`perfloop.workflows.drills`,
render as text or ``--json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Mapping, Optional, Sequence

import typer

from ..errors import UsageError
from .common import JsonFlag, ProjectDir, StoreUrl, console, open_store, print_json, project_root

if TYPE_CHECKING:   # imported where used: start-up stays fast
    from rich.table import Table


def _fraction(text: str | None, option: str) -> float | None:
    """``1%`` or ``0.01``."""
    if text is None:
        return None
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(f"{option} {text!r}: not a share", hint=f"e.g. {option} 5% or {option} 0.05") from None
    if not 0 <= value <= 10:
        raise UsageError(f"{option} {text!r}: out of range", hint=f"e.g. {option} 5%")
    return value


def advise(
    rewrite_planned: Annotated[bool, typer.Option(
        "--rewrite-planned", help="The system will be rewritten or replaced.")] = False,
    new_to_codebase: Annotated[bool, typer.Option(
        "--new-to-codebase", help="The team is new to this codebase.")] = False,
    exploring: Annotated[bool, typer.Option(
        "--exploring", help="Learning where time goes, with no target yet.")] = False,
    gain: Annotated[Optional[str], typer.Option(
        "--gain", help="Expected gain of tuning, e.g. 1% (with --cost).")] = None,
    cost: Annotated[Optional[str], typer.Option(
        "--cost", help="Share of engineering time measurement would take, e.g. 10%.")] = None,
    strict_latency: Annotated[bool, typer.Option(
        "--strict-latency", help="Contractual latency objectives (p99, p99.9).")] = False,
    contributors: Annotated[Optional[int], typer.Option(
        "--contributors", min=1, help="People changing the code (default: git authors, 90 days).")] = None,
    live_system: Annotated[bool, typer.Option(
        "--live-system", help="A running service tuned continuously.")] = False,
    shipping_features: Annotated[bool, typer.Option(
        "--shipping-features", help="A young product whose code changes every week.")] = False,
    ask: Annotated[bool, typer.Option(
        "--ask", help="Ask the questions one by one (a short questionnaire) instead of flags.")] = False,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Say which tuning workflow fits (or that none does), with reasons and the history behind it.

    Reads the project's history (runs, gate cost, incidents, hypothesis hit rate, git authors)
    and what you say about the situation, with flags or, with `--ask`, by answering questions.

    Example: `perfloop advise --new-to-codebase` or `perfloop advise --gain 1% --cost 10%`
    """
    from rich.text import Text
    from ..workflows.advisor import Situation, advise as decide, gather_evidence
    if ask:
        answers = questionnaire()
        yes = answers.confirmed
        rewrite_planned, new_to_codebase, exploring = (yes["rewrite_planned"], yes["new_to_codebase"],
                                                       yes["exploring"])
        strict_latency, live_system = yes["strict_latency"], yes["live_system"]
        shipping_features = yes["shipping_features"]
        contributors, gain, cost = answers.contributors, answers.gain, answers.cost
    situation = Situation(rewrite_planned=rewrite_planned, new_to_codebase=new_to_codebase,
                          exploring=exploring, gain=_fraction(gain, "--gain"),
                          cost=_fraction(cost, "--cost"), strict_latency=strict_latency,
                          contributors=contributors, live_system=live_system,
                          shipping_features=shipping_features)
    if (situation.gain is None) != (situation.cost is None):
        raise UsageError("--gain and --cost go together", hint="e.g. --gain 1% --cost 10%")
    with open_store(directory, store) as db:
        evidence = gather_evidence(db, project_root(directory))
    advice = decide(situation, evidence)
    if json:
        print_json(advice.to_dict())
        return
    console.print(Text.assemble(("Recommended: ", "bold"), (advice.workflow, "bold cyan")))
    console.print(Text(advice.headline))
    if advice.also:
        console.print(Text(f"with: {advice.also}"))
    for title, lines in (("Why", advice.reasons), ("From this project's history", advice.evidence),
                         ("Watch out", advice.cautions), ("Next", advice.next_steps)):
        if lines:
            console.print(Text(f"\n{title}:", style="bold"))
            console.print(bullets(lines))


QUESTIONS = (
    ("exploring", "Are you exploring where time goes, with no target yet?"),
    ("rewrite_planned", "Is a rewrite or replacement of this system planned?"),
    ("new_to_codebase", "Is the team new to this codebase?"),
    ("strict_latency", "Are there strict (contractual) latency objectives, p99 or p99.9?"),
    ("live_system", "Is this a running service you tune continuously?"),
    ("shipping_features", "Is it a young product whose code changes every week?"),
)


def _interactive() -> bool:
    import sys
    return sys.stdin.isatty()


@dataclass(frozen=True)
class Answers:
    """What the questionnaire gathered: a yes or no per key of QUESTIONS, then free answers."""

    confirmed: Mapping[str, bool]
    contributors: int | None
    gain: str | None
    cost: str | None


def questionnaire() -> Answers:
    """The advisor's questions, asked on the terminal (a short questionnaire)."""
    if not _interactive():
        raise UsageError("--ask needs a terminal to ask its questions",
                         hint="answer with flags instead, e.g. perfloop advise --new-to-codebase")
    confirmed = {key: typer.confirm(text, default=False) for key, text in QUESTIONS}
    people = typer.prompt("How many people change the code? (blank: count git authors)",
                          default="", show_default=False)
    gain = typer.prompt("Expected gain of tuning, e.g. 5% (blank: not known)", default="",
                        show_default=False)
    cost = typer.prompt("Share of engineering time measuring would take, e.g. 10% (blank: not known)",
                        default="", show_default=False) if gain.strip() else ""
    return Answers(confirmed=confirmed,
                   contributors=int(people) if people.strip().isdigit() and int(people) > 0 else None,
                   gain=gain or None, cost=cost or None)


drill_app = typer.Typer(help="Blind tuning drills: a hidden slowdown is injected; find it.",
                        no_args_is_help=True, rich_markup_mode=None)


@drill_app.command("start")
def drill_start(
    difficulty: Annotated[str, typer.Option(
        "--difficulty", help="easy (+40% on one benchmark) or hard (+12%, a less obvious function).")] = "easy",
    benchmark: Annotated[Optional[list[str]], typer.Option(
        "--benchmark", "-b", help="Only inject into functions these benchmarks exercise.")] = None,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", help="Choose reproducibly (an instructor can hand the same drill to several people).")] = None,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Start a drill: one function the benchmarks exercise is slowed down, in secret.

    `perfloop run` and `perfloop profile` measure with the slowdown until the drill ends; those
    runs are marked and kept out of history; baseline, verify and gate refuse to run meanwhile.

    Example: `perfloop drill start --difficulty hard`
    """
    from ..config import load_config
    from rich.text import Text
    from ..workflows import drills
    root = project_root(directory)
    config = load_config(root)
    with open_store(directory, store, config=config) as db:
        if not json:
            console.print("Surveying the functions the benchmarks exercise (a short profile each)",
                          style="dim")
        drill = drills.start(db, config, difficulty=difficulty, seed=seed, names=benchmark or ())
    if json:
        print_json(drill.to_dict())
        return
    console.print(Text(f"Drill #{drill.id} ({drill.difficulty}) started: one of the project's "
                       "functions is now slower."))
    console.print(Text(f"The slowed benchmark: {', '.join(drill.benchmarks)} "
                       f"(about +{drill.slowdown:.0%})."))
    console.print(Text("Find it with the usual tools (perfloop run, compare, profile), then: "
                       "perfloop drill answer MODULE:FUNCTION"))


@drill_app.command("answer")
def drill_answer(
    function: Annotated[str, typer.Argument(help="The slowed function, as module:function.")],
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Answer the running drill. A right answer ends it; a wrong one is recorded and it goes on.

    Exit code 1 when the answer is wrong.

    Example: `perfloop drill answer shop.pricing:parse_condition`
    """
    from rich.text import Text
    from ..workflows import drills
    with open_store(directory, store) as db:
        result = drills.answer(db, project_root(directory), function)
    if json:
        print_json({"answer": result.answer, "right": result.right, "drill": result.drill.to_dict()})
    elif result.right:
        d = result.drill
        console.print(Text(f"Right: {d.target}. Solved in {_minutes(d.seconds)} after "
                           f"{len(d.attempts)} answer(s); the slowdown is removed.", style="bold green"))
    else:
        console.print(Text(f"Not {function}. The drill goes on (perfloop drill stop reveals it).",
                           style="bold red"))
    if not result.right:
        raise typer.Exit(1)


@drill_app.command("stop")
def drill_stop(
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """Stop the running drill: remove the slowdown and reveal the answer.

    Example: `perfloop drill stop`
    """
    from rich.text import Text
    from ..workflows import drills
    with open_store(directory, store) as db:
        drill = drills.stop(db, project_root(directory))
    if json:
        print_json(drill.to_dict())
        return
    console.print(Text(f"Drill #{drill.id} stopped after {_minutes(drill.seconds)}: it was "
                       f"{drill.target}. The slowdown is removed."))


@drill_app.command("history")
def drill_history(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 20,
    directory: ProjectDir = Path("."),
    store: StoreUrl = None,
    json: JsonFlag = False,
) -> None:
    """The project's drills: difficulty, answer, right or not, time taken.

    Example: `perfloop drill history --json`
    """
    from rich.text import Text
    from ..workflows import drills
    with open_store(directory, store) as db:
        items = drills.history(db, project_root(directory), limit=limit)
    if json:
        print_json([d.to_dict() for d in items])
        return
    if not items:
        console.print("No drills yet: perfloop drill start")
        return
    solved = sum(d.solved for d in items)
    console.print(Text(f"{len(items)} drills, {solved} solved", style="bold"))
    for d in items:
        outcome = {"solved": "solved", "stopped": "gave up", "running": "running"}.get(d.status, d.status)
        console.print(Text(f"#{d.id} {d.started_at:%Y-%m-%d} {d.difficulty:<4} {outcome:<8} "
                           f"{_minutes(d.seconds):>7}  answers {len(d.attempts)}  "
                           f"{d.target or '(hidden)'}"))


def bullets(lines: Sequence[str]) -> Table:
    """A list with hanging indents, so wrapped lines stay readable at 80 columns."""
    from rich.table import Table
    from rich.text import Text
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=3, justify="right")
    grid.add_column(overflow="fold")
    for line in lines:
        grid.add_row("-", Text(line))
    return grid


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def register(app: typer.Typer) -> None:
    app.command()(advise)
    app.add_typer(drill_app, name="drill")


__all__: Sequence[str] = ["register"]
