"""Alert state on ``/metrics`` for Prometheus and Alertmanager, read from the registry database at scrape
time: so every server (and every worker) shows the state of rules that any process evaluated."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select

from liveml.errors import LivemlError
from liveml.registry.registry import Registry
from liveml.registry.schema import AlertRuleRow

log = logging.getLogger("liveml.monitoring")


class AlertCollector(Collector):
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[GaugeMetricFamily]:
        firing = GaugeMetricFamily(
            "liveml_alert_firing",
            "1 while an alert rule fires, else 0",
            labels=["model", "rule", "metric", "severity"],
        )
        value = GaugeMetricFamily(
            "liveml_alert_value",
            "The last value an alert rule's metric had",
            labels=["model", "rule", "metric"],
        )
        try:
            with self.registry.db.read_session() as session:
                rows = list(session.scalars(select(AlertRuleRow).where(AlertRuleRow.enabled)))
        except LivemlError as exc:  # the database is away: the other metrics still come
            log.warning("alert metrics left out: %s", exc)
            rows = []
        for row in rows:
            firing.add_metric(
                [row.model, str(row.id), row.metric, row.severity], 1.0 if row.state == "firing" else 0.0
            )
            if row.last_value is not None:
                value.add_metric([row.model, str(row.id), row.metric], row.last_value)
        yield firing
        yield value

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


__all__ = ["AlertCollector"]
