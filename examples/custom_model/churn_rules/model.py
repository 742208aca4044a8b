"""The class liveml loads: ``load(path)`` reads the weights shipped beside the code, ``predict`` scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .features import encode


class ChurnRules:
    task = "classification"
    input_names = ("plan", "tenure_months", "monthly_charges", "support_calls")
    classes = ("stay", "leave")

    def load(self, path: Path) -> None:
        self.weights = np.asarray(json.loads((Path(path) / "weights.json").read_text()), dtype=np.float64)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(encode(frame) @ self.weights)))
        return np.column_stack([1.0 - p, p])

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)[self.predict_proba(frame).argmax(axis=1)]
