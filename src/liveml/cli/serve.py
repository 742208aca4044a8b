"""``liveml serve``: every protocol on one port, over the models of the registry."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from liveml.cli.context import settings_of
from liveml.cli.render import error_console
from liveml.settings import Settings

if TYPE_CHECKING:
    from liveml.api.context import ApiContext
    from liveml.serving import ModelHost


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port (default 8000, or SAGEMAKER_BIND_TO_PORT / AIP_HTTP_PORT)."),
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            help="Comma-separated references to serve, e.g. churn,fraud@staging (default: every model).",
        ),
    ] = None,
    default_model: Annotated[
        str | None,
        typer.Option("--default-model", help="The model /invocations and Vertex AI routes answer for."),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model-dir",
            help="Serve the one model file in this folder (e.g. /opt/ml/model), no registry needed.",
        ),
    ] = None,
    lazy: Annotated[
        bool, typer.Option("--lazy", help="Load models on first request instead of at start.")
    ] = False,
    poll: Annotated[
        float | None, typer.Option("--poll", help="Seconds between checks for alias moves (0: never).")
    ] = None,
    compiled: Annotated[
        bool,
        typer.Option("--compiled/--original", help="Serve compiled forms where a version has one (default)."),
    ] = True,
    batching: Annotated[
        bool,
        typer.Option("--batching/--no-batching", help="Merge concurrent requests into shared model calls."),
    ] = True,
    max_batch_size: Annotated[
        int, typer.Option("--max-batch-size", min=1, help="Most rows in one merged model call.")
    ] = 64,
    max_latency_ms: Annotated[
        float,
        typer.Option(
            "--max-latency-ms", min=0, help="How long a queued request may wait for more rows (0: never)."
        ),
    ] = 0.0,
    memory_budget_mb: Annotated[
        float | None,
        typer.Option(
            "--memory-budget-mb",
            min=1,
            help="Keep loaded models within this many MiB, unloading the least recently used.",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Worker processes sharing the port; models are loaded once, before forking.",
        ),
    ] = 1,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
    scheduler: Annotated[
        bool,
        typer.Option(
            "--scheduler/--no-scheduler",
            help="Start scheduled batch jobs (`liveml schedules`); one leader among servers sharing a database.",
        ),
    ] = True,
) -> None:
    """Serve models over HTTP: liveml's API, Open Inference V2, KServe V1, SageMaker, MLflow and Vertex AI."""
    from liveml.api.context import ApiContext
    from liveml.registry import Registry
    from liveml.serving import ModelHost
    from liveml.serving.host import HostOptions
    from liveml.serving.model_dir import register_model_dir

    settings = settings_of(ctx)
    update: dict[str, object] = {}
    if host is not None:
        update["server_host"] = host
    if port is not None:
        update["server_port"] = port
    if models is not None:
        update["serve_models"] = [m.strip() for m in models.split(",") if m.strip()]
    if default_model is not None:
        update["default_model"] = default_model
    if model_dir is not None:
        update["model_dir"] = model_dir
    if poll is not None:
        update["alias_poll_s"] = poll
    if lazy:
        update["lazy_load"] = True
    settings = settings.model_copy(update=update)
    sagemaker_dir = Path("/opt/ml/model")
    folder = settings.model_dir or (
        sagemaker_dir if sagemaker_dir.is_dir() and settings.database_url is None else None
    )

    if folder is not None and folder == sagemaker_dir:
        # SageMaker's contract: the container answers on port 8080 of every interface
        settings = settings.model_copy(
            update={
                "server_host": settings.server_host
                if "server_host" in settings.model_fields_set
                else "0.0.0.0",
                "server_port": settings.server_port if "server_port" in settings.model_fields_set else 8080,
            }
        )
    elif settings.vertex_predict_route and "server_host" not in settings.model_fields_set:
        settings = settings.model_copy(update={"server_host": "0.0.0.0"})  # Vertex AI probes from outside
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    registry = Registry(settings, create=folder is not None)
    refs = settings.serve_models
    if folder is not None:
        name = settings.default_model or "model"
        served = register_model_dir(registry, folder, name=name)
        error_console().print(f"model folder {folder}: serving {served}")
        refs = [name]
    from liveml.monitoring.log import sink_for

    host_ = ModelHost(
        registry,
        refs=refs,
        sink=sink_for(settings),
        options=HostOptions(
            poll_interval_s=settings.alias_poll_s,
            max_rows=settings.max_request_rows,
            lazy=settings.lazy_load,
            compiled=compiled,
            batching=batching,
            max_batch_size=max_batch_size,
            max_latency_ms=max_latency_ms,
            memory_budget_mb=memory_budget_mb,
        ),
    )
    context = ApiContext(
        host=host_,
        max_body_bytes=settings.max_body_bytes,
        default_model=settings.default_model if folder is None else refs[0] if refs else None,
        vertex_predict_route=settings.vertex_predict_route,
        vertex_health_route=settings.vertex_health_route,
    )
    if settings.server_host not in ("127.0.0.1", "localhost", "::1"):
        error_console().print(f"listening on {settings.server_host}: reachable from other machines")
    announce = lambda: _announce(host_, settings.server_host, settings.server_port)  # noqa: E731
    with _scheduler(settings, enabled=scheduler and folder is None):
        _run(host_, context, settings, workers=workers, log_level=log_level, announce=announce)


