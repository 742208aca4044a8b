"""The running server described in OpenAPI 3.1 (``GET /openapi.json``) and shown to people (``GET /docs``).

Built at request time from what is served: each followed reference (``iris``, ``iris@staging``) and
each pinned version loaded (``iris:3``) gets a concrete ``POST /v1/models/{ref}/predict`` whose request
schema is that version's signature. It is cached per set of served (reference, model, version): an
alias move shows the new signature at the next request.

``/docs`` is Swagger UI, served from the swagger-ui-py package's copy of its static build under
``/docs/assets/`` (no CDN: it works offline); without that package, ``/docs`` links to the document.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import io
import json
import re
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

import liveml
from liveml.api.context import ApiContext, endpoint
from liveml.api.kserve_v1 import PATH as KSERVE_PATH
from liveml.api.responses import dumps
from liveml.api.vertex import HEALTH_ROUTE, PREDICT_ROUTE
from liveml.registry.types import ModelVersion
from liveml.signature import ColumnSpec, Signature

Schema = dict[str, Any]
ASSETS = "/docs/assets"
#: swagger-ui-py (Apache-2.0) ships Swagger UI 5's static build in swagger_ui/static (5.x reads OpenAPI 3.1)
ASSETS_PACKAGE, ASSETS_DIR = "swagger_ui", "static"
JSON, ARROW = "application/json", "application/vnd.apache.arrow.stream"
TEXT = {"text/plain": {"schema": {"type": "string"}}}
_TYPES: dict[str, Schema] = {t: {"type": t} for t in ("integer", "number", "boolean", "string")}
_TYPES["datetime"] = {"type": "string", "format": "date-time"}
#: status: (component name, description) of the native API's errors, ``{"error", "kind"}``
ERRORS = {
    "400": ("BadRequest", "bad input: malformed JSON, a missing column, a wrong value type, too many rows"),
    "404": ("NotFound", "no such model, version or alias, or a model not served here"),
    "409": ("Conflict", "the request contradicts the stored state, e.g. cancelling a job that already ended"),
    "413": ("PayloadTooLarge", "the body is over the server's size limit"),
    "415": ("UnsupportedMediaType", "a content type this endpoint does not read"),
    "500": ("InternalError", "a bug: the body has a request id to find the traceback in the server log"),
    "503": ("Unavailable", "the model is not loaded yet, or it failed on this input (see the server log)"),
}
NATIVE, HEALTH, JOBS, AUDIT = "liveml API", "health and metrics", "batch jobs", "audit trail"
V2, KSERVE, SAGEMAKER, VERTEX = "Open Inference Protocol V2", "KServe V1", "SageMaker / MLflow", "Vertex AI"
#: error body per protocol (liveml's ``{"error", "kind"}``, V2's ``{"error"}``, MLflow's)
ERROR_SCHEMA = {
    NATIVE: "Error",
    JOBS: "Error",
    AUDIT: "Error",
    V2: "ProtocolError",
    KSERVE: "ProtocolError",
    VERTEX: "ProtocolError",
}
PARAMS = {
    "ref": "a model reference: `NAME` (its production alias, else its latest version), `NAME:VERSION` or `NAME@ALIAS`",
    "m": "a model reference: `iris`, `iris:3` or `iris@staging`",
    "model": "a model name",
    "version": "a version number, an alias, or `latest`",
    "job_id": "a job id (a number), as `POST /v1/jobs` or `GET /v1/jobs` give it",
    "prediction_id": "a prediction id, as a predict or explain response gave it",
}
_JOB = "`{id, uid, status, model, version, spec, rows_done, total_rows, progress, rows_out, errors, rows_per_s, message, url, ...}`"
_JOB_BODY = 'a job spec: `{model, input (or input_sql and db), output, keep?, proba?, chunk_rows?, max_errors?, errors?, engine?, workers?, scheduler?, input_format?, output_format?}` | {"model": "churn@production", "input": "/data/customers.parquet", "output": "/data/scores.parquet", "keep": ["customer_id"]}'
_V2_BODY = '`{id?, inputs: [{name, shape, datatype, data}], outputs?, parameters?}` | {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}'
_INSTANCES = 'rows as objects, or lists in signature column order | {"instances": [[5.1, 3.5, 1.4, 0.2]], "parameters": {"probabilities": true}}'
# METHOD path | tag | summary | description | 200 body ("text", "empty") | other statuses ("*": the 200 body)
#   [| request body | its example]
ROUTES = f"""
GET /v1/models | {NATIVE} | List models | Every registered model, the version served and the versions loaded. | `{{models: [{{name, latest_version, aliases, format, served_version, loaded_versions}}]}}` | 500
GET /v1/models/{{ref}} | {NATIVE} | Model version metadata | The version a reference means now: signature, classes, metrics, tags, whether it is served. | `{{name, version, aliases, format, task, classes, signature, ...}}` | 404 500
POST /v1/models/{{ref}}/feedback | {NATIVE} | Send labels | Ground truth for earlier predictions, by the prediction ids their responses gave; labels may come days later, repeat (the last one counts) or name ids never logged (counted when performance is computed). | `{{model, accepted, repeated, invalid, problems}}` | 400 404 413 | `{{labels: [{{prediction_id, label}}]}}` | {{"labels": [{{"prediction_id": "4f1c0e2a9b7d4c3e00000000", "label": 1}}]}}
POST /v1/models/{{ref}}/explain | {NATIVE} | Explain predictions | Predicts the rows (logged with prediction ids, like predict) and gives per-feature attributions for each: base value + attributions = the model's output in `output_space`. Exact for linear and tree models (TreeSHAP), model-agnostic (sampled Shapley values) for the rest. Optional `class` (which class's output), `space` ("probability"). Each explanation is kept with its prediction id. | `{{model, version, output_space, method, rows: [{{prediction_id, base_value, attributions, output}}]}}` | 400 404 413 | `{{inputs: [rows], class?, space?}}` | {{"inputs": [{{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}}]}}
GET /v1/models/{{ref}}/explanations/{{prediction_id}} | {NATIVE} | A stored explanation | The explanation kept with a prediction id ("why was this customer declined?"). | `{{prediction_id, base_value, attributions, output, output_space, method}}` | 404
GET /v1/audit | {AUDIT} | The audit trail | Every change, newest first, hash-chained; admin keys only. Query since, until (ISO time or a duration such as 7d), action (or a group: alias), actor, limit (1 to 1000, default 100), before (a seq, to page on). | `{{entries: [{{seq, at, actor, address, action, target, before, after, prev_hash, hash}}], next}}` | 400
POST /v1/jobs | {JOBS} | Submit a batch job | Records the job (the model reference pinned to its version now) and starts its runner in its own process; answers 202 with the job and a `Location`. Paths are on the server's machine. | {_JOB} | 400 404 409 | {_JOB_BODY}
GET /v1/jobs | {JOBS} | List batch jobs | Newest first; query `status`, `model`, `limit` (1 to 1000, default 50). | `{{jobs: [...]}}` | 400
GET /v1/jobs/{{job_id}} | {JOBS} | A batch job's status and progress | Status (`queued`, `running`, `succeeded`, `failed`, `cancelled`, `interrupted`), rows done of the total, progress from 0 to 1, rows/s, refused rows, the pinned version. | {_JOB} | 400 404
POST /v1/jobs/{{job_id}}/cancel | {JOBS} | Cancel a batch job | Stops a queued or running job at its next chunk; `liveml jobs resume` continues it. | {_JOB} | 400 404 409
GET /health/live | {HEALTH} | Liveness | 200 while the server runs. | `{{live: true}}` |
GET /health/ready | {HEALTH} | Readiness | 200 once every served reference is loaded and warmed, else 503. | `{{ready: true}}` | 503*
GET /metrics | {HEALTH} | Prometheus metrics | Requests, rows, errors, latencies, loaded models and swaps, in Prometheus' text format. | text |
GET /v2/health/ready | {V2} | Server readiness (V2) | 200 once every served model is ready, else 503. | `{{ready: true}}` | 503*
GET /v2/models/{{model}} | {V2} | Model metadata (V2) | The input and output tensors of the version a model serves. | `{{name, versions, platform, inputs, outputs}}` | 404
POST /v2/models/{{model}}/infer | {V2} | Infer (Open Inference Protocol V2) | KServe V2, Triton and MLServer inference: one tensor per signature column ([N] or [N, 1]), or one [N, F] tensor when every input is numeric. The binary tensor data extension (`Inference-Header-Content-Length`) and gzip or deflate bodies are accepted; outputs are `predict` and, for classifiers, `predict_proba`. | `{{model_name, model_version, id, parameters, outputs: [{{name, shape, datatype, data}}]}}` | 400 404 413 415 503 | {_V2_BODY}
POST /v2/models/{{model}}/versions/{{version}}/infer | {V2} | Infer with a version (V2) | As `/v2/models/{{model}}/infer`, with a version number, an alias or `latest`. | `{{model_name, model_version, id, parameters, outputs}}` | 400 404 413 415 503 | {_V2_BODY}
POST {KSERVE_PATH} | {KSERVE} | Predict (KServe V1) | TensorFlow-Serving style predict with any reference; the body has exactly one of `instances` or `inputs`, and `"parameters": {{"probabilities": true}}` adds probabilities and classes. | `{{predictions: [...], probabilities?, classes?}}` | 400 404 413 415 503 | {_INSTANCES}
GET /ping | {SAGEMAKER} | Health (SageMaker) | 200 with an empty body once every served model is loaded and warm, else 503. | empty | 503*
POST /invocations | {SAGEMAKER} | Predict (SageMaker, MLflow scoring) | Serves the server's single model (`--default-model`). JSON: MLflow payloads (`dataframe_split`, `dataframe_records`, `instances`, `inputs`, optional `params`) or a bare list of rows; or CSV (`text/csv`), with or without a header. `Accept: text/csv` answers CSV. Probabilities: `params.probabilities`, or the header `X-Amzn-SageMaker-Custom-Attributes: probabilities=true`. Errors are MLflow's `{{error_code, message}}`. | `{{predictions: [...]}}` | 400 404 413 415 503 | an MLflow scoring payload | {{"dataframe_split": {{"columns": ["a", "b"], "data": [[1, 2]]}}}}
POST VERTEX_PREDICT | {VERTEX} | Predict (Vertex AI) | Vertex AI's custom-container contract for the server's single model: `{{instances, parameters?}}`; with `"parameters": {{"probabilities": true}}` each prediction is `{{label, classes, scores}}`. | `{{predictions: [...]}}` | 400 404 413 415 503 | {_INSTANCES}
GET VERTEX_HEALTH | {VERTEX} | Health (Vertex AI) | 200 once every served model is ready, else 503. | `{{ready: true}}` | 503*
"""
PROBABILITIES: Schema = {
    "name": "probabilities",
    "in": "query",
    "schema": {"type": "boolean", "default": False},
}
PROBABILITIES["description"] = (
    "add class probabilities and their classes (or `proba`, or the JSON body's `probabilities`)"
)


def column_schema(spec: ColumnSpec) -> Schema:
    """A column's JSON Schema: its type (datetime as a date-time string), or null too when nullable."""
    schema = dict(_TYPES[spec.type])
    if spec.nullable:
        schema["type"] = [schema["type"], "null"]
    return schema


