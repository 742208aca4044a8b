"""The one table mapping domain errors to HTTP status codes, and the error bodies each protocol uses."""

from __future__ import annotations

import logging
import uuid

from starlette.responses import Response

from liveml.api.responses import json_response
from liveml.errors import (
    Conflict,
    Corrupted,
    Forbidden,
    Invalid,
    LivemlError,
    ModelFailed,
    NotFound,
    NotInitialized,
    TimedOut,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger("liveml.api")

STATUS: dict[type[LivemlError], int] = {
    Invalid: 400,
    NotFound: 404,
    Unauthorized: 401,
    Forbidden: 403,
    TooManyRequests: 429,
    Conflict: 409,
    NotInitialized: 503,
    Unavailable: 503,
    Corrupted: 503,
    TimedOut: 503,
    ModelFailed: 500,
    LivemlError: 500,
}


class PayloadTooLarge(Invalid):
    kind = "payload_too_large"


class UnsupportedMediaType(Invalid):
    kind = "unsupported_media_type"


class HeadersTooLarge(Invalid):
    kind = "headers_too_large"


STATUS.update({PayloadTooLarge: 413, UnsupportedMediaType: 415, HeadersTooLarge: 431})


def status_of(exc: LivemlError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


#: MLflow's error codes for the statuses that have their own (else BAD_REQUEST or INTERNAL_ERROR)
MLFLOW_CODES = {
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    429: "REQUEST_LIMIT_EXCEEDED",
}


def error_response(
    exc: LivemlError, *, style: str = "native", headers: dict[str, str] | None = None
) -> Response:
    """``{"error": message}`` (Open Inference V2, KServe, Vertex); native adds the error kind;
    MLflow uses ``{"error_code", "message"}``."""
    status = status_of(exc)
    body: dict[str, object]
    if style == "mlflow":
        code = MLFLOW_CODES.get(status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR")
        body = {"error_code": code, "message": exc.message}
    elif style == "native":
        body = {"error": exc.message, "kind": exc.kind}
    else:
        body = {"error": exc.message}
    return json_response(body, status=status, headers=headers)


def internal_error(exc: BaseException, *, style: str = "native") -> Response:
    """A bug: the body hides internals and gives a request id to find the traceback in the log."""
    request_id = uuid.uuid4().hex[:16]
    log.error("unhandled error (request %s)", request_id, exc_info=exc)
    message = f"internal error; the server log has the details under request id {request_id}"
    body: dict[str, object] = {"error": message, "request_id": request_id}
    if style == "mlflow":
        body = {"error_code": "INTERNAL_ERROR", "message": message}
    return json_response(body, status=500)


__all__ = [
    "STATUS",
    "HeadersTooLarge",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "error_response",
    "internal_error",
    "status_of",
]
