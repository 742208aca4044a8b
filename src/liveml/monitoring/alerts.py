"""Alert rules on monitoring metrics: the ``alert_rules`` table, checking rules as they are added, and the
state machine that turns a :class:`MonitorResult` into fired and resolved notices.

States: ``ok``, ``firing``, ``no_data`` (the metric is missing, or the window had fewer rows than the rule's
``min_rows``). A *fired* notice goes out when the condition becomes true and no notified incident is open,
unless a fired notice of the same rule went out less than ``cooldown`` ago: then the rule is ``firing``
without a notice until the cooldown has passed (and notifies then if it is still firing). A *resolved*
notice goes out when the condition is false again and the last fired notice was not resolved yet; ``no_data``
neither fires nor resolves. Every notice is an ``alert_events`` row; channels (``channels.py``) deliver it."""

from __future__ import annotations

import builtins
import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, field_serializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from liveml.errors import Invalid, NotFound
from liveml.monitoring.channels import (
    CHANNEL_TYPES,
    Notice,
    NoticeKind,
    Op,
    Severity,
    channel_label,
    check_channel,
    redact,
)
from liveml.monitoring.results import MonitorResult
from liveml.registry.names import validate_name
from liveml.registry.registry import Registry
from liveml.registry.schema import AlertEventRow, AlertRuleRow, utcnow
from liveml.security import audit

State = Literal["ok", "firing", "no_data"]
SEVERITIES: tuple[str, ...] = get_args(Severity)

