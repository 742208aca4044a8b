"""LightGBM boosters saved as text with ``Booster.save_model`` (or ``LGBMModel.booster_.save_model``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liveml.errors import Invalid, first_line
from liveml.runtimes.base import ModelDescription, Prediction, Runtime, Task, classify, numeric_matrix

_CLASSIFIERS = {"binary", "multiclass", "multiclassova"}
_REGRESSORS = {
    "regression",
    "regression_l1",
    "huber",
    "fair",
    "poisson",
    "quantile",
    "mape",
    "gamma",
    "tweedie",
    "cross_entropy",
    "cross_entropy_lambda",
}


class LightGBMRuntime(Runtime):
    name = "lightgbm"
    label = "LightGBM"
    extensions = (".txt",)
    extra = "lightgbm"
    unpickles = False
    priority = 10

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return head.startswith(b"tree\n") and b"version=v" in head[:64]

    def load(self) -> None:
        lgb = self.require("lightgbm")
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise Invalid(f"the LightGBM model file could not be read as text ({exc})") from exc
        # LightGBM happily loads a file cut between two trees; the footer proves the file is whole
        if not text.startswith("tree\n") or "end of trees" not in text:
            raise Invalid("the file is truncated or not a LightGBM text model (it lacks 'end of trees')")
        try:
            booster = lgb.Booster(model_str=text)
        except Exception as exc:  # LightGBMError derives from Exception only
            raise Invalid(f"the LightGBM model could not be loaded: {first_line(exc)}") from exc
        self._header = _header(text)
        self._model = booster

    @property
    def objective(self) -> str:
        """The objective's name, without parameters: ``binary sigmoid:1`` gives ``binary``."""
        self._booster()
        return self._header.get("objective", "").split(" ")[0]

    def _booster(self) -> Any:
        if self._model is None:
            self.load()
        return self._model

    def _task(self) -> Task:
        objective = self.objective
        if objective in _CLASSIFIERS:
            return "classification"
        if objective in _REGRESSORS:
            return "regression"
        return "other"

    def _classes(self) -> tuple[Any, ...] | None:
        if self._task() != "classification":
            return None
        n = 2 if self.objective == "binary" else int(self._header.get("num_class", "1"))
        return self.class_labels(n)

    def _feature_names(self) -> tuple[str, ...] | None:
        names = [str(n) for n in self._booster().feature_name()]
        # LightGBM invents Column_0.. for unnamed training data: those are not real column names
        if all(n == f"Column_{i}" for i, n in enumerate(names)):
            return None
        return tuple(names)

    def describe(self) -> ModelDescription:
        lgb = self.require("lightgbm")
        booster = self._booster()
        return ModelDescription(
            format=self.name,
            task=self._task(),
            framework=f"lightgbm {lgb.__version__}",
            input_names=self._feature_names(),
            n_inputs=int(booster.num_feature()),
            classes=self._classes(),
            details={"objective": self._header.get("objective", ""), "trees": str(booster.num_trees())},
        )

    def _predict(self, frame: pd.DataFrame) -> Prediction:
        booster = self._booster()
        n_features = int(booster.num_feature())
        names = self._feature_names()
        if names is not None and set(frame.columns) == set(names):
            frame = frame[list(names)]  # the caller's columns are the model's: match by name, in any order
        if frame.shape[1] != n_features:
            raise Invalid(f"the LightGBM model takes {n_features} input columns; got {frame.shape[1]}")
        matrix = numeric_matrix(frame, np.float64)
        try:
            output = np.asarray(booster.predict(matrix), dtype=np.float64)
        except Exception as exc:
            raise Invalid(f"the LightGBM model rejected the input: {first_line(exc)}") from exc
        if self._task() != "classification":
            return Prediction(predictions=output)
        if self.objective == "multiclassova":
            # one-vs-all scores are independent sigmoids; normalise so rows are a distribution
            output = output / np.clip(output.sum(axis=1, keepdims=True), 1e-12, None)
        return classify(output, self._classes())


def _header(text: str) -> dict[str, str]:
    """``key=value`` lines before the first tree (objective, num_class, feature_names, ...)."""
    header: dict[str, str] = {}
    for line in text.split("\nTree=", 1)[0].splitlines():
        key, sep, value = line.partition("=")
        if sep:
            header[key.strip()] = value.strip()
    return header