def row_schema(signature: Signature) -> Schema:
    """One row: every input column is a required key (a nullable one may be null); extra keys are ignored."""
    properties = {c.name: column_schema(c) for c in signature.inputs}
    return {"type": "object", "properties": properties, "required": signature.input_names}


def columns_schema(signature: Signature) -> Schema:
    """Columns: an object of equal-length lists, one per input column."""
    properties: dict[str, Schema] = {
        c.name: {"type": "array", "items": column_schema(c), "minItems": 1} for c in signature.inputs
    }
    return {"type": "object", "properties": properties, "required": signature.input_names}


def _object(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


def _ref(name: str, kind: str = "schemas") -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*codes: str, schema: str = "Error") -> dict[str, Schema]:
    """The native errors are shared responses; the other protocols' bodies differ."""
    if schema == "Error":
        return {code: _ref(ERRORS[code][0], "responses") for code in codes}
    return {code: _json(ERRORS[code][1], _ref(schema)) for code in codes}


def _param(name: str, refs: list[str]) -> Schema:
    param: Schema = {"name": name, "in": "path", "required": True, "description": PARAMS[name]}
    param["schema"] = {"type": "string"}
    if refs and name in ("ref", "m"):
        param["examples"] = {ref: {"value": ref} for ref in refs}
    return param


