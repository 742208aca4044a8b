"""Every domain error maps to an HTTP status in the one table; bad input never maps to a 5xx."""

from __future__ import annotations

import liveml.api.errors as api_errors
from liveml import errors


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_error_class_has_a_status() -> None:
    """Every kind of error (the classes of liveml.errors and api.errors) is in the table; a narrower
    error defined elsewhere (e.g. a job's TooManyErrors(Invalid)) takes its status from a base class."""
    for cls in _subclasses(errors.LivemlError) | {errors.LivemlError}:
        if cls.__module__ in ("liveml.errors", "liveml.api.errors"):
            assert cls in api_errors.STATUS, f"{cls.__name__} is missing from api.errors.STATUS"
        else:
            assert any(base in api_errors.STATUS for base in cls.__mro__[1:]), cls


def test_statuses() -> None:
    status = api_errors.status_of
    assert status(errors.Invalid("x")) == 400 and status(api_errors.PayloadTooLarge("x")) == 413
    assert status(api_errors.UnsupportedMediaType("x")) == 415 and status(errors.NotFound("x")) == 404
    assert status(errors.Conflict("x")) == 409 and status(errors.Unavailable("x")) == 503
    assert status(errors.ModelFailed("x")) == 500
