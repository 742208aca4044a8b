"""What every command shares: the settings built once, the registry opened on demand, and key=value parsing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from liveml.errors import Invalid
from liveml.registry import Registry
from liveml.settings import Settings


def settings_of(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    if not isinstance(obj, Settings):
        obj = Settings()
        ctx.find_root().obj = obj
    return obj


@contextmanager
def open_registry(ctx: typer.Context, *, create: bool = False) -> Iterator[Registry]:
    registry = Registry(settings_of(ctx), create=create)
    try:
        yield registry
    finally:
        registry.close()


def key_values(items: list[str] | None, *, what: str, example: str) -> dict[str, str]:
    """Parse repeated ``--tag key=value`` style options."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise Invalid(f"{what} {item!r} is not KEY=VALUE (e.g. {example})")
        out[key.strip()] = value.strip()
    return out


def option_values(items: list[str] | None) -> dict[str, Any]:
    """``--runtime-option k=v``: comma-separated values become lists, JSON values are parsed."""
    import json

    out: dict[str, Any] = {}
    for key, value in key_values(items, what="runtime option", example="classes=no,yes").items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value.split(",") if "," in value else value
    return out