def _table_bodies() -> dict[str, Schema]:
    """The non-JSON bodies a predict reads: CSV with a header line, Parquet, Arrow IPC stream."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    csv_body = {"schema": {"type": "string", "description": "CSV with a header line naming the columns"}}
    return {"text/csv": csv_body, "application/vnd.apache.parquet": binary, ARROW: {**binary}}


def predict_request(row: Schema, columns: Schema, title: str) -> Schema:
    """``{"inputs": rows | columns | one row, "probabilities"?}``, or a bare list of rows."""
    rows: Schema = {"type": "array", "items": row, "minItems": 1}
    inputs = {
        "description": "a list of rows, an object of columns, or one row",
        "anyOf": [rows, columns, row],
    }
    probabilities = {"type": "boolean", "default": False}
    wrapped = _object(["inputs"], inputs=inputs, probabilities=probabilities)
    bare = {**rows, "description": "a bare list of rows"}
    return {"title": title, "oneOf": [wrapped, bare]}


def predict_response(prediction: Schema, classes: Schema) -> Schema:
    """``{model, version, predictions, ids, probabilities?, classes?}``."""
    matrix = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
    properties: dict[str, Schema] = {
        "model": {"type": "string"},
        "version": {"type": "integer", "description": "the version that computed the predictions"},
        "predictions": {"type": "array", "items": prediction, "description": "one per row"},
        "ids": {"type": "array", "items": {"type": "string"}, "description": "one prediction id per row"},
        "probabilities": {**matrix, "description": "when asked for: one list per row, in `classes` order"},
        "classes": {"type": "array", "items": classes, "description": "when probabilities were asked for"},
    }
    return _object(["model", "version", "predictions", "ids"], **properties)


def model_schemas(version: ModelVersion) -> tuple[str, dict[str, Schema]]:
    """One version's component schemas (row, columns, request, response), and their common prefix."""
    prefix, signature = f"{version.model}.v{version.version}", version.signature
    predicted = [c for c in signature.outputs if c.name.startswith("prediction")]
    classes: Schema = {"enum": json.loads(dumps(list(version.classes)))} if version.classes else {}
    item: Schema = classes or (dict(_TYPES[predicted[0].type]) if predicted else {})
    if len(predicted) > 1:  # several outputs: a list per row
        item = {"type": "array", "items": dict(_TYPES[predicted[0].type])}
    row, columns = f"{prefix}.Row", f"{prefix}.Columns"
    return prefix, {
        row: {"title": f"{version.ref} row", **row_schema(signature)},
        columns: {"title": f"{version.ref} columns", **columns_schema(signature)},
        f"{prefix}.PredictRequest": predict_request(_ref(row), _ref(columns), f"{version.ref} request"),
        f"{prefix}.PredictResponse": predict_response(item, classes),
    }


