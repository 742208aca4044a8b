"""KServe V1 (TensorFlow-Serving style) ``POST /v1/models/{m}:predict``.

``GET /v1/models`` and ``GET /v1/models/{m}`` are the native API's (same paths, richer bodies). The model
segment is any reference: ``iris``, ``iris:3`` or ``iris@staging`` (``/v1/models/iris:3:predict``).
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

PATH = "/v1/models/{m}:predict"
EXAMPLE = '{"instances": [[5.1, 3.5, 1.4, 0.2]]} or {"instances": [{"sepal_length": 5.1, ...}]}'


def predictions_body(result: HostResult, *, probabilities: bool) -> dict[str, Any]:
    """``{"predictions": [...]}``; asked-for probabilities ride alongside, one list per row, in
    ``classes`` order (V1 leaves the rest of the body to the server)."""
    prediction = result.prediction
    body: dict[str, Any] = {"predictions": prediction.predictions}
    if probabilities and prediction.probabilities is not None:
        body["probabilities"] = prediction.probabilities
        body["classes"] = list(prediction.classes or range(prediction.probabilities.shape[1]))
    return body


def routes(ctx: ApiContext) -> list[BaseRoute]:
    @endpoint(ctx, PATH, style="v2")
    async def predict(request: Request) -> Response:
        ref = request.path_params["m"]
        payload = json_object(await json_body(request, ctx, example=EXAMPLE), example=EXAMPLE)
        fields = [f for f in ("instances", "inputs") if f in payload]
        if len(fields) != 1:
            found = "both" if fields else "neither"
            raise Invalid(
                f'the body needs exactly one of "instances" or "inputs" ({found} given), e.g. {EXAMPLE}'
            )
        options = parameters(payload)
        rows = instance_rows(payload[fields[0]], await input_columns(ctx, ref), field=fields[0])
        result = await ctx.predict(ref, rows)
        wanted = flag(options.get("probabilities")) or flag(request.query_params.get("probabilities"))
        return json_response(predictions_body(result, probabilities=wanted))

    return [Route(PATH, predict, methods=["POST"])]


__all__ = ["PATH", "predictions_body", "routes"]
