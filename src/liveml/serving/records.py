"""One record per prediction, handed to a sink off the hot path (the monitoring issue persists them)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


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


class PredictionSink(Protocol):
    """Receives records in batches; must not block (queue, then write elsewhere)."""

    def emit(self, records: list[PredictionRecord]) -> None: ...


class NullSink:
    def emit(self, records: list[PredictionRecord]) -> None:
        return None


class MemorySink:
    """Keeps the last ``capacity`` records in memory: for tests and for looking at recent traffic."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._records: deque[PredictionRecord] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def emit(self, records: list[PredictionRecord]) -> None:
        with self._lock:
            self._records.extend(records)

    @property
    def records(self) -> list[PredictionRecord]:
        with self._lock:
            return list(self._records)


__all__ = ["MemorySink", "NullSink", "PredictionRecord", "PredictionSink"]
