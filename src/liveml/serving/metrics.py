"""Prometheus metrics of one serving host (its own registry, so several hosts never collide).

With several worker processes (``liveml serve --workers N``) a scrape reaches one worker; so before
forking, the master calls :meth:`ServingMetrics.share_across_processes`: from then on every process
writes its series to memory-mapped files in one folder (prometheus_client's multiprocess mode) and a
scrape answered by any worker adds up every process's counters and histograms — the whole server."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

disable_created_metrics()  # the *_created series double the output and no dashboard reads them

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads its folder from this variable


@dataclass(frozen=True)
class ModelSeries:
    """One version's labelled series, looked up once (``labels()`` costs microseconds per call)."""

    requests: Any
    rows: Any
    model_seconds: Any
    batch_rows: Any
    queue_seconds: Any


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.shared_dir: str | None = None
        self._build(self.registry)

    def _build(self, registry: CollectorRegistry | None) -> None:
        # labelled series by their labels; made anew with the metrics (workers fork after a rebuild)
        self._series: dict[tuple[str, ...], Any] = {}
        labels = ("model", "version")
        self.requests = Counter(
            "liveml_predict_requests",
            "Prediction calls answered, by model and version",
            labels,
            registry=registry,
        )
        self.rows = Counter("liveml_predicted_rows", "Rows predicted", labels, registry=registry)
        self.errors = Counter(
            "liveml_predict_errors",
            "Prediction calls refused or failed, by kind",
            ("model", "kind"),
            registry=registry,
        )
        self.model_seconds = Histogram(
            "liveml_model_seconds",
            "Time inside the model (validation included)",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_rows = Histogram(
            "liveml_batch_rows", "Rows per model call", labels, buckets=ROW_BUCKETS, registry=registry
        )
        self.queue_seconds = Histogram(
            "liveml_queue_seconds",
            "Time a request waited for the model (batching): queue time, beside liveml_model_seconds",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # set (never inc/dec) by the host; across worker processes the latest value set wins
        self.loaded = Gauge(
            "liveml_loaded_models",
            "Model versions loaded in memory",
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.evictions = Counter(
            "liveml_model_evictions",
            "Versions unloaded to stay within the memory budget",
            ("model",),
            registry=registry,
        )
        self.swaps = Counter(
            "liveml_model_swaps", "Version switches after an alias moved", ("model",), registry=registry
        )
        self.http_requests = Counter(
            "liveml_http_requests",
            "HTTP requests by route and status",
            ("route", "method", "status"),
            registry=registry,
        )
        self.http_seconds = Histogram(
            "liveml_http_request_seconds",
            "HTTP request time, parsing to response",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def model_series(self, model: str, version: int) -> ModelSeries:
        """The series of one model version (requests, rows, model time, batch rows, queue time)."""
        key = (model, str(version))
        found: ModelSeries | None = self._series.get(key)
        if found is None:
            found = ModelSeries(
                self.requests.labels(*key),
                self.rows.labels(*key),
                self.model_seconds.labels(*key),
                self.batch_rows.labels(*key),
                self.queue_seconds.labels(*key),
            )
            self._series[key] = found
        return found

    def http_series(self, route: str, method: str, status: int) -> tuple[Any, Any]:
        """The request counter and the time histogram of one route, method and status."""
        key = ("http", route, method, str(status))
        found = self._series.get(key)
        if found is None:
            found = (self.http_requests.labels(route, method, key[3]), self.http_seconds.labels(route))
            self._series[key] = found
        return found

    def _own(self) -> list[Any]:
        return [
            self.requests,
            self.rows,
            self.errors,
            self.model_seconds,
            self.batch_rows,
            self.queue_seconds,
            self.loaded,
            self.evictions,
            self.swaps,
            self.http_requests,
            self.http_seconds,
        ]

    def share_across_processes(self, directory: str) -> None:
        """Switch to prometheus_client's multiprocess mode, writing to the empty folder ``directory``: call
        it in the master before forking workers. The series are made anew (what the master counted so far
        is dropped, except the loaded-models gauge); other collectors on ``registry`` (alert state) stay."""
        if self.shared_dir is not None:
            return
        loaded = self.loaded._value.get()
        for metric in self._own():
            self.registry.unregister(metric)
        os.environ[_MULTIPROC_ENV] = directory
        values.ValueClass = values.MultiProcessValue()  # every series made from now on lives in the folder
        self._build(None)  # not on the registry: the collector below reads them from the files
        MultiProcessCollector(self.registry, path=directory)
        self.loaded.set(loaded)
        self.shared_dir = directory

    def process_ended(self, pid: int) -> None:
        """A worker process is gone: its counts stay in the totals, its gauge values no longer count."""
        if self.shared_dir is not None:
            mark_process_dead(pid, self.shared_dir)


__all__ = ["ModelSeries", "ServingMetrics"]
