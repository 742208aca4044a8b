"""The audit trail over HTTP, for admins: ``GET /v1/audit`` lists entries newest first.

Query: ``since`` and ``until`` (ISO date or time, or a duration back from now such as ``7d``), ``action``
(``alias.set``, or a group: ``alias``), ``actor`` (``key:<id>``, ``user:<name>``), ``limit`` (1 to 1000,
default 100) and ``before`` (a seq: the entries older than it, to page on). The answer has ``entries`` and
``next``, the URL of the following page (null on the last)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from liveml.api.context import ApiContext, endpoint
from liveml.api.responses import json_response
from liveml.errors import Invalid
from liveml.security import audit

PATH = "/v1/audit"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _number(query: Any, name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        upper = f" to {high}" if high is not None else " or more"
        raise Invalid(f"{name} must be a whole number from {low}{upper}, not {text!r}")
    return int(text)


def routes(ctx: ApiContext) -> list[BaseRoute]:
    registry = ctx.host.registry

    @endpoint(ctx, PATH)
    async def list_audit(request: Request) -> Response:
        query = request.query_params
        unknown = sorted(set(query) - {"since", "until", "action", "actor", "limit", "before"})
        if unknown:
            raise Invalid(
                f"unknown query parameter(s) {', '.join(unknown)}; use since, until, action, actor, limit, before"
            )
        limit = _number(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT) or DEFAULT_LIMIT
        before = _number(query, "before", None, 1)
        since = audit.parse_time(query["since"], field="since") if query.get("since") else None
        until = audit.parse_time(query["until"], field="until") if query.get("until") else None

        def read() -> list[dict[str, Any]]:
            found = audit.entries(
                registry.db,
                since=since,
                until=until,
                action=query.get("action") or None,
                actor=query.get("actor") or None,
                limit=limit + 1,  # one more: is there a next page?
                newest_first=True,
                before_seq=before,
            )
            return [audit.entry_record(e) for e in found]

        entries = await run_in_threadpool(read)
        following = None
        if len(entries) > limit:
            entries = entries[:limit]
            params = {k: v for k, v in query.items() if k != "before"}
            following = f"{PATH}?{urlencode({**params, 'before': entries[-1]['seq']})}"
        return json_response({"entries": entries, "next": following})

    return [Route(PATH, list_audit, methods=["GET"])]


__all__ = ["PATH", "routes"]
