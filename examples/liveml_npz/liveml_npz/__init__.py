"""Linear models stored as NumPy .npz archives (coef, intercept): a third-party liveml runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from liveml.errors import Invalid
from liveml.runtimes.base import ModelDescription, Prediction, Runtime, numeric_matrix
from liveml.runtimes.catalog import zip_members


class NpzLinearRuntime(Runtime):
    name = "npz_linear"
    label = "NumPy linear model"
    extensions = (".npz",)
    priority = 40  # before the generic zip and pickle formats

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return {"coef.npy", "intercept.npy"} <= set(zip_members(path, head))

    def load(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                self._model = (data["coef"].astype(np.float64), float(data["intercept"]))
        except (OSError, KeyError, ValueError) as exc:
            raise Invalid(f"the .npz file is not a linear model: {exc}") from exc

    def describe(self) -> ModelDescription:
        if self._model is None:
            self.load()
        return ModelDescription(
            format=self.name,
            task="regression",
            framework=f"numpy {np.__version__}",
            n_inputs=len(self._model[0]),
        )

    def _predict(self, frame: pd.DataFrame) -> Prediction:
        coef, intercept = self._model
        if frame.shape[1] != len(coef):
            raise Invalid(f"the model takes {len(coef)} columns; got {frame.shape[1]}")
        return Prediction(predictions=numeric_matrix(frame, np.float64) @ coef + intercept)
