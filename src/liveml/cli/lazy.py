"""Command groups that import a command's module only when that command is used.

``liveml batch run`` should not pay for importing the alert channels, the scheduler, the image builder and
every other command's module (and for Typer building ~50 commands from their signatures): a group made by
:func:`lazy_group` knows its commands as ``"module:attribute"`` and builds one the first time it is looked
up. Listing the commands (``--help``, "did you mean", completion) builds them all, so help reads exactly as
if every command had been registered up front."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer.core import MarkupMode, TyperGroup
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo


def build(name: str, target: str, markup: MarkupMode) -> Any:
    """The command ``target`` names: a Typer app becomes a group (like ``add_typer(app, name=name)``), a
    function one command (like ``app.command(name)(function)``)."""
    module, _, attribute = target.partition(":")
    found = getattr(importlib.import_module(module), attribute)
    if isinstance(found, typer.Typer):
        return get_group_from_info(
            TyperInfo(found, name=name),
            pretty_exceptions_short=found.pretty_exceptions_short,
            rich_markup_mode=markup,
            suggest_commands=found.suggest_commands,
        )
    return get_command_from_info(
        CommandInfo(name=name, callback=found), pretty_exceptions_short=True, rich_markup_mode=markup
    )


class _Commands(MutableMapping[str, Any]):
    """A group's commands: those built already (in their order), then those known only by target."""

    def __init__(self, built: MutableMapping[str, Any], targets: dict[str, str], markup: MarkupMode) -> None:
        self.built = dict(built)
        self.targets = targets
        self.markup = markup

    def __getitem__(self, name: str) -> Any:
        if name not in self.built:
            if name not in self.targets:
                raise KeyError(name)  # no such command
            self.built[name] = build(name, self.targets[name], self.markup)
        return self.built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        self.built.pop(name, None)
        self.targets = {k: v for k, v in self.targets.items() if k != name}

    def __iter__(self) -> Iterator[str]:
        yield from self.built
        yield from (name for name in self.targets if name not in self.built)

    def __len__(self) -> int:
        return len(self.built.keys() | self.targets.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.built or name in self.targets


class LazyGroup(TyperGroup):
    #: command name -> "module:attribute" of a Typer app or a command function
    targets: dict[str, str] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _Commands(self.commands, self.targets, self.rich_markup_mode)


def lazy_group(targets: dict[str, str]) -> type[LazyGroup]:
    """A group class for ``typer.Typer(cls=...)`` whose commands ``targets`` adds, each built on first use."""
    return type("LazyGroup", (LazyGroup,), {"targets": dict(targets)})


__all__ = ["LazyGroup", "build", "lazy_group"]
