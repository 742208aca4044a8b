"""The route table answers as Starlette's router does (first full match, else the first partial one),
from a cache that hands out copies and stays bounded."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Match, Route
from starlette.testclient import TestClient

from liveml.api import routing
from liveml.api.routing import RouteTable, TableRouter


async def _echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{request.scope['route'].path} {dict(request.path_params)}")


ROUTES = [
    Route("/v2/models/{model}", _echo, methods=["GET"]),
    Route("/v2/models/{model}/infer", _echo, methods=["POST"]),
    Route("/v2/models/{model}/versions/{version}/infer", _echo, methods=["POST"]),
    Route("/v2/models/{model}/infer", _echo, methods=["PUT"]),  # same path, later: PUT only
]


def _scope(method: str, path: str) -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "root_path": ""}


def test_first_full_match_then_partial_then_none() -> None:
    table = RouteTable(ROUTES)
    kind, route, child = table.match(_scope("POST", "/v2/models/churn/infer")) or (None, None, {})
    assert kind is Match.FULL and route is ROUTES[1] and child["path_params"] == {"model": "churn"}
    kind, route, _ = table.match(_scope("PUT", "/v2/models/churn/infer")) or (None, None, {})
    assert kind is Match.FULL and route is ROUTES[3]
    kind, route, _ = table.match(_scope("DELETE", "/v2/models/churn/infer")) or (None, None, {})
    assert kind is Match.PARTIAL and route is ROUTES[1]  # the first partial, for the 405
    assert table.match(_scope("POST", "/v2/nothing")) is None


def test_cached_answers_are_copies() -> None:
    table = RouteTable(ROUTES)
    first = table.match(_scope("POST", "/v2/models/churn/versions/3/infer"))
    assert first is not None
    first[2]["path_params"]["model"] = "changed"
    second = table.match(_scope("POST", "/v2/models/churn/versions/3/infer"))
    assert second is not None and second[2]["path_params"] == {"model": "churn", "version": "3"}


def test_the_cache_stays_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(routing, "MAX_ENTRIES", 8)
    table = RouteTable(ROUTES)
    for i in range(50):
        table.match(_scope("GET", f"/v2/models/m{i}"))
    assert len(table._found) <= 8
    kind, _, child = table.match(_scope("GET", "/v2/models/m3")) or (None, None, {})
    assert kind is Match.FULL and child["path_params"] == {"model": "m3"}


def test_the_router_serves_matches_405s_and_404s_as_starlette_does() -> None:
    app = Starlette()
    app.router = TableRouter(RouteTable(ROUTES))
    with TestClient(app) as client:
        answer = client.post("/v2/models/churn/versions/2/infer")
        assert answer.status_code == 200
        assert answer.text == "/v2/models/{model}/versions/{version}/infer {'model': 'churn', 'version': '2'}"
        assert client.put("/v2/models/churn/infer").text.startswith("/v2/models/{model}/infer")
        assert client.delete("/v2/models/churn/infer").status_code == 405
        assert client.get("/nowhere").status_code == 404
