"""Open Inference Protocol V2 under /v2: what Triton, KServe and MLServer speak, and tritonclient talks to.

Health, server and model metadata, model readiness, inference (JSON and the binary tensor data
extension) and the model repository extension. A V2 model is a liveml model name; a V2 version is a
liveml version number, or an alias name (``production``, ``staging``) or ``latest``. A tabular
signature is one tensor per column (shape [N] or [N, 1]) or, when every input is numeric, a single
[N, F] tensor with the columns in signature order. Tensor coding is in ``liveml.api.v2_tensors``.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

import liveml
from liveml.api.codecs import parse_json, read_body
from liveml.api.context import ApiContext, endpoint
from liveml.api.errors import PayloadTooLarge, UnsupportedMediaType
from liveml.api.responses import dumps, json_response
from liveml.api.v2_tensors import (
    InferRequest,
    RequestedOutput,
    column_datatype,
    encode_output,
    input_metadata,
    output_array,
    parse_request,
    split_body,
    tensors_to_frame,
)
from liveml.errors import Invalid, LivemlError
from liveml.ids import joined
from liveml.registry import ModelVersion
from liveml.serving.host import HostResult, ModelHost

HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSIONS = ["binary_tensor_data", "model_repository"]
PREDICT = "predict"
PROBA = "predict_proba"


def model_ref(name: str, version: str | None = None) -> str:
    """The liveml reference for a V2 model name and optional version (a number, an alias or ``latest``)."""
    if not version:
        return name
    if ":" in name or "@" in name:
        raise Invalid(
            f"model {name!r} already names a version or alias; use /v2/models/NAME/versions/VERSION instead"
        )
    if version.isdigit():
        return f"{name}:{version}"
    if version == "latest":
        return f"{name}:latest"
    return f"{name}@{version}"


def output_names(version: ModelVersion) -> list[str]:
    return [PREDICT, PROBA] if version.task == "classification" or version.classes else [PREDICT]


def model_metadata(name: str, version: ModelVersion, numbers: list[int]) -> dict[str, Any]:
    """``$metadata_model_response`` from the signature: inputs one per column, style (a)."""
    # the signature's outputs are Prediction.to_frame's columns: prediction (or prediction_0..k), proba_*
    width = sum(1 for c in version.signature.outputs if c.name.startswith("prediction"))
    outputs = [
        {"name": PREDICT, "datatype": _predict_datatype(version), "shape": [-1, width] if width > 1 else [-1]}
    ]
    if PROBA in output_names(version):
        outputs.append({"name": PROBA, "datatype": "FP64", "shape": [-1, len(version.classes or ()) or -1]})
    return {
        "name": name,
        "versions": [str(n) for n in numbers],
        "platform": f"liveml-{version.format}",
        "inputs": input_metadata(version.signature),
        "outputs": outputs,
    }


def _predict_datatype(version: ModelVersion) -> str:
    if version.classes:
        return output_array(list(version.classes))[0]
    predicted = [c for c in version.signature.outputs if c.name.startswith("prediction")]
    if version.task == "regression" or not predicted:
        return "FP64"
    return column_datatype(predicted[0].type)


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """A gzip or deflate request body (tritonclient's ``request_compression_algorithm``), within ``limit``."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none"
        )
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise Invalid(f"the {encoding} request body could not be decompressed: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(
            f"the decompressed request body is over the {limit}-byte limit; send fewer rows"
        )
    return out


def select_outputs(request: InferRequest, version: ModelVersion) -> list[RequestedOutput]:
    """The outputs to return: those asked for (each must exist), else all of them."""
    available = output_names(version)
    if request.outputs is None:
        return [RequestedOutput(name, request.binary_output) for name in available]
    unknown = [o.name for o in request.outputs if o.name not in available]
    if unknown:
        raise Invalid(
            f"unknown output(s) {', '.join(map(repr, unknown))} for model {version.model}; "
            f"its outputs are: {', '.join(available)}"
        )
    return request.outputs


