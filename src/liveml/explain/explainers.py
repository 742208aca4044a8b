"""Explaining rows of a loaded model: pick the algorithm for its family, then the class per row.

Which algorithm (``method``) and which output (``output_space``) each family gets:

=====================================  ==================  ============================================
model                                  method              output_space
=====================================  ==================  ============================================
XGBoost (native or scikit-learn API)   xgboost_tree        margin: log_odds (binary), logit (multi),
                                                           value (squared error), log (Poisson, ...)
LightGBM (native or scikit-learn API)  lightgbm_tree       as XGBoost
scikit-learn linear model (+ per-      linear              value (regression), log (Poisson/gamma),
column preprocessing)                                      log_odds / logit (logistic), margin (others)
scikit-learn tree ensembles (+ per-    tree                probability (forests, single trees),
column preprocessing)                                      log_odds / logit (gradient boosting), value
anything else (ONNX, torch, custom,    exact / permutation  probability (classifiers), value
other scikit-learn, compiled forms)
=====================================  ==================  ============================================

``space="probability"`` asks for probabilities whatever the family: classifiers whose exact path works in
another space are then explained model-agnostically over their probabilities (slower, still additive).

For a classifier each row explains one class: ``target_class`` when given, else the class predicted for
that row. In a binary log-odds space the second class's attributions are the model's, the first class's
their negation (log(p0/p1) = -log(p1/p0)).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from liveml.errors import Invalid
from liveml.explain import exact
from liveml.explain.agnostic import shapley
from liveml.explain.background import from_example
from liveml.explain.exact import Attribution
from liveml.explain.results import Background, Explanation, Method, OutputSpace, RowExplanation
from liveml.registry.loading import LoadedModel, Rows, to_frame
from liveml.registry.types import ModelVersion
from liveml.runtimes.base import Prediction

Space = Literal["auto", "probability"]
SPACES: tuple[str, ...] = ("auto", "probability")
#: methods that need no background: the trees' own training cover is the reference
TRAINING: frozenset[Method] = frozenset({"tree", "xgboost_tree", "lightgbm_tree"})


def explain(
    model: LoadedModel,
    rows: Rows,
    *,
    target_class: Any = None,
    background: pd.DataFrame | None = None,
    background_source: Background = "given",
    space: str = "auto",
    prediction_ids: Sequence[str] | None = None,
) -> Explanation:
    """Per-column attributions of ``rows``: ``base_value + sum(attributions) == output`` per row.

    ``background``: rows the attributions compare with (default: the version's input example, else
    ``rows``); see ``liveml.explain.background.background_for`` for the reference profile's.
    ``prediction_ids``: one per row, kept with each row's explanation."""
    if space not in SPACES:
        raise Invalid(f"space {space!r} is not known; use one of {', '.join(SPACES)}")
    frame = model.signature.conform(to_frame(rows))
    if len(frame) == 0:
        raise Invalid("no rows to explain; send at least one row")
    if prediction_ids is not None and len(prediction_ids) != len(frame):
        raise ValueError(f"{len(prediction_ids)} prediction ids for {len(frame)} rows")
    prediction = model.runtime.predict(frame)
    classes = _classes(model, prediction)
    chosen = _targets(classes, target_class, prediction)
    if space == "probability" and classes is None:
        raise Invalid("space 'probability' is for classifiers; this model predicts values (leave space out)")
    if background is not None:
        background = model.signature.conform(background)
    elif (example := from_example(model.version)) is not None:
        background, background_source = example, "input_example"
    else:
        background, background_source = frame, "rows"
    found = _attribute(model, frame, background, prediction, classes is not None)
    if found is None or (space == "probability" and found.space != "probability"):
        found = _agnostic(model, frame, background, prediction, classes is not None)
    features = list(frame.columns)
    explained = []
    for i in range(len(frame)):
        k = None if chosen is None else int(chosen[i])
        values, base, output = _pick(found, i, k)
        explained.append(
            RowExplanation(
                prediction_id=prediction_ids[i] if prediction_ids is not None else None,
                target_class=None if k is None or classes is None else classes[k],
                base_value=base,
                attributions=dict(zip(features, values.tolist(), strict=True)),
                output=output,
                output_space=found.space,
                method=found.method,
            )
        )
    return Explanation(
        model=model.version.model,
        version=model.version.version,
        method=found.method,
        output_space=found.space,
        background="training" if found.method in TRAINING else background_source,
        features=features,
        rows=explained,
    )


