"""Realized performance against scikit-learn called directly; CBPE estimates against the realized figures
on calibrated synthetic data (labels drawn from the probabilities, seeded); undefined metrics are None."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from liveml.errors import Invalid
from liveml.monitoring.performance import estimated, realized
from liveml.monitoring.results import Performance


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def values(performance: Performance) -> dict[str, float | None]:
    return {m.name: m.value for m in performance.metrics}


def binary(
    rng: np.random.Generator, n: int, a: float = 2.0, b: float = 3.0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Calibrated by construction: each label is drawn with its row's probability."""
    p = rng.beta(a, b, n)
    labels = np.where(rng.random(n) < p, "yes", "no")
    return pd.DataFrame(
        {"prediction": np.where(p >= 0.5, "yes", "no"), "proba_no": 1 - p, "proba_yes": p}
    ), labels


def test_binary_realized_metrics_are_scikit_learns(rng: np.random.Generator) -> None:
    outputs, labels = binary(rng, 3000)
    given = pd.Series(labels, dtype="object")
    given[::4] = None  # not labelled yet
    result = realized("classification", outputs, given, ["no", "yes"])
    keep = given.notna().to_numpy()
    y, yhat, p = labels[keep], outputs["prediction"].to_numpy()[keep], outputs["proba_yes"].to_numpy()[keep]
    assert (result.kind, result.task, result.labelled_rows, result.skipped) == (
        "realized",
        "classification",
        2250,
        None,
    )
    assert all(m.rows == 2250 for m in result.metrics)
    assert values(result) == pytest.approx(
        {
            "accuracy": skm.accuracy_score(y, yhat),
            "precision": skm.precision_score(y, yhat, pos_label="yes"),
            "recall": skm.recall_score(y, yhat, pos_label="yes"),
            "f1": skm.f1_score(y, yhat, pos_label="yes"),
            "roc_auc": skm.roc_auc_score(y == "yes", p),
            "log_loss": skm.log_loss(y, np.column_stack([1 - p, p]), labels=["no", "yes"]),
        },
        rel=1e-12,
    )


