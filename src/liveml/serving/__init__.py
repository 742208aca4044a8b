"""The serving host: loads the versions deployments point at, validates, predicts, swaps versions."""

from liveml.monitoring.records import MemorySink, PredictionRecord, PredictionSink
from liveml.serving.host import HostResult, ModelHost, ServedModel

__all__ = ["HostResult", "MemorySink", "ModelHost", "PredictionRecord", "PredictionSink", "ServedModel"]