def check_class(version: ModelVersion, target_class: Any) -> None:
    """Refuse, before anything is predicted, a class the version does not have."""
    if target_class is None or (version.task == "classification" and version.classes is None):
        return
    _find(tuple(version.classes) if version.classes is not None else None, target_class)


def _attribute(
    model: LoadedModel,
    frame: pd.DataFrame,
    background: pd.DataFrame,
    prediction: Prediction,
    classification: bool,
) -> Attribution | None:
    runtime = model.runtime
    inner: Any = runtime._model
    if runtime.name == "xgboost":
        return exact.xgboost(inner, frame, prediction, classification=classification)
    if runtime.name == "lightgbm":
        return exact.lightgbm(inner, frame, prediction, classification=classification)
    if runtime.name in ("sklearn", "skops"):
        return exact.sklearn(inner, frame, background, prediction, classification=classification)
    return None


def _agnostic(
    model: LoadedModel,
    frame: pd.DataFrame,
    background: pd.DataFrame,
    prediction: Prediction,
    classification: bool,
) -> Attribution:
    runtime = model.runtime
    if classification:
        if prediction.probabilities is None:
            raise Invalid(
                f"{model.version.ref} gives class labels without probabilities, so it can only be explained "
                "by an exact method for its family, which it has none of"
            )

        def outputs(rows: pd.DataFrame) -> np.ndarray:
            probabilities = runtime.predict(rows).probabilities
            assert probabilities is not None
            return probabilities

    else:
        if np.asarray(prediction.predictions).dtype.kind not in "fiub" or prediction.predictions.ndim != 1:
            raise Invalid(
                f"{model.version.ref} predicts {prediction.predictions.dtype} values of shape "
                f"{prediction.predictions.shape}; explanations need one number per row"
            )

        def outputs(rows: pd.DataFrame) -> np.ndarray:
            return np.asarray(runtime.predict(rows).predictions, dtype=np.float64).reshape(-1, 1)

    values, base, output, method = shapley(outputs, frame, background)
    space: OutputSpace = "probability" if classification else "value"
    return Attribution(
        np.transpose(values, (0, 2, 1)),
        np.broadcast_to(base, output.shape).copy(),
        output,
        space,
        "exact" if method == "exact" else "permutation",
    )


def _pick(found: Attribution, i: int, k: int | None) -> tuple[np.ndarray, float, float]:
    """Row ``i``'s attributions, base and output for class index ``k`` (None: the only output)."""
    width = found.values.shape[1]
    if k is None or (width == 1 and k in (0, 1) and _binary_margin(found)):
        sign = -1.0 if k == 0 and _binary_margin(found) else 1.0
        return sign * found.values[i, 0], sign * float(found.base[i, 0]), sign * float(found.output[i, 0])
    if k >= width:
        raise Invalid(f"the model explains {width} outputs; class index {k} is out of range")
    return found.values[i, k], float(found.base[i, k]), float(found.output[i, k])


def _binary_margin(found: Attribution) -> bool:
    return found.values.shape[1] == 1 and found.space in ("log_odds", "logit", "margin")


def _classes(model: LoadedModel, prediction: Prediction) -> tuple[Any, ...] | None:
    if prediction.classes is not None:
        return tuple(prediction.classes)
    if model.version.task == "classification" and model.version.classes is not None:
        return tuple(model.version.classes)
    return None


def _targets(classes: tuple[Any, ...] | None, target: Any, prediction: Prediction) -> np.ndarray | None:
    """The class index explained for each row; None for models without classes."""
    if classes is None:
        if target is not None:
            raise Invalid(f"'class' is {target!r}, but this model predicts values, not classes; leave it out")
        return None
    if target is not None:
        return np.full(len(prediction), _find(classes, target), dtype=np.int64)
    return np.array([_find(classes, label) for label in prediction.predictions], dtype=np.int64)


def _find(classes: tuple[Any, ...] | None, value: Any) -> int:
    if classes is None:
        raise Invalid(f"'class' is {value!r}, but this model predicts values, not classes; leave it out")
    for i, known in enumerate(classes):
        if known == value and isinstance(known, bool | np.bool_) == isinstance(value, bool | np.bool_):
            return i
    for i, known in enumerate(classes):  # "1" from a command line or a query for the class 1
        if str(known) == str(value):
            return i
    listed = ", ".join(repr(c) for c in classes)
    raise Invalid(f"the model has no class {value!r}; its classes are {listed}")


__all__ = ["SPACES", "Space", "check_class", "explain"]
