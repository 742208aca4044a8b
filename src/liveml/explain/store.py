"""Explanations kept with their prediction ids, next to the prediction log.

Layout: ``<log_url>/_explanations/model=<name>/date=<YYYY-MM-DD>/<HH>-<unix ns>-<pid>.parquet``, one file
per explained request (written whole, then renamed: a reader never sees half a file). Columns:
``prediction_id``, ``version``, ``at`` (UTC), ``class`` (JSON), ``base_value``, ``output``,
``output_space``, ``method``, ``background`` and ``attributions`` (JSON object, column -> value, in
signature order). The prediction id joins an explanation to its record in the prediction log (inputs,
outputs, version, time); day folders older than ``log_retention_days`` are removed, as the log's are.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from liveml.explain.results import Explanation, RowExplanation
from liveml.settings import Settings

FOLDER = "_explanations"
_SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("version", pa.int32()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("class", pa.string()),
        ("base_value", pa.float64()),
        ("output", pa.float64()),
        ("output_space", pa.string()),
        ("method", pa.string()),
        ("background", pa.string()),
        ("attributions", pa.string()),
    ]
)


class ExplanationStore:
    """Writes explanations that have prediction ids, and finds one again by its prediction id."""

    def __init__(self, settings: Settings) -> None:
        import fsspec

        self.url = f"{settings.resolved_log_url.rstrip('/')}/{FOLDER}"
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.local = "://" not in self.url or self.url.startswith("file://")
        self.retention = timedelta(days=settings.log_retention_days)
        self._lock = threading.Lock()
        self._last_retention = 0.0

    def write(self, explanation: Explanation, *, at: datetime | None = None) -> int:
        """Store the rows that have a prediction id; returns how many."""
        rows = [r for r in explanation.rows if r.prediction_id is not None]
        if not rows:
            return 0
        when = (at or datetime.now(UTC)).astimezone(UTC)
        table = pa.table(
            {
                "prediction_id": [r.prediction_id for r in rows],
                "version": [explanation.version] * len(rows),
                "at": [when] * len(rows),
                "class": [json.dumps(r.target_class) for r in rows],
                "base_value": [r.base_value for r in rows],
                "output": [r.output for r in rows],
                "output_space": [r.output_space for r in rows],
                "method": [r.method for r in rows],
                "background": [explanation.background] * len(rows),
                "attributions": [json.dumps(r.attributions) for r in rows],
            },
            schema=_SCHEMA,
        )
        folder = f"{self.root}/model={explanation.model}/date={when:%Y-%m-%d}"
        name = f"{when:%H}-{time.time_ns()}-{os.getpid()}.parquet"
        self.fs.makedirs(folder, exist_ok=True)
        if self.local:
            tmp = Path(folder) / f".{name}.tmp"
            pq.write_table(table, tmp)
            os.replace(tmp, Path(folder) / name)
        else:
            with self.fs.open(f"{folder}/{name}", "wb") as handle:  # one PUT: atomic on object stores
                pq.write_table(table, handle)
        self._maybe_apply_retention()
        return len(rows)

    def lookup(self, model: str, prediction_id: str) -> Explanation | None:
        """The stored explanation of one prediction (newest days first), or None."""
        days = sorted(self.fs.glob(f"{self.root}/model={model}/date=*"), reverse=True)
        for day in days:
            for path in sorted(self.fs.glob(f"{day}/*.parquet"), reverse=True):
                table = pq.read_table(
                    path, filesystem=self.fs, filters=[("prediction_id", "==", prediction_id)]
                )
                if table.num_rows:
                    return _explanation(model, table.slice(0, 1).to_pylist()[0])
        return None

    def apply_retention(self, now: datetime | None = None) -> int:
        """Delete day folders older than the retention; returns how many."""
        cutoff = ((now or datetime.now(UTC)) - self.retention).strftime("%Y-%m-%d")
        removed = 0
        for folder in self.fs.glob(f"{self.root}/model=*/date=*"):
            if folder.rsplit("date=", 1)[1] < cutoff:
                self.fs.rm(folder, recursive=True)
                removed += 1
        return removed

    def _maybe_apply_retention(self) -> None:
        with self._lock:
            if time.monotonic() - self._last_retention < 3600 and self._last_retention:
                return
            self._last_retention = time.monotonic()
        self.apply_retention()


def _explanation(model: str, record: dict[str, Any]) -> Explanation:
    attributions: dict[str, float] = json.loads(record["attributions"])
    row = RowExplanation(
        prediction_id=record["prediction_id"],
        target_class=json.loads(record["class"]),
        base_value=record["base_value"],
        attributions=attributions,
        output=record["output"],
        output_space=record["output_space"],
        method=record["method"],
    )
    return Explanation(
        model=model,
        version=record["version"],
        method=record["method"],
        output_space=record["output_space"],
        background=record["background"],
        features=list(attributions),
        rows=[row],
        at=record["at"],
    )


__all__ = ["FOLDER", "ExplanationStore"]
