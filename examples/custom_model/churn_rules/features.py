"""Feature encoding shared by the model: numbers scaled, the plan one-hot encoded."""

from __future__ import annotations

import numpy as np
import pandas as pd

PLANS = ("basic", "pro", "enterprise")


def encode(frame: pd.DataFrame) -> np.ndarray:
    numbers = frame[["tenure_months", "monthly_charges", "support_calls"]].to_numpy(dtype=np.float64)
    plans = np.column_stack([(frame["plan"] == p).to_numpy(dtype=np.float64) for p in PLANS])
    return np.column_stack([np.ones(len(frame)), numbers, plans])
