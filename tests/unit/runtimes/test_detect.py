"""Format detection on files that are not models, or not models liveml can load."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from liveml.errors import Invalid, NotFound
from liveml.runtimes import detect_format, runtimes
from liveml.runtimes.sklearn import SklearnRuntime

BUILT_IN = {"sklearn", "skops", "onnx", "torchscript", "torch_export", "xgboost", "lightgbm", "custom"}


def assert_refused(path: Path) -> None:
    with pytest.raises(Invalid, match="supported formats: ") as caught:
        detect_format(path)
    assert "ONNX" in str(caught.value) and "LightGBM" in str(caught.value)


def test_every_built_in_runtime_is_registered() -> None:
    found = runtimes()
    assert set(found) >= BUILT_IN
    for name, cls in found.items():
        assert cls.name == name and cls.label


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        detect_format(tmp_path / "nothing-here")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(np.random.default_rng(0).bytes(5000), id="random-bytes"),
        pytest.param(b"\x08" + np.random.default_rng(1).bytes(300), id="random-after-protobuf-tag"),
        pytest.param(b"sepal_length,sepal_width\n5.1,3.5\n4.9,3.0\n", id="csv-text"),
        pytest.param(b'{"weights": [1, 2, 3], "learner_rate": 0.1}', id="json-not-xgboost"),
        pytest.param(b"tree\nnot a lightgbm model\n", id="text-starting-with-tree"),
        pytest.param(b"import numpy\n\ndef predict(x):\n    return x\n", id="python-without-a-class"),
    ],
)
def test_a_file_that_is_no_model_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(content)
    assert_refused(path)


def test_a_torch_state_dict_is_not_taken_for_torchscript(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    net = torch.nn.Linear(3, 2)
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    torch.save(net, tmp_path / "module.pt")  # a pickled module is no more loadable without its code
    assert_refused(tmp_path / "weights.pt")
    assert_refused(tmp_path / "module.pt")


def test_a_folder_without_python_code_is_refused(tmp_path: Path) -> None:
    (tmp_path / "weights.json").write_text(json.dumps([1, 2]))
    assert_refused(tmp_path)


def test_a_pickled_dict_is_detected_as_pickle_but_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"coef": [1.0, 2.0]}))
    assert detect_format(path) is SklearnRuntime
    with pytest.raises(Invalid, match="not a model"):
        SklearnRuntime(path).load()


def test_sniffing_does_not_import_frameworks(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "model.bin"
    path.write_bytes(b"\x80\x05junk")
    code = (
        "import sys; from liveml.runtimes import detect_format; detect_format(sys.argv[1]); "
        "heavy = {'torch', 'xgboost', 'lightgbm', 'onnxruntime', 'onnx', 'skops'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
