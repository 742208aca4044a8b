"""Labels over HTTP: ``POST /v1/models/{ref}/feedback`` with ``{"labels": [{"prediction_id", "label"}]}``."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from liveml.api.codecs import parse_json, read_body
from liveml.api.context import ApiContext, endpoint
from liveml.api.responses import json_response
from liveml.errors import Invalid
from liveml.monitoring.labels import LabelStore


def routes(ctx: ApiContext) -> list[BaseRoute]:
    store = LabelStore(ctx.host.registry)

    @endpoint(ctx, "/v1/models/{ref}/feedback")
    async def feedback(request: Request) -> Response:
        payload = parse_json(await read_body(request, ctx.max_body_bytes))
        if not isinstance(payload, dict) or not isinstance(payload.get("labels"), list):
            raise Invalid(
                'the body needs "labels", a list of {"prediction_id": "...", "label": ...} '
                "(the ids are those the predict response gave)"
            )
        result = await run_in_threadpool(store.add, request.path_params["ref"], payload["labels"])
        return json_response(result.model_dump(mode="json"))

    return [Route("/v1/models/{ref}/feedback", feedback, methods=["POST"])]
