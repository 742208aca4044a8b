"""Prometheus metrics of one serving host (its own registry, so several hosts never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # the *_created series double the output and no dashboard reads them

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("model", "version")
        self.requests = Counter(
            "liveml_predict_requests",
            "Prediction calls answered, by model and version",
            labels,
            registry=self.registry,
        )
        self.rows = Counter("liveml_predicted_rows", "Rows predicted", labels, registry=self.registry)
        self.errors = Counter(
            "liveml_predict_errors",
            "Prediction calls refused or failed, by kind",
            ("model", "kind"),
            registry=self.registry,
        )
        self.model_seconds = Histogram(
            "liveml_model_seconds",
            "Time inside the model (validation included)",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "liveml_batch_rows", "Rows per model call", labels, buckets=ROW_BUCKETS, registry=self.registry
        )
        self.queue_seconds = Histogram(
            "liveml_queue_seconds",
            "Time a request waited for the model (batching): queue time, beside liveml_model_seconds",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.loaded = Gauge("liveml_loaded_models", "Model versions loaded in memory", registry=self.registry)
        self.evictions = Counter(
            "liveml_model_evictions",
            "Versions unloaded to stay within the memory budget",
            ("model",),
            registry=self.registry,
        )
        self.swaps = Counter(
            "liveml_model_swaps", "Version switches after an alias moved", ("model",), registry=self.registry
        )
        self.http_requests = Counter(
            "liveml_http_requests",
            "HTTP requests by route and status",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "liveml_http_request_seconds",
            "HTTP request time, parsing to response",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )


__all__ = ["ServingMetrics"]
