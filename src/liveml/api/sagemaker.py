"""The SageMaker container contract (``GET /ping``, ``POST /invocations``, Batch Transform's
``GET /execution-parameters``) with MLflow's scoring-server payloads, which mimic it (plus MLflow's
``GET /health`` and ``GET /version``).

``/invocations`` serves the context's single model. In: JSON (``dataframe_split``, ``dataframe_records``,
``instances``, ``inputs``, optional ``params``; or a bare list of rows), JSON lines (one row per line, as
Batch Transform sends a file split by line) or CSV, with or without a header line. Out, by ``Accept``:
``{"predictions": [...]}`` (default), JSON lines or CSV, one line per row (no CSV header unless
``Accept: text/csv;header=present``). Probabilities come when ``params`` has ``"probabilities": true`` or
the ``X-Amzn-SageMaker-Custom-Attributes`` header says ``probabilities=true``. Errors use MLflow's body,
``{"error_code": ..., "message": ...}``.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any

import orjson
import pandas as pd
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from liveml import __version__
from liveml.api.codecs import (
    CSV_TYPES,
    JSON_TYPES,
    Table,
    parse_json,
    read_body,
    rows_from_json,
    table_from_body,
)
from liveml.api.context import ApiContext, endpoint
from liveml.api.errors import UnsupportedMediaType
from liveml.api.instances import check_width, flag, input_columns, instance_rows, json_object, parameters
from liveml.api.responses import dumps, json_response
from liveml.errors import Invalid
from liveml.serving.host import HostResult

CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
INPUT_FIELDS = ("dataframe_split", "dataframe_records", "instances", "inputs")
EXAMPLE = '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}'
CHARSETS = ("utf-8", "utf8", "us-ascii", "ascii")
JSON_LINES_TYPES = (
    "application/jsonlines",
    "application/x-jsonlines",
    "application/jsonl",
    "application/x-ndjson",
    "application/ndjson",
)
#: what Batch Transform uses when neither the job nor /execution-parameters says otherwise
DEFAULT_PAYLOAD_MB = 6
MIB = 1024 * 1024


def media(value: str) -> tuple[str, dict[str, str]]:
    """``text/csv; header=present`` → ``("text/csv", {"header": "present"})``."""
    kind, *rest = value.split(";")
    params = {}
    for item in rest:
        key, _, val = item.partition("=")
        params[key.strip().lower()] = val.strip().strip('"').lower()
    return kind.strip().lower(), params


def wanted_output(accept: str) -> tuple[str, bool]:
    """(``"json"`` or ``"csv"``, whether CSV has a header line) from ``Accept``; the first acceptable
    type listed wins (q-values are not weighed)."""
    for part in accept.split(",") if accept.strip() else ["application/json"]:
        kind, params = media(part)
        if kind in ("application/json", "application/*", "*/*", ""):
            return "json", False
        if kind in (*CSV_TYPES, "text/*"):
            return "csv", params.get("header") == "present"
        if kind in JSON_LINES_TYPES:
            return "jsonl", False
    raise UnsupportedMediaType(
        f"Accept {accept!r} is not supported; ask for application/json (the default), "
        "application/jsonlines or text/csv"
    )


def custom_attributes(value: str) -> dict[str, str]:
    """The custom-attributes header as options: ``probabilities=true; trace=x`` or a JSON object."""
    if value.lstrip().startswith("{"):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return {str(k).lower(): str(v).lower() for k, v in parsed.items()}
    options = {}
    for item in value.replace(",", ";").split(";"):
        key, sep, val = item.partition("=")
        if key.strip():
            options[key.strip().lower()] = val.strip().lower() if sep else "true"
    return options


def mlflow_rows(payload: Any, columns: list[str]) -> tuple[Table, dict[str, Any]]:
    """An MLflow scoring payload (or a bare list of rows) as a table, and its ``params``."""
    if isinstance(payload, list):
        return instance_rows(payload, columns, field="body"), {}
    body = json_object(payload, example=EXAMPLE)
    fields = [f for f in INPUT_FIELDS if f in body]
    if len(fields) != 1:
        raise Invalid(
            f"the JSON body needs exactly one of {', '.join(INPUT_FIELDS)} ({len(fields)} given), e.g. {EXAMPLE}"
        )
    params = parameters(body, "params")
    field = fields[0]
    value = body[field]
    if field == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise Invalid(f'"dataframe_split" must be an object with "data" (a list of rows), e.g. {EXAMPLE}')
        named = value.get("columns")
        if named is not None and not (isinstance(named, list) and all(isinstance(c, str) for c in named)):
            raise Invalid('"dataframe_split.columns" must be a list of column names')
        return instance_rows(value["data"], named or columns, field="dataframe_split.data"), params
    if field == "dataframe_records":
        return rows_from_json(value, field=field), params
    return instance_rows(value, columns, field=field, allow_columns=True), params


def csv_rows(body: bytes, columns: list[str], *, header: bool | None) -> pd.DataFrame:
    """CSV with a header line, or without one (values in signature order). Unless ``header`` says, the
    first line is a header when one of its fields is an input column name."""
    if header is None:
        first = body.lstrip().split(b"\n", 1)[0].decode("utf-8", errors="replace")
        header = any(field.strip() in columns for field in next(csv.reader([first]), []))
    if header:
        return table_from_body(body, "text/csv")
    try:
        # as text: the signature converts each column to its type, so "02134" stays a string
        frame = pd.read_csv(io.BytesIO(body), header=None, dtype=str)
    except pd.errors.EmptyDataError as exc:
        raise Invalid("the CSV body is empty; send at least one row") from exc
    except Exception as exc:
        raise Invalid(f"the CSV body could not be read: {str(exc).splitlines()[0]}") from exc
    check_width(frame.shape[1], columns, where="each CSV row", named="a header line naming the columns")
    frame.columns = columns
    return frame


def json_lines(body: bytes, *, strict: bool) -> list[Any] | None:
    """The JSON values of a body with one per line (blank lines skipped). Unless ``strict``, None when a
    line is not JSON (so the caller reports the body as one malformed JSON document)."""
    values = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            if not strict:
                return None
            raise Invalid(f"line {number} of the JSON lines body is not valid JSON: {exc}") from exc
    if not values:
        raise Invalid("the JSON lines body is empty; send one row per line, e.g. [5.1, 3.5, 1.4, 0.2]")
    return values


def json_rows(body: bytes, kind: str, columns: list[str]) -> tuple[Table, dict[str, Any]]:
    """A JSON or JSON-lines body as a table and its ``params``. A JSON body that is not one document but
    one JSON value per line (a Batch Transform mini-batch of a JSON file split by line) is JSON lines."""
    if kind in JSON_LINES_TYPES:
        lines = json_lines(body, strict=True)
    else:
        try:
            return mlflow_rows(orjson.loads(body), columns)
        except orjson.JSONDecodeError:
            lines = json_lines(body, strict=False) if body.strip().count(b"\n") else None
            if lines is None:
                parse_json(body)  # raises the error naming what is wrong with the document
                raise
    return instance_rows(lines, columns, field="JSON lines"), {}


def execution_parameters(ctx: ApiContext) -> dict[str, Any]:
    """Batch Transform's tuning, asked for before the first ``/invocations``: the job's own values when
    it set them (the SAGEMAKER_* variables), else one request in flight per CPU, many records per
    request (liveml answers rows in input order, line for line), and payloads up to 6 MB (the body
    limit, when lower)."""
    settings = ctx.host.registry.settings
    payload = settings.sagemaker_max_payload_mb
    if payload is None:
        payload = max(1, min(DEFAULT_PAYLOAD_MB, ctx.max_body_bytes // MIB))
    return {
        "MaxConcurrentTransforms": settings.sagemaker_max_concurrent_transforms or os.cpu_count() or 1,
        "BatchStrategy": settings.sagemaker_batch_strategy or "MULTI_RECORD",
        "MaxPayloadInMB": payload,
    }


def json_predictions(result: HostResult, *, probabilities: bool) -> Any:
    """MLflow's answer: a list of labels or values; with probabilities, records (pandas output
    becomes records in MLflow) with ``prediction`` and ``proba_<class>``."""
    prediction = result.prediction
    if probabilities and prediction.probabilities is not None:
        return prediction.to_frame(probabilities=True).to_dict(orient="records")
    return prediction.predictions


def csv_predictions(result: HostResult, *, probabilities: bool, header: bool) -> str:
    return result.prediction.to_frame(probabilities=probabilities).to_csv(index=False, header=header)


def json_lines_predictions(result: HostResult, *, probabilities: bool) -> bytes:
    """One JSON value per input row and line, so Batch Transform's ``AssembleWith=Line`` lines them up."""
    return b"".join(dumps(p) + b"\n" for p in json_predictions(result, probabilities=probabilities))


