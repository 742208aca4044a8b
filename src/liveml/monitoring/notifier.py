"""Delivering alert notices: the :class:`Notifier` (background threads, a bounded queue, retries with
backoff, outcomes written back to ``alert_events``) and the Prometheus series of monitor results.

``notify`` never blocks: a full queue drops the notice, with a warning and a counter."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from liveml import __version__
from liveml.errors import first_line

if TYPE_CHECKING:
    from liveml.monitoring.alerts import AlertRule
    from liveml.monitoring.results import MonitorResult
    from liveml.registry.registry import Registry

from liveml.monitoring.channels import (
    DEFAULT_RETRY_DELAYS,
    DeliveryOutcome,
    Notice,
    SmtpConfig,
    Status,
    channel_label,
    send_email,
    send_http,
)

log = logging.getLogger("liveml.alerts")


# -- Prometheus ------------------------------------------------------------------------------------
class AlertMetrics:
    """The alert series on one Prometheus registry (the serving host's, so /metrics shows them)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.value = Gauge(
            "liveml_monitor_value",
            "Last monitored value, by model and metric",
            ("model", "metric"),
            registry=registry,
        )
        self.firing = Gauge(
            "liveml_alert_firing",
            "1 while an alert rule's condition holds, else 0",
            ("model", "rule", "metric", "severity"),
            registry=registry,
        )
        self.deliveries = Counter(
            "liveml_alert_deliveries",
            "Alert deliveries by channel type and outcome (delivered, failed, dropped)",
            ("channel", "outcome"),
            registry=registry,
        )
        self._exported: dict[str, set[str]] = {}
        self._lock = threading.Lock()


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, AlertMetrics] = weakref.WeakKeyDictionary()
_METRICS_LOCK = threading.Lock()


def alert_metrics(registry: CollectorRegistry | None = None) -> AlertMetrics:
    """The alert series registered on ``registry`` (default: prometheus_client's global one), made once."""
    registry = REGISTRY if registry is None else registry
    with _METRICS_LOCK:
        if registry not in _METRICS:
            _METRICS[registry] = AlertMetrics(registry)
        return _METRICS[registry]


def result_metrics(result: MonitorResult) -> dict[str, float]:
    """Every named figure of a result that has a value (the names alert rules use)."""
    names = ["drift_share", "prediction_drift", "multivariate", "error_rate", "latency_p95_ms", "rows"]
    names += [f"feature:{f.column}" for f in result.features]
    names += [m.name for m in result.realized.metrics] if result.realized else []
    names += [f"estimated_{m.name}" for m in result.estimated.metrics] if result.estimated else []
    values = {name: result.metric(name) for name in names}
    return {k: float(v) for k, v in values.items() if v is not None and v == v and abs(v) != float("inf")}


def export_gauges(
    rules: Iterable[AlertRule], results: Iterable[MonitorResult], registry: CollectorRegistry | None = None
) -> AlertMetrics:
    """Set ``liveml_monitor_value`` from ``results`` (a metric gone from a model's newer result is removed)
    and ``liveml_alert_firing`` from ``rules`` — pass every rule: series of rules not given are removed."""
    metrics = alert_metrics(registry)
    with metrics._lock:
        for result in results:
            values = result_metrics(result)
            for gone in metrics._exported.get(result.model, set()) - values.keys():
                metrics.value.remove(result.model, gone)
            for name, value in values.items():
                metrics.value.labels(result.model, name).set(value)
            metrics._exported[result.model] = set(values)
        metrics.firing.clear()
        for rule in rules:
            if rule.enabled:
                labels = (rule.model, str(rule.id), rule.metric, rule.severity)
                metrics.firing.labels(*labels).set(1 if rule.state == "firing" else 0)
    return metrics


# -- the notifier ----------------------------------------------------------------------------------
@dataclass(order=True)
class _Job:
    due: float
    seq: int
    notice: Notice = field(compare=False)
    index: int = field(compare=False)
    attempts: int = field(compare=False, default=0)


