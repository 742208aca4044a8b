"""Model formats behind one contract; see ``base.Runtime``."""

from liveml.runtimes.base import ModelDescription, Prediction, Runtime
from liveml.runtimes.catalog import detect_format, get_runtime, runtimes, supported_formats

__all__ = [
    "ModelDescription",
    "Prediction",
    "Runtime",
    "detect_format",
    "get_runtime",
    "runtimes",
    "supported_formats",
]
