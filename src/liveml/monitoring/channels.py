"""Where alert notices go: a generic webhook (JSON, HMAC-SHA256 signed), a Slack-compatible webhook, e-mail
over SMTP, and Prometheus series for Alertmanager.

Delivery (background threads, retries, Prometheus series) is in :mod:`liveml.monitoring.notifier`."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import smtplib
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from liveml.errors import Invalid

if TYPE_CHECKING:
    pass

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


__all__ = [
    "CHANNEL_TYPES",
    "DEFAULT_RETRY_DELAYS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "DeliveryOutcome",
    "Notice",
    "SmtpConfig",
    "channel_label",
    "check_channel",
    "display_url",
    "payload",
    "redact",
    "send_email",
    "send_http",
    "sign",
    "slack_text",
]
