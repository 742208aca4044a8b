"""The serving host: loads the versions deployments point at, validates, predicts, swaps versions."""

from liveml.serving.host import HostResult, ModelHost, ServedModel
from liveml.serving.records import MemorySink, PredictionRecord, PredictionSink

__all__ = ["HostResult", "MemorySink", "ModelHost", "PredictionRecord", "PredictionSink", "ServedModel"]
