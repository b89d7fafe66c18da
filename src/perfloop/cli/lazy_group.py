"""A command group that imports and builds a command only when that command is run.

Typer builds every command's parameters from its function signature before it parses anything,
and a command module imports what its commands share; for ``perfloop --help`` that was most of
the start-up time. Here the top-level group knows its commands from a table of
:class:`Listed` entries (name, module, one-line help): ``perfloop --help`` renders the listing
from the table alone, and ``perfloop NAME ...`` imports the one module that defines NAME and
builds NAME alone. The table is checked against the real commands by tests/test_startup.py.

A command module has the shape every ``perfloop.cli.*_cmds`` module has: a function
``register(app: typer.Typer)`` that adds its commands and command groups to ``app``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Callable

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup
from typer.models import DefaultPlaceholder


@dataclass(frozen=True)
class Listed:
    """One command as the top-level ``--help`` lists it, and where it is defined."""

    name: str
    module: str   # importable module whose register(app) adds the command
    help: str     # the first paragraph of its help, on one line, as the listing shows it


def registered_name(info: Any) -> str | None:
    """The name Typer gives a registered command (``CommandInfo``) or group (``TyperInfo``)."""
    if hasattr(info, "typer_instance"):
        for name in (info.name, getattr(getattr(info.typer_instance, "info", None), "name", None)):
            if isinstance(name, str):   # unset names are Typer's DefaultPlaceholder objects
                return name
        return None
    return info.name or typer.main.get_command_name(info.callback.__name__)


def build_command(entry: Listed, *, rich_markup_mode: Any) -> Any:
    """The click command ``entry`` names, built from its module's ``register``, alone.

    The module registers all its commands on a scratch app; only the one asked for is kept
    before Typer turns the app into click commands, so the others' parameters are never built.
    """
    module = importlib.import_module(entry.module)
    scratch = typer.Typer(rich_markup_mode=rich_markup_mode)
    module.register(scratch)
    scratch.registered_commands = [c for c in scratch.registered_commands
                                   if registered_name(c) == entry.name]
    scratch.registered_groups = [g for g in scratch.registered_groups
                                 if registered_name(g) == entry.name]
    for group in scratch.registered_groups:
        # `perfloop incident open --help` processes the incident group's absent --help too
        instance_info = getattr(group.typer_instance, "info", None)
        if isinstance(group.cls, DefaultPlaceholder) and \
                isinstance(getattr(instance_info, "cls", group.cls), DefaultPlaceholder):
            group.cls = QuietHelpGroup
    command = typer.main.get_group(scratch).commands.get(entry.name)
    if command is None:
        raise LookupError(f"{entry.module}.register() adds no command {entry.name!r}: "
                          "the command table is out of date")
    _examples_verbatim(command)
    return command


def _examples_verbatim(command: Any) -> None:
    """Help is plain text (click's layout, no Rich: it starts in a third of the time and reads
    the same in a pipe): paragraphs that start with ``Example`` are kept as written, without
    the Markdown backticks, so that the command can be copied whole."""
    if command.help:
        paragraphs = command.help.split("\n\n")
        command.help = "\n\n".join(
            "\b\n" + p.replace("`", "") if p.lstrip().startswith("Example") else p
            for p in paragraphs)
    for sub in getattr(command, "commands", {}).values():
        _examples_verbatim(sub)


class LazyCommands(MutableMapping[str, Any]):
    """Command name -> click command, in the table's order; each is built on first lookup.

    Iterating (names, ``len``, ``in``) never builds anything, so "did you mean" suggestions and
    the listing stay cheap; ``items()`` and ``values()`` build every command.
    """

    def __init__(self, listing: tuple[Listed, ...], build: Callable[[Listed], Any],
                 commands: MutableMapping[str, Any] | None = None) -> None:
        self.listing = {entry.name: entry for entry in listing}
        self._build = build
        self._built: dict[str, Any] = dict(commands or {})
        self._order = list(self.listing) + [name for name in self._built if name not in self.listing]

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            self._built[name] = self._build(self.listing[name])   # KeyError: no such command
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._order:
            self._order.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._order.remove(name)
        self.listing.pop(name, None)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._order

    def built(self, name: str) -> Any | None:
        """The command if it has been built already, else None."""
        return self._built.get(name)


def settle_help_flag(option: Any) -> Any:
    """A help flag that is False when not given, rather than None.

    Typer (0.16 and later) validates every parameter's value with a Pydantic adapter unless it
    is already a bool; a group's help flag not given is None, so ``perfloop gate --help``
    imported Pydantic (about a third of its start-up) to check the root's absent ``--help``.
    """
    if option is not None and option.default is None:
        option.default = False
    return option


class QuietHelpGroup(TyperGroup):
    """A Typer group whose absent ``--help`` needs no validation (see :func:`settle_help_flag`)."""

    def get_help_option(self, ctx: Any) -> Any:
        return settle_help_flag(super().get_help_option(ctx))


class LazyGroup(QuietHelpGroup):
    """A Typer group whose commands come from :attr:`listing` (set it in a subclass).

    Pass the subclass as ``typer.Typer(cls=...)``.
    """

    listing: tuple[Listed, ...] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        markup = self.rich_markup_mode
        self.commands = LazyCommands(self.listing,
                                     lambda entry: build_command(entry, rich_markup_mode=markup),
                                     self.commands)
        self._listing_only = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            return None
        if self._listing_only:
            commands: Any = self.commands     # the lazy table, not a plain mapping
            built = commands.built(cmd_name)
            return built if built is not None else self._stand_in(commands.listing[cmd_name])
        return self.commands[cmd_name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # The help lists each command by name and one-line help: a stand-in built from the table
        # says as much as the real command, without importing its module.
        self._listing_only = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing_only = False

    def _stand_in(self, entry: Listed) -> TyperCommand:
        return TyperCommand(entry.name, help=entry.help, rich_markup_mode=self.rich_markup_mode)
