"""Typed monitoring results: what a monitor run finds for one model over one window of the prediction log.

Drift, performance, the report and the alert rules all speak these types; ``--json`` prints them whole."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TestName = Literal["ks", "chisquare", "ztest", "wasserstein", "jensenshannon", "psi"]


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class FeatureDrift(_Result):
    """One column's test: reference (the version's profile) against the window."""

    column: str
    role: Literal["input", "output"] = "input"
    kind: Literal["numeric", "categorical"]
    test: TestName
    #: a p-value for ks / chisquare / ztest (drift when below the threshold), a distance otherwise
    #: (drift when at or above it)
    score: float | None
    threshold: float
    score_is_p_value: bool
    drift: bool
    reference_rows: int
    current_rows: int
    #: why no test ran (e.g. too few rows, no reference statistics for this column)
    skipped: str | None = None


class DatasetDrift(_Result):
    """The share of input columns that drifted, against the share that makes the dataset drift."""

    share: float
    drifted_columns: int
    columns: int
    threshold: float = 0.5
    drift: bool
    #: why nothing was declared (too few rows, no column could be tested)
    skipped: str | None = None


class MultivariateDrift(_Result):
    """Shifts no single column shows (e.g. a changed correlation): PCA reconstruction error of the window
    against the reference's mean error and its band."""

    method: Literal["pca_reconstruction"] = "pca_reconstruction"
    score: float | None
    reference_mean: float | None
    lower: float | None
    upper: float | None
    drift: bool
    skipped: str | None = None


class MetricValue(_Result):
    name: str
    value: float | None
    rows: int = Field(description="labelled rows behind the figure (realized) or rows estimated over")
    lower: float | None = None
    upper: float | None = None


class Performance(_Result):
    """Realized (from labels joined by prediction id) or estimated (confidence-based, no labels)."""

    kind: Literal["realized", "estimated"]
    task: Literal["classification", "regression"]
    metrics: tuple[MetricValue, ...]
    labelled_rows: int = 0
    skipped: str | None = None


class TimeChunk(_Result):
    """One slice of the window (by time), for the plots over time."""

    start: datetime
    end: datetime
    rows: int
    drift_share: float | None
    scores: dict[str, float | None] = Field(default_factory=dict, description="per column: its test's score")
    metrics: dict[str, float | None] = Field(default_factory=dict)


class MonitorResult(_Result):
    """Everything a monitor run found; what ``liveml monitor run --json`` prints."""

    model: str
    versions: tuple[int, ...]
    reference_version: int
    start: datetime
    end: datetime
    rows: int
    min_rows: int
    enough_rows: bool
    features: tuple[FeatureDrift, ...] = ()
    dataset: DatasetDrift | None = None
    predictions: tuple[FeatureDrift, ...] = ()
    multivariate: MultivariateDrift | None = None
    realized: Performance | None = None
    estimated: Performance | None = None
    over_time: tuple[TimeChunk, ...] = ()
    error_rate: float | None = None
    latency_p95_ms: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def drift(self) -> bool:
        return bool(self.enough_rows and self.dataset is not None and self.dataset.drift)

    def metric(self, name: str) -> float | None:
        """A named figure for alert rules: ``drift_share``, ``feature:<column>`` (its score),
        ``prediction_drift``, ``multivariate``, ``accuracy`` (realized), ``estimated_accuracy``,
        ``error_rate``, ``latency_p95_ms``, ``rows``."""
        if name == "rows":
            return float(self.rows)
        if name == "drift_share":
            return self.dataset.share if self.dataset else None
        if name.startswith("feature:"):
            column = name.split(":", 1)[1]
            return next((f.score for f in self.features if f.column == column), None)
        if name == "prediction_drift":
            return next((f.score for f in self.predictions), None)
        if name == "multivariate":
            return self.multivariate.score if self.multivariate else None
        if name == "error_rate":
            return self.error_rate
        if name == "latency_p95_ms":
            return self.latency_p95_ms
        if name.startswith("estimated_"):
            return _find(self.estimated, name.removeprefix("estimated_"))
        return _find(self.realized, name)


def _find(performance: Performance | None, name: str) -> float | None:
    if performance is None:
        return None
    return next((m.value for m in performance.metrics if m.name == name), None)


__all__ = [
    "DatasetDrift",
    "FeatureDrift",
    "MetricValue",
    "MonitorResult",
    "MultivariateDrift",
    "Performance",
    "TestName",
    "TimeChunk",
]
