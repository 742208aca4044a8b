"""Prediction records, handed to a sink off the hot path: one record per row from serving, and columnar
batches of many rows from batch jobs. Serving and batch jobs both emit; the prediction log persists."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa

from liveml.runtimes.base import Prediction


@dataclass(frozen=True)
class PredictionRecord:
    """What was asked, what was answered, by which version, how fast."""

    prediction_id: str
    model: str
    version: int
    at: datetime
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    latency_ms: float
    job_id: str | None = None


@dataclass(frozen=True)
class PredictionBatch:
    """The predictions of one request or one batch-job chunk, as columns: row ``i`` of ``inputs`` and
    ``outputs`` belongs to ``prediction_ids[i]``. ``outputs`` is the runtime's ``Prediction`` as it came
    (serving: no copy on the predict path) or a frame of ``prediction``/``proba_<class>`` columns."""

    model: str
    version: int
    at: datetime
    #: strings, or an Arrow string array (batch jobs: no Python string per row)
    prediction_ids: Sequence[str] | pa.Array
    inputs: pd.DataFrame
    outputs: pd.DataFrame | Prediction
    latency_ms: float
    job_id: str | None = None

    def __len__(self) -> int:
        return len(self.prediction_ids)

    def outputs_frame(self) -> pd.DataFrame:
        if isinstance(self.outputs, pd.DataFrame):
            return self.outputs.reset_index(drop=True)
        return self.outputs.to_frame(probabilities=True)

    def records(self) -> list[PredictionRecord]:
        """The same rows as one record each (for sinks that only take records)."""
        ids = (
            self.prediction_ids.to_pylist()
            if isinstance(self.prediction_ids, pa.Array)
            else self.prediction_ids
        )
        ins: list[dict[str, Any]] = self.inputs.to_dict("records")  # type: ignore[assignment]
        outs: list[dict[str, Any]] = self.outputs_frame().to_dict("records")  # type: ignore[assignment]
        per_row = self.latency_ms / max(len(self), 1)
        return [
            PredictionRecord(pid, self.model, self.version, self.at, i, o, per_row, self.job_id)
            for pid, i, o in zip(ids, ins, outs, strict=True)
        ]


class PredictionSink(Protocol):
    """Receives records (serving) and columnar batches (batch jobs); must not block (queue, then write
    elsewhere)."""

    def emit(self, records: list[PredictionRecord]) -> None: ...

    def emit_batch(self, batch: PredictionBatch) -> None: ...

    def emit_error(self, model: str, version: int, kind: str) -> None:
        """A request that got no prediction (bad input, a model failure): counted for the error rate."""
        ...


class NullSink:
    def emit(self, records: list[PredictionRecord]) -> None:
        return None

    def emit_batch(self, batch: PredictionBatch) -> None:
        return None

    def emit_error(self, model: str, version: int, kind: str) -> None:
        return None


class MemorySink:
    """Keeps the last ``capacity`` records in memory: for tests and for looking at recent traffic."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._records: deque[PredictionRecord] = deque(maxlen=capacity)
        self.errors: dict[tuple[str, int, str], int] = {}
        self._lock = threading.Lock()

    def emit(self, records: list[PredictionRecord]) -> None:
        with self._lock:
            self._records.extend(records)

    def emit_batch(self, batch: PredictionBatch) -> None:
        self.emit(batch.records())

    def emit_error(self, model: str, version: int, kind: str) -> None:
        with self._lock:
            self.errors[(model, version, kind)] = self.errors.get((model, version, kind), 0) + 1

    @property
    def records(self) -> list[PredictionRecord]:
        with self._lock:
            return list(self._records)


__all__ = ["MemorySink", "NullSink", "PredictionBatch", "PredictionRecord", "PredictionSink"]
