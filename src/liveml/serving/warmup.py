"""Warming a freshly loaded version before it takes traffic: one prediction on typical input."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from liveml.errors import LivemlError
from liveml.registry import Registry
from liveml.registry.loading import LoadedModel
from liveml.registry.profile import CategoricalProfile, NumericProfile

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("liveml.serving")


def warm_up(registry: Registry, model: LoadedModel) -> bool:
    """Predict once on the input example, else on a typical row built from the reference profile."""
    frame = typical_rows(registry, model)
    if frame is None:
        return False
    try:
        model.predict(frame)
        return True
    except LivemlError as exc:  # a model that cannot take the typical row still serves real requests
        log.warning("warm-up of %s failed: %s", model.version.ref, exc)
        return False


def typical_rows(registry: Registry, model: LoadedModel) -> pd.DataFrame | None:
    import pandas as pd

    if model.version.input_example:
        return pd.DataFrame(model.version.input_example)
    profile = registry.reference_profile(model.version.ref) if model.version.has_reference else None
    if profile is None:
        return None
    row: dict[str, object] = {}
    types = {c.name: c.type for c in model.signature.inputs}
    for name, column in profile.columns.items():
        if isinstance(column, NumericProfile) and column.quantiles:
            median = column.quantiles[len(column.quantiles) // 2]
            row[name] = round(median) if types.get(name) == "integer" else median
        elif isinstance(column, CategoricalProfile) and column.frequencies:
            value = column.frequencies[0].value
            row[name] = (value == "true") if column.value_type == "boolean" else value
        else:
            row[name] = None
    return pd.DataFrame([row])
