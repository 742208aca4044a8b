"""Where alert notices go: a generic webhook (JSON, HMAC-SHA256 signed), a Slack-compatible webhook, e-mail
over SMTP, and Prometheus series for Alertmanager.

:class:`Notifier` delivers in background threads from a bounded queue: ``notify`` never blocks (a full queue
drops the notice, with a warning and a counter), each channel is retried with backoff, and each channel's
outcome is written back into its ``alert_events`` row."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import os
import re
import smtplib
import ssl
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field

from liveml import __version__
from liveml.errors import Invalid, first_line

if TYPE_CHECKING:
    from liveml.monitoring.alerts import AlertRule
    from liveml.monitoring.results import MonitorResult
    from liveml.registry.registry import Registry

log = logging.getLogger("liveml.alerts")

Op = Literal["above", "below"]
Severity = Literal["info", "warning", "critical"]
NoticeKind = Literal["fired", "resolved", "test"]
Status = Literal["pending", "delivered", "failed", "dropped"]
CHANNEL_TYPES = ("webhook", "slack", "email")
#: waits before the 2nd, 3rd and 4th try of a delivery (1 try + 3 retries)
DEFAULT_RETRY_DELAYS = (1.0, 4.0, 16.0)
SIGNATURE_HEADER = "X-Liveml-Signature"
TIMESTAMP_HEADER = "X-Liveml-Timestamp"
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")


class Notice(BaseModel):
    """What channels deliver: one fired, resolved or test notice of one rule."""

    model_config = ConfigDict(frozen=True)

    event_id: int | None
    rule_id: int
    kind: NoticeKind
    model: str
    metric: str
    op: Op
    threshold: float
    severity: Severity
    value: float | None
    rows: int | None
    window_s: int
    start: datetime | None
    end: datetime | None
    message: str
    at: datetime
    channels: tuple[dict[str, Any], ...] = Field(default=(), exclude=True, repr=False)


class DeliveryOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: str
    type: str
    status: Status
    attempts: int
    error: str | None = None


# -- channel specs ---------------------------------------------------------------------------------
def display_url(url: str, *, secret_path: bool = False) -> str:
    """A URL fit to print: password and query values hidden; the path too when it is the secret (Slack)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = f"{parts.username}:***@{netloc}" if parts.password else f"{parts.username}@{netloc}"
    path = parts.path
    if secret_path and path.strip("/"):
        path = "/" + path.strip("/").split("/")[0] + "/***"
    query = "&".join(f"{kv.split('=', 1)[0]}=***" for kv in parts.query.split("&") if kv)
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def channel_label(channel: Mapping[str, Any]) -> str:
    """How a channel is named in listings and delivery records: no secret in it."""
    kind = channel.get("type")
    if kind == "email":
        return "email " + ", ".join(channel.get("to", []))
    return f"{kind} {display_url(str(channel.get('url', '')), secret_path=kind == 'slack')}"