def examples(version: ModelVersion) -> tuple[dict[str, Schema], str | None]:
    """The version's input example as JSON rows, JSON columns and CSV (none without one)."""
    rows, names = version.input_example, version.signature.input_names
    if not rows:
        return {}, None
    columns = {n: [r.get(n) for r in rows] for n in names}
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerows([names, *([r.get(n) for n in names] for r in rows)])
    return {
        "rows": {"summary": "rows (the version's input example)", "value": {"inputs": rows}},
        "columns": {"summary": "columns", "value": {"inputs": columns}},
    }, text.getvalue()


def predict_operation(tag: str, summary: str, description: str, request: Schema, response: Schema) -> Schema:
    """A ``POST .../predict``: JSON, CSV, Parquet or Arrow in; predictions or a native error out."""
    return {
        "tags": [tag],
        "summary": summary,
        "description": description,
        "parameters": [PROBABILITIES],
        "requestBody": {"required": True, "content": {JSON: {"schema": request}, **_table_bodies()}},
        "responses": {
            "200": _json("the predictions", response),
            **_errors("400", "404", "413", "415", "500", "503"),
        },
    }


def model_operation(ref: str, version: ModelVersion, prefix: str) -> Schema:
    """``POST /v1/models/{ref}/predict`` for the version ``ref`` serves now."""
    columns = ", ".join(
        f"`{c.name}` ({c.type}{', nullable' if c.nullable else ''})" for c in version.signature.inputs
    )
    op = predict_operation(
        version.model,
        f"Predict with {ref} (serves {version.ref})",
        f"Input columns: {columns}. {version.description}".strip(),
        _ref(f"{prefix}.PredictRequest"),
        _ref(f"{prefix}.PredictResponse"),
    )
    found, csv_example = examples(version)
    if found:
        op["requestBody"]["content"][JSON]["examples"] = found
        op["requestBody"]["content"]["text/csv"]["example"] = csv_example
    return {"operationId": "predict_" + re.sub(r"\W", "_", ref), **op}