def infer_response(
    result: HostResult, request: InferRequest, outputs: list[RequestedOutput]
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary outputs follow it."""
    prediction = result.prediction
    tensors: list[dict[str, Any]] = []
    raws: list[bytes] = []
    asked = request.outputs is not None
    for output in outputs:
        if output.name == PROBA:
            if prediction.probabilities is None:
                if not asked:
                    continue
                raise Invalid(
                    f"model {result.model}:{result.version} gives no class probabilities; ask for 'predict'"
                )
            tensor, raw = encode_output(PROBA, prediction.probabilities, binary=output.binary)
            tensor.setdefault("parameters", {})["classes"] = ",".join(map(str, prediction.classes or ()))
        else:
            tensor, raw = encode_output(PREDICT, prediction.predictions, binary=output.binary)
        tensors.append(tensor)
        raws.append(raw)
    body = {
        "model_name": result.model,
        "model_version": str(result.version),
        "id": request.id if request.id is not None else os.urandom(16).hex(),
        "parameters": {"prediction_ids": joined(result.ids)},
        "outputs": tensors,
    }
    header = dumps(body)
    if not any(o.binary for o in outputs):
        return header, None
    return header + b"".join(raws), len(header)


def _prepare(
    host: ModelHost, ref: str, body: bytes, header_length: str | None
) -> tuple[InferRequest, pd.DataFrame, list[RequestedOutput]]:
    """Decode and check the request against the version the reference serves (in a worker thread)."""
    header, raw = split_body(body, header_length)
    if not header.strip():
        raise Invalid(
            'the request body is empty; send {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", '
            '"data": [1.5]}]}'
        )
    request = parse_request(parse_json(header), raw)
    served = host.resolve(ref)
    frame = tensors_to_frame(request.inputs, served.version.signature)
    return request, frame, select_outputs(request, served.version)


#: a request this small to a fast model is decoded on the event loop (see ApiContext.runs_inline)
INLINE_BODY_BYTES = 64 * 1024


def routes(ctx: ApiContext) -> list[BaseRoute]:
    host = ctx.host

    def ref_of(request: Request) -> str:
        params = request.path_params
        return model_ref(params["model"], params.get("version"))

    @endpoint(ctx, "/v2", style="v2")
    async def server_metadata(request: Request) -> Response:
        return json_response({"name": "liveml", "version": liveml.__version__, "extensions": EXTENSIONS})

    @endpoint(ctx, "/v2/health/live", style="v2")
    async def live(request: Request) -> Response:
        return json_response({"live": host.live}, status=200 if host.live else 503)

    @endpoint(ctx, "/v2/health/ready", style="v2")
    async def ready(request: Request) -> Response:
        ok = host.ready
        return json_response({"ready": ok}, status=200 if ok else 503)

    @endpoint(ctx, "/v2/models", style="v2")
    async def list_models(request: Request) -> Response:
        summaries = await run_in_threadpool(host.registry.models)
        return json_response({"models": [s.name for s in summaries]})

    @endpoint(ctx, "/v2/models/{model}", style="v2")
    async def metadata(request: Request) -> Response:
        ref = ref_of(request)

        def read() -> dict[str, Any]:
            version = host.registry.get(ref)
            numbers = [v.version for v in host.registry.versions(version.model)]
            return model_metadata(request.path_params["model"], version, numbers)

        return json_response(await run_in_threadpool(read))

    @endpoint(ctx, "/v2/models/{model}/ready", style="v2")
    async def model_ready(request: Request) -> Response:
        served = await run_in_threadpool(host.resolve, ref_of(request))
        return json_response(
            {"name": request.path_params["model"], "ready": True, "version": str(served.number)}
        )

    @endpoint(ctx, "/v2/models/{model}/infer", style="v2")
    async def infer(request: Request) -> Response:
        ref = ref_of(request)
        body = await read_body(request, ctx.max_body_bytes)
        body = decompress(body, request.headers.get("content-encoding"), ctx.max_body_bytes)
        header = request.headers.get(HEADER_LENGTH)
        inline = ctx.runs_inline(ref)
        if inline and len(body) <= INLINE_BODY_BYTES:
            parsed, frame, outputs = _prepare(host, ref, body, header)
        else:
            parsed, frame, outputs = await run_in_threadpool(_prepare, host, ref, body, header)
        result = await ctx.predict(ref, frame, inline=inline)
        content, header_length = infer_response(result, parsed, outputs)
        if header_length is None:
            return Response(content, media_type="application/json")
        return Response(
            content, media_type="application/octet-stream", headers={HEADER_LENGTH: str(header_length)}
        )

    @endpoint(ctx, "/v2/repository/index", style="v2")
    async def repository_index(request: Request) -> Response:
        body = await read_body(request, ctx.max_body_bytes)
        options = parse_json(body) if body.strip() else {}
        only_ready = bool(options.get("ready", False)) if isinstance(options, dict) else False
        entries = await run_in_threadpool(repository_entries, host)
        return json_response([e for e in entries if e["state"] == "READY" or not only_ready])

    @endpoint(ctx, "/v2/repository/models/{model}/load", style="v2")
    async def load(request: Request) -> Response:
        body = await read_body(request, ctx.max_body_bytes)
        options = parse_json(body) if body.strip() else {}
        parameters = options.get("parameters") if isinstance(options, dict) else None
        if isinstance(parameters, dict) and any(k == "config" or k.startswith("file:") for k in parameters):
            raise Invalid(
                "liveml loads models from its registry and does not take a config or files here; "
                "push the model with `liveml push NAME FILE`, then load it by name"
            )
        ref = request.path_params["model"]
        served = await run_in_threadpool(host.load, ref)
        return json_response({"name": ref, "version": str(served.number), "state": "READY"})

    @endpoint(ctx, "/v2/repository/models/{model}/unload", style="v2")
    async def unload(request: Request) -> Response:
        ref = request.path_params["model"]
        await run_in_threadpool(host.unload, ref)
        return json_response({"name": ref, "state": "UNAVAILABLE"})

    return [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2/models", list_models, methods=["GET"]),
        Route("/v2/models/{model}", metadata, methods=["GET"]),
        Route("/v2/models/{model}/versions/{version}", metadata, methods=["GET"]),
        Route("/v2/models/{model}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{model}/versions/{version}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{model}/infer", infer, methods=["POST"]),
        Route("/v2/models/{model}/versions/{version}/infer", infer, methods=["POST"]),
        Route("/v2/repository/index", repository_index, methods=["POST"]),
        Route("/v2/repository/models/{model}/load", load, methods=["POST"]),
        Route("/v2/repository/models/{model}/unload", unload, methods=["POST"]),
    ]


def repository_entries(host: ModelHost) -> list[dict[str, str]]:
    """One entry per loaded version (READY) and per registry model with none loaded (UNAVAILABLE)."""
    entries = [
        {"name": s.name, "version": str(s.number), "state": "READY", "reason": ""}
        for s in host.served_models()
    ]
    loaded = {s.name for s in host.served_models()}
    errors = {b.ref.name: b.error for b in host.bindings() if b.served is None and b.error}
    for summary in host.registry.models():
        if summary.name in loaded:
            continue
        try:
            number = str(host.registry.get(summary.name).version)
        except LivemlError:
            number = str(summary.latest_version)
        reason = errors.get(summary.name) or f"not loaded; POST /v2/repository/models/{summary.name}/load"
        entries.append({"name": summary.name, "version": number, "state": "UNAVAILABLE", "reason": reason})
    return sorted(entries, key=lambda e: (e["name"], int(e["version"])))


__all__ = ["model_metadata", "model_ref", "repository_entries", "routes"]
