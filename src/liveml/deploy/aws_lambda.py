"""AWS Lambda: the model image as a Lambda container function behind API Gateway (REST or HTTP API) or a
function URL. The image's entrypoint hands the process to the Lambda runtime interface client
(``python -m awslambdaric liveml.deploy.aws_lambda.handler``) when ``AWS_LAMBDA_RUNTIME_API`` is set.

``handler(event, context)`` answers every route ``liveml serve`` has (``/invocations``,
``/v1/models/{name}/predict``, Open Inference V2, ...) through Mangum, the ASGI adapter. The first
invocation of a fresh execution environment builds the server: the model folder at ``LIVEML_MODEL_DIR``
(default ``/opt/ml/model``, where liveml's model images put the bundle) is pushed into a registry of its
own under a temporary data home (``/tmp`` is the only writable path on Lambda), loaded and warmed; later
invocations of the same environment reuse it. No background thread runs between invocations (Lambda
freezes the process): aliases are not followed, and the prediction log is off unless
``LIVEML_LOG_URL`` names where to keep it (S3) or ``LIVEML_LOG_PREDICTIONS`` says otherwise.

API Gateway (IAM, authorizers, API keys) or the function URL's auth checks callers: the function needs
``LIVEML_PLATFORM_AUTH=true`` (the model image sets it); liveml asks for no API key of its own.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liveml.deploy.clouds import (
    SAGEMAKER_MODEL_DIR,
    assemble,
    host_options,
    model_folder,
    platform_settings,
)
from liveml.errors import Invalid, LivemlError
from liveml.settings import Settings

if TYPE_CHECKING:
    from starlette.applications import Starlette

log = logging.getLogger("liveml.lambda")
_lock = threading.Lock()
_adapter: Any = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda function: an API Gateway (v1 or v2) or function-URL event in, its HTTP response out."""
    adapter = _adapter or _warm()
    response: dict[str, Any] = adapter(event, context)
    return response


def _warm() -> Any:
    """Build the server once per execution environment. When it cannot be built (no model at
    LIVEML_MODEL_DIR, a damaged bundle, ...) every request gets a 503 saying why, and the next
    invocation tries again."""
    global _adapter
    with _lock:
        if _adapter is not None:
            return _adapter
        try:
            _adapter = adapter_for(build_app(lambda_settings(Settings())))
            return _adapter
        except LivemlError as exc:
            log.error("liveml cannot serve: %s", exc.message)
            return adapter_for(_unavailable(exc.message))


def lambda_settings(settings: Settings) -> Settings:
    """Lambda's needs over the environment's settings: a fresh data home under /tmp, the model folder
    (default /opt/ml/model), no alias polling, the prediction log only where asked for, and no
    per-caller limits (every request comes through API Gateway; see ``platform_settings``)."""
    if not settings.platform_auth and settings.auth:
        raise Invalid(
            "on Lambda, API Gateway or the function URL authenticates callers: set LIVEML_PLATFORM_AUTH=true "
            "(liveml's model images do) and protect the API with IAM, an authorizer or API keys"
        )
    given = settings.model_fields_set
    home = Path(tempfile.mkdtemp(prefix="liveml-"))
    log_wanted = bool({"log_url", "log_predictions"} & given)
    return platform_settings(settings).model_copy(
        update={
            "home": home,
            "model_dir": settings.model_dir or SAGEMAKER_MODEL_DIR,
            "alias_poll_s": 0.0,
            "log_predictions": settings.log_predictions and log_wanted,
        }
    )


def build_app(settings: Settings) -> Starlette:
    """The loaded, warmed ASGI app over the model folder of ``settings`` (see ``lambda_settings``)."""
    from liveml.api import create_app

    parts = assemble(
        settings, require_keys=False, options=host_options(settings), folder=model_folder(settings)
    )
    parts.host.start(watch=False)
    log.info("liveml serves %s from %s", parts.served, parts.folder)
    return create_app(parts.host, context=parts.context, start_host=False)


def adapter_for(app: Starlette) -> Any:
    """Mangum over ``app``, without the ASGI lifespan: Mangum would run startup and shutdown around
    every invocation, where the host is started once and kept warm."""
    from mangum import Mangum

    return Mangum(app, lifespan="off")


def _unavailable(message: str) -> Starlette:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from liveml.api.responses import json_response

    async def refuse(request: Request) -> Response:
        return json_response({"error": f"the model is not served: {message}"}, status=503)

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return Starlette(routes=[Route("/{path:path}", refuse, methods=methods)])


__all__ = ["adapter_for", "build_app", "handler", "lambda_settings"]