class Notifier:
    """Delivers notices in ``workers`` background threads; ``notify`` only queues (``max_pending``
    deliveries at most). A failed try is retried after each of ``retry_delays`` in turn."""

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        smtp: SmtpConfig | None = None,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout_s: float = 10.0,
        max_pending: int = 1000,
        workers: int = 4,
        metrics: AlertMetrics | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        from liveml.monitoring.alerts import AlertStore

        self.store = AlertStore(registry) if registry is not None else None
        self.smtp = smtp
        self.retry_delays = tuple(retry_delays)
        self.max_pending = max_pending
        self.metrics = metrics
        self.dropped = 0
        self.client = httpx.Client(
            timeout=timeout_s, transport=transport, headers={"User-Agent": f"liveml/{__version__}"}
        )
        self._workers = workers
        self._threads: list[threading.Thread] = []
        self._cond = threading.Condition()
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._pending = 0
        self._stopping = False
        self._closed = False
        self._unrecorded: list[tuple[int, int, dict[str, Any]]] = []

    @property
    def attempts(self) -> int:
        return len(self.retry_delays) + 1

    def notify(self, notice: Notice) -> bool:
        """Queue a notice for each of its channels; False (and a warning) when the queue is full."""
        count = len(notice.channels)
        if count == 0:
            return True  # Prometheus-only rule: nothing to deliver
        with self._cond:
            if self._closed or self._pending + count > self.max_pending:
                self.dropped += 1
                why = "the notifier is closed" if self._closed else f"{self._pending} deliveries are queued"
                log.warning("alert notice dropped (%s): %s", why, notice.message)
                for index, channel in enumerate(notice.channels):
                    self._count(channel, "dropped")
                    if notice.event_id is not None:
                        outcome = {"status": "dropped", "error": f"not sent: {why}"}
                        self._unrecorded.append((notice.event_id, index, outcome))
                return False
            if not self._threads:
                for n in range(self._workers):
                    thread = threading.Thread(target=self._work, name=f"liveml-alerts-{n}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
            now = time.monotonic()
            for index in range(count):
                heapq.heappush(self._heap, _Job(now, next(self._seq), notice, index))
            self._pending += count
            self._cond.notify_all()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued delivery has succeeded or failed for good; False on timeout."""
        with self._cond:
            done = self._cond.wait_for(lambda: self._pending == 0, timeout)
        self._record_unrecorded()
        return done

    def close(self, timeout: float = 5.0) -> None:
        """Give queued deliveries up to ``timeout`` seconds, then stop; what is left is recorded as failed."""
        with self._cond:
            self._closed = True
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            left, self._heap = self._heap, []
            self._cond.notify_all()
        for job in left:
            self._finish(job, "failed", "the notifier stopped before it could deliver")
        for thread in self._threads:
            thread.join(timeout=1.0)
        self.client.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send_now(self, notice: Notice) -> list[DeliveryOutcome]:
        """Deliver to every channel in this thread, with the same retries; what the CLI's test uses."""
        outcomes = []
        for channel in notice.channels:
            error: str | None = None
            attempts = 0
            for attempts in range(1, self.attempts + 1):
                error = self._try(channel, notice)
                if error is None or attempts == self.attempts:
                    break
                time.sleep(self.retry_delays[attempts - 1])
            status: Status = "delivered" if error is None else "failed"
            self._count(channel, status)
            outcomes.append(
                DeliveryOutcome(
                    channel=channel_label(channel),
                    type=channel["type"],
                    status=status,
                    attempts=attempts,
                    error=error,
                )
            )
        return outcomes

    def deliver(self, channel: Mapping[str, Any], notice: Notice) -> None:
        """One try at one channel; raises on failure."""
        if channel["type"] == "email":
            send_email(self.smtp, channel, notice)
        else:
            send_http(self.client, channel, notice)

    # -- internals -------------------------------------------------------------------------
    def _try(self, channel: Mapping[str, Any], notice: Notice) -> str | None:
        try:
            self.deliver(channel, notice)
            return None
        except Exception as exc:  # any failure of a channel is recorded, never raised into the caller
            return f"{type(exc).__name__}: {first_line(exc)}"[:300]

    def _work(self) -> None:
        while True:
            with self._cond:
                job: _Job | None = None
                while job is None:
                    if self._stopping:
                        return
                    wait = self._heap[0].due - time.monotonic() if self._heap else None
                    if wait is not None and wait <= 0:
                        job = heapq.heappop(self._heap)
                    else:
                        self._cond.wait(wait)
            self._run(job)

    def _run(self, job: _Job) -> None:
        channel = job.notice.channels[job.index]
        job.attempts += 1
        error = self._try(channel, job.notice)
        if error is None:
            self._finish(job, "delivered", None)
        elif job.attempts >= self.attempts:
            log.warning(
                "alert %s: %s failed after %d tries: %s",
                job.notice.rule_id,
                channel_label(channel),
                job.attempts,
                error,
            )
            self._finish(job, "failed", error)
        else:
            self._record(job, "pending", error)
            job.due = time.monotonic() + self.retry_delays[job.attempts - 1]
            with self._cond:
                stopping = self._stopping
                if not stopping:
                    heapq.heappush(self._heap, job)
                    self._cond.notify_all()
            if stopping:
                self._finish(job, "failed", f"{error} (the notifier stopped before another try)")
        self._record_unrecorded()

    def _finish(self, job: _Job, status: Status, error: str | None) -> None:
        self._count(job.notice.channels[job.index], status)
        self._record(job, status, error)
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def _record(self, job: _Job, status: Status, error: str | None) -> None:
        if self.store is None or job.notice.event_id is None:
            return
        outcome = {
            "status": status,
            "attempts": job.attempts,
            "error": error,
            "at": datetime.now(UTC).isoformat(),
        }
        try:
            self.store.record_delivery(job.notice.event_id, job.index, outcome)
        except Exception as exc:  # a database hiccup must not stop deliveries
            log.warning("could not record the delivery of alert event %s: %s", job.notice.event_id, exc)

    def _record_unrecorded(self) -> None:
        with self._cond:
            todo, self._unrecorded = self._unrecorded, []
        for event_id, index, outcome in todo:
            if self.store is not None:
                try:
                    self.store.record_delivery(event_id, index, outcome)
                except Exception as exc:
                    log.warning("could not record a dropped alert delivery: %s", exc)

    def _count(self, channel: Mapping[str, Any], outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.deliveries.labels(str(channel.get("type")), outcome).inc()


__all__ = ["AlertMetrics", "Notifier", "alert_metrics", "export_gauges", "result_metrics"]
