"""Who is acting: set by the HTTP layer (the API key's id) or the CLI (the local user), read by the audit
trail. A context variable, so concurrent requests in one process never see each other's identity."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    #: ``key:<id>`` for an API key, ``user:<login>`` for the local CLI user, ``system`` for the scheduler
    who: str
    role: str | None = None
    address: str | None = None


_ACTOR: ContextVar[Actor | None] = ContextVar("liveml_actor", default=None)


def current_actor() -> Actor | None:
    return _ACTOR.get()


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    token = _ACTOR.set(actor)
    try:
        yield actor
    finally:
        _ACTOR.reset(token)


__all__ = ["Actor", "acting_as", "current_actor"]
