"""Drift settings for one model: which test per column, thresholds, and the dataset-level rule.

Defaults follow Evidently's (test chosen by column type and reference size, p < 0.05 for the p-value
tests, distance >= 0.1 for the distance tests, dataset drift when half the columns drift); every field can
be overridden per model, and ``tests`` / ``thresholds`` per column (inputs and model outputs alike).
See docs/drift.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from liveml.errors import Invalid
from liveml.monitoring.results import TestName

TEST_NAMES: tuple[str, ...] = get_args(TestName)
P_VALUE_TESTS: frozenset[str] = frozenset({"ks", "chisquare", "ztest"})
NUMERIC_ONLY_TESTS: frozenset[str] = frozenset({"ks", "wasserstein"})
#: scipy's ``jensenshannon`` with its default natural logarithm never exceeds sqrt(ln 2)
JS_MAX = math.sqrt(math.log(2))
DEFAULT_THRESHOLDS: dict[TestName, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "ztest": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}


def check_threshold(test: str, value: float) -> None:
    """Raise ``ValueError`` when ``value`` cannot be a threshold of ``test``."""
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"threshold {value} must be a positive number")
    if test in P_VALUE_TESTS and value >= 1:
        raise ValueError(f"{test} gives a p-value: its threshold must be between 0 and 1, got {value}")
    if test == "jensenshannon" and value > JS_MAX:
        raise ValueError(f"jensenshannon never exceeds {JS_MAX:.4f} (natural log); got {value}")


class DriftConfig(BaseModel):
    """Per-model drift settings; ``tests`` and ``thresholds`` override per column."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tests: dict[str, TestName] = Field(default_factory=dict, description="column -> test")
    thresholds: dict[str, float] = Field(default_factory=dict, description="column -> threshold")
    default_numeric_test: TestName | None = Field(default=None, description="None: automatic (Evidently)")
    default_categorical_test: TestName | None = Field(default=None, description="None: automatic")
    stattest_threshold: dict[TestName, float] = Field(
        default_factory=lambda: dict(DEFAULT_THRESHOLDS),
        description="test -> threshold; a p-value for ks/chisquare/ztest, a distance otherwise",
    )
    drift_share: float = Field(default=0.5, gt=0, le=1, description="dataset drift: share of drifted columns")
    min_rows: int = Field(default=100, ge=1, description="below this many rows nothing is declared")
    time_chunks: int = Field(default=10, ge=1, le=1000, description="time slices for the plots over time")
    chunk_rows: int | None = Field(
        default=None,
        ge=1,
        description="slice the window by this many rows (in time order) instead of by time",
    )
    multivariate: bool = True

    @field_validator("stattest_threshold")
    @classmethod
    def _merge_defaults(cls, value: dict[TestName, float]) -> dict[TestName, float]:
        for test, threshold in value.items():
            check_threshold(test, threshold)
        return {**DEFAULT_THRESHOLDS, **value}

    @field_validator("tests", "thresholds")
    @classmethod
    def _named_columns(cls, value: dict[str, Any]) -> dict[str, Any]:
        if any(not name.strip() for name in value):
            raise ValueError("column names must not be empty")
        return value

    @field_validator("default_numeric_test")
    @classmethod
    def _numeric_test(cls, value: TestName | None) -> TestName | None:
        if value == "ztest":
            raise ValueError("ztest compares two proportions; set it per two-valued column in 'tests'")
        return value

    @field_validator("default_categorical_test")
    @classmethod
    def _categorical_test(cls, value: TestName | None) -> TestName | None:
        if value in NUMERIC_ONLY_TESTS:
            raise ValueError(f"{value} needs numbers; for categories use chisquare, jensenshannon or psi")
        return value

    @model_validator(mode="after")
    def _column_thresholds(self) -> DriftConfig:
        for column, value in self.thresholds.items():
            try:
                check_threshold(self.tests.get(column, ""), value)
            except ValueError as exc:
                raise ValueError(f"thresholds.{column}: {exc}") from None
        return self

    def threshold(self, column: str, test: TestName) -> float:
        """The column's own threshold, else the test's."""
        return self.thresholds.get(column, self.stattest_threshold[test])

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> DriftConfig:
        """Validate settings given as a mapping (stored JSON, CLI, API); ``Invalid`` names the bad field."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise Invalid(f"drift config must be a mapping of settings, got {type(data).__name__}")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise Invalid("invalid drift config: " + "; ".join(_describe(e) for e in exc.errors())) from None


def _describe(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "config"
    kind, message = error["type"], str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        known = ", ".join(DriftConfig.model_fields)
        return f"unknown field '{where}' (known: {known})"
    if kind in ("literal_error", "enum"):
        return f"{where}: unknown test {error.get('input')!r}; choose one of {', '.join(TEST_NAMES)}"
    return f"{where}: {message}"


__all__ = ["DEFAULT_THRESHOLDS", "P_VALUE_TESTS", "TEST_NAMES", "DriftConfig", "check_threshold"]
