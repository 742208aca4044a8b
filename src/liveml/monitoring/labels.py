"""Ground-truth labels, joined to logged predictions by prediction id; they may come days later.

A label for an id seen before replaces the old one (and is counted as repeated); malformed entries are
counted and named, never a crash; ids that match no logged prediction are counted when performance is
computed (``unmatched``), since a label may arrive before the log's last flush."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from liveml.errors import Invalid
from liveml.registry.registry import Registry
from liveml.registry.schema import LabelRow, utcnow

CHUNK = 500
MAX_ID_CHARS = 64


class FeedbackResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    accepted: int
    repeated: int
    invalid: int
    problems: tuple[str, ...] = ()


class LabelStore:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.db = registry.db

    def add(self, model: str, labels: Iterable[Mapping[str, Any]]) -> FeedbackResult:
        """Store ``{"prediction_id": ..., "label": ...}`` entries for ``model`` (which must exist)."""
        name = self.registry.get(model).model
        good: dict[str, Any] = {}
        problems: list[str] = []
        invalid = repeated_here = 0
        for i, entry in enumerate(labels):
            problem = _problem(entry)
            if problem:
                invalid += 1
                if len(problems) < 20:
                    problems.append(f"entry {i}: {problem}")
                continue
            pid = str(entry["prediction_id"])
            repeated_here += pid in good  # the same id twice in one submission: the last label counts
            good[pid] = _plain(entry["label"])
        accepted, repeated = 0, repeated_here
        ids = list(good)
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            now = utcnow()
            with self.db.session() as session:
                existing = {
                    row.prediction_id: row
                    for row in session.scalars(
                        select(LabelRow).where(LabelRow.model == name, LabelRow.prediction_id.in_(part))
                    )
                }
                for pid in part:
                    row = existing.get(pid)
                    if row is None:
                        session.add(
                            LabelRow(
                                model=name,
                                prediction_id=pid,
                                label={"value": good[pid]},
                                received_at=now,
                                times_received=1,
                            )
                        )
                        accepted += 1
                    else:
                        row.label = {"value": good[pid]}
                        row.received_at = now
                        row.times_received += 1
                        repeated += 1
        return FeedbackResult(
            model=name, accepted=accepted, repeated=repeated, invalid=invalid, problems=tuple(problems)
        )

    def get(self, model: str, prediction_ids: Sequence[str]) -> dict[str, Any]:
        """The labels of those ids that have one."""
        found: dict[str, Any] = {}
        for start in range(0, len(prediction_ids), CHUNK):
            part = list(prediction_ids[start : start + CHUNK])
            with self.db.read_session() as session:
                for row in session.scalars(
                    select(LabelRow).where(LabelRow.model == model, LabelRow.prediction_id.in_(part))
                ):
                    found[row.prediction_id] = row.label["value"]
        return found

    def count(self, model: str) -> int:
        from sqlalchemy import func

        with self.db.read_session() as session:
            return int(
                session.scalar(select(func.count()).select_from(LabelRow).where(LabelRow.model == model)) or 0
            )

    def all_ids(self, model: str) -> set[str]:
        with self.db.read_session() as session:
            return set(session.scalars(select(LabelRow.prediction_id).where(LabelRow.model == model)))


def labels_from_frame(
    frame: pd.DataFrame, id_column: str = "prediction_id", label_column: str = "label"
) -> list[dict[str, Any]]:
    """Entries from a table (``liveml feedback --input labels.csv``); names the missing columns."""
    missing = [c for c in (id_column, label_column) if c not in frame.columns]
    if missing:
        raise Invalid(
            f"the labels file lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, frame.columns))}. "
            "Name them with --id-column and --label-column"
        )
    return [
        {"prediction_id": pid, "label": label}
        for pid, label in zip(frame[id_column], frame[label_column], strict=True)
    ]


def _problem(entry: Any) -> str | None:
    if not isinstance(entry, Mapping):
        return 'not an object; give {"prediction_id": "...", "label": ...}'
    pid = entry.get("prediction_id")
    if pid is None or (isinstance(pid, float) and math.isnan(pid)) or str(pid).strip() == "":
        return "no prediction_id"
    if len(str(pid)) > MAX_ID_CHARS:
        return f"prediction_id longer than {MAX_ID_CHARS} characters"
    if "label" not in entry:
        return f"no label for {pid}"
    label = entry["label"]
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return f"empty label for {pid}"
    if not isinstance(label, str | int | float | bool) and not hasattr(label, "item"):
        return f"label for {pid} is not a class or a number"
    return None


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


__all__ = ["FeedbackResult", "LabelStore", "labels_from_frame"]
