"""Exact, fast attributions for the model families that have them.

- XGBoost and LightGBM: the frameworks' own TreeSHAP (``pred_contribs`` / ``pred_contrib``), in the
  booster's raw (margin) space; no ``shap`` needed. XGBoost computes them in float32, so they add up to
  its margin to float32 rounding (about 1e-6 relative); LightGBM's are float64.
- scikit-learn linear models: the closed form ``coef * (x - mean(background))``, base
  ``coef @ mean + intercept`` (SHAP's LinearExplainer, interventional), in the decision-function space.
- scikit-learn tree ensembles: ``shap.TreeExplainer`` (exact path-dependent TreeSHAP over the training
  cover; no background), in the trees' raw space: probabilities for forests, log-odds or logits for
  gradient boosting.
- Pipelines whose steps before the model each transform one column into one column (scalers, quantile
  and power transforms, imputers, ordinal binning): the model is explained on the transformed rows and
  each transformed column's attribution is its input column's. Exact: the composed model is additive in
  the same way over the input columns (see docs/explanations.md).

Every result is checked against the model's own output (probabilities, decision function or
predictions) before it is returned; a model whose output does not match comes back as None and is
explained model-agnostically instead.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from liveml.explain.results import Method, OutputSpace
from liveml.runtimes.base import Prediction, numeric_matrix

log = logging.getLogger("liveml.explain")

_TREES = {
    f"{kind}{task}"
    for kind in (
        "DecisionTree",
        "ExtraTree",
        "RandomForest",
        "ExtraTrees",
        "GradientBoosting",
        "HistGradientBoosting",
    )
    for task in ("Classifier", "Regressor")
}
_EXPLAINERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Attribution:
    """``values`` (n, outputs, features), ``base`` and ``output`` (n, outputs): one output per class, or
    one for a regression or a binary margin (the log-odds of the second class)."""

    values: np.ndarray
    base: np.ndarray
    output: np.ndarray
    space: OutputSpace
    method: Method


def xgboost(
    booster: Any, frame: pd.DataFrame, prediction: Prediction, *, classification: bool
) -> Attribution:
    import xgboost as xgb

    names = list(booster.feature_names or [])
    data = frame[names] if names and set(frame.columns) == set(names) else frame
    types = booster.feature_types
    matrix = xgb.DMatrix(
        numeric_matrix(data, np.float32),
        feature_names=names or None,
        feature_types=types,
        enable_categorical=bool(types) and "c" in types,
    )
    contribs = np.asarray(booster.predict(matrix, pred_contribs=True), dtype=np.float64)
    margin = np.asarray(booster.predict(matrix, output_margin=True), dtype=np.float64)
    contribs = contribs.reshape(len(frame), -1, contribs.shape[-1])
    values = _in_order(contribs[..., :-1], list(data.columns), list(frame.columns))
    margin = margin.reshape(len(frame), -1)
    space = identify(margin, prediction, classification=classification, loose=True) or "margin"
    return Attribution(values, contribs[..., -1], margin, space, "xgboost_tree")


def lightgbm(
    booster: Any, frame: pd.DataFrame, prediction: Prediction, *, classification: bool
) -> Attribution:
    names = [str(n) for n in booster.feature_name()]
    data = frame[names] if set(frame.columns) == set(names) else frame
    matrix = numeric_matrix(data, np.float64)
    contribs = np.asarray(booster.predict(matrix, pred_contrib=True), dtype=np.float64)
    margin = np.asarray(booster.predict(matrix, raw_score=True), dtype=np.float64).reshape(len(frame), -1)
    contribs = contribs.reshape(len(frame), margin.shape[1], -1)
    values = _in_order(contribs[..., :-1], list(data.columns), list(frame.columns))
    space = identify(margin, prediction, classification=classification, loose=True) or "margin"
    return Attribution(values, contribs[..., -1], margin, space, "lightgbm_tree")


def sklearn(
    model: Any, frame: pd.DataFrame, background: pd.DataFrame, prediction: Prediction, *, classification: bool
) -> Attribution | None:
    """Linear models and tree ensembles, alone or after per-column steps; None for anything else."""
    if hasattr(model, "get_booster"):  # xgboost's scikit-learn wrappers
        return xgboost(model.get_booster(), frame, prediction, classification=classification)
    if hasattr(model, "booster_"):  # lightgbm's
        return lightgbm(model.booster_, frame, prediction, classification=classification)
    by_name = getattr(model, "feature_names_in_", None) is not None
    final, steps = _split(model)
    if steps is None:
        return None

    def features(rows: pd.DataFrame) -> Any:
        given: Any = rows if by_name else rows.to_numpy()
        for step in steps:
            given = step.transform(given)
        return given

    try:
        rows_in, background_in = features(frame), features(background)
        z = np.asarray(rows_in, dtype=np.float64)
        z_background = np.asarray(background_in, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if z.ndim != 2 or z.shape[1] != frame.shape[1]:
        return None
    decision = _decision(final, rows_in)
    if _is_linear(final):
        found = _linear(final, z, z_background)
        method: Method = "linear"
    elif type(final).__name__ in _TREES and type(final).__module__.startswith("sklearn."):
        found = _tree(final, z)
        method = "tree"
    else:
        return None
    if found is None:
        return None
    values, base, output = found
    space = identify(output, prediction, classification=classification, decision=decision)
    if space is None:
        log.info("%s: exact attributions do not match its output; explaining it by permutation", final)
        return None
    return Attribution(values, base, output, space, method)


def identify(
    output: np.ndarray,
    prediction: Prediction,
    *,
    classification: bool,
    decision: np.ndarray | None = None,
    loose: bool = False,
) -> OutputSpace | None:
    """Which space ``output`` (n, outputs) is in, judged against the model's own answers; None when it
    matches none of them. ``decision``: the model's decision function, which a margin must equal;
    ``loose``: the output is the framework's own raw score (float32 for XGBoost), a margin at worst."""
    probs = prediction.probabilities
    is_probability = probs is not None and output.shape == probs.shape and _close(output, probs, loose)
    is_decision = (
        decision is not None
        and decision.size == output.size
        and _close(output, decision.reshape(output.shape), loose)
    )
    if decision is not None and not (is_decision or is_probability):
        return None  # a margin must be the model's own decision function
    if classification and probs is None:  # labels only (hinge losses, SVMs without probabilities)
        return "margin" if loose or is_decision else None
    if probs is not None:
        if is_probability:
            return "probability"
        with np.errstate(over="ignore", under="ignore"):
            if output.shape[1] == 1 and probs.shape[1] == 2:
                if _close(_sigmoid(output[:, 0]), probs[:, 1], True):
                    return "log_odds"
            elif output.shape == probs.shape:
                if _close(_softmax(output), probs, True):
                    return "logit"
                sig = _sigmoid(output)
                if _close(sig / sig.sum(axis=1, keepdims=True), probs, True):
                    return "log_odds"
        return "margin"
    values = np.asarray(prediction.predictions)
    if values.ndim != 1 or values.dtype.kind not in "fiub" or output.shape[1] != 1:
        return "margin" if loose else None
    values = values.astype(np.float64)
    if _close(output[:, 0], values, loose):
        return "value"
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.all(values > 0) and _close(output[:, 0], np.log(values), loose):
            return "log"
    return "margin" if loose else None


