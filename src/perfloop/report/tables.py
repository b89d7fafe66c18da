"""Tables that are never cut: in a terminal, in a pipe, in a CI log at 80 columns.

Rich fits a table to the console's width (``COLUMNS`` when set, 80 when the output is not a
terminal) by wrapping wrappable columns and then, when that is not enough, by cutting every
column with an ellipsis: a verdict becomes ``inco…``. :func:`print_table` prevents that:

- outside a terminal the table loses its vertical rules (a plain layout, fewer columns spent on
  borders), and every column folds long text onto further lines instead of cutting it;
- the *essential* columns (a verdict, a status, a commit) never wrap or shrink;
- when even that does not fit, each row is printed stacked, one ``column: value`` pair after
  the other, wrapped at the console's width: nothing is lost at any width.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:   # imported where used: a command's --help never draws a table
    from rich.console import Console
    from rich.table import Table


#: A column whose longest cell is this short is never folded.
SHORT = 12
#: A folded column narrower than this is unreadable (a date in two-letter pieces).
MIN_FOLDED = 10


def _plain(cell: object) -> str:
    from rich.text import Text
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return str(cell)


def _prepare(console: Console, table: Table, essential: Iterable[str]) -> None:
    from rich import box
    keep = set(essential)
    if not console.is_terminal:
        table.box = box.SIMPLE_HEAD
        table.pad_edge = False
    for column in table.columns:
        header = _plain(column.header)
        longest = max([len(header), *(len(_plain(c)) for c in column._cells)])  # noqa: SLF001
        if header in keep or longest <= SHORT:
            # essential, or short enough (a number, a sha) that folding it would only hurt
            column.no_wrap, column.min_width = True, longest
        else:
            column.overflow = "fold"


def _needed(table: Table) -> int:
    """Columns the table needs without cutting anything essential: essential columns whole,
    the others folded to their longest word or MIN_FOLDED, whichever is less, plus padding."""
    from rich import box
    total = 0
    for column in table.columns:
        texts = [_plain(column.header), *(_plain(c) for c in column._cells)]  # noqa: SLF001
        if column.no_wrap:
            width = max(len(line) for t in texts for line in (t.splitlines() or [""]))
        else:
            width = min(max((len(w) for t in texts for w in t.split()), default=1), MIN_FOLDED)
        total += width + 2          # one space of padding on each side
    return total + (2 if table.box and table.show_edge and table.box is not box.SIMPLE_HEAD else 0)


def _stacked(console: Console, table: Table) -> None:
    """Each row as ``column: value`` pairs, wrapped; the first column leads its row."""
    from rich.text import Text
    if table.title:
        console.print(Text(_plain(table.title), style="bold"))
    columns = table.columns
    rows = max((len(c._cells) for c in columns), default=0)  # noqa: SLF001
    lead = ""
    for i in range(rows):
        cells = [c._cells[i] if i < len(c._cells) else "" for c in columns]  # noqa: SLF001
        first = _plain(cells[0])
        if first:
            lead = first
        line = Text(lead if first else f"{lead} (cont.)", style="bold")
        for column, cell in zip(columns[1:], cells[1:]):
            value = cell if isinstance(cell, Text) else Text(_plain(cell))
            if not value.plain.strip():
                continue
            line.append(f"  {_plain(column.header)}: ", style="dim")
            line.append_text(value)
        console.print(line, overflow="fold")


def print_table(console: Console, table: Table, *, essential: Iterable[str] = ()) -> None:
    """Print ``table`` so that nothing is cut; ``essential`` names the columns (by header)
    that must stay on one line, whole."""
    _prepare(console, table, essential)
    if _needed(table) <= console.width:
        console.print(table)
    else:
        _stacked(console, table)


__all__ = ["print_table"]
