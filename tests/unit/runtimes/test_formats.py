"""Format-specific behaviour beyond the shared contract: runtime options, input layouts, objectives."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liveml.errors import Invalid
from liveml.runtimes import detect_format

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")


def test_torch_export_with_a_dynamic_batch_takes_any_number_of_rows(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from liveml.runtimes.torch import TorchExportRuntime

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1).eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(net, (torch.zeros(4, 3),), dynamic_shapes={"input": {0: batch}})
    torch.export.save(program, str(tmp_path / "net.pt2"))
    runtime = TorchExportRuntime(tmp_path / "net.pt2")
    for rows in (1, 7):
        frame = pd.DataFrame(np.arange(rows * 3, dtype=np.float32).reshape(rows, 3), columns=["a", "b", "c"])
        with torch.no_grad():
            expected = net(torch.tensor(frame.to_numpy())).numpy().reshape(-1)
        np.testing.assert_allclose(runtime.predict(frame).predictions, expected, rtol=1e-6)
    assert runtime.describe().task == "regression"


@pytest.fixture(scope="module")
def scripted_scores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TorchScript net giving 3 raw scores (logits) per row."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("torch") / "scores.pt"
    torch.jit.script(torch.nn.Linear(2, 3).eval()).save(str(path))
    return path


def test_torch_scores_are_softmaxed_and_labelled_by_the_classes_option(scripted_scores: Path) -> None:
    from liveml.runtimes.torch import TorchScriptRuntime

    frame = pd.DataFrame({"a": [0.5, -1.0], "b": [2.0, 0.0]})
    runtime = TorchScriptRuntime(scripted_scores, {"classes": ["cat", "dog", "eel"]})
    prediction = runtime.predict(frame)
    assert prediction.classes == ("cat", "dog", "eel")
    assert set(prediction.predictions) <= {"cat", "dog", "eel"}
    np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0)  # type: ignore[union-attr]
    assert runtime.describe().classes == ("cat", "dog", "eel")
    with pytest.raises(Invalid, match="classes lists 2 labels for 3 class scores"):
        TorchScriptRuntime(scripted_scores, {"classes": ["cat", "dog"]}).predict(frame)


def test_torch_raw_output_gives_multi_output_regression(scripted_scores: Path) -> None:
    from liveml.runtimes.torch import TorchScriptRuntime

    runtime = TorchScriptRuntime(scripted_scores, {"output": "raw"})
    prediction = runtime.predict(pd.DataFrame({"a": [0.5, -1.0], "b": [2.0, 0.0]}))
    assert prediction.predictions.shape == (2, 3) and prediction.probabilities is None
    assert runtime.describe().task == "regression"


def test_onnx_model_with_one_input_per_column_including_strings(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"colour": rng.choice(["red", "blue", "green"], 60), "size": rng.normal(size=60)})
    target = ((frame["colour"] == "red") | (frame["size"] > 0.5)).astype(int)
    model = make_pipeline(
        ColumnTransformer([("colour", OneHotEncoder(), ["colour"]), ("size", "passthrough", ["size"])]),
        LogisticRegression(),
    ).fit(frame, target)
    types = [("colour", StringTensorType([None, 1])), ("size", FloatTensorType([None, 1]))]
    (tmp_path / "model.onnx").write_bytes(skl2onnx.to_onnx(model, initial_types=types).SerializeToString())
    runtime = detect_format(tmp_path / "model.onnx")(tmp_path / "model.onnx")
    runtime.load()
    description = runtime.describe()
    assert description.input_names == ("colour", "size")
    assert dict(description.input_types or {}) == {"colour": "string", "size": "number"}
    rows = frame.iloc[:10]
    prediction = runtime.predict(rows[["size", "colour"]])  # matched by name, whatever the order
    assert list(prediction.predictions) == list(model.predict(rows))
    np.testing.assert_allclose(prediction.probabilities, model.predict_proba(rows), atol=1e-5)  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="column 'size' must be numeric"):
        runtime.predict(rows.assign(size="big"))


def test_xgboost_binary_objective_and_classes_option(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    model = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(X, y)
    model.save_model(tmp_path / "model.json")
    path = tmp_path / "model.json"
    runtime = detect_format(path)(path, {"classes": ["malignant", "benign"]})
    prediction = runtime.predict(pd.DataFrame(X[:5]))
    assert runtime.describe().details["objective"] == "binary:logistic"
    assert prediction.classes == ("malignant", "benign")
    np.testing.assert_allclose(prediction.probabilities, model.predict_proba(X[:5]), atol=1e-6)  # type: ignore[arg-type]
    assert list(prediction.predictions) == [["malignant", "benign"][k] for k in model.predict(X[:5])]


def test_lightgbm_columns_are_matched_by_name(tmp_path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    model = lgb.LGBMRegressor(n_estimators=5, num_leaves=4, verbose=-1)
    model.fit(frame, frame["a"] - 2 * frame["c"])
    model.booster_.save_model(tmp_path / "model.txt")
    runtime = detect_format(tmp_path / "model.txt")(tmp_path / "model.txt")
    shuffled = frame.iloc[:5][["c", "a", "b"]]
    np.testing.assert_allclose(runtime.predict(shuffled).predictions, model.predict(frame.iloc[:5]))


def test_onnx_network_scores_are_a_classifier_unless_raw(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[1.0, -1.0, 0.5], [0.0, 2.0, -0.5]], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["logits"])],
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    path = tmp_path / "net.bin"
    onnx.save(model, str(path))
    frame = pd.DataFrame({"a": [1.0, 0.0], "b": [0.0, 1.0]})
    logits = frame.to_numpy() @ weights
    runtime = detect_format(path)(path, {"classes": "x,y,z"})
    prediction = runtime.predict(frame)
    assert runtime.describe().task == "classification" and prediction.classes == ("x", "y", "z")
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(prediction.probabilities, expected, rtol=1e-5)  # type: ignore[arg-type]
    assert list(prediction.predictions) == ["x", "y"]
    raw = detect_format(path)(path, {"output": "raw"})
    np.testing.assert_allclose(raw.predict(frame).predictions, logits, rtol=1e-6)
    assert raw.describe().task == "regression"


def test_torch_refuses_missing_values(scripted_scores: Path) -> None:
    from liveml.runtimes.torch import TorchScriptRuntime

    with pytest.raises(Invalid, match="column 'b' has missing values"):
        TorchScriptRuntime(scripted_scores).predict(pd.DataFrame({"a": [0.5, 1.0], "b": [2.0, None]}))


@pytest.mark.parametrize(
    ("format_name", "module", "extra"),
    [
        ("onnx", "onnxruntime", "onnx"),
        ("torchscript", "torch", "torch"),
        ("torch_export", "torch", "torch"),
        ("xgboost", "xgboost", "xgboost"),
        ("lightgbm", "lightgbm", "lightgbm"),
    ],
)
def test_a_missing_framework_says_which_extra_installs_it(
    format_name: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from liveml.errors import Unavailable
    from liveml.runtimes import get_runtime

    monkeypatch.setitem(sys.modules, module, None)  # makes "import <module>" fail
    (tmp_path / "model").write_bytes(b"x")
    with pytest.raises(Unavailable, match=re.escape(f"pip install 'liveml[{extra}]'")):
        get_runtime(format_name)(tmp_path / "model").load()
