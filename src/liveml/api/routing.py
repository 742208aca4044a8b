"""Route lookup done once per distinct request line: Starlette's router tries every route's regex in
turn, and liveml has ~50 routes, so a V2 inference request paid ~40 regex matches twice (the API guard
matches routes to find the endpoint's permission, then the router again). The answer depends only on
the method and the path, so it is kept per (method, root path, path) and both share it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Router
from starlette.types import Receive, Scope, Send

#: distinct (method, path) answers kept; a client walking random paths only empties the table
MAX_ENTRIES = 4096


class RouteTable:
    """First full match, else the first partial one (a wrong method, for the 405), as Starlette's
    router finds them; ``None`` when nothing matches."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = list(routes)
        self._found: dict[tuple[str, str, str], tuple[Match, BaseRoute, Scope] | None] = {}

    def match(self, scope: Scope) -> tuple[Match, BaseRoute, Scope] | None:
        """The match for an HTTP scope; the child scope is a fresh copy the caller may change."""
        key = (scope["method"], scope.get("root_path", ""), scope["path"])
        try:
            found = self._found[key]
        except KeyError:
            found = self._search(scope)
            if len(self._found) >= MAX_ENTRIES:
                self._found.clear()
            self._found[key] = found
        if found is None:
            return None
        kind, route, child = found
        return kind, route, _copy(child)

    def _search(self, scope: Scope) -> tuple[Match, BaseRoute, Scope] | None:
        partial: tuple[Match, BaseRoute, Scope] | None = None
        for route in self.routes:
            kind, child = route.matches(scope)
            if kind is Match.FULL:
                return kind, route, child
            if kind is Match.PARTIAL and partial is None:
                partial = (kind, route, child)
        return partial


def _copy(child: Scope) -> Scope:
    copied: dict[str, Any] = dict(child)
    if "path_params" in copied:
        copied["path_params"] = dict(copied["path_params"])
    return copied


class TableRouter(Router):
    """Starlette's router with its HTTP lookup taken from a ``RouteTable``; lifespan, redirects and the
    404 stay Starlette's own."""

    def __init__(self, table: RouteTable, **options: Any) -> None:
        super().__init__(routes=table.routes, **options)
        self.table = table

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self.table.match(scope)
            if found is not None:
                _, route, child = found
                scope.setdefault("router", self)
                scope["route"] = route
                scope.update(child)
                await route.handle(scope, receive, send)
                return
        await super().app(scope, receive, send)


__all__ = ["RouteTable", "TableRouter"]
