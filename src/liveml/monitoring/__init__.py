"""Monitoring: the prediction records that serving and batch jobs emit, and (later) the log, drift, alerts."""

from liveml.monitoring.records import MemorySink, NullSink, PredictionBatch, PredictionRecord, PredictionSink

__all__ = ["MemorySink", "NullSink", "PredictionBatch", "PredictionRecord", "PredictionSink"]
