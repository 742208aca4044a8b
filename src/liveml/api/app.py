"""The ASGI application: every protocol's routes on one port, over one ``ModelHost``."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from liveml.api.context import ApiContext
from liveml.api.responses import json_response
from liveml.api.routing import RouteTable, TableRouter
from liveml.serving.host import ModelHost

#: protocol modules, each with ``routes(ctx) -> list[BaseRoute]``; order matters only for equal paths
PROTOCOLS = (
    "liveml.api.native",
    "liveml.api.jobs",
    "liveml.api.audit",
    "liveml.api.explain",
    "liveml.api.feedback",
    "liveml.api.v2",
    "liveml.api.kserve_v1",
    "liveml.api.sagemaker",
    "liveml.api.vertex",
    "liveml.api.openapi",
)


def create_app(
    host: ModelHost,
    *,
    context: ApiContext | None = None,
    start_host: bool = True,
    on_ready: Callable[[], None] | None = None,
) -> Starlette:
    """The app; with ``start_host`` it loads the models at startup and stops the host at shutdown."""
    import importlib

    ctx = context or ApiContext(host=host)
    from liveml.monitoring.prometheus import AlertCollector

    with contextlib.suppress(ValueError):  # one collector per host, however many apps are built on it
        host.metrics.registry.register(AlertCollector(host.registry))
    routes: list[BaseRoute] = [
        Route("/metrics", _metrics(host), methods=["GET"]),
        Route("/health/live", _live(host), methods=["GET"]),
        Route("/health/ready", _ready(host), methods=["GET"]),
    ]
    for name in PROTOCOLS:
        routes.extend(importlib.import_module(name).routes(ctx))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if start_host:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(host.start)
            # Everything loaded so far (libraries, models) lives for the whole process: move it out of the
            # collector's reach, so full collections stay short and do not stall requests under load.
            gc.collect()
            gc.freeze()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            if start_host:
                host.stop()

    table = RouteTable(routes)  # one lookup per distinct method and path, for the guard and the router
    middleware = []
    if ctx.auth is not None:  # API keys, roles and per-key limits in front of every route
        from liveml.api.auth import Guard

        middleware.append(Middleware(Guard, ctx=ctx, routes=table))
    app = Starlette(lifespan=lifespan, middleware=middleware)
    app.router = TableRouter(table, lifespan=lifespan)
    app.state.ctx = ctx
    return app


def _metrics(host: ModelHost):  # type: ignore[no-untyped-def]
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(host.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


def _live(host: ModelHost):  # type: ignore[no-untyped-def]
    async def live(request: Request) -> Response:
        return json_response({"live": host.live}, status=200 if host.live else 503)

    return live


def _ready(host: ModelHost):  # type: ignore[no-untyped-def]
    async def ready(request: Request) -> Response:
        ok = host.ready
        return json_response({"ready": ok}, status=200 if ok else 503)

    return ready
