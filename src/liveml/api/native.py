"""liveml's own API under /v1: predict by reference (name, version or alias), model list and metadata."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from liveml.api.codecs import JSON_TYPES, media_type, parse_json, read_body, rows_from_json, table_from_body
from liveml.api.context import ApiContext, endpoint
from liveml.api.instances import flag
from liveml.api.responses import json_response
from liveml.errors import Invalid
from liveml.registry.types import ModelVersion
from liveml.serving.host import HostResult


def version_info(version: ModelVersion, *, served: bool, serving_format: str | None = None) -> dict[str, Any]:
    return {
        "name": version.model,
        "version": version.version,
        "aliases": list(version.aliases),
        "format": version.format,
        "task": version.task,
        "classes": list(version.classes) if version.classes is not None else None,
        "signature": version.signature.model_dump(mode="json"),
        "description": version.description,
        "metrics": version.metrics,
        "tags": version.tags,
        "sha256": version.sha256,
        "served": served,
        "serving_format": serving_format,
        "compiled": version.compiled.model_dump(mode="json") if version.compiled else None,
        "compile_report": version.compile_report,
    }


def prediction_body(result: HostResult, *, probabilities: bool) -> dict[str, Any]:
    prediction = result.prediction
    body: dict[str, Any] = {
        "model": result.model,
        "version": result.version,
        "predictions": prediction.predictions,
        "ids": result.ids,
    }
    if probabilities and prediction.probabilities is not None:
        body["probabilities"] = prediction.probabilities
        body["classes"] = list(prediction.classes or ())
    return body


def routes(ctx: ApiContext) -> list[BaseRoute]:
    host = ctx.host

    @endpoint(ctx, "/v1/models")
    async def list_models(request: Request) -> Response:
        served = {(s.name, s.number) for s in host.served_models()}
        bindings = {str(b.ref): (b.served.number if b.served else None) for b in host.bindings()}
        models = []
        for summary in host.registry.models():
            models.append(
                {
                    "name": summary.name,
                    "latest_version": summary.latest_version,
                    "aliases": summary.aliases,
                    "format": summary.format,
                    "served_version": bindings.get(summary.name),
                    "loaded_versions": sorted(v for n, v in served if n == summary.name),
                }
            )
        return json_response({"models": models})

    @endpoint(ctx, "/v1/models/{ref}")
    async def model_metadata(request: Request) -> Response:
        version = host.registry.get(request.path_params["ref"])
        loaded = [s for s in host.served_models() if s.name == version.model and s.number == version.version]
        serving = loaded[0].loaded.serving_format if loaded else None
        return json_response(version_info(version, served=bool(loaded), serving_format=serving))

    @endpoint(ctx, "/v1/models/{ref}/predict")
    async def predict(request: Request) -> Response:
        body = await read_body(request, ctx.max_body_bytes)
        kind = media_type(request)
        probabilities = flag(request.query_params.get("probabilities", request.query_params.get("proba", "")))
        if kind in JSON_TYPES:
            payload = parse_json(body)
            if isinstance(payload, dict):
                if "inputs" not in payload:
                    raise Invalid(
                        "the JSON body needs an 'inputs' field: a list of rows or an object of columns"
                    )
                probabilities = probabilities or flag(payload.get("probabilities", False))
                rows = rows_from_json(payload["inputs"])
            else:
                rows = rows_from_json(payload)
        else:
            rows = table_from_body(body, kind)
        result = await ctx.predict(request.path_params["ref"], rows)
        return json_response(prediction_body(result, probabilities=probabilities))

    return [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{ref}/predict", predict, methods=["POST"]),
        Route("/v1/models/{ref}", model_metadata, methods=["GET"]),
    ]