def routes(ctx: ApiContext) -> list[BaseRoute]:
    host = ctx.host

    async def ping(request: Request) -> Response:
        """200 with an empty body once every served model is loaded and warm, else 503."""
        return Response(status_code=200 if host.ready else 503)

    @endpoint(ctx, "/version")
    async def version(request: Request) -> Response:
        return Response(__version__, media_type="text/plain")

    @endpoint(ctx, "/invocations", style="mlflow")
    async def invocations(request: Request) -> Response:
        output, csv_header = wanted_output(request.headers.get("accept", ""))
        kind, params = media(request.headers.get("content-type", ""))
        if kind not in (*JSON_TYPES, *JSON_LINES_TYPES, *CSV_TYPES):
            raise UnsupportedMediaType(
                f"content type {kind!r} is not supported; send application/json (MLflow payloads such as "
                f"{EXAMPLE}), application/jsonlines (one row per line) or text/csv"
            )
        if params.get("charset", "utf-8") not in CHARSETS:
            raise UnsupportedMediaType(f"charset {params['charset']!r} is not supported; send UTF-8")
        ref = ctx.single_model()
        body = await read_body(request, ctx.max_body_bytes)
        options: dict[str, Any] = {}
        rows: Table
        if kind in CSV_TYPES:
            header = {"present": True, "absent": False}.get(params.get("header", ""))
            rows = csv_rows(body, await input_columns(ctx, ref), header=header)
        else:
            rows, options = json_rows(body, kind, await input_columns(ctx, ref))
        result = await ctx.predict(ref, rows)
        attributes = custom_attributes(request.headers.get(CUSTOM_ATTRIBUTES, ""))
        probabilities = flag(options.get("probabilities")) or flag(attributes.get("probabilities"))
        if output == "csv":
            text = csv_predictions(result, probabilities=probabilities, header=csv_header)
            return Response(text, media_type="text/csv")
        if output == "jsonl":
            lines = json_lines_predictions(result, probabilities=probabilities)
            return Response(lines, media_type="application/jsonlines")
        return json_response({"predictions": json_predictions(result, probabilities=probabilities)})

    @endpoint(ctx, "/execution-parameters", style="mlflow")
    async def parameters_of_batch(request: Request) -> Response:
        return json_response(execution_parameters(ctx))

    return [
        Route("/ping", endpoint(ctx, "/ping")(ping), methods=["GET"]),
        Route("/health", endpoint(ctx, "/health")(ping), methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/execution-parameters", parameters_of_batch, methods=["GET"]),
    ]


__all__ = [
    "csv_rows",
    "custom_attributes",
    "execution_parameters",
    "json_rows",
    "mlflow_rows",
    "routes",
    "wanted_output",
]
