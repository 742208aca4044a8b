"""Commands that move aliases: alias set / delete / history, and rollback."""

from __future__ import annotations

from typing import Annotated

import typer

from liveml.cli.context import open_registry
from liveml.cli.render import console, print_json, table, when
from liveml.registry.names import DEFAULT_ALIAS
from liveml.registry.types import AliasEvent

alias_app = typer.Typer(help="Move aliases and read their history.", no_args_is_help=True)


def _said(event: AliasEvent) -> str:
    if event.to_version is None:
        return f"{event.model}@{event.alias} removed (was version {event.from_version})"
    was = f" (was {event.from_version})" if event.from_version is not None else ""
    return f"{event.model}@{event.alias} → version {event.to_version}{was}"


@alias_app.command("set")
def set_alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias, e.g. production or staging.")],
    version: Annotated[str, typer.Argument(help="Version number the alias should point at.")],
) -> None:
    """Point an alias at a version; the move is kept in the history."""
    with open_registry(ctx) as registry:
        event = registry.set_alias(name, alias, version)
    console().print(_said(event))


@alias_app.command("delete")
def delete_alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias to remove.")],
) -> None:
    """Remove an alias (the removal is kept in the history)."""
    with open_registry(ctx) as registry:
        event = registry.delete_alias(name, alias)
    console().print(_said(event))


@alias_app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str | None, typer.Argument(help="Only this alias.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Who moved which alias to which version, when."""
    with open_registry(ctx) as registry:
        events = registry.alias_history(name, alias)
    if json_out:
        print_json(events)
        return
    if not events:
        console().print(f"no alias of {name!r} has been set yet")
        return
    table(
        None,
        ["when", "alias", "action", "from", "to", "by"],
        [(when(e.at), e.alias, e.action, e.from_version, e.to_version, e.actor) for e in events],
    )


def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias to move back.")] = DEFAULT_ALIAS,
) -> None:
    """Move an alias back to the version it held before its last move."""
    with open_registry(ctx) as registry:
        event = registry.rollback(name, alias)
    console().print(f"rolled back: {_said(event)}")