@contextmanager
def _scheduler(settings: Settings, *, enabled: bool) -> Iterator[None]:
    """The scheduler thread, in this (the master) process only: forked workers do not run it."""
    if not enabled:
        yield
        return
    from liveml.jobs.scheduler import Scheduler

    running = Scheduler(settings).start()
    try:
        yield
    finally:
        running.stop()


def _run(
    host_: ModelHost,
    context: ApiContext,
    settings: Settings,
    *,
    workers: int,
    log_level: str,
    announce: Callable[[], None],
) -> None:
    import uvicorn

    from liveml.api import create_app

    if workers == 1:
        app = create_app(host_, context=context, on_ready=announce)
        uvicorn.run(
            app,
            host=settings.server_host,
            port=settings.server_port,
            log_level=log_level.lower(),
            access_log=log_level.lower() == "debug",
            timeout_graceful_shutdown=30,
        )
        return
    from liveml.api.workers import run_workers

    # several workers: load everything here, once, then fork; each worker follows alias moves itself
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # OpenMP's thread pool does not survive a fork
    host_.start(watch=False)
    announce()
    error_console().print(f"{workers} worker processes")
    config = uvicorn.Config(
        create_app(host_, context=context, start_host=False),
        host=settings.server_host,
        port=settings.server_port,
        log_level=log_level.lower(),
        access_log=log_level.lower() == "debug",
        timeout_graceful_shutdown=30,
    )
    run_workers(config, workers, after_fork=host_.after_fork, before_fork=host_.refresh)


def _announce(host: object, bind: str, port: int) -> None:
    """After start: what is served, and a curl that works against it."""
    from liveml.serving.host import ModelHost
    from liveml.serving.warmup import typical_rows

    assert isinstance(host, ModelHost)
    console = error_console()
    served = host.served_models()
    if not served:
        console.print(
            "no model is served yet: push one (`liveml push NAME FILE --alias production`); it is picked up within seconds"
        )
        return
    for model in served:
        aliases = f" ({', '.join(model.version.aliases)})" if model.version.aliases else ""
        how = f" as {model.loaded.serving_format} (compiled)" if model.loaded.compiled else ""
        console.print(f"serving {model.version.ref}{aliases}{how}", highlight=False)
    first = served[0]
    rows = typical_rows(host.registry, first.loaded)
    if rows is None:
        row = {c.name: 0 for c in first.version.signature.inputs}
    else:
        row = json.loads(rows.head(1).to_json(orient="records"))[0]
    address = "127.0.0.1" if bind in ("0.0.0.0", "::") else bind
    body = json.dumps({"inputs": [row]})
    console.print(
        f"try: curl -X POST http://{address}:{port}/v1/models/{first.name}/predict "
        f"-H 'content-type: application/json' -d '{body}'",
        highlight=False,
        markup=False,
    )
