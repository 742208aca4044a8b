"""What every protocol module gets: the host, the limits, and the wrapper that turns errors into responses."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from liveml.api.errors import error_response, internal_error
from liveml.errors import LivemlError
from liveml.registry.loading import Rows
from liveml.serving.host import HostResult, ModelHost

if TYPE_CHECKING:
    from liveml.api.auth import AuthConfig

Endpoint = Callable[[Request], Awaitable[Response]]
#: models whose calls take less than this run on the event loop (measured per model, see runs_inline)
INLINE_BELOW_S = 0.001
INLINE_MAX_ROWS = 1024


def _small(rows: Rows) -> bool:
    if isinstance(rows, list):
        return len(rows) <= INLINE_MAX_ROWS
    import pandas as pd  # only for frames, which come from code that already has it

    return isinstance(rows, pd.DataFrame) and len(rows) <= INLINE_MAX_ROWS


@dataclass(frozen=True)
class ApiContext:
    host: ModelHost
    max_body_bytes: int = 32 * 1024 * 1024
    #: the model single-model contracts answer for (SageMaker /invocations, Vertex AI): a reference, or
    #: None for "the only model served" (an error naming the choices when there are several)
    default_model: str | None = None
    #: Vertex AI's container contract: AIP_PREDICT_ROUTE and AIP_HEALTH_ROUTE, when set
    vertex_predict_route: str | None = None
    vertex_health_route: str | None = None
    #: models cheaper than this (CPU seconds per call) are served on the event loop; 0 turns that off
    inline_below_s: float = INLINE_BELOW_S
    #: API keys, roles and per-key limits (``liveml serve`` sets it); None: no guard (in-process use, tests)
    auth: AuthConfig | None = None

    def single_model(self) -> str:
        """The reference a single-model contract serves: ``default_model``, else the only served model."""
        if self.default_model:
            return self.default_model
        names = sorted({str(b.ref) for b in self.host.bindings()})
        if len(names) == 1:
            return names[0]
        from liveml.errors import NotFound

        if not names:
            raise NotFound("no model is served; push one and set its production alias")
        raise NotFound(
            f"this endpoint serves one model but {len(names)} are served ({', '.join(names)}); start the server "
            "with --default-model NAME, or use /v1/models/NAME/predict"
        )

    def runs_inline(self, ref: str) -> bool:
        """True when ``ref``'s model is loaded and its calls take under ``INLINE_BELOW_S``: then the
        request is served on the event loop. A hop to a worker thread costs more than such a call, and
        with threads the GIL hand-offs add milliseconds of latency under load. Slower models, and models
        not measured yet, always run in the thread pool, so the loop is never blocked for long."""
        served = self.host.peek(ref)
        return served is not None and served.cost_s < self.inline_below_s

    async def predict(self, ref: str, rows: Rows, *, inline: bool | None = None) -> HostResult:
        """Predict: on the loop for fast models (see ``runs_inline``, which ``inline`` may give when the
        caller just asked it), in a worker thread otherwise."""
        if (self.runs_inline(ref) if inline is None else inline) and _small(rows):
            return self.host.predict(ref, rows, batch=False)
        return await run_in_threadpool(self.host.predict, ref, rows)


def endpoint(ctx: ApiContext, route: str, *, style: str = "native") -> Callable[[Endpoint], Endpoint]:
    """Wrap a handler: domain errors become the protocol's error body, bugs a 500 with a request id."""
    metrics = ctx.host.metrics

    def decorate(handler: Endpoint) -> Endpoint:
        @wraps(handler)
        async def wrapped(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except LivemlError as exc:
                response = error_response(exc, style=style)
            except Exception as exc:
                response = internal_error(exc, style=style)
            count, seconds = metrics.http_series(route, request.method, response.status_code)
            count.inc()
            seconds.observe(time.perf_counter() - started)
            return response

        return wrapped

    return decorate


__all__ = ["ApiContext", "endpoint"]
