"""Explanations over HTTP.

``POST /v1/models/{ref}/explain`` with ``{"inputs": rows, "class": optional, "space": "auto" |
"probability", "store": true}``: the rows are predicted as ``/predict`` would (validated, logged, given
prediction ids), then explained with the version's original model (not its compiled form, which the
exact algorithms cannot read). Each row's explanation is stored under its prediction id when the
prediction log is on, and ``GET /v1/models/{ref}/explanations/{prediction_id}`` reads it back.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from liveml.api.codecs import parse_json, read_body, rows_from_json
from liveml.api.context import ApiContext, endpoint
from liveml.api.responses import json_response
from liveml.errors import Invalid, NotFound
from liveml.explain import SPACES, Explanation, ExplanationStore, background_for, check_class, explain
from liveml.explain.results import Background
from liveml.registry import parse_ref
from liveml.registry.loading import LoadedModel, load_version
from liveml.security.pickles import PickleRefused
from liveml.serving.host import HostResult, ModelHost

#: rows per explain request: model-agnostic explanations cost thousands of model rows per row
MAX_ROWS = 1000
FIELDS = ("inputs", "class", "space", "store")
_CACHED_VERSIONS = 4


class Explainers:
    """The original form of each version explained and its background, loaded once (a few versions)."""

    def __init__(self, host: ModelHost, size: int = _CACHED_VERSIONS) -> None:
        self.host = host
        self.size = size
        self._lock = threading.Lock()
        self._loading = threading.Lock()  # one load at a time: two first requests must not load twice
        self._cache: OrderedDict[tuple[str, int], tuple[LoadedModel, pd.DataFrame | None, Background, bool]]
        self._cache = OrderedDict()

    def get(self, model: str, version: int) -> tuple[LoadedModel, pd.DataFrame | None, Background]:
        key = (model, version)
        found = self._cached(key)
        if found is not None:
            return found
        with self._loading:
            return self._cached(key) or self._load(key)

    def _cached(self, key: tuple[str, int]) -> tuple[LoadedModel, pd.DataFrame | None, Background] | None:
        with self._lock:
            if key not in self._cache:
                return None
            self._cache.move_to_end(key)
            loaded, background, source, _ = self._cache[key]
            return loaded, background, source

    def _load(self, key: tuple[str, int]) -> tuple[LoadedModel, pd.DataFrame | None, Background]:
        model, version = key
        registry = self.host.registry
        found = registry.get(f"{model}:{version}")
        served = self.host.peek(f"{model}:{version}")
        owned = False
        if served is not None and not served.loaded.compiled:
            loaded = served.loaded
        else:
            try:
                loaded, owned = load_version(registry, found), True
            except PickleRefused:  # the original may not be loaded here: explain the compiled form
                if served is None:
                    raise
                loaded = served.loaded
        background, source = background_for(registry, found)
        with self._lock:
            self._cache[key] = (loaded, background, source, owned)
            while len(self._cache) > self.size:
                old, _, _, mine = self._cache.popitem(last=False)[1]
                if mine:
                    old.unload()
        return loaded, background, source

    def explain(self, result: HostResult, rows: Any, target: Any, space: str) -> Explanation:
        loaded, background, source = self.get(result.model, result.version)
        return explain(
            loaded,
            rows,
            target_class=target,
            background=background,
            background_source=source,
            space=space,
            prediction_ids=result.ids,
        )


def routes(ctx: ApiContext) -> list[BaseRoute]:
    host = ctx.host
    explainers = Explainers(host)
    settings = host.registry.settings
    store = ExplanationStore(settings) if settings.log_predictions else None

    @endpoint(ctx, "/v1/models/{ref}/explain")
    async def explain_rows(request: Request) -> Response:
        ref = request.path_params["ref"]
        payload = parse_json(await read_body(request, ctx.max_body_bytes))
        if not isinstance(payload, dict) or "inputs" not in payload:
            raise Invalid(
                'the body needs "inputs" (a list of rows or an object of columns), e.g. '
                '{"inputs": [{"age": 41}], "class": "yes"}'
            )
        unknown = sorted(set(payload) - set(FIELDS))
        if unknown:
            raise Invalid(
                f"unknown field(s) {', '.join(map(repr, unknown))}; the body takes {', '.join(FIELDS)}"
            )
        target, space, keep = payload.get("class"), payload.get("space") or "auto", payload.get("store", True)
        if space not in SPACES:
            raise Invalid(f"'space' is {space!r}; use one of {', '.join(SPACES)}")
        if not isinstance(keep, bool):
            raise Invalid(f"'store' must be true or false, not {keep!r}")
        rows = rows_from_json(payload["inputs"])
        if len(rows) > MAX_ROWS:
            raise Invalid(
                f"{len(rows)} rows to explain; the limit is {MAX_ROWS} per request "
                "(use `liveml batch run --explain` for files)"
            )
        check_class(await run_in_threadpool(host.registry.get, ref), target)
        result = await ctx.predict(ref, rows)
        explanation = await run_in_threadpool(explainers.explain, result, rows, target, space)
        stored = store is not None and keep
        if stored:
            await run_in_threadpool(store.write, explanation)  # type: ignore[union-attr]
        return json_response(
            {
                "model": explanation.model,
                "version": explanation.version,
                "method": explanation.method,
                "output_space": explanation.output_space,
                "background": explanation.background,
                "features": explanation.features,
                "ids": result.ids,
                "predictions": result.prediction.predictions,
                "explanations": [row.model_dump(mode="json") for row in explanation.rows],
                "stored": stored,
            }
        )

    @endpoint(ctx, "/v1/models/{ref}/explanations/{prediction_id}")
    async def stored_explanation(request: Request) -> Response:
        name = parse_ref(request.path_params["ref"]).name
        prediction_id = request.path_params["prediction_id"]
        if store is None:
            raise NotFound("explanations are not stored here: the prediction log is off (log_predictions)")
        found = await run_in_threadpool(store.lookup, name, prediction_id)
        if found is None:
            raise NotFound(
                f"no stored explanation for prediction {prediction_id!r} of model {name!r}; explanations are "
                f"stored when made with POST /v1/models/{name}/explain"
            )
        return json_response(found.model_dump(mode="json"))

    return [
        Route("/v1/models/{ref}/explain", explain_rows, methods=["POST"]),
        Route("/v1/models/{ref}/explanations/{prediction_id}", stored_explanation, methods=["GET"]),
    ]


__all__ = ["MAX_ROWS", "Explainers", "routes"]
