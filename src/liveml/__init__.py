"""liveml: make a trained model live — registry, runtimes, serving, batch and monitoring."""

from typing import TYPE_CHECKING

from liveml.errors import (
    Conflict,
    Corrupted,
    Forbidden,
    Invalid,
    LivemlError,
    NotFound,
    NotInitialized,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)

__version__ = "0.1.0"

#: the public names that live in other modules, imported on first use: ``import liveml`` (and with it
#: every ``liveml`` command, before it starts) does not pay for the registry's SQLAlchemy, pandas and
#: pydantic until something asks for them; the HTTP client pulls in httpx (~20 MB), which servers and batch
#: workers never need
_LAZY = {
    "AliasEvent": "liveml.registry",
    "ModelRef": "liveml.registry",
    "ModelSummary": "liveml.registry",
    "ModelVersion": "liveml.registry",
    "Registry": "liveml.registry",
    "LoadedModel": "liveml.registry.loading",
    "load_model": "liveml.registry.loading",
    "Prediction": "liveml.runtimes",
    "Settings": "liveml.settings",
    "ColumnSpec": "liveml.signature",
    "Signature": "liveml.signature",
    "Client": "liveml.client",
    "RemotePrediction": "liveml.client",
}

if TYPE_CHECKING:
    from liveml.client import Client, RemotePrediction
    from liveml.registry import AliasEvent, ModelRef, ModelSummary, ModelVersion, Registry
    from liveml.registry.loading import LoadedModel, load_model
    from liveml.runtimes import Prediction
    from liveml.settings import Settings
    from liveml.signature import ColumnSpec, Signature


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'liveml' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups find it here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AliasEvent",
    "Client",
    "ColumnSpec",
    "Conflict",
    "Corrupted",
    "Forbidden",
    "Invalid",
    "LivemlError",
    "LoadedModel",
    "ModelRef",
    "ModelSummary",
    "ModelVersion",
    "NotFound",
    "NotInitialized",
    "Prediction",
    "Registry",
    "RemotePrediction",
    "Settings",
    "Signature",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "__version__",
    "load_model",
]
