"""Model cases for the runtime contract suite: each trains a small model, saves it, and keeps the
framework's own predictions to compare with."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

ROWS = slice(None, None, 13)  # a dozen rows spread over the data set, so every class shows up


@dataclass
class Case:
    """A saved model, the rows to predict, and what the framework itself predicts for them."""

    format: str
    path: Path
    frame: pd.DataFrame
    task: str
    predictions: np.ndarray
    probabilities: np.ndarray | None = None
    classes: tuple[Any, ...] | None = None
    input_names: tuple[str, ...] | None = None
    n_inputs: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    fixed_width: bool = True  # refuses a frame with a column missing
    atol: float = 1e-5


@cache
def iris() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_iris(as_frame=True)
    return data.data.astype("float32"), data.target.to_numpy()


@cache
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    return X.astype(np.float32), y


def plain_frame(X: np.ndarray | pd.DataFrame) -> pd.DataFrame:
    """Rows of a model trained without column names, under made-up names x0..xn."""
    values = np.asarray(X)[ROWS]
    return pd.DataFrame(values, columns=[f"x{i}" for i in range(values.shape[1])])


def fitted(
    fmt: str, path: Path, model: Any, frame: pd.DataFrame, *, by_name: bool = False, **kw: Any
) -> Case:
    """A case whose expected answers come from the fitted scikit-learn-style model itself."""
    features = frame if by_name else frame.to_numpy()
    if hasattr(model, "predict_proba"):
        classes = tuple(np.asarray(model.classes_).tolist())
        proba = model.predict_proba(features)
        return Case(fmt, path, frame, "classification", model.predict(features), proba, classes, **kw)
    return Case(fmt, path, frame, "regression", model.predict(features), **kw)


# -- scikit-learn ------------------------------------------------------------------------------
def sklearn_joblib_classifier(d: Path) -> Case:
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    joblib.dump(model, d / "model.joblib")
    return fitted(
        "sklearn", d / "model.joblib", model, X.iloc[ROWS], by_name=True, input_names=tuple(X), n_inputs=4
    )


def sklearn_pickle_regressor(d: Path) -> Case:
    from sklearn.linear_model import Ridge

    X, y = diabetes()
    model = Ridge().fit(X, y)
    (d / "model.pkl").write_bytes(pickle.dumps(model))
    return fitted("sklearn", d / "model.pkl", model, plain_frame(X), n_inputs=10)


def skops_classifier(d: Path) -> Case:
    sio = pytest.importorskip("skops.io")
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris()
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X.to_numpy(), y)
    sio.dump(model, d / "model.skops")
    trusted = {"trusted_types": ["sklearn.tree._tree.Tree"]}  # skops refuses it by default
    return fitted("skops", d / "model.skops", model, plain_frame(X), n_inputs=4, options=trusted)


# -- ONNX (converted with skl2onnx) -----------------------------------------------------------
def _to_onnx(model: Any, d: Path, width: int, **options: Any) -> Path:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    initial = [("input", FloatTensorType([None, width]))]
    proto = skl2onnx.convert_sklearn(model, initial_types=initial, options=options or None)
    (d / "model.onnx").write_bytes(proto.SerializeToString())
    return d / "model.onnx"


def onnx_classifier_zipmap(d: Path) -> Case:
    from sklearn.linear_model import LogisticRegression

    X, y = iris()
    model = LogisticRegression(max_iter=500).fit(X.to_numpy(), y)
    return fitted("onnx", _to_onnx(model, d, 4), model, plain_frame(X), n_inputs=4, atol=1e-4)


def onnx_classifier_tensor(d: Path) -> Case:
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris()
    labels = np.array(["setosa", "versicolor", "virginica"])[y]  # string classes: classlabels_strings
    model = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X.to_numpy(), labels)
    path = _to_onnx(model, d, 4, zipmap=False)
    return fitted("onnx", path, model, plain_frame(X), n_inputs=4, atol=1e-4)


def onnx_regressor(d: Path) -> Case:
    from sklearn.linear_model import Ridge

    X, y = diabetes()
    model = Ridge().fit(X, y)
    return fitted("onnx", _to_onnx(model, d, 10), model, plain_frame(X), n_inputs=10, atol=1e-3)


# -- PyTorch -----------------------------------------------------------------------------------
def _train(net: Any, X: np.ndarray, y: np.ndarray, loss: Any, steps: int = 40) -> Any:
    import torch

    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    inputs, targets = torch.tensor(X), torch.tensor(y)
    for _ in range(steps):
        optimizer.zero_grad()
        loss(net(inputs), targets).backward()
        optimizer.step()
    return net.eval()


def _iris_net() -> tuple[Any, np.ndarray]:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    X, y = iris()
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    _train(net, X.to_numpy(), y.astype(np.int64), torch.nn.CrossEntropyLoss())
    return net, X.to_numpy()[ROWS]


def iris_network_case(fmt: str, path: Path, probs: np.ndarray) -> Case:
    """A case for a network trained on iris: its labels are the most probable classes."""
    frame = plain_frame(iris()[0])
    return Case(fmt, path, frame, "classification", probs.argmax(axis=1), probs, (0, 1, 2), n_inputs=4)


def _softmax(scores: np.ndarray) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def torchscript_classifier(d: Path) -> Case:
    import torch

    net, rows = _iris_net()
    torch.jit.script(net).save(str(d / "model.pt"))
    with torch.no_grad():
        probs = _softmax(net(torch.tensor(rows)).numpy().astype(np.float64))
    return iris_network_case("torchscript", d / "model.pt", probs)


def torchscript_regressor(d: Path) -> Case:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    X, y = diabetes()
    target = ((y - y.mean()) / y.std()).astype(np.float32).reshape(-1, 1)
    net = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    _train(net, X, target, torch.nn.MSELoss())
    frame = plain_frame(X)
    traced = torch.jit.trace(net, torch.tensor(frame.to_numpy()))
    traced.save(str(d / "model.pt"))
    with torch.no_grad():
        values = net(torch.tensor(frame.to_numpy())).numpy().reshape(-1)
    return Case("torchscript", d / "model.pt", frame, "regression", values, n_inputs=10)


def torch_export_classifier(d: Path) -> Case:
    import torch

    net, rows = _iris_net()
    model = torch.nn.Sequential(net, torch.nn.Softmax(dim=1)).eval()
    # exported for exactly 5 rows (no dynamic batch dimension): the runtime must chunk and pad
    program = torch.export.export(model, (torch.zeros(5, 4),))
    torch.export.save(program, str(d / "model.pt2"))
    with torch.no_grad():
        probs = model(torch.tensor(rows)).numpy().astype(np.float64)
    return iris_network_case("torch_export", d / "model.pt2", probs)


# -- gradient boosting -------------------------------------------------------------------------
def xgboost_classifier(d: Path) -> Case:
    xgb = pytest.importorskip("xgboost")
    X, y = iris()
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2, random_state=0).fit(X, y)
    model.save_model(d / "model.json")
    return fitted(
        "xgboost", d / "model.json", model, X.iloc[ROWS], by_name=True, input_names=tuple(X), n_inputs=4
    )


def xgboost_regressor(d: Path) -> Case:
    xgb = pytest.importorskip("xgboost")
    X, y = diabetes()
    model = xgb.XGBRegressor(n_estimators=5, max_depth=2, random_state=0).fit(X, y)
    model.save_model(d / "model.ubj")
    return fitted("xgboost", d / "model.ubj", model, plain_frame(X), n_inputs=10, atol=1e-3)


def lightgbm_binary(d: Path) -> Case:
    lgb = pytest.importorskip("lightgbm")
    X, y = load_breast_cancer(return_X_y=True)
    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=4, verbose=-1).fit(X, y)
    model.booster_.save_model(d / "model.txt")
    return fitted("lightgbm", d / "model.txt", model, plain_frame(X), n_inputs=30)


def lightgbm_multiclass(d: Path) -> Case:
    lgb = pytest.importorskip("lightgbm")
    X, y = iris()
    X = X.set_axis(["sepal_length", "sepal_width", "petal_length", "petal_width"], axis=1)
    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=4, min_child_samples=5, verbose=-1).fit(X, y)
    model.booster_.save_model(d / "model.txt")
    frame = X.iloc[ROWS]
    return fitted("lightgbm", d / "model.txt", model, frame, by_name=True, input_names=tuple(X), n_inputs=4)


def lightgbm_regressor(d: Path) -> Case:
    lgb = pytest.importorskip("lightgbm")
    X, y = diabetes()
    model = lgb.LGBMRegressor(n_estimators=10, num_leaves=4, verbose=-1).fit(X, y)
    model.booster_.save_model(d / "model.txt")
    return fitted("lightgbm", d / "model.txt", model, plain_frame(X), n_inputs=10, atol=1e-4)


# -- custom Python classes ---------------------------------------------------------------------
LINEAR_PY = '''
"""A linear regression with the weights in the code."""
import numpy as np

WEIGHTS = np.array([1.5, -2.0, 0.25])


class Linear:
    task = "regression"
    input_names = ("a", "b", "c")

    def load(self, path):
        self.bias = 10.0

    def predict(self, frame):
        return frame.to_numpy(dtype=float) @ WEIGHTS + self.bias
'''

CENTROID_PY = '''
"""Nearest centroid on iris, with the centroids in a data file next to the code."""
import json

import numpy as np

from .distances import squared


class NearestCentroid:
    def load(self, path):
        data = json.loads((path / "centroids.json").read_text())
        self.classes = data["classes"]
        self.centroids = np.array(data["centroids"])

    def predict_proba(self, frame):
        scores = np.exp(-squared(frame.to_numpy(dtype=float), self.centroids))
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(self, frame):
        return np.array(self.classes, dtype=object)[self.predict_proba(frame).argmax(axis=1)]
'''

DISTANCES_PY = """
def squared(rows, centroids):
    return ((rows[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
"""


def custom_module(d: Path) -> Case:
    from liveml.runtimes.custom import CustomRuntime

    source = d / "linear.py"
    source.write_text(LINEAR_PY)
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(8, 3)), columns=["a", "b", "c"])
    values = frame.to_numpy() @ np.array([1.5, -2.0, 0.25]) + 10.0
    path = CustomRuntime.package(source, d)
    return Case(
        "custom", path, frame, "regression", values, input_names=tuple(frame), n_inputs=3, fixed_width=False
    )


def custom_package(d: Path) -> Case:
    from liveml.runtimes.custom import CustomRuntime

    X, y = iris()
    classes = ["setosa", "versicolor", "virginica"]
    centroids = np.array([X.to_numpy()[y == k].mean(axis=0) for k in range(3)], dtype=np.float64)
    package = d / "centroid"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("from .model import NearestCentroid\n")
    (package / "model.py").write_text(CENTROID_PY)
    (package / "distances.py").write_text(DISTANCES_PY)
    (package / "centroids.json").write_text(json.dumps({"classes": classes, "centroids": centroids.tolist()}))
    (package / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"stale")
    frame = plain_frame(X)
    scores = np.exp(-((frame.to_numpy()[:, None, :] - centroids[None]) ** 2).sum(axis=2))
    probs = scores / scores.sum(axis=1, keepdims=True)
    labels = np.array(classes, dtype=object)[probs.argmax(axis=1)]
    path = CustomRuntime.package(package, d)
    return Case("custom", path, frame, "classification", labels, probs, tuple(classes), fixed_width=False)


CASES: dict[str, Callable[[Path], Case]] = {
    f.__name__: f
    for f in (
        sklearn_joblib_classifier,
        sklearn_pickle_regressor,
        skops_classifier,
        onnx_classifier_zipmap,
        onnx_classifier_tensor,
        onnx_regressor,
        torchscript_classifier,
        torchscript_regressor,
        torch_export_classifier,
        xgboost_classifier,
        xgboost_regressor,
        lightgbm_binary,
        lightgbm_multiclass,
        lightgbm_regressor,
        custom_module,
        custom_package,
    )
}


@pytest.fixture(scope="session", params=list(CASES))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    """Every model case in turn, trained and saved once per test session."""
    return CASES[request.param](tmp_path_factory.mktemp(request.param))
