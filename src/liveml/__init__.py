"""liveml: make a trained model live — registry, runtimes, serving, batch and monitoring."""

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
from liveml.registry import AliasEvent, ModelRef, ModelSummary, ModelVersion, Registry
from liveml.registry.loading import LoadedModel, load_model
from liveml.runtimes import Prediction
from liveml.settings import Settings
from liveml.signature import ColumnSpec, Signature

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # the HTTP client pulls in httpx (~20 MB); servers and batch workers never need it
    if name in ("Client", "RemotePrediction"):
        from liveml import client

        return getattr(client, name)
    raise AttributeError(f"module 'liveml' has no attribute {name!r}")


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