def other_paths(ctx: ApiContext, refs: list[str]) -> dict[str, dict[str, Schema]]:
    """The routes whose description does not depend on a signature: ``ROUTES``, and the generic predict."""
    row, columns = {"type": "object", "description": "column name to value"}, {"type": "object"}
    description = "Predict with the version a reference means now (each served model's columns: above)."
    request = predict_request(row, {**columns, "additionalProperties": {"type": "array"}}, "rows")
    generic = predict_operation(
        NATIVE, "Predict with any reference", description, request, predict_response({}, {})
    )
    generic["parameters"].insert(0, _param("ref", refs))
    paths: dict[str, dict[str, Schema]] = {"/v1/models/{ref}/predict": {"post": generic}}
    vertex = {"VERTEX_PREDICT": ctx.vertex_predict_route or PREDICT_ROUTE}
    vertex["VERTEX_HEALTH"] = ctx.vertex_health_route or HEALTH_ROUTE
    for line in ROUTES.strip().splitlines():
        route, tag, summary, description, shape, statuses, *body = (part.strip() for part in line.split("|"))
        method, path = route.split(" ")
        ok = _json(shape, {"type": "object", "description": shape})
        if shape in ("text", "empty"):
            ok = {"description": "OK", **({"content": TEXT} if shape == "text" else {})}
        op: Schema = {"tags": [tag], "summary": summary, "description": description, "responses": {"200": ok}}
        for status in statuses.split():
            code, error = status.rstrip("*"), ERROR_SCHEMA.get(tag, "MLflowError")
            if status.endswith("*"):
                op["responses"][code] = {**ok, "description": "not ready"}
            else:
                op["responses"].update(_errors(code, schema=error))
        if names := re.findall(r"{(\w+)}", path):
            op["parameters"] = [_param(name, refs) for name in names]
        if body:
            media = {"schema": {"type": "object", "description": body[0]}, "example": json.loads(body[1])}
            extra = {"text/csv": {"schema": {"type": "string"}}} if path == "/invocations" else {}
            op["requestBody"] = {"required": True, "content": {JSON: media, **extra}}
        paths.setdefault(vertex.get(path, path), {})[method.lower()] = op
    submit = paths["/v1/jobs"]["post"]["responses"]
    submit["202"] = {**submit.pop("200"), "description": "accepted: the job is queued and its runner started"}
    return paths


def components() -> Schema:
    kind = "invalid, not_found, payload_too_large, unsupported_media_type, unavailable, ..."
    string: Schema = {"type": "string"}
    error = {"type": "string", "description": "what is wrong and how to fix it"}
    return {
        "schemas": {
            "Error": _object(["error", "kind"], error=error, kind={"type": "string", "description": kind}),
            "InternalError": _object(["error", "request_id"], error=error, request_id={"type": "string"}),
            "ProtocolError": _object(["error"], error=error),
            "MLflowError": _object(["error_code", "message"], error_code=string, message=string),
        },
        "responses": {
            name: _json(text, _ref("InternalError" if code == "500" else "Error"))
            for code, (name, text) in ERRORS.items()
        },
    }


def served_refs(ctx: ApiContext) -> list[tuple[str, ModelVersion]]:
    """(reference, version) for every followed reference with a loaded version, then every pinned
    version loaded that no followed reference serves, as ``name:version``."""
    entries = {str(b.ref): b.served.version for b in ctx.host.bindings() if b.served is not None}
    covered = {(v.model, v.version) for v in entries.values()}
    for served in ctx.host.served_models():
        if (served.name, served.number) not in covered:
            entries[f"{served.name}:{served.number}"] = served.version
    return sorted(entries.items())


