"""XGBoost boosters saved with ``save_model`` as native JSON (``.json``) or UBJSON (``.ubj``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liveml.errors import Invalid, first_line
from liveml.runtimes.base import ModelDescription, Prediction, Runtime, Task, classify, numeric_matrix


class XGBoostRuntime(Runtime):
    name = "xgboost"
    label = "XGBoost"
    extensions = (".json", ".ubj")
    extra = "xgboost"
    unpickles = False
    priority = 10

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        if head.lstrip().startswith(b"{") and b'"learner"' in head:
            return True
        # UBJSON: "{" then the key "learner" as a length-prefixed string (marker i/U/I/l/L + length)
        return head.startswith(b"{") and head[1:2] in b"iUIlL" and b"learner" in head[:32]

    def load(self) -> None:
        xgb = self.require("xgboost")
        # stored artifacts have no suffix, from which xgboost picks its parser (guessing, with a warning,
        # when there is none); a buffer is parsed by its content
        try:
            raw = bytearray(self.path.read_bytes())
            booster = xgb.Booster()
            booster.load_model(raw)
            config = json.loads(booster.save_config())
        except Exception as exc:  # XGBoostError, or JSON/Unicode errors from a damaged config
            raise Invalid(f"the XGBoost model could not be loaded: {_xgboost_message(exc)}") from exc
        learner = config.get("learner", {})
        self._objective = str(learner.get("objective", {}).get("name", ""))
        self._num_class = int(learner.get("learner_model_param", {}).get("num_class", "0") or 0)
        self._model = booster

    def _booster(self) -> Any:
        if self._model is None:
            self.load()
        return self._model

    @property
    def objective(self) -> str:
        self._booster()
        return self._objective

    def _task(self) -> Task:
        family = self.objective.split(":")[0]
        if family in ("binary", "multi"):
            return "classification"
        if family in ("reg", "count", "survival"):
            return "regression"
        return "other"

    def _classes(self) -> tuple[Any, ...] | None:
        if self._task() != "classification":
            return None
        n = self._num_class if self.objective.startswith("multi:") else 2
        return self.class_labels(n)

    def describe(self) -> ModelDescription:
        xgb = self.require("xgboost")
        booster = self._booster()
        names = booster.feature_names
        return ModelDescription(
            format=self.name,
            task=self._task(),
            framework=f"xgboost {xgb.__version__}",
            input_names=tuple(str(n) for n in names) if names else None,
            n_inputs=int(booster.num_features()),
            classes=self._classes(),
            details={"objective": self.objective, "rounds": str(booster.num_boosted_rounds())},
        )

    def _predict(self, frame: pd.DataFrame) -> Prediction:
        xgb = self.require("xgboost")
        booster = self._booster()
        names = list(booster.feature_names or [])
        if names and set(frame.columns) == set(names):
            frame = frame[names]  # the caller's columns are the model's: match by name, in any order
        n_features = int(booster.num_features())
        if frame.shape[1] != n_features:
            raise Invalid(f"the XGBoost model takes {n_features} input columns; got {frame.shape[1]}")
        matrix = numeric_matrix(frame, np.float32)
        try:
            # categorical features ("c") arrive as their integer codes
            types = booster.feature_types
            categorical = bool(types) and "c" in types
            dmatrix = xgb.DMatrix(
                matrix, feature_names=names or None, feature_types=types, enable_categorical=categorical
            )
            output = np.asarray(booster.predict(dmatrix), dtype=np.float64)
        except Exception as exc:
            raise Invalid(f"the XGBoost model rejected the input: {_xgboost_message(exc)}") from exc
        objective, classes = self.objective, self._classes()
        if classes is None:
            return Prediction(predictions=output)
        if objective in ("multi:softmax", "binary:hinge"):
            # these objectives give the class index only, no probabilities
            labels = np.asarray(classes, dtype=object)[output.astype(np.int64)]
            return Prediction(predictions=_plain_labels(labels, classes))
        if objective == "binary:logitraw":
            output = 1.0 / (1.0 + np.exp(-output))
        return classify(output, classes)


def _plain_labels(labels: np.ndarray, classes: tuple[Any, ...]) -> np.ndarray:
    if all(isinstance(c, int | np.integer) for c in classes):
        return labels.astype(np.int64)
    return labels


def _xgboost_message(exc: BaseException) -> str:
    """The first line of an error, without XGBoost's "[12:00:00] /path/to/file.cc:123: " prefix."""
    return re.sub(r"^\[[\d:]+\] \S+:\d+: ", "", first_line(exc))
