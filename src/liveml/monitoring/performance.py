"""Model performance over a window: realized (labels joined by prediction id) and estimated without labels.

**Realized** metrics are scikit-learn's on the labelled rows. Binary: the positive class is the second of
``classes``; multiclass precision, recall and F1 are macro averages and ROC-AUC is one-vs-rest macro. A
metric the rows cannot define (one class only, no predicted positive, fewer than two rows for R²) is
``None``, never an exception.

**Estimated** metrics follow NannyML's confidence-based performance estimation (CBPE) and assume the
probabilities are calibrated and the relation between inputs and labels unchanged (no concept drift).
With p_i = P(positive) and ŷ_i the prediction, row i's label is Bernoulli(p_i), so the expected confusion
matrix is TP = sum over ŷ=1 of p_i, FP = sum over ŷ=1 of (1 - p_i), FN = sum over ŷ=0 of p_i,
TN = sum over ŷ=0 of (1 - p_i), and accuracy = (TP + TN) / n, precision = TP / (TP + FP),
recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN). ROC-AUC is the area under the expected ROC curve
(TPR(t) = sum of p_i over p_i >= t / sum of p_i, FPR likewise with 1 - p_i), as NannyML estimates it.

Bands are estimate ± 3 standard errors (NannyML's ``SAMPLING_ERROR_RANGE = 3``), clipped to [0, 1]. With
no reference labels the standard errors come from the same Bernoulli model: the realized metric's spread
around its expectation given the window's probabilities. Accuracy: sqrt(sum c_i (1 - c_i)) / n with c_i
the probability row i is right; precision: sqrt(sum over ŷ=1 of p_i (1 - p_i)) / (rows predicted
positive); recall and F1 by the delta method over A = TP and C = FN (independent sums, variances
V_A = sum over ŷ=1 of p(1 - p), V_C = sum over ŷ=0 of p(1 - p)): recall = A / (A + C) gives
(C² V_A + A² V_C) / (A + C)⁴, F1 = 2A / (n_pos_pred + A + C) gives
(2 (n_pos_pred + C))² V_A / D⁴ + (2A)² V_C / D⁴; ROC-AUC: Hanley & McNeil (1982) with the expected
class counts. Multiclass: estimated accuracy only (mean probability of the predicted class). Regressors
would need direct loss estimation (a model of the loss): not done, so the result says so in ``skipped``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from liveml.errors import Invalid
from liveml.monitoring.results import MetricValue, Performance

Task = Literal["classification", "regression"]
BAND_ERRORS = 3.0


def realized(
    task: Task,
    outputs: pd.DataFrame,
    labels: pd.Series | np.ndarray | Sequence[Any],
    classes: Sequence[Any] | None,
) -> Performance:
    """Metrics of ``outputs["prediction"]`` (and ``proba_<class>`` columns) against ``labels`` (row by row;
    missing labels are rows not labelled yet)."""
    truth = (
        labels.reset_index(drop=True)
        if isinstance(labels, pd.Series)
        else pd.Series(list(labels), dtype="object")
    )
    if len(truth) != len(outputs):
        raise Invalid(f"{len(truth)} labels for {len(outputs)} predictions; give one label (or None) per row")
    predicted = outputs["prediction"].reset_index(drop=True) if "prediction" in outputs.columns else None
    if predicted is None:
        return Performance(kind="realized", task=task, metrics=(), skipped="no 'prediction' column")
    keep = (truth.notna() & predicted.notna()).to_numpy()
    rows = int(keep.sum())
    if task == "regression":
        y, yhat = _floats(truth[keep]), _floats(predicted[keep])
        ok = np.isfinite(y) & np.isfinite(yhat)
        y, yhat, rows = y[ok], yhat[ok], int(ok.sum())
        values = {
            "mae": lambda: skm.mean_absolute_error(y, yhat),
            "rmse": lambda: math.sqrt(skm.mean_squared_error(y, yhat)),
            "r2": lambda: skm.r2_score(y, yhat) if rows >= 2 else None,
        }
    else:
        names = _classes(outputs, classes, truth[keep], predicted[keep])
        y, yhat = _keys(truth[keep]), _keys(predicted[keep])
        proba = _probabilities(outputs, names)
        if proba is not None:
            proba = proba[keep]
            with np.errstate(invalid="ignore", divide="ignore"):
                proba = proba / proba.sum(axis=1, keepdims=True)  # as scikit-learn wants them: rows sum to 1
        values = _classification(y, yhat, names, proba)
    found = tuple(
        MetricValue(name=name, value=_safe(compute) if rows else None, rows=rows)
        for name, compute in values.items()
    )
    return Performance(
        kind="realized",
        task=task,
        metrics=found,
        labelled_rows=rows,
        skipped=None if rows else "no labelled rows in the window",
    )


def estimated(outputs: pd.DataFrame, classes: Sequence[Any] | None) -> Performance:
    """CBPE estimates (see the module docstring) from ``proba_<class>`` columns; no labels needed."""
    names = _classes(outputs, classes, pd.Series(dtype="object"), pd.Series(dtype="object"))
    proba = _probabilities(outputs, names) if names else None
    if not names or proba is None:
        task: Task = "classification" if classes else "regression"
        why = (
            "no class probabilities (proba_<class> columns) in the window: confidence-based estimation needs them"
            if classes
            else "performance estimation without labels is for classifiers with probabilities; regressors "
            "would need direct loss estimation, which liveml does not do"
        )
        return Performance(kind="estimated", task=task, metrics=(), skipped=why)
    ok = np.isfinite(proba).all(axis=1)
    proba = np.clip(proba[ok], 0.0, 1.0)  # float32 models (ONNX) give 1.0000001: p * (1 - p) must stay >= 0
    n = len(proba)
    if n == 0:
        return Performance(
            kind="estimated", task="classification", metrics=(), skipped="no rows with probabilities"
        )
    predicted = outputs["prediction"].to_numpy()[ok] if "prediction" in outputs.columns else None
    if len(names) == 2:
        p = proba[:, 1]
        positive = _keys(pd.Series(predicted)) == names[1] if predicted is not None else p >= 0.5
        found = _binary_estimates(p, positive)
    else:
        picked = proba.argmax(axis=1)
        if predicted is not None:
            at = pd.Index(names).get_indexer(pd.Index(_keys(pd.Series(predicted))))
            picked = np.where(at >= 0, at, picked)
        right = proba[np.arange(n), picked]
        found = [_band("accuracy", float(right.mean()), math.sqrt(float(np.sum(right * (1 - right)))) / n, n)]
    return Performance(kind="estimated", task="classification", metrics=tuple(found))


def _classification(
    y: np.ndarray, yhat: np.ndarray, names: list[str], proba: np.ndarray | None
) -> dict[str, Any]:
    binary = len(names) == 2
    average: dict[str, Any] = (
        {"average": "binary", "pos_label": names[1]} if binary else {"average": "macro", "labels": names}
    )
    values: dict[str, Any] = {
        "accuracy": lambda: skm.accuracy_score(y, yhat),
        "precision": lambda: skm.precision_score(y, yhat, zero_division=np.nan, **average),
        "recall": lambda: skm.recall_score(y, yhat, zero_division=np.nan, **average),
        "f1": lambda: skm.f1_score(y, yhat, zero_division=np.nan, **average),
    }
    if proba is not None:
        if binary:
            values["roc_auc"] = lambda: skm.roc_auc_score(y == names[1], proba[:, 1])
        else:
            values["roc_auc"] = lambda: skm.roc_auc_score(
                y, proba, multi_class="ovr", average="macro", labels=names
            )
        values["log_loss"] = lambda: skm.log_loss(y, proba, labels=names)
    return values


def _binary_estimates(p: np.ndarray, positive: np.ndarray) -> list[MetricValue]:
    n = len(p)
    var = p * (1 - p)
    tp, fp = float(p[positive].sum()), float((1 - p[positive]).sum())
    fn, tn = float(p[~positive].sum()), float((1 - p[~positive]).sum())
    var_a, var_c, n_pp = float(var[positive].sum()), float(var[~positive].sum()), tp + fp
    right = np.where(positive, p, 1 - p)
    found = [_band("accuracy", (tp + tn) / n, math.sqrt(float(np.sum(right * (1 - right)))) / n, n)]
    found.append(_band("precision", _ratio(tp, n_pp), _ratio(math.sqrt(var_a), n_pp), n))
    found.append(
        _band(
            "recall", _ratio(tp, tp + fn), _ratio(math.sqrt(fn**2 * var_a + tp**2 * var_c), (tp + fn) ** 2), n
        )
    )
    d = n_pp + tp + fn
    f1_se = _ratio(math.sqrt((2 * (n_pp + fn)) ** 2 * var_a + (2 * tp) ** 2 * var_c), d**2)
    found.append(_band("f1", _ratio(2 * tp, d), f1_se, n))
    found.append(_roc_auc(p))
    return found


def _roc_auc(p: np.ndarray) -> MetricValue:
    """Area under the expected ROC curve, ties grouped; Hanley-McNeil standard error."""
    n1, n0 = float(p.sum()), float((1 - p).sum())
    if n1 <= 0 or n0 <= 0:
        return MetricValue(name="roc_auc", value=None, rows=len(p))
    ps = np.sort(p)[::-1]
    last = np.r_[ps[1:] != ps[:-1], True]
    tpr = np.r_[0.0, np.cumsum(ps)[last] / n1]
    fpr = np.r_[0.0, np.cumsum(1 - ps)[last] / n0]
    auc = float(np.trapezoid(tpr, fpr))
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + max(n1 - 1, 0) * (q1 - auc**2) + max(n0 - 1, 0) * (q2 - auc**2)) / (n1 * n0)
    return _band("roc_auc", auc, math.sqrt(max(var, 0.0)), len(p))


def _band(name: str, value: float | None, error: float | None, rows: int) -> MetricValue:
    if value is None or error is None:
        return MetricValue(name=name, value=value, rows=rows)
    spread = BAND_ERRORS * error
    return MetricValue(
        name=name, value=value, rows=rows, lower=max(value - spread, 0.0), upper=min(value + spread, 1.0)
    )


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _safe(compute: Any) -> float | None:
    """The metric, or None where it is undefined (scikit-learn raises or gives NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = compute()
        except (ValueError, ZeroDivisionError):
            return None
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _floats(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _key(value: Any) -> str:
    """A class label as text, 1, 1.0, "1" and numpy integers alike (labels come back through JSON)."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    text = str(value)
    return text.lower() if text in ("True", "False") else text


def _keys(values: pd.Series) -> np.ndarray:
    return np.array([_key(v) for v in values.tolist()], dtype="object")


def _classes(outputs: pd.DataFrame, classes: Sequence[Any] | None, *seen: pd.Series) -> list[str]:
    """Class labels as text, in order: as given, else the ``proba_<class>`` columns', else those seen."""
    if classes:
        return [_key(c) for c in classes]
    from_proba = [_key(str(c)[len("proba_") :]) for c in outputs.columns if str(c).startswith("proba_")]
    if len(from_proba) >= 2:
        return from_proba
    found = sorted({k for s in seen for k in _keys(s).tolist()} - set(from_proba))
    if len(from_proba) == 1:  # a binary model giving the positive class's probability only
        return [found[0] if len(found) == 1 else f"not {from_proba[0]}", from_proba[0]]
    return found


def _probabilities(outputs: pd.DataFrame, names: list[str]) -> np.ndarray | None:
    """(rows, classes) probabilities; a binary model's missing negative column is 1 - positive."""
    columns = {_key(str(c)[len("proba_") :]): c for c in outputs.columns if str(c).startswith("proba_")}
    if len(names) == 2 and names[1] in columns and names[0] not in columns:
        p = _floats(outputs[columns[names[1]]].reset_index(drop=True))
        return np.column_stack([1 - p, p])
    if not names or any(n not in columns for n in names):
        return None
    return np.column_stack([_floats(outputs[columns[n]].reset_index(drop=True)) for n in names])


__all__ = ["estimated", "realized"]