def build_document(ctx: ApiContext, served: list[tuple[str, ModelVersion]], root_path: str = "") -> Schema:
    """The OpenAPI 3.1 document for these served (reference, version) pairs."""
    doc: Schema = {
        "openapi": "3.1.0",
        "info": {
            "title": "liveml",
            "version": liveml.__version__,
            "description": "Each served model has its own predict operation, with its signature's columns.",
        },
        "tags": [],
        "paths": {},
        "components": components(),
        **({"servers": [{"url": root_path}]} if root_path else {}),
    }
    models: dict[str, list[str]] = {}
    for ref, version in served:
        prefix, schemas = model_schemas(version)
        doc["components"]["schemas"].update(schemas)
        op = model_operation(ref, version, prefix)
        while any(p["post"]["operationId"] == op["operationId"] for p in doc["paths"].values()):
            op["operationId"] += "_"  # references that differ only in punctuation
        doc["paths"][f"/v1/models/{ref}/predict"] = {"post": op}
        models.setdefault(version.model, []).append(f"`{ref}` serves {version.ref}")
    doc["tags"] = [{"name": name, "description": "; ".join(lines)} for name, lines in models.items()]
    doc["tags"] += [{"name": tag} for tag in (NATIVE, JOBS, AUDIT, HEALTH, V2, KSERVE, SAGEMAKER, VERTEX)]
    doc["paths"].update(other_paths(ctx, [ref for ref, _ in served]))
    if ctx.auth is not None and ctx.auth.require_keys:
        secure(ctx, doc)
    return doc


def secure(ctx: ApiContext, doc: Schema) -> None:
    """API keys in the document: a bearer token or ``X-API-Key`` everywhere but the open routes."""
    from liveml.api.auth import rules_for

    doc["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "an API key: `liveml keys create`"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    doc["security"] = [{"bearer": []}, {"apiKey": []}]
    open_routes = {path for (_, path), rule in rules_for(ctx).items() if rule.permission == "open"}
    for path, operations in doc["paths"].items():
        if path in open_routes:
            for operation in operations.values():
                operation["security"] = []


def assets_dir() -> Path | None:
    """Swagger UI's static files from the installed swagger-ui-py, or None (found without importing it)."""
    spec = importlib.util.find_spec(ASSETS_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / ASSETS_DIR
        if (folder / "swagger-ui-bundle.js").is_file() and (folder / "swagger-ui.css").is_file():
            return folder
    return None


NO_ASSETS_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>liveml API</title></head>
<body><p>The API is described in <a href="openapi.json">/openapi.json</a>. Swagger UI's files are not
installed: <code>pip install swagger-ui-py</code> for the interactive page.</p></body></html>"""
SWAGGER_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>liveml API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css"><link rel="icon" href="{assets}/favicon-32x32.png">
</head><body style="margin: 0"><div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: {spec}, dom_id: "#swagger-ui", deepLinking: true, layout: "BaseLayout",
  presets: [SwaggerUIBundle.presets.apis], validatorUrl: null, docExpansion: "list",
  defaultModelsExpandDepth: 0, displayRequestDuration: true
}});
</script></body></html>
"""


def routes(ctx: ApiContext) -> list[BaseRoute]:
    cache: dict[tuple[Any, ...], bytes] = {}

    def document(request: Request) -> bytes:
        """The document for what is served now: rebuilt only when that changed (or the root path)."""
        served = served_refs(ctx)
        root_path = request.scope.get("root_path", "")
        key = (tuple((ref, v.model, v.version) for ref, v in served), root_path)
        if key not in cache:
            cache.clear()
            cache[key] = dumps(build_document(ctx, served, root_path))
        return cache[key]

    @endpoint(ctx, "/openapi.json")
    async def openapi_json(request: Request) -> Response:
        return Response(document(request), media_type=JSON)

    folder = assets_dir()

    @endpoint(ctx, "/docs")
    async def docs(request: Request) -> Response:
        if folder is None:
            return HTMLResponse(NO_ASSETS_PAGE)
        root = request.scope.get("root_path", "")
        spec = json.dumps(root + "/openapi.json").replace("</", "<\\/")
        return HTMLResponse(SWAGGER_PAGE.format(assets=html.escape(root + ASSETS), spec=spec))

    found: list[BaseRoute] = [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    if folder is not None:
        found.append(Mount(ASSETS, app=StaticFiles(directory=folder), name="docs-assets"))
    return found


__all__ = ["build_document", "column_schema", "columns_schema", "routes", "row_schema", "served_refs"]