def _close(a: np.ndarray, b: np.ndarray, loose: bool) -> bool:
    """Equal to rounding: float64 arithmetic, or (``loose``) float32 sums and probability transforms."""
    if loose:
        return bool(np.allclose(a, b, rtol=1e-4, atol=1e-6))
    return bool(np.allclose(a, b, rtol=1e-7, atol=1e-9))


def _split(model: Any) -> tuple[Any, list[Any] | None]:
    """The final estimator and the steps before it, or None as steps when one mixes columns."""
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline):
        return model, []
    steps = []
    for _, step in model.steps[:-1]:
        if step is None or step == "passthrough":
            continue
        if not _per_column(step):
            return model, None
        steps.append(step)
    return model.steps[-1][1], steps


def _per_column(step: Any) -> bool:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import (
        FunctionTransformer,
        KBinsDiscretizer,
        MaxAbsScaler,
        MinMaxScaler,
        PowerTransformer,
        QuantileTransformer,
        RobustScaler,
        StandardScaler,
    )

    if isinstance(step, KBinsDiscretizer):
        return step.encode == "ordinal"
    if isinstance(step, FunctionTransformer):
        return step.func is None
    if isinstance(step, SimpleImputer):
        return not step.add_indicator  # the width is checked after transforming (dropped columns)
    return isinstance(
        step,
        StandardScaler | MinMaxScaler | MaxAbsScaler | RobustScaler | QuantileTransformer | PowerTransformer,
    )


def _is_linear(model: Any) -> bool:
    coef = getattr(model, "coef_", None)
    return coef is not None and hasattr(model, "intercept_") and np.asarray(coef).ndim in (1, 2)


def _linear(model: Any, z: np.ndarray, z_background: np.ndarray) -> tuple[np.ndarray, ...] | None:
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    if coef.shape[1] != z.shape[1]:
        return None
    intercept = np.broadcast_to(np.asarray(model.intercept_, dtype=np.float64), coef.shape[:1])
    mean = np.nanmean(z_background, axis=0) if len(z_background) else np.zeros(z.shape[1])
    values = coef[None, :, :] * (z[:, None, :] - mean[None, None, :])
    base = np.broadcast_to(coef @ mean + intercept, (len(z), coef.shape[0]))
    return values, np.array(base), z @ coef.T + intercept


def _tree(model: Any, z: np.ndarray) -> tuple[np.ndarray, ...] | None:
    try:
        import shap
    except ImportError:
        log.warning("explaining %s exactly needs shap: pip install 'liveml[explain]'", type(model).__name__)
        return None
    with _LOCK:
        explainer = _EXPLAINERS.get(model)
        if explainer is None:
            try:
                explainer = shap.TreeExplainer(model)
            except Exception as exc:  # InvalidModelError and friends: a tree model shap cannot read
                log.info("shap cannot explain %s exactly (%s)", type(model).__name__, exc)
                return None
            _EXPLAINERS[model] = explainer
    raw = explainer.shap_values(z, check_additivity=False)
    if isinstance(raw, list):  # older shap: one (n, features) matrix per class
        values = np.stack([np.asarray(r, dtype=np.float64) for r in raw], axis=1)
    else:
        values = np.asarray(raw, dtype=np.float64)
        values = values[:, None, :] if values.ndim == 2 else np.transpose(values, (0, 2, 1))
    base = np.broadcast_to(
        np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64)), values.shape[:2]
    )
    return values, np.array(base), base + values.sum(axis=2)


def _decision(model: Any, rows: Any) -> np.ndarray | None:
    function = getattr(model, "decision_function", None)
    if not callable(function):
        return None
    try:
        return np.asarray(function(rows), dtype=np.float64)
    except (AttributeError, ValueError, TypeError):
        return None


def _in_order(values: np.ndarray, have: list[str], want: list[str]) -> np.ndarray:
    if have == want:
        return values
    return values[..., [have.index(name) for name in want]]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


__all__ = ["Attribution", "identify", "lightgbm", "sklearn", "xgboost"]
