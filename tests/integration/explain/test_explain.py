"""Explanations: base + attributions = the model's own output, for every model family; over HTTP with
prediction ids, stored and read back; in batch jobs; from the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from liveml import Registry, Settings
from liveml.api import app as app_module
from liveml.api import create_app
from liveml.errors import Invalid
from liveml.explain import ExplanationStore, background_for, explain
from liveml.explain.results import Explanation
from liveml.jobs.runner import run_job
from liveml.jobs.spec import JobSpec
from liveml.jobs.store import JobStore
from liveml.monitoring.log import PredictionLog
from liveml.registry.loading import LoadedModel, load_version
from liveml.serving.host import HostOptions, ModelHost
from tests.live_server import LiveServer

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::DeprecationWarning", "ignore::PendingDeprecationWarning"
)

CUSTOM = """
import numpy as np

WEIGHTS = np.array([0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 3.0, -2.0])


class Linear:
    input_names = [f"f{i}" for i in range(8)]
    task = "regression"

    def load(self, path):
        pass

    def predict(self, frame):
        return frame.to_numpy(dtype=float) @ WEIGHTS + 0.3
"""


@dataclass
class Data:
    binary: pd.DataFrame
    binary_y: np.ndarray
    values: pd.DataFrame
    values_y: np.ndarray
    wide: pd.DataFrame


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    X, y = make_classification(500, 6, n_informative=4, random_state=0)
    Xr, yr = make_regression(500, 6, noise=5.0, random_state=0)
    wide = np.random.default_rng(1).normal(size=(300, 8))
    names = [f"f{i}" for i in range(6)]
    return Data(
        pd.DataFrame(X, columns=names),
        y,
        pd.DataFrame(Xr, columns=names),
        yr,
        pd.DataFrame(wide, columns=[f"f{i}" for i in range(8)]),
    )


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("explain") / "home"
    Registry.init(Settings(home=home, user="tester")).close()
    return Settings(home=home, user="tester")


@pytest.fixture(scope="module")
def registry(settings: Settings) -> Iterator[Registry]:
    with Registry(settings) as reg:
        yield reg


@pytest.fixture(scope="module")
def push(
    registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., tuple[LoadedModel, pd.DataFrame | None, Any]]:
    folder = tmp_path_factory.mktemp("models")

    def push_model(name: str, model: Any, reference: pd.DataFrame) -> tuple[LoadedModel, Any, Any]:
        if isinstance(model, Path):
            path = model
        else:
            path = folder / f"{name}.joblib"
            joblib.dump(model, path)
        reference_path = folder / f"{name}-reference.parquet"
        reference.to_parquet(reference_path)
        version = registry.push(name, path, reference=reference_path, compile=False)
        background, source = background_for(registry, version)
        return load_version(registry, version), background, source

    return push_model


def check(
    explanation: Explanation, expected: np.ndarray, *, rtol: float = 1e-6, float32: bool = False
) -> None:
    """base + sum(attributions) == output == the model's own number, row by row. ``float32``: the
    framework sums in float32, whose rounding grows with the size of the terms, not of their sum."""
    assert len(explanation.rows) == len(expected)
    for row, want in zip(explanation.rows, expected, strict=True):
        total = row.base_value + sum(row.attributions.values())
        terms = abs(row.base_value) + sum(abs(v) for v in row.attributions.values())
        scale = max(1.0, abs(row.output), terms if float32 else 0.0)
        assert abs(total - row.output) <= rtol * scale, (total, row.output)
        assert abs(row.output - float(want)) <= rtol * scale, (row.output, want)
        assert list(row.attributions) == explanation.features


def _of_class(matrix: np.ndarray, classes: list[Any], explanation: Explanation) -> np.ndarray:
    return np.array([matrix[i, classes.index(r.target_class)] for i, r in enumerate(explanation.rows)])


def test_logistic_regression_in_log_odds(push: Any, data: Data) -> None:
    model = LogisticRegression().fit(data.binary, data.binary_y)
    loaded, background, source = push("logistic", model, data.binary)
    rows = data.binary.head(25)
    explained = explain(loaded, rows, background=background, background_source=source)
    assert (explained.method, explained.output_space, explained.background) == (
        "linear",
        "log_odds",
        "reference",
    )
    decision = model.decision_function(rows)
    sign = np.array([1.0 if r.target_class == 1 else -1.0 for r in explained.rows])
    assert [r.target_class for r in explained.rows] == model.predict(rows).tolist()
    check(explained, sign * decision)
    # one class for every row, asked for as a string (as from a command line)
    positive = explain(loaded, rows, target_class="1", background=background)
    assert {r.target_class for r in positive.rows} == {1}
    check(positive, decision)
    # closed form: coef * (x - mean of the background)
    mean = background[rows.columns].to_numpy().mean(axis=0)
    np.testing.assert_allclose(positive.values(), model.coef_[0] * (rows.to_numpy() - mean), atol=1e-12)


def test_scaler_and_logistic_pipeline_in_logits(push: Any, iris_frame: pd.DataFrame) -> None:
    X, y = iris_frame[IRIS], iris_frame["target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    loaded, background, source = push("pipeline", model, X)
    rows = X.iloc[::10]
    explained = explain(loaded, rows, background=background, background_source=source)
    assert (explained.method, explained.output_space) == ("linear", "logit")
    check(explained, _of_class(model.decision_function(rows), [0, 1, 2], explained))
    # the attributions are in the raw input's columns: w / scale * (x - mean x), not scaled units
    scaler, logistic = model[0], model[-1]
    k = [0, 1, 2].index(explained.rows[0].target_class)
    mean = background[IRIS].to_numpy().mean(axis=0)
    want = logistic.coef_[k] / scaler.scale_ * (rows.to_numpy()[0] - mean)
    np.testing.assert_allclose(explained.values()[0], want, atol=1e-10)


def test_random_forest_in_probabilities(push: Any, iris_frame: pd.DataFrame) -> None:
    X, y = iris_frame[IRIS], iris_frame["target"]
    model = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
    loaded, background, source = push("forest", model, X)
    rows = X.iloc[::7]
    explained = explain(loaded, rows, background=background, background_source=source)
    assert (explained.method, explained.output_space, explained.background) == (
        "tree",
        "probability",
        "training",
    )
    check(explained, _of_class(model.predict_proba(rows), [0, 1, 2], explained))
    virginica = explain(loaded, rows, target_class=2)
    check(virginica, model.predict_proba(rows)[:, 2])


@pytest.mark.parametrize(
    "model",
    [GradientBoostingRegressor(random_state=0), HistGradientBoostingRegressor(max_iter=50, random_state=0)],
    ids=["gradient_boosting", "hist_gradient_boosting"],
)
def test_boosted_regressors_in_values(push: Any, data: Data, model: Any) -> None:
    model.fit(data.values, data.values_y)
    loaded, _, _ = push(type(model).__name__.lower(), model, data.values)
    rows = data.values.head(30)
    explained = explain(loaded, rows)
    assert (explained.method, explained.output_space) == ("tree", "value")
    assert all(r.target_class is None for r in explained.rows)
    check(explained, model.predict(rows))


def test_gradient_boosting_classifier_in_log_odds(push: Any, data: Data) -> None:
    model = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(data.binary, data.binary_y)
    loaded, _, _ = push("gbc", model, data.binary)
    rows = data.binary.head(20)
    explained = explain(loaded, rows, target_class=1)
    assert (explained.method, explained.output_space) == ("tree", "log_odds")
    check(explained, model.decision_function(rows))


def test_xgboost_native_trees(push: Any, data: Data, tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(data.binary, label=data.binary_y), 50
    )
    booster.save_model(tmp_path / "binary.json")
    loaded, _, _ = push("xgb", tmp_path / "binary.json", data.binary)
    rows = data.binary.head(30)
    explained = explain(loaded, rows)
    assert (explained.method, explained.output_space) == ("xgboost_tree", "log_odds")
    margin = booster.predict(xgb.DMatrix(rows), output_margin=True).astype(np.float64)
    sign = np.array([1.0 if r.target_class == 1 else -1.0 for r in explained.rows])
    check(explained, sign * margin, float32=True)

    regressor = xgb.train(
        {"objective": "reg:squarederror"}, xgb.DMatrix(data.values, label=data.values_y), 50
    )
    regressor.save_model(tmp_path / "values.json")
    loaded, _, _ = push("xgb-values", tmp_path / "values.json", data.values)
    explained = explain(loaded, data.values.head(30))
    assert explained.output_space == "value"
    check(explained, regressor.predict(xgb.DMatrix(data.values.head(30))).astype(np.float64), float32=True)


def test_lightgbm_native_trees(push: Any, iris_frame: pd.DataFrame, data: Data, tmp_path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    X, y = iris_frame[IRIS], iris_frame["target"]
    params = {"objective": "multiclass", "num_class": 3, "verbose": -1, "min_data_in_leaf": 5}
    booster = lgb.train(params, lgb.Dataset(X, y), 30)
    booster.save_model(tmp_path / "iris.txt")
    loaded, _, _ = push("lgb", tmp_path / "iris.txt", X)
    rows = X.iloc[::9]
    explained = explain(loaded, rows)
    assert (explained.method, explained.output_space) == ("lightgbm_tree", "logit")
    check(explained, _of_class(booster.predict(rows, raw_score=True), [0, 1, 2], explained))

    regressor = lgb.train(
        {"objective": "regression", "verbose": -1}, lgb.Dataset(data.values, data.values_y), 30
    )
    regressor.save_model(tmp_path / "values.txt")
    loaded, _, _ = push("lgb-values", tmp_path / "values.txt", data.values)
    explained = explain(loaded, data.values.head(20))
    assert explained.output_space == "value"
    check(explained, regressor.predict(data.values.head(20)))


def test_onnx_classifier_model_agnostic(push: Any, iris_frame: pd.DataFrame, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from skl2onnx import to_onnx

    X, y = iris_frame[IRIS].to_numpy(dtype=np.float32), iris_frame["target"]
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    onx = to_onnx(model, X[:1], options={id(model): {"zipmap": False}})
    (tmp_path / "forest.onnx").write_bytes(onx.SerializeToString())
    reference = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)])
    loaded, background, source = push("onnx", tmp_path / "forest.onnx", reference)
    rows = reference.iloc[::15]
    explained = explain(loaded, rows, background=background, background_source=source)
    assert (explained.method, explained.output_space) == ("exact", "probability")
    probabilities = loaded.predict(rows).probabilities
    assert probabilities is not None
    check(explained, _of_class(probabilities, [0, 1, 2], explained), rtol=1e-9)


def test_custom_python_model_by_permutation_matches_the_closed_form(
    push: Any, data: Data, tmp_path: Path
) -> None:
    (tmp_path / "linear.py").write_text(CUSTOM)
    loaded, background, source = push("custom", tmp_path / "linear.py", data.wide)
    rows = data.wide.head(5)
    explained = explain(loaded, rows, background=background, background_source=source)
    assert (explained.method, explained.output_space) == ("permutation", "value")
    weights = np.array([0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 3.0, -2.0])
    check(explained, rows.to_numpy() @ weights + 0.3, rtol=1e-9)
    # for an additive model every ordering gives the exact Shapley values
    mean = background.to_numpy().mean(axis=0)
    np.testing.assert_allclose(explained.values(), weights * (rows.to_numpy() - mean), atol=1e-9)


def test_probability_space_on_request(push: Any, data: Data) -> None:
    model = LogisticRegression().fit(data.binary, data.binary_y)
    loaded, background, _ = push("logistic-p", model, data.binary)
    rows = data.binary.head(4)
    explained = explain(loaded, rows, background=background, space="probability")
    assert (explained.method, explained.output_space) == ("permutation", "probability")
    check(explained, _of_class(model.predict_proba(rows), [0, 1], explained), rtol=1e-9)


def test_bad_requests_are_refused_with_the_fix(push: Any, data: Data) -> None:
    loaded, _, _ = push("bad", LogisticRegression().fit(data.binary, data.binary_y), data.binary)
    with pytest.raises(Invalid, match="no class 'maybe'; its classes are 0, 1"):
        explain(loaded, data.binary.head(2), target_class="maybe")
    with pytest.raises(Invalid, match=r"missing input column.*'f5'"):
        explain(loaded, data.binary.drop(columns=["f5"]).head(2))
    with pytest.raises(Invalid, match="space 'odds' is not known"):
        explain(loaded, data.binary.head(2), space="odds")
    values, _, _ = push("bad-values", LinearRegression().fit(data.values, data.values_y), data.values)
    with pytest.raises(Invalid, match="predicts values, not classes"):
        explain(values, data.values.head(2), target_class=1)


@pytest.fixture
def liveml_cli() -> Callable[[list[str]], None]:
    """``liveml`` in this process (the entry point, its error handling included)."""
    from liveml.cli.main import main

    return main


# -- over HTTP, stored by prediction id --------------------------------------------------------------
@dataclass
class Served:
    url: str
    settings: Settings
    log: PredictionLog


@pytest.fixture
def served(tmp_path: Path, model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    settings = Settings(home=tmp_path / "home", user="tester")
    protocols = tuple(dict.fromkeys((*app_module.PROTOCOLS, "liveml.api.explain")))
    monkeypatch.setattr(app_module, "PROTOCOLS", protocols)
    with Registry.init(settings) as registry:
        # compiled to ONNX at push and served so: explanations use the original forest
        registry.push(
            "iris", model_files["forest"], reference=model_files["reference"], aliases=["production"]
        )
        log = PredictionLog(settings)
        host = ModelHost(registry, sink=log, options=HostOptions(poll_interval_s=0))
        with LiveServer(create_app(host)) as live:
            yield Served(live.url, settings, log)


def test_explain_over_http_is_stored_under_the_prediction_ids(
    served: Served,
    iris_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    liveml_cli: Callable[[list[str]], None],
) -> None:
    rows = iris_frame[IRIS].iloc[[0, 60, 120]].to_dict(orient="records")
    response = httpx.post(f"{served.url}/v1/models/iris/explain", json={"inputs": rows}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["method"], body["output_space"], body["stored"]) == ("tree", "probability", True)
    assert len(body["ids"]) == 3 and body["features"] == IRIS
    predicted = httpx.post(
        f"{served.url}/v1/models/iris/predict", json={"inputs": rows, "probabilities": True}
    ).json()
    for i, row in enumerate(body["explanations"]):
        assert row["prediction_id"] == body["ids"][i]
        assert row["class"] == body["predictions"][i]
        assert row["base_value"] + sum(row["attributions"].values()) == pytest.approx(row["output"], abs=1e-9)
        # the served (compiled) model's probability of that class, to its checked tolerance
        assert row["output"] == pytest.approx(predicted["probabilities"][i][row["class"]], abs=1e-5)
    served.log.flush()
    assert set(body["ids"]) <= served.log.ids("iris", 1)  # the predictions are in the log too

    first = body["explanations"][0]
    stored = httpx.get(f"{served.url}/v1/models/iris/explanations/{first['prediction_id']}").json()
    assert stored["rows"] == [first] and stored["version"] == 1
    found = ExplanationStore(served.settings).lookup("iris", body["ids"][2])
    assert found is not None and found.rows[0].model_dump(mode="json") == body["explanations"][2]

    monkeypatch.setenv("LIVEML_HOME", str(served.settings.home))
    with pytest.raises(SystemExit) as code:
        liveml_cli(["explain", "iris", "--prediction-id", body["ids"][1], "--json"])
    assert code.value.code == 0
    assert json.loads(capsys.readouterr().out)["rows"] == [body["explanations"][1]]


def test_explain_over_http_refuses_bad_requests(served: Served, iris_frame: pd.DataFrame) -> None:
    url = f"{served.url}/v1/models/iris/explain"
    row = iris_frame[IRIS].iloc[0].to_dict()
    cases = [
        ({"inputs": [row], "class": "tulip"}, 400, "no class 'tulip'"),
        ({"inputs": [{"sepal_length": 5.0}]}, 400, "missing input column"),
        ({"inputs": [row], "colour": 1}, 400, "unknown field(s) 'colour'"),
        ({"inputs": [row], "space": "odds"}, 400, "'space' is 'odds'"),
        ({"rows": [row]}, 400, 'the body needs "inputs"'),
    ]
    for body, status, message in cases:
        response = httpx.post(url, json=body, timeout=60)
        assert response.status_code == status, response.text
        assert message in response.json()["error"]
    assert httpx.post(f"{served.url}/v1/models/nope/explain", json={"inputs": [row]}).status_code == 404
    missing = httpx.get(f"{served.url}/v1/models/iris/explanations/unknown-id")
    assert missing.status_code == 404 and "no stored explanation" in missing.json()["error"]


# -- batch jobs and the CLI --------------------------------------------------------------------------
def test_batch_explain_columns_add_up(
    tmp_path: Path, model_files: dict[str, Path], iris_frame: pd.DataFrame
) -> None:
    settings = Settings(home=tmp_path / "home", user="tester")
    with Registry.init(settings) as registry:
        registry.push("iris", model_files["logistic"], reference=model_files["reference"])
        source = tmp_path / "rows.parquet"
        iris_frame[IRIS].to_parquet(source)
        spec = JobSpec(
            model="iris", input=str(source), output=str(tmp_path / "out.parquet"), explain=True, chunk_rows=40
        )
        job = JobStore(registry).create(spec)
        assert run_job(registry, job.id).status == "succeeded"
    out = pd.read_parquet(tmp_path / "out.parquet")
    shap = out[[f"shap_{c}" for c in IRIS]].to_numpy()
    np.testing.assert_allclose(out["shap_base"] + shap.sum(axis=1), out["shap_output"], atol=1e-9)
    assert set(out["shap_space"]) == {"logit"}
    model = joblib.load(model_files["logistic"])
    decision = model.decision_function(iris_frame[IRIS])
    want = decision[np.arange(len(out)), out["shap_class"].astype(int).to_numpy()]
    np.testing.assert_allclose(out["shap_output"], want, atol=1e-9)
    assert (out["shap_class"].astype(int) == out["prediction"]).all()


def test_cli_explains_a_file(
    tmp_path: Path,
    model_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    liveml_cli: Callable[[list[str]], None],
) -> None:
    monkeypatch.setenv("LIVEML_HOME", str(tmp_path / "home"))
    with Registry.init(Settings(home=tmp_path / "home")) as registry:
        registry.push("iris", model_files["forest"], reference=model_files["reference"])
    target = tmp_path / "explained.parquet"
    with pytest.raises(SystemExit) as code:
        liveml_cli(
            ["explain", "iris", "--input", str(model_files["rows"]), "--output", str(target), "--class", "2"]
        )
    assert code.value.code == 0, capsys.readouterr().err
    out = pd.read_parquet(target)
    total = out["shap_base"] + out[[f"shap_{c}" for c in IRIS]].sum(axis=1)
    np.testing.assert_allclose(total, out["shap_output"], atol=1e-9)
    rows = pd.read_csv(model_files["rows"])
    want = joblib.load(model_files["forest"]).predict_proba(rows)[:, 2]
    np.testing.assert_allclose(out["shap_output"], want, atol=1e-12)
    with pytest.raises(SystemExit) as code:
        liveml_cli(["explain", "iris"])
    assert code.value.code != 0 and "exactly one of --input" in capsys.readouterr().err


def test_store_keeps_only_rows_with_ids_and_applies_retention(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from liveml.explain.results import RowExplanation

    settings = Settings(home=tmp_path / "home", log_retention_days=7)
    store = ExplanationStore(settings)
    rows = [
        RowExplanation(
            prediction_id=pid,
            target_class="yes",
            base_value=0.5,
            attributions={"a": 0.25, "b": -0.5},
            output=0.25,
            output_space="probability",
            method="exact",
        )
        for pid in ("p1", None)
    ]
    explanation = Explanation(
        model="m",
        version=2,
        method="exact",
        output_space="probability",
        background="rows",
        features=["a", "b"],
        rows=rows,
    )
    assert store.write(explanation) == 1
    found = store.lookup("m", "p1")
    assert found is not None and found.rows[0] == rows[0] and found.version == 2
    assert store.lookup("m", "p2") is None and store.lookup("other", "p1") is None
    assert store.apply_retention(now=datetime.now(UTC) + timedelta(days=30)) == 1
    assert store.lookup("m", "p1") is None
