"""The background sample attributions are measured against: "compared with typical input".

In order of preference:

- ``reference``: rows drawn from the version's reference profile, column by column: numbers from each
  column's stored sample (up to 200 values drawn from the reference data at push), categories by their
  frequencies. The columns are drawn independently, so the background keeps each column's distribution
  but not the correlations between columns (the interventional SHAP assumption anyway);
- ``input_example``: the few rows pushed with ``--example``;
- ``rows``: the rows being explained themselves (attributions then compare each row with the batch).
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from liveml.errors import Invalid
from liveml.explain.results import Background
from liveml.registry.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from liveml.registry.registry import Registry
from liveml.registry.types import ModelVersion
from liveml.signature import Signature

ROWS = 100


def background_for(
    registry: Registry, version: ModelVersion, *, size: int = ROWS, seed: int = 0
) -> tuple[pd.DataFrame | None, Background]:
    """A background for ``version`` from its reference profile, else its input example; ``(None,
    "rows")`` when it has neither (the rows explained are used)."""
    profile = registry.reference_profile(version.ref) if version.has_reference else None
    if profile is not None:
        frame = from_profile(profile, version.signature, size=size, seed=seed)
        if frame is not None:
            return frame, "reference"
    example = from_example(version)
    if example is not None:
        return example, "input_example"
    return None, "rows"


def from_example(version: ModelVersion) -> pd.DataFrame | None:
    if not version.input_example:
        return None
    try:
        return version.signature.conform(pd.DataFrame(version.input_example))
    except Invalid:
        return None


def from_profile(
    profile: ReferenceProfile, signature: Signature, *, size: int = ROWS, seed: int = 0
) -> pd.DataFrame | None:
    """``size`` rows drawn column by column from the profile, conformed to the signature; None when the
    profile lacks a column the signature has."""
    columns: dict[str, object] = {}
    for spec in signature.inputs:
        column = profile.columns.get(spec.name)
        if column is None:
            return None
        rng = np.random.default_rng([seed, zlib.crc32(spec.name.encode())])
        if isinstance(column, NumericProfile):
            columns[spec.name] = _numbers(column, size, rng)
        elif isinstance(column, CategoricalProfile):
            columns[spec.name] = _categories(column, size, rng)
    frame = pd.DataFrame(columns)
    try:
        return signature.conform(frame)
    except Invalid:
        return None


def _numbers(column: NumericProfile, size: int, rng: np.random.Generator) -> object:
    sample = np.asarray(column.sample, dtype=np.float64)
    values = np.full(size, np.nan) if sample.size == 0 else rng.choice(sample, size=size, replace=True)
    if column.value_type == "datetime":
        return pd.to_datetime(values, unit="s")
    if column.value_type == "duration":
        return pd.to_timedelta(values, unit="s")
    if column.value_type == "integer" and sample.size:
        return pd.array(np.round(values).astype(np.int64), dtype="Int64")
    return values


def _categories(column: CategoricalProfile, size: int, rng: np.random.Generator) -> object:
    if not column.frequencies:
        return np.full(size, None, dtype=object)
    labels = [c.value for c in column.frequencies]
    weights = np.array([c.rows for c in column.frequencies], dtype=np.float64)
    drawn = rng.choice(len(labels), size=size, replace=True, p=weights / weights.sum())
    if column.value_type == "boolean":
        return np.array([labels[i] == "true" for i in drawn], dtype=bool)
    return np.array([labels[i] for i in drawn], dtype=object)


__all__ = ["ROWS", "background_for", "from_example", "from_profile"]
