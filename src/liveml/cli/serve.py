"""``liveml serve``: every protocol on one port, over the models of the registry."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from liveml.cli.context import settings_of
from liveml.cli.render import error_console
from liveml.errors import Invalid
from liveml.settings import Settings

if TYPE_CHECKING:
    from liveml.api.context import ApiContext
    from liveml.registry import Registry
    from liveml.serving import ModelHost

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: reachable from this machine only."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_auth(settings: Settings) -> bool:
    """Whether the server asks for API keys; refuses keyless serving on a reachable address unless a
    platform that authenticates callers is in front (LIVEML_PLATFORM_AUTH). Says loudly when keys are off."""
    bind = f"{settings.server_host}:{settings.server_port}"
    if settings.platform_auth:
        error_console().print(
            f"[bold red]API KEYS ARE OFF[/]: LIVEML_PLATFORM_AUTH says the platform in front of {bind} "
            "(SageMaker, Vertex AI, Lambda, an authenticating proxy) checks every caller. Anyone who reaches "
            "this port directly can call every endpoint.",
            markup=True,
            highlight=False,
        )
        return False
    if settings.auth:
        return True
    if not is_loopback(settings.server_host):
        raise Invalid(
            f"serving without API keys (--no-auth or LIVEML_AUTH=false) is allowed only on a loopback address "
            f"(127.0.0.1, ::1), not {settings.server_host}: anyone on the network could call every endpoint. "
            "Keep keys on (`liveml keys create`), bind 127.0.0.1, or set LIVEML_PLATFORM_AUTH=true when a "
            "platform in front (SageMaker, Vertex AI, Lambda) authenticates callers itself"
        )
    error_console().print(
        f"[bold yellow]API keys are off[/] (--no-auth): every process on this machine can call every "
        f"endpoint of {bind}.",
        markup=True,
        highlight=False,
    )
    return False


def check_tls(settings: Settings) -> None:
    given = [p for p in (settings.ssl_certfile, settings.ssl_keyfile) if p is not None]
    if len(given) == 1:
        raise Invalid("HTTPS needs both --ssl-certfile and --ssl-keyfile (PEM files); give both or neither")
    for path in given:
        if not path.is_file():
            raise Invalid(f"no such file: {path}; --ssl-certfile and --ssl-keyfile take PEM files")


def warn_without_keys(registry: Registry) -> None:
    from liveml.security.keys import KeyStore

    if not any(k.status == "active" for k in KeyStore(registry.db).list()):
        error_console().print(
            "[bold yellow]no active API key exists[/]: every request but health and readiness gets 401. "
            "`liveml init` creates the admin key, `liveml keys create --role predictor` a client's.",
            markup=True,
            highlight=False,
        )


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to bind (default 127.0.0.1; 0.0.0.0 on a managed cloud)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            help="Port (default AIP_HTTP_PORT or SAGEMAKER_BIND_TO_PORT when set, 8080 on a managed cloud, "
            "else 8000).",
        ),
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
            help="Serve the one model in this folder (a bundle from `liveml export`, or one model file), "
            "no registry database needed; wins over LIVEML_MODEL_DIR and the clouds' model locations.",
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
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Serve without API keys: only on a loopback address (LIVEML_PLATFORM_AUTH=true for a "
            "platform that authenticates callers itself).",
        ),
    ] = False,
    ssl_certfile: Annotated[
        Path | None, typer.Option("--ssl-certfile", help="Serve HTTPS with this certificate (PEM).")
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option("--ssl-keyfile", help="The certificate's private key (PEM).")
    ] = None,
) -> None:
    """Serve models over HTTP: liveml's API, Open Inference V2, KServe V1, SageMaker, MLflow and Vertex AI."""
    from liveml.deploy.clouds import assemble, host_options, model_folder, platform_settings

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
    if poll is not None:
        update["alias_poll_s"] = poll
    if lazy:
        update["lazy_load"] = True
    if no_auth:
        update["auth"] = False
    if ssl_certfile is not None:
        update["ssl_certfile"] = ssl_certfile
    if ssl_keyfile is not None:
        update["ssl_keyfile"] = ssl_keyfile
    settings = platform_settings(settings.model_copy(update=update))
    require_keys = check_auth(settings)
    check_tls(settings)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    folder = model_folder(settings, given=model_dir)
    options = host_options(
        settings,
        compiled=compiled,
        batching=batching,
        max_batch_size=max_batch_size,
        max_latency_ms=max_latency_ms,
        memory_budget_mb=memory_budget_mb,
    )
    parts = assemble(settings, require_keys=require_keys, options=options, folder=folder)
    if folder is not None:
        error_console().print(f"model folder {folder}: serving {parts.served}")
    if not is_loopback(settings.server_host):
        error_console().print(f"listening on {settings.server_host}: reachable from other machines")
    if require_keys:
        warn_without_keys(parts.registry)
    announce = lambda: _announce(parts.host, settings, require_keys=require_keys)  # noqa: E731
    with _scheduler(settings, enabled=scheduler and folder is None):
        _run(parts.host, parts.context, settings, workers=workers, log_level=log_level, announce=announce)


