"""What an explanation says: per row, a base value and one attribution per input column that add up
to the model's output in a stated space (``base_value + sum(attributions) == output``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from liveml.errors import Invalid

#: which number the attributions add up to:
#: value: the prediction itself (regression); probability: the class probability;
#: log_odds: log(p / (1 - p)) of the class (binary logistic models, one-vs-rest classes);
#: logit: the class's softmax input (multinomial models; probabilities are softmax of the logits);
#: log: the log of the prediction (Poisson, gamma, Tweedie models); margin: the raw decision score
OutputSpace = Literal["value", "probability", "log_odds", "logit", "log", "margin"]
#: linear: exact closed form for linear models; tree: SHAP's TreeExplainer (exact TreeSHAP);
#: xgboost_tree / lightgbm_tree: the frameworks' own exact TreeSHAP; exact: every coalition of columns
#: evaluated (few columns); permutation: sampled permutations of the columns (model-agnostic)
Method = Literal["linear", "tree", "xgboost_tree", "lightgbm_tree", "exact", "permutation"]
#: where the background (the "typical input" attributions are measured against) came from
Background = Literal["training", "reference", "input_example", "rows", "given"]
PREFIX = "shap_"
#: the columns ``to_frame`` adds after the attributions (``shap_base``, ...)
SUMMARY = ("base", "output", "space", "class")


class RowExplanation(BaseModel):
    """One row: ``base_value + sum(attributions.values()) == output`` (to rounding)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    prediction_id: str | None = None
    target_class: Any = Field(
        default=None,
        serialization_alias="class",
        validation_alias=AliasChoices("class", "target_class"),
        description="the class whose output is explained (classification), else null",
    )
    base_value: float
    attributions: dict[str, float]
    output: float
    output_space: OutputSpace
    method: Method

    @property
    def residual(self) -> float:
        """``output - base - sum``: zero up to floating-point rounding."""
        return self.output - self.base_value - float(sum(self.attributions.values()))


class Explanation(BaseModel):
    """Explanations of rows of one model version, all in one output space and by one method."""

    model_config = ConfigDict(frozen=True, serialize_by_alias=True)

    model: str
    version: int
    method: Method
    output_space: OutputSpace
    background: Background
    features: list[str]
    rows: list[RowExplanation]
    at: datetime | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def values(self) -> np.ndarray:
        """The attributions as an (n rows, n features) matrix, columns in ``features`` order."""
        return np.array([[r.attributions[f] for f in self.features] for r in self.rows], dtype=np.float64)

    def to_frame(self, prefix: str = PREFIX) -> pd.DataFrame:
        """``shap_<feature>`` per input column, ``shap_base``, ``shap_output`` (what they add up to),
        ``shap_space`` and, for classifiers, ``shap_class``."""
        clash = sorted(set(self.features) & set(SUMMARY))
        if clash:
            raise Invalid(
                f"input column(s) {', '.join(map(repr, clash))} would share a name with the {prefix}"
                f"{clash[0]} summary column; explain through the API (JSON keeps them apart) or rename the column"
            )
        frame = pd.DataFrame(self.values(), columns=[f"{prefix}{f}" for f in self.features])
        frame[f"{prefix}base"] = np.array([r.base_value for r in self.rows], dtype=np.float64)
        frame[f"{prefix}output"] = np.array([r.output for r in self.rows], dtype=np.float64)
        frame[f"{prefix}space"] = self.output_space
        if any(r.target_class is not None for r in self.rows):
            frame[f"{prefix}class"] = pd.Series([r.target_class for r in self.rows], dtype=object)
        return frame


__all__ = ["PREFIX", "SUMMARY", "Background", "Explanation", "Method", "OutputSpace", "RowExplanation"]