def redact(channel: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(channel)
    if "url" in out:
        out["url"] = display_url(str(out["url"]), secret_path=out.get("type") == "slack")
    if out.get("secret"):
        out["secret"] = "***"
    return out


def check_channel(channel: Mapping[str, Any], *, smtp_configured: bool) -> dict[str, Any]:
    """A channel spec checked and normalized: webhook (url, optional secret), slack (url), email (to)."""
    kind = channel.get("type")
    if kind in ("webhook", "slack"):
        url = str(channel.get("url") or "").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Invalid(f"{kind} URL {url!r} must be an http:// or https:// URL with a host")
        spec: dict[str, Any] = {"type": kind, "url": url}
        if kind == "webhook" and channel.get("secret"):
            spec["secret"] = str(channel["secret"])
        return spec
    if kind == "email":
        to = channel.get("to")
        addresses = [to] if isinstance(to, str) else list(to or [])
        if not addresses:
            raise Invalid("an e-mail channel needs at least one address (--email oncall@example.com)")
        for address in addresses:
            if not _ADDRESS.fullmatch(parseaddr(str(address))[1]):
                raise Invalid(f"{address!r} is not an e-mail address (e.g. oncall@example.com)")
        if not smtp_configured:
            raise Invalid(
                "e-mail alerts need an SMTP server: set LIVEML_SMTP_HOST (and LIVEML_SMTP_PORT, "
                "LIVEML_SMTP_FROM, LIVEML_SMTP_USER/PASSWORD as your server needs)"
            )
        return {"type": "email", "to": [str(a) for a in addresses]}
    raise Invalid(f"unknown channel type {kind!r}: use one of {', '.join(CHANNEL_TYPES)}")


# -- what is sent ----------------------------------------------------------------------------------
def payload(notice: Notice) -> dict[str, Any]:
    """The webhook's JSON body."""
    iso = lambda t: t.astimezone(UTC).isoformat() if t else None  # noqa: E731
    return {
        "event_id": notice.event_id,
        "rule": notice.rule_id,
        "kind": notice.kind,
        "model": notice.model,
        "metric": notice.metric,
        "op": notice.op,
        "value": notice.value,
        "threshold": notice.threshold,
        "severity": notice.severity,
        "rows": notice.rows,
        "window": {"seconds": notice.window_s, "start": iso(notice.start), "end": iso(notice.end)},
        "message": notice.message,
        "at": iso(notice.at),
    }


def sign(secret: str, body: bytes) -> str:
    """The ``X-Liveml-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def slack_text(notice: Notice) -> str:
    icon = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
    mark = {"fired": icon[notice.severity], "resolved": ":white_check_mark:", "test": ":bell:"}[notice.kind]
    return f"{mark} {notice.message}"


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the SMTP server. ``load`` reads Settings' ``smtp_*`` fields where they exist, else the
    LIVEML_SMTP_HOST / _PORT / _USER / _PASSWORD / _FROM / _STARTTLS / _SSL environment variables."""

    host: str
    port: int = 25
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "liveml@localhost"
    starttls: bool = False
    ssl: bool = False
    timeout_s: float = 10.0

    @classmethod
    def load(
        cls, settings: object | None = None, environ: Mapping[str, str] | None = None
    ) -> SmtpConfig | None:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value: Any = getattr(settings, f"smtp_{name}", None)
            if value is None:
                value = env.get(f"LIVEML_SMTP_{name.upper()}")
            value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
            return None if value is None or str(value) == "" else str(value)

        host = get("host")
        if host is None:
            return None
        flag = lambda v: (v or "").strip().lower() in ("1", "true", "yes", "on")  # noqa: E731
        use_ssl, starttls = flag(get("ssl")), flag(get("starttls"))
        port = get("port")
        try:
            number = int(port) if port else (465 if use_ssl else 587 if starttls else 25)
        except ValueError as exc:
            raise Invalid(f"LIVEML_SMTP_PORT {port!r} must be a port number, e.g. 587") from exc
        return cls(
            host=host,
            port=number,
            user=get("user"),
            password=get("password"),
            sender=get("from") or "liveml@localhost",
            starttls=starttls,
            ssl=use_ssl,
        )


def send_http(client: httpx.Client, channel: Mapping[str, Any], notice: Notice) -> None:
    """POST a notice to a webhook or Slack channel; anything but a 2xx answer raises."""
    if channel["type"] == "slack":
        body = json.dumps({"text": slack_text(notice)}, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
    else:
        body = json.dumps(payload(notice), ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(int(time.time()))}
        if notice.event_id is not None:
            headers["X-Liveml-Event"] = str(notice.event_id)
        if channel.get("secret"):
            headers[SIGNATURE_HEADER] = sign(str(channel["secret"]), body)
    response = client.post(str(channel["url"]), content=body, headers=headers)
    if not 200 <= response.status_code < 300:
        raise RuntimeError(
            f"HTTP {response.status_code} from {channel_label(channel)}: {response.text[:200]}"
        )


def send_email(smtp: SmtpConfig | None, channel: Mapping[str, Any], notice: Notice) -> None:
    if smtp is None:
        raise RuntimeError("no SMTP server configured: set LIVEML_SMTP_HOST")
    message = EmailMessage()
    message["Subject"] = f"[liveml] {notice.message}"
    message["From"] = smtp.sender
    message["To"] = ", ".join(channel["to"])
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="liveml")
    window = (
        f"{notice.start:%Y-%m-%d %H:%M} to {notice.end:%Y-%m-%d %H:%M} UTC"
        if notice.start and notice.end
        else ""
    )
    message.set_content(
        f"{notice.message}\n\nmodel: {notice.model}\nmetric: {notice.metric}\nvalue: {notice.value}\n"
        f"condition: {notice.op} {notice.threshold}\nrows: {notice.rows}\nwindow: {window}\n"
        f"at: {notice.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC\nrule: {notice.rule_id} "
        f"(`liveml alerts events {notice.rule_id}` shows its history)\n"
    )
    connect = smtplib.SMTP_SSL if smtp.ssl else smtplib.SMTP
    with connect(smtp.host, smtp.port, timeout=smtp.timeout_s) as server:
        if smtp.starttls and not smtp.ssl:
            server.starttls(context=ssl.create_default_context())
        if smtp.user:
            server.login(smtp.user, smtp.password or "")
        server.send_message(message)


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


__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AlertMetrics",
    "DeliveryOutcome",
    "Notice",
    "Notifier",
    "SmtpConfig",
    "alert_metrics",
    "channel_label",
    "check_channel",
    "display_url",
    "export_gauges",
    "payload",
    "redact",
    "result_metrics",
    "send_email",
    "send_http",
    "sign",
    "slack_text",
]