def test_the_positive_class_is_the_second_one(rng: np.random.Generator) -> None:
    outputs, labels = binary(rng, 1000)
    swapped = realized("classification", outputs, labels, ["yes", "no"])
    y, yhat = labels, outputs["prediction"].to_numpy()
    assert values(swapped)["precision"] == pytest.approx(skm.precision_score(y, yhat, pos_label="no"))
    assert values(swapped)["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "no", 1 - outputs["proba_yes"]))


def test_integer_labels_match_predictions_through_json_round_trips(rng: np.random.Generator) -> None:
    p = rng.random(500)
    outputs = pd.DataFrame({"prediction": (p > 0.5).astype(int), "proba_0": 1 - p, "proba_1": p})
    labels = (rng.random(500) < p).astype(float)  # labels came back as 0.0 / 1.0
    result = realized("classification", outputs, labels, None)
    assert values(result)["accuracy"] == pytest.approx(
        skm.accuracy_score(labels.astype(int), outputs["prediction"])
    )


def test_multiclass_realized_metrics_are_macro_and_one_vs_rest(rng: np.random.Generator) -> None:
    n, classes = 2000, ["cat", "dog", "owl"]
    proba = rng.dirichlet([2, 2, 2], n)
    labels = np.array([classes[rng.choice(3, p=row)] for row in proba])
    predicted = np.array(classes)[proba.argmax(axis=1)]
    outputs = pd.DataFrame(
        {"prediction": predicted, **{f"proba_{c}": proba[:, i] for i, c in enumerate(classes)}}
    )
    result = realized("classification", outputs, labels, classes)
    assert values(result) == pytest.approx(
        {
            "accuracy": skm.accuracy_score(labels, predicted),
            "precision": skm.precision_score(labels, predicted, average="macro"),
            "recall": skm.recall_score(labels, predicted, average="macro"),
            "f1": skm.f1_score(labels, predicted, average="macro"),
            "roc_auc": skm.roc_auc_score(labels, proba, multi_class="ovr", average="macro", labels=classes),
            "log_loss": skm.log_loss(labels, proba, labels=classes),
        },
        rel=1e-9,
    )


def test_regression_realized_metrics_are_scikit_learns(rng: np.random.Generator) -> None:
    y = rng.normal(50, 10, 1000)
    yhat = y + rng.normal(0, 3, 1000)
    labels = pd.Series(y)
    labels[:100] = np.nan
    result = realized("regression", pd.DataFrame({"prediction": yhat}), labels, None)
    assert result.labelled_rows == 900 and result.task == "regression"
    assert values(result) == pytest.approx(
        {
            "mae": skm.mean_absolute_error(y[100:], yhat[100:]),
            "rmse": math.sqrt(skm.mean_squared_error(y[100:], yhat[100:])),
            "r2": skm.r2_score(y[100:], yhat[100:]),
        },
        rel=1e-12,
    )


def test_undefined_metrics_are_none_not_errors() -> None:
    one_class = pd.DataFrame(
        {"prediction": ["no", "no", "no"], "proba_no": [0.9, 0.8, 0.7], "proba_yes": [0.1, 0.2, 0.3]}
    )
    result = values(realized("classification", one_class, ["no", "no", "no"], ["no", "yes"]))
    assert result["accuracy"] == 1.0
    assert result["precision"] is None  # nothing predicted positive
    assert result["recall"] is None  # no positive label
    assert result["roc_auc"] is None  # one class only
    assert result["log_loss"] is not None
    single = values(realized("regression", pd.DataFrame({"prediction": [1.0, 2.0]}), [1.5, None], None))
    assert single["r2"] is None and single["mae"] == 0.5
    nothing = realized("classification", one_class, [None, None, None], ["no", "yes"])
    assert nothing.labelled_rows == 0 and nothing.skipped == "no labelled rows in the window"
    assert all(m.value is None for m in nothing.metrics)
    with pytest.raises(Invalid, match="2 labels for 3 predictions"):
        realized("classification", one_class, ["no", "no"], ["no", "yes"])


@pytest.mark.parametrize(("n", "a", "b"), [(20_000, 2.0, 3.0), (5_000, 0.5, 0.5), (2_000, 4.0, 1.5)])
def test_cbpe_estimates_hold_the_realized_figures_in_their_bands(
    n: int, a: float, b: float, rng: np.random.Generator
) -> None:
    outputs, labels = binary(rng, n, a, b)
    truth = values(realized("classification", outputs, labels, ["no", "yes"]))
    guess = estimated(outputs.drop(columns=["proba_no"]), ["no", "yes"])
    assert (guess.kind, guess.task, guess.labelled_rows, guess.skipped) == (
        "estimated",
        "classification",
        0,
        None,
    )
    assert [m.name for m in guess.metrics] == ["accuracy", "precision", "recall", "f1", "roc_auc"]
    for m in guess.metrics:
        assert m.value is not None and m.lower is not None and m.upper is not None and m.rows == n
        assert m.lower <= truth[m.name] <= m.upper, m.name  # type: ignore[operator]
        assert 0 < m.upper - m.lower < 12 / math.sqrt(n), m.name  # +-3 standard errors, not a blanket


def test_cbpe_formulas(rng: np.random.Generator) -> None:
    p = rng.random(400)
    positive = p >= 0.6
    outputs = pd.DataFrame({"prediction": np.where(positive, "yes", "no"), "proba_yes": p})
    found = {m.name: m for m in estimated(outputs, ["no", "yes"]).metrics}
    tp, fp, fn = p[positive].sum(), (1 - p[positive]).sum(), p[~positive].sum()
    right = np.where(positive, p, 1 - p)
    assert found["accuracy"].value == pytest.approx(right.mean())
    assert found["accuracy"].upper == pytest.approx(
        right.mean() + 3 * math.sqrt(np.sum(right * (1 - right))) / 400
    )
    assert found["precision"].value == pytest.approx(tp / (tp + fp))
    assert found["recall"].value == pytest.approx(tp / (tp + fn))
    assert found["f1"].value == pytest.approx(2 * tp / (2 * tp + fp + fn))
    order = np.argsort(-p)
    tpr, fpr = np.r_[0, np.cumsum(p[order]) / p.sum()], np.r_[0, np.cumsum(1 - p[order]) / (1 - p).sum()]
    assert found["roc_auc"].value == pytest.approx(np.trapezoid(tpr, fpr))


def test_uncalibrated_probabilities_mislead_cbpe(rng: np.random.Generator) -> None:
    """CBPE's assumption, shown: squash calibrated probabilities towards 0 and 1 and the estimate is too
    optimistic, well outside the band around the realized accuracy."""
    outputs, labels = binary(rng, 20_000)
    p = outputs["proba_yes"].to_numpy()
    overconfident = outputs.assign(proba_yes=np.where(p >= 0.5, 1 - (1 - p) / 4, p / 4))
    truth = values(realized("classification", outputs, labels, ["no", "yes"]))["accuracy"]
    guess = next(m for m in estimated(overconfident[["prediction", "proba_yes"]], ["no", "yes"]).metrics)
    assert guess.lower is not None and truth is not None and guess.lower > truth + 0.1


def test_multiclass_estimate_is_accuracy_from_the_predicted_class_probability(
    rng: np.random.Generator,
) -> None:
    n, classes = 10_000, ["a", "b", "c", "d"]
    proba = rng.dirichlet([1, 1, 1, 1], n)
    labels = np.array([classes[rng.choice(4, p=row)] for row in proba])
    outputs = pd.DataFrame(
        {
            "prediction": np.array(classes)[proba.argmax(1)],
            **{f"proba_{c}": proba[:, i] for i, c in enumerate(classes)},
        }
    )
    guess = estimated(outputs, classes)
    assert [m.name for m in guess.metrics] == ["accuracy"]
    m = guess.metrics[0]
    assert m.value == pytest.approx(proba.max(axis=1).mean())
    truth = values(realized("classification", outputs, labels, classes))["accuracy"]
    assert m.lower is not None and m.upper is not None and m.lower <= truth <= m.upper  # type: ignore[operator]


def test_estimation_says_why_it_cannot_run() -> None:
    regressor = estimated(pd.DataFrame({"prediction": [1.5, 2.5]}), None)
    assert (regressor.kind, regressor.task, regressor.metrics) == ("estimated", "regression", ())
    assert regressor.skipped is not None and "direct loss estimation" in regressor.skipped
    no_proba = estimated(pd.DataFrame({"prediction": ["a", "b"]}), ["a", "b"])
    assert no_proba.task == "classification" and no_proba.skipped is not None and "proba_" in no_proba.skipped
