"""A monitor run: one model, one window of the prediction log, against its reference profile.

Reads the window, tests drift per column, for the predictions and across columns, computes realized
performance where labels have arrived and estimated performance where they have not, slices it all over
time, then applies the model's alert rules and hands their notices to the notifier. ``liveml monitor run``,
``liveml monitor report`` and the scheduler inside ``liveml serve`` all call ``Monitor.run``."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from liveml.monitoring import drift
from liveml.monitoring.alerts import AlertStore
from liveml.monitoring.config import DriftConfig
from liveml.monitoring.labels import LabelStore
from liveml.monitoring.log import PredictionLog, Window
from liveml.monitoring.notifier import Notifier
from liveml.monitoring.performance import Task, estimated, realized
from liveml.monitoring.results import MonitorResult, Performance, TimeChunk
from liveml.registry.profile import ReferenceProfile
from liveml.registry.registry import Registry
from liveml.registry.schema import MonitorRow, utcnow
from liveml.security import audit

log = logging.getLogger("liveml.monitoring")


@dataclass(frozen=True)
class MonitorRun:
    """A result and what it was computed from (the report plots the window against the profile)."""

    result: MonitorResult
    window: Window
    profile: ReferenceProfile | None


class Monitor:
    def __init__(
        self, registry: Registry, *, plog: PredictionLog | None = None, notifier: Notifier | None = None
    ) -> None:
        self.registry = registry
        self.plog = plog or PredictionLog(registry.settings)
        self.notifier = notifier
        self.labels = LabelStore(registry)
        self.alerts = AlertStore(registry)

    # -- settings ---------------------------------------------------------------------------
    def config(self, model: str) -> DriftConfig:
        name = self.registry.get(model).model
        with self.registry.db.read_session() as session:
            row = session.get(MonitorRow, name)
            return DriftConfig.parse(row.config if row else None)

    def set_config(self, model: str, changes: dict[str, Any], *, reset: bool = False) -> DriftConfig:
        """Merge ``changes`` into the model's drift settings (``tests`` and ``thresholds`` per column merge
        too); ``reset`` starts from the defaults. Invalid settings are refused, the stored ones kept."""
        name = self.registry.get(model).model
        with self.registry.db.session() as session:
            row = session.get(MonitorRow, name)
            current = {} if (reset or row is None) else dict(row.config)
            for key, value in changes.items():
                if isinstance(value, dict) and isinstance(current.get(key), dict):
                    current[key] = {**current[key], **value}
                else:
                    current[key] = value
            config = DriftConfig.parse(current)
            stored = config.model_dump(mode="json", exclude_defaults=True)
            before = dict(row.config) if row is not None else None
            if row is None:
                session.add(MonitorRow(model=name, config=stored, updated_at=utcnow()))
            else:
                row.config = stored
                row.updated_at = utcnow()
            audit.record_change(
                self.registry, session, "monitor.config", f"monitor:{name}", before=before, after=stored
            )
            return config

    # -- running ----------------------------------------------------------------------------
    def run(
        self,
        model: str,
        *,
        window: timedelta,
        end: datetime | None = None,
        alert: bool = True,
        rules: list[Any] | None = None,
    ) -> MonitorRun:
        """Monitor ``model`` (its current version is the reference) over ``[end - window, end)``."""
        version = self.registry.get(model)
        name = version.model
        end = end or utcnow()
        start = end - window
        data = self.plog.read(name, start, end)
        profile = self.registry.reference_profile(version.ref)
        config = self.config(name)
        notes: list[str] = []
        enough = len(data) >= config.min_rows
        if not enough:
            notes.append(
                f"{len(data)} predictions in the window, fewer than min_rows {config.min_rows}: nothing is declared"
            )
        fields: dict[str, Any] = {}
        if profile is None:
            notes.append(
                f"{version.ref} has no reference profile (push it with --reference DATA): no drift tests"
            )
        elif len(data):
            features, dataset, predictions, multi = drift.detect(profile, data.inputs, data.outputs, config)
            over = drift.over_time(profile, data.inputs, data.outputs, data.meta, config)
            fields = {
                "features": features,
                "dataset": dataset,
                "predictions": predictions,
                "multivariate": multi,
                "over_time": over,
            }
        classifier = version.task == "classification"
        task: Task = "classification" if classifier else "regression"
        classes = list(version.classes) if version.classes is not None else None
        labels = self._labels(name, data)
        realized_perf: Performance | None = None
        if len(data) and labels.notna().any():
            realized_perf = realized(task, data.outputs, labels, classes)
            fields["over_time"] = _with_realized(fields.get("over_time", ()), data, labels, task, classes)
        elif len(data):
            notes.append(
                "no labels for this window yet (send them with `liveml feedback` or the feedback API)"
            )
        estimated_perf = estimated(data.outputs, classes) if len(data) and classifier else None
        latency = data.meta["latency_ms"].to_numpy(dtype="float64") if len(data) else np.array([])
        failed = self.plog.errors(name, start, end)
        requests_seen = failed + _answered_requests(data)
        result = MonitorResult(
            model=name,
            versions=tuple(sorted({int(v) for v in data.meta["version"]})) if len(data) else (),
            reference_version=version.version,
            start=start,
            end=end,
            rows=len(data),
            min_rows=config.min_rows,
            enough_rows=enough,
            realized=realized_perf,
            estimated=estimated_perf,
            latency_p95_ms=float(np.percentile(latency, 95)) if len(latency) else None,
            error_rate=failed / requests_seen if requests_seen else None,
            notes=tuple(notes),
            **fields,
        )
        if alert:
            self._alert(result, rules)
        with self.registry.db.session() as session:
            row = session.get(MonitorRow, name)
            if row is None:
                session.add(MonitorRow(model=name, config={}, last_run_at=utcnow(), updated_at=utcnow()))
            else:
                row.last_run_at = utcnow()
        return MonitorRun(result, data, profile)

    def _labels(self, model: str, data: Window) -> pd.Series:
        if not len(data):
            return pd.Series([], dtype=object)
        ids = data.meta["prediction_id"].astype(str).tolist()
        found = self.labels.get(model, ids)
        return pd.Series([found.get(i) for i in ids], dtype=object)

    def _alert(self, result: MonitorResult, rules: list[Any] | None) -> None:
        notices = self.alerts.evaluate(rules, result)
        for notice in notices:
            if self.notifier is not None:
                self.notifier.notify(notice)
            else:
                log.warning("alert (no notifier to deliver it): %s", notice.message)

    def run_due(self, *, interval: timedelta, now: datetime | None = None) -> list[MonitorResult]:
        """For the scheduler: every model with enabled alert rules whose last run is older than
        ``interval``, once per distinct rule window. Errors are logged, never raised."""
        now = now or utcnow()
        by_model: dict[str, dict[int, list[Any]]] = defaultdict(lambda: defaultdict(list))
        for rule in self.alerts.list():
            if rule.enabled:
                by_model[rule.model][rule.window_s].append(rule)
        with self.registry.db.read_session() as session:
            last = {r.model: r.last_run_at for r in session.scalars(select(MonitorRow))}
        results = []
        for model, windows in by_model.items():
            ran = last.get(model)
            if ran is not None and now - ran < interval:
                continue
            for window_s, rules in windows.items():
                try:
                    results.append(
                        self.run(model, window=timedelta(seconds=window_s), end=now, rules=rules).result
                    )
                except Exception:
                    log.exception("monitoring %s failed", model)
        return results


def _answered_requests(data: Window) -> int:
    """Requests served in the window: a served prediction id is 24 hex digits per request, then the row
    (batch-job rows are not requests and have a job id)."""
    if not len(data):
        return 0
    served = data.meta.loc[data.meta["job_id"].isna(), "prediction_id"].astype(str)
    return int(served.str.slice(0, 24).nunique())


def _with_realized(
    chunks: tuple[TimeChunk, ...], data: Window, labels: pd.Series, task: Task, classes: list[Any] | None
) -> tuple[TimeChunk, ...]:
    """The time slices with their realized metrics added (where their rows have labels)."""
    if not chunks:
        return chunks
    at = pd.to_datetime(data.meta["at"], utc=True)
    out = []
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        rows = (at >= chunk.start) & ((at <= chunk.end) if last else (at < chunk.end))
        metrics = dict(chunk.metrics)
        if labels[rows.to_numpy()].notna().any():
            perf = realized(task, data.outputs[rows.to_numpy()], labels[rows.to_numpy()], classes)
            metrics |= {m.name: m.value for m in perf.metrics}
            metrics["labelled_rows"] = float(perf.labelled_rows)
        out.append(chunk.model_copy(update={"metrics": metrics}))
    return tuple(out)


__all__ = ["Monitor", "MonitorRun"]