@contextmanager
def _scheduler(settings: Settings, *, enabled: bool) -> Iterator[None]:
    """The scheduler thread, in this (the master) process only: forked workers do not run it."""
    if not enabled:
        yield
        return
    from liveml.jobs.scheduler import DEFAULT_POLL_S, Scheduler

    # wake often enough for a monitor interval shorter than the default poll
    poll_s = min(DEFAULT_POLL_S, settings.monitor_interval_s or DEFAULT_POLL_S)
    running = Scheduler(settings, poll_s=max(poll_s, 0.5)).start()
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
        uvicorn.run(app, **_server_options(settings, log_level))
        return
    from liveml.api.workers import run_workers

    # several workers: load everything here, once, then fork; each worker follows alias moves itself
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # OpenMP's thread pool does not survive a fork
    host_.start(watch=False)
    announce()
    error_console().print(f"{workers} worker processes")
    config = uvicorn.Config(
        create_app(host_, context=context, start_host=False), **_server_options(settings, log_level)
    )
    run_workers(config, workers, after_fork=host_.after_fork, before_fork=host_.refresh)


def _server_options(settings: Settings, log_level: str) -> dict[str, Any]:
    """uvicorn's options, the same with one process or several."""
    return {
        "host": settings.server_host,
        "port": settings.server_port,
        "log_level": log_level.lower(),
        "access_log": log_level.lower() == "debug",
        "timeout_graceful_shutdown": 30,
        "ssl_certfile": _path(settings.ssl_certfile),
        "ssl_keyfile": _path(settings.ssl_keyfile),
        "loop": _loop(settings),
        "ws": "none",  # no WebSocket routes: the websockets library is not imported
    }


def _loop(settings: Settings) -> str:
    """uvicorn's loop name for the configured event loop.

    `auto` is asyncio's own loop: under full load uvloop left the first request of most connections in a
    burst of new ones waiting 0.5-1.4 s (it accepts one connection per turn of its loop); asyncio accepts
    them all at once, for ~4% more CPU per single-row request (docs/benchmarks.md).
    """
    return "asyncio" if settings.server_loop == "auto" else settings.server_loop


def _path(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def key_header(settings: Settings) -> str:
    """The curl option that sends the CLI's key: read from the credentials file, else LIVEML_API_KEY."""
    path = settings.resolved_credentials_file
    if settings.api_key is None and path.is_file():
        return f'-H "Authorization: Bearer $(cat {shlex.quote(str(path))})"'
    return '-H "Authorization: Bearer $LIVEML_API_KEY"'


def _announce(host: object, settings: Settings, *, require_keys: bool) -> None:
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
    body = json.dumps({"inputs": [row]})
    key = f" {key_header(settings)}" if require_keys else ""
    console.print(
        f"try: curl -X POST {settings.local_server_url}/v1/models/{first.name}/predict "
        f"-H 'content-type: application/json'{key} -d '{body}'",
        highlight=False,
        markup=False,
    )