DRIFT_METRICS = ("drift_share", "prediction_drift", "multivariate")
SERVICE_METRICS = ("error_rate", "latency_p95_ms", "rows")
CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2", "mape")
PERFORMANCE_METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
METRIC_FORMS = (
    "drift_share, feature:<input column>, prediction_drift, multivariate, error_rate, latency_p95_ms, rows, "
    f"a realized metric ({', '.join(PERFORMANCE_METRICS)}) or estimated_<metric> (e.g. estimated_accuracy)"
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
DURATION_FORM = "a number and a unit s, m, h, d or w, e.g. 90s, 30m, 6h, 7d or 1h30m"


def parse_duration(value: str | int | float | timedelta, *, field: str = "duration") -> timedelta:
    """``30m``, ``6h``, ``7d``, ``1h30m`` (units s m h d w), a ``timedelta``, or seconds as a number; ``0`` is
    allowed. Raises ``Invalid`` naming ``field`` for anything else, negative durations included."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if text in ("0", "0s"):
            return timedelta(0)
        parts = _DURATION.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise Invalid(f"invalid {field} {value!r}: expected {DURATION_FORM}")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise Invalid(f"invalid {field} {value!r}: expected {DURATION_FORM}")
    if not math.isfinite(seconds) or seconds < 0:
        raise Invalid(f"invalid {field} {value!r}: it must not be negative; expected {DURATION_FORM}")
    return timedelta(seconds=seconds)


def format_duration(seconds: float) -> str:
    """The short form of a duration: ``24h``, ``7d``, ``30m``, ``90s`` (days from 2 days on)."""
    s = round(seconds)
    if s and s % 86400 == 0 and s >= 2 * 86400:
        return f"{s // 86400}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if s and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def format_value(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    size = abs(value)
    if 0 < size < 0.01:
        return f"{value:.2g}"
    return f"{value:.2f}" if size < 100 else f"{value:,.0f}"


class AlertRule(BaseModel):
    """One rule and its last state; ``channels`` keeps secrets for delivery but prints them hidden."""

    model_config = ConfigDict(frozen=True)

    id: int
    model: str
    metric: str
    op: Op
    threshold: float
    severity: Severity
    window_s: int
    min_rows: int
    cooldown_s: int
    channels: tuple[dict[str, Any], ...]
    enabled: bool
    state: State
    last_value: float | None = None
    last_rows: int | None = None
    last_evaluated_at: datetime | None = None
    last_fired_at: datetime | None = None
    last_resolved_at: datetime | None = None
    created_by: str
    created_at: datetime

    @field_serializer("channels")
    def _hide_secrets(self, channels: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
        return [redact(c) for c in channels]

    @property
    def condition(self) -> str:
        return f"{self.metric} {self.op} {format_value(self.threshold)}"

    @property
    def incident_open(self) -> bool:
        """A fired notice went out and no resolved notice after it."""
        return self.last_fired_at is not None and (
            self.last_resolved_at is None or self.last_resolved_at < self.last_fired_at
        )


class AlertEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    rule_id: int
    kind: str
    value: float | None
    rows: int | None
    message: str
    deliveries: list[dict[str, Any]]
    at: datetime


def message_for(rule: AlertRule, kind: NoticeKind, value: float | None, rows: int | None) -> str:
    """``churn: drift_share 0.42 above 0.30 (2,315 rows, last 24h) — warning``."""
    if kind == "test":
        return (
            f"{rule.model}: test notice of alert rule {rule.id} ({rule.condition}, {rule.severity}); "
            f"last value {format_value(value)}"
        )
    no_longer = "no longer " if kind == "resolved" else ""
    rows_text = f"{rows:,} rows" if rows is not None else "rows n/a"
    tail = rule.severity if kind == "fired" else "resolved"
    shown = (lambda v: f"{v:,.0f}") if rule.metric == "rows" and value is not None else format_value
    return (
        f"{rule.model}: {rule.metric} {shown(value)} {no_longer}{rule.op} {shown(rule.threshold)} "
        f"({rows_text}, last {format_duration(rule.window_s)}) — {tail}"
    )


def rows_behind(result: MonitorResult, metric: str) -> int:
    """Rows the figure stands on: labelled rows for realized metrics, the column's rows for a feature."""
    if metric.startswith("feature:"):
        column = metric.split(":", 1)[1]
        return next((f.current_rows for f in result.features if f.column == column), result.rows)
    performance = result.estimated if metric.startswith("estimated_") else result.realized
    name = metric.removeprefix("estimated_")
    if metric in PERFORMANCE_METRICS or metric.startswith("estimated_"):
        if performance is None:
            return 0
        return next((m.rows for m in performance.metrics if m.name == name), 0)
    return result.rows


class AlertStore:
    """Reads and writes ``alert_rules`` and ``alert_events``; evaluates rules against monitor results."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.db = registry.db

    # -- rules ------------------------------------------------------------------------------
    def add(
        self,
        model: str,
        metric: str,
        *,
        above: float | None = None,
        below: float | None = None,
        severity: str = "warning",
        window: str | int | timedelta = "24h",
        min_rows: int = 100,
        cooldown: str | int | timedelta = "1h",
        channels: Sequence[dict[str, Any]] = (),
        smtp_configured: bool = False,
    ) -> AlertRule:
        """Check everything and record an enabled rule in state ``ok``. ``smtp_configured`` says whether
        SMTP settings exist (e-mail channels need them)."""
        model = validate_name(model)
        version = self.registry.get(model)  # NotFound names the known models
        metric = check_metric(metric, version.signature.input_names, version.task)
        if (above is None) == (below is None):
            raise Invalid("give exactly one of --above X or --below X (the threshold and its direction)")
        op: Op = "above" if above is not None else "below"
        threshold = float(above if above is not None else below)  # type: ignore[arg-type]
        if not math.isfinite(threshold):
            raise Invalid(f"threshold {threshold!r} must be a finite number")
        if severity not in SEVERITIES:
            raise Invalid(f"unknown severity {severity!r}: use one of {', '.join(SEVERITIES)}")
        window_s = round(parse_duration(window, field="window").total_seconds())
        if window_s <= 0:
            raise Invalid(f"window {window!r} must be longer than 0, e.g. 24h")
        cooldown_s = round(parse_duration(cooldown, field="cooldown").total_seconds())
        if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 0:
            raise Invalid(f"min rows {min_rows!r} must be a whole number, 0 or more")
        specs = [check_channel(c, smtp_configured=smtp_configured) for c in channels]
        now = utcnow()
        row = AlertRuleRow(
            model=model,
            metric=metric,
            op=op,
            threshold=threshold,
            severity=severity,
            window_s=window_s,
            min_rows=min_rows,
            cooldown_s=cooldown_s,
            channels=specs,
            enabled=True,
            state="ok",
            created_by=self.registry.settings.user,
            created_at=now,
            updated_at=now,
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            rule = _rule(row)
            audit.record_change(self.registry, session, "alert.add", f"alert:{rule.id}", after=_audited(rule))
            return rule

    def list(self, model: str | None = None) -> list[AlertRule]:
        query = select(AlertRuleRow).order_by(AlertRuleRow.id)
        if model is not None:
            query = query.where(AlertRuleRow.model == model)
        with self.db.read_session() as session:
            return [_rule(row) for row in session.scalars(query)]

    def get(self, rule_id: int) -> AlertRule:
        with self.db.read_session() as session:
            return _rule(_found(session.get(AlertRuleRow, rule_id), rule_id))

    def delete(self, rule_id: int) -> AlertRule:
        """Remove a rule and its events."""
        with self.db.session() as session:
            row = _found(session.get(AlertRuleRow, rule_id, with_for_update=True), rule_id)
            gone = _rule(row)
            session.execute(delete(AlertEventRow).where(AlertEventRow.rule_id == rule_id))
            session.delete(row)
            audit.record_change(
                self.registry, session, "alert.delete", f"alert:{rule_id}", before=_audited(gone)
            )
            return gone

    def set_enabled(self, rule_id: int, enabled: bool) -> AlertRule:
        """Enable or disable a rule; a disabled rule is not evaluated and its state resets to ``ok``."""
        with self.db.session() as session:
            row = _found(session.get(AlertRuleRow, rule_id, with_for_update=True), rule_id)
            before = {"enabled": row.enabled}
            row.enabled = enabled
            if not enabled:
                row.state = "ok"
            row.updated_at = utcnow()
            session.flush()
            action = "alert.enable" if enabled else "alert.disable"
            audit.record_change(
                self.registry, session, action, f"alert:{rule_id}", before=before, after={"enabled": enabled}
            )
            return _rule(row)

    def enable(self, rule_id: int) -> AlertRule:
        return self.set_enabled(rule_id, True)

    def disable(self, rule_id: int) -> AlertRule:
        return self.set_enabled(rule_id, False)

    def events(self, rule_id: int, limit: int = 50) -> builtins.list[AlertEvent]:
        """A rule's notices, newest first."""
        with self.db.read_session() as session:
            _found(session.get(AlertRuleRow, rule_id), rule_id)
            query = (
                select(AlertEventRow)
                .where(AlertEventRow.rule_id == rule_id)
                .order_by(AlertEventRow.at.desc(), AlertEventRow.id.desc())
                .limit(limit)
            )
            return [_event(row) for row in session.scalars(query)]

    def record_delivery(self, event_id: int, index: int, outcome: dict[str, Any]) -> None:
        """Write one channel's delivery outcome into its event (what the notifier calls)."""
        with self.db.session() as session:
            row = session.get(AlertEventRow, event_id, with_for_update=True)
            if row is None:  # the rule was deleted meanwhile
                return
            deliveries = [dict(d) for d in row.deliveries]
            if 0 <= index < len(deliveries):
                deliveries[index] = {**deliveries[index], **outcome}
                row.deliveries = deliveries

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(
        self, rules: Sequence[AlertRule] | None, result: MonitorResult, now: datetime | None = None
    ) -> builtins.list[Notice]:
        """Apply ``result`` to ``rules`` (default: every enabled rule of ``result.model``; rules of other
        models or disabled ones are skipped). State is re-read under a lock, so two monitors running at
        once cannot both fire. Returns the notices to deliver, each already recorded as an event."""
        now = now or utcnow()
        query = select(AlertRuleRow).where(AlertRuleRow.model == result.model, AlertRuleRow.enabled)
        if rules is not None:
            query = query.where(AlertRuleRow.id.in_([r.id for r in rules]))
        notices: builtins.list[Notice] = []
        with self.db.session() as session:
            for row in session.scalars(query.order_by(AlertRuleRow.id).with_for_update()):
                notice = _step(session, row, result, now)
                if notice is not None:
                    notices.append(notice)
        return notices


def check_metric(metric: str, columns: Sequence[str], task: str) -> str:
    """``metric`` if it is a known form for a model with these input ``columns`` and ``task``."""
    metric = metric.strip()
    if metric.startswith("feature:"):
        column = metric.split(":", 1)[1]
        if column not in columns:
            raise Invalid(
                f"feature:{column} names no input column of the model; its inputs are {', '.join(columns)}"
            )
        return metric
    if metric in DRIFT_METRICS or metric in SERVICE_METRICS:
        return metric
    name = metric.removeprefix("estimated_")
    if name not in PERFORMANCE_METRICS:
        raise Invalid(f"unknown metric {metric!r}: use {METRIC_FORMS}")
    wrong = REGRESSION_METRICS if task == "classification" else CLASSIFICATION_METRICS
    if task in ("classification", "regression") and name in wrong:
        fits = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
        raise Invalid(f"{metric!r} does not apply to a {task} model; use one of {', '.join(fits)}")
    return metric


def _step(session: Session, row: AlertRuleRow, result: MonitorResult, now: datetime) -> Notice | None:
    rule = _rule(row)
    value = result.metric(rule.metric)
    rows = rows_behind(result, rule.metric)
    row.last_evaluated_at = now
    row.last_rows = rows
    row.last_value = value if value is not None and math.isfinite(value) else None
    if row.last_value is None or (rows < rule.min_rows and rule.metric != "rows"):  # rows: the count itself
        row.state = "no_data"
        return None
    assert value is not None
    breached = value > rule.threshold if rule.op == "above" else value < rule.threshold
    kind: NoticeKind | None = None
    if breached:
        row.state = "firing"
        cooled = rule.last_fired_at is None or now - rule.last_fired_at >= timedelta(seconds=rule.cooldown_s)
        if not rule.incident_open and cooled:
            kind, row.last_fired_at = "fired", now
    else:
        row.state = "ok"
        if rule.incident_open:
            kind, row.last_resolved_at = "resolved", now
    if kind is None:
        return None
    message = message_for(rule, kind, value, rows)
    deliveries = [
        {"channel": channel_label(c), "type": c["type"], "status": "pending", "attempts": 0, "error": None}
        for c in rule.channels
    ]
    event = AlertEventRow(
        rule_id=rule.id, kind=kind, value=value, rows=rows, message=message, deliveries=deliveries, at=now
    )
    session.add(event)
    session.flush()
    return notice_for(rule, kind, value, rows, result.start, result.end, now, event_id=event.id)


def notice_for(
    rule: AlertRule,
    kind: NoticeKind,
    value: float | None,
    rows: int | None,
    start: datetime | None,
    end: datetime | None,
    at: datetime,
    *,
    event_id: int | None = None,
) -> Notice:
    return Notice(
        event_id=event_id,
        rule_id=rule.id,
        kind=kind,
        model=rule.model,
        metric=rule.metric,
        op=rule.op,
        threshold=rule.threshold,
        severity=rule.severity,
        value=value,
        rows=rows,
        window_s=rule.window_s,
        start=start,
        end=end,
        message=message_for(rule, kind, value, rows),
        at=at,
        channels=rule.channels,
    )


def _found(row: AlertRuleRow | None, rule_id: int) -> AlertRuleRow:
    if row is None:
        raise NotFound(f"no alert rule {rule_id}; `liveml alerts` lists the rules and their ids")
    return row


def _audited(rule: AlertRule) -> dict[str, Any]:
    """The rule's settings for the audit trail, channel secrets hidden."""
    fields = {"model", "metric", "op", "threshold", "severity", "window_s", "min_rows", "cooldown_s"}
    return rule.model_dump(mode="json", include=fields | {"channels", "enabled"})


def _rule(row: AlertRuleRow) -> AlertRule:
    return AlertRule.model_validate(row, from_attributes=True)


def _event(row: AlertEventRow) -> AlertEvent:
    return AlertEvent.model_validate(row, from_attributes=True)


__all__ = [
    "CHANNEL_TYPES",
    "SEVERITIES",
    "AlertEvent",
    "AlertRule",
    "AlertStore",
    "Notice",
    "check_channel",
    "check_metric",
    "format_duration",
    "format_value",
    "message_for",
    "notice_for",
    "parse_duration",
    "rows_behind",
]
