"""Vertex AI's custom-container contract: ``{"instances": [...], "parameters": {...}}`` →
``{"predictions": [...]}`` on ``AIP_PREDICT_ROUTE``, and a health check on ``AIP_HEALTH_ROUTE``.

The routes come from the context (the CLI reads the ``AIP_*`` variables); without them they are
``/vertex/predict`` and ``/vertex/health``. One container serves one deployed model: the context's
single model. Vertex itself adds ``deployedModelId`` to what its endpoint returns.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from liveml.api.context import ApiContext, endpoint
from liveml.api.instances import flag, input_columns, instance_rows, json_body, json_object, parameters
from liveml.api.responses import json_response
from liveml.errors import Invalid
from liveml.serving.host import HostResult

PREDICT_ROUTE = "/vertex/predict"
HEALTH_ROUTE = "/vertex/health"
EXAMPLE = '{"instances": [[5.1, 3.5, 1.4, 0.2]], "parameters": {"probabilities": true}}'


def predictions(result: HostResult, *, probabilities: bool) -> list[Any]:
    """One entry per instance: the label or value; with probabilities asked, an object
    ``{"label", "classes", "scores"}`` per instance (the shape Vertex's own classifiers answer with),
    since Vertex keeps only ``predictions`` of a container's answer."""
    prediction = result.prediction
    labels = prediction.predictions.tolist()
    if not probabilities or prediction.probabilities is None:
        return list(labels)
    scores = prediction.probabilities.tolist()
    classes = list(prediction.classes or range(prediction.probabilities.shape[1]))
    return [
        {"label": label, "classes": classes, "scores": row} for label, row in zip(labels, scores, strict=True)
    ]


def routes(ctx: ApiContext) -> list[BaseRoute]:
    predict_route = ctx.vertex_predict_route or PREDICT_ROUTE
    health_route = ctx.vertex_health_route or HEALTH_ROUTE

    @endpoint(ctx, predict_route, style="v2")
    async def predict(request: Request) -> Response:
        payload = json_object(await json_body(request, ctx, example=EXAMPLE), example=EXAMPLE)
        if "instances" not in payload:
            raise Invalid(f'the body needs an "instances" list, e.g. {EXAMPLE}')
        options = parameters(payload)
        ref = ctx.single_model()
        rows = instance_rows(payload["instances"], await input_columns(ctx, ref))
        result = await ctx.predict(ref, rows)
        wanted = flag(options.get("probabilities"))
        return json_response({"predictions": predictions(result, probabilities=wanted)})

    @endpoint(ctx, health_route, style="v2")
    async def health(request: Request) -> Response:
        ready = ctx.host.ready
        return json_response({"ready": ready}, status=200 if ready else 503)

    return [
        Route(predict_route, predict, methods=["POST"]),
        Route(health_route, health, methods=["GET"]),
    ]


__all__ = ["HEALTH_ROUTE", "PREDICT_ROUTE", "predictions", "routes"]
