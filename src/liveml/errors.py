"""Typed domain errors. Every message says what is wrong and how to fix it.

Nothing here knows about HTTP or the CLI: the edges map these classes to status codes and exit codes
in one table each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def first_problem(exc: ValidationError) -> tuple[str, str, object]:
    """Where, what and the given value of a pydantic ``ValidationError``'s first problem."""
    first = exc.errors()[0]
    return ".".join(str(part) for part in first["loc"]), str(first["msg"]), first.get("input")


class LivemlError(Exception):
    """Base of every error liveml raises on purpose; its message is meant for the user."""

    kind: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(LivemlError):
    """A model, version, alias or file that does not exist."""

    kind = "not_found"


class Invalid(LivemlError):
    """Input that cannot be accepted as given (bad name, bad file, wrong columns, ...)."""

    kind = "invalid"


class Conflict(LivemlError):
    """The request contradicts the stored state (e.g. deleting a version an alias points at)."""

    kind = "conflict"


class Unavailable(LivemlError):
    """A backing component is missing, locked or unreachable (database, store, optional package)."""

    kind = "unavailable"


class Corrupted(LivemlError):
    """Stored state failed verification (e.g. an artifact whose sha256 no longer matches)."""

    kind = "corrupted"


class ModelFailed(LivemlError):
    """A model raised on input that passed validation: a fault of the model, not of the request."""

    kind = "model_error"


class NotInitialized(Unavailable):
    """The data home or database has not been created yet."""

    kind = "not_initialized"


class Unauthorized(LivemlError):
    """No API key, or one that is unknown, revoked or expired."""

    kind = "unauthorized"


class Forbidden(LivemlError):
    """A valid API key whose role (or model list) does not allow the request."""

    kind = "forbidden"


class TooManyRequests(LivemlError):
    """A key (or client) over its rate or concurrency limit; ``retry_after_s`` says when to try again."""

    kind = "too_many_requests"

    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TimedOut(Unavailable):
    """A request that took longer than the server allows."""

    kind = "timeout"


__all__ = [
    "Conflict",
    "Corrupted",
    "Forbidden",
    "Invalid",
    "LivemlError",
    "ModelFailed",
    "NotFound",
    "NotInitialized",
    "TimedOut",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "first_line",
]
