"""pickle_policy: a crafted pickle that writes a file when unpickled never runs under ``strict``.

The trojan is a real pickle stream: it calls ``builtins.open(marker, "w")`` (which creates the marker
file) and then, for the "model" variant, goes on to build a working scikit-learn model, so it can be
pushed and served under ``trusted``. Every test checks the marker file, not only the error.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from liveml import Registry, Settings
from liveml.errors import Corrupted, Invalid, LivemlError
from liveml.registry.loading import load_version
from liveml.registry.prepare import prepare
from liveml.security.pickles import REFUSED, PickleRefused
from liveml.serving.host import HostOptions, ModelHost
from tests.conftest import Cli

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def trojan(marker: Path, model: Any = None) -> bytes:
    """Pickle bytes that create ``marker`` when loaded, then give ``model`` (None: give None)."""
    call = b"cbuiltins\nopen\n" + _text(str(marker)) + _text("w") + b"\x86R0"  # TUPLE2 REDUCE POP
    body = pickle.dumps(model, protocol=2)[2:] if model is not None else b"N."
    return b"\x80\x02" + call + body


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


@pytest.fixture
def logistic(iris_frame: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression(max_iter=500).fit(iris_frame[FEATURES], iris_frame["target"])


def _settings(tmp_path: Path, policy: str) -> Settings:
    return Settings(home=tmp_path / "home", user="tester", pickle_policy=policy)  # type: ignore[arg-type]


@pytest.fixture
def strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # the environment too: Registry.push reads the policy from its settings once it is wired to pass it
    monkeypatch.setenv("LIVEML_PICKLE_POLICY", "strict")
    Registry.init(_settings(tmp_path, "trusted")).close()
    return _settings(tmp_path, "strict")


def test_the_trojan_really_runs_when_trusted(tmp_path: Path, marker: Path) -> None:
    """The control: without the policy, loading the crafted file creates the marker."""
    path = tmp_path / "model.pkl"
    path.write_bytes(trojan(marker))
    with (
        Registry.init(_settings(tmp_path, "trusted")) as registry,
        pytest.raises(Invalid, match="not a model"),
    ):
        registry.push("evil", path)
    assert marker.exists()


@pytest.mark.parametrize("name", ["model.pkl", "model.joblib", "model.bin"])
def test_strict_cli_push_refuses_a_pickle_before_reading_it(
    tmp_path: Path,
    marker: Path,
    logistic: LogisticRegression,
    name: str,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / name
    path.write_bytes(trojan(marker, logistic))
    Registry.init(_settings(tmp_path, "trusted")).close()  # the cli fixture's data home
    monkeypatch.setenv("LIVEML_PICKLE_POLICY", "strict")
    result = cli("push", "evil", str(path))
    assert result.code != 0
    assert "refused by pickle_policy=strict" in result.err
    assert "convert the model to ONNX or skops" in result.err
    assert "Traceback" not in result.err
    assert not marker.exists()


def test_strict_refuses_a_compressed_joblib(tmp_path: Path, strict: Settings, marker: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump({"anything": 1}, path, compress=3)  # zlib-compressed: no pickle header to see
    with Registry(strict) as registry, pytest.raises(PickleRefused, match="pickle_policy=strict"):
        registry.push("evil", path)


def test_strict_registry_push_and_prepare_refuse(
    tmp_path: Path, strict: Settings, marker: Path, logistic: LogisticRegression
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(trojan(marker, logistic))
    with Registry(strict) as registry:
        with pytest.raises(PickleRefused) as caught:
            registry.push("evil", path)
        assert REFUSED in str(caught.value)
        with pytest.raises(PickleRefused):
            registry.push("evil", path, format="sklearn")
        assert registry.models() == []
    with pytest.raises(PickleRefused):
        prepare(path, workdir=tmp_path, pickle_policy="strict")
    assert not marker.exists()


def test_a_version_pushed_when_trusted_is_refused_at_load_when_strict(
    tmp_path: Path, marker: Path, logistic: LogisticRegression, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(trojan(marker, logistic))
    with Registry.init(_settings(tmp_path, "trusted")) as registry:
        version = registry.push("evil", path, aliases=["production"])
        assert version.lineage.pushed_by == "tester"  # trusted: who pushed it is on record
    assert marker.exists()  # loaded at push, under trusted
    marker.unlink()

    with Registry(_settings(tmp_path, "strict")) as registry:
        with pytest.raises(PickleRefused, match="evil:1 is a scikit-learn"):
            load_version(registry, registry.get("evil"))
        host = ModelHost(registry, options=HostOptions(poll_interval_s=0))
        host.start(watch=False)
        with pytest.raises(LivemlError, match="pickle_policy=strict"):
            host.predict("evil", [dict.fromkeys(FEATURES, 1.0)])
        host.stop()
    monkeypatch.setenv("LIVEML_PICKLE_POLICY", "strict")
    result = cli("predict", "evil", "--input", str(_rows(tmp_path)))  # in the cli fixture's data home
    assert result.code != 0 and "pickle_policy=strict" in result.err
    assert not marker.exists()


def test_strict_serves_the_compiled_onnx_form_of_a_pickled_version(
    tmp_path: Path, marker: Path, logistic: LogisticRegression, model_files: dict[str, Path]
) -> None:
    pytest.importorskip("skl2onnx")
    path = tmp_path / "model.pkl"
    path.write_bytes(trojan(marker, logistic))
    with Registry.init(_settings(tmp_path, "trusted")) as registry:
        registry.push("evil", path, reference=model_files["reference"])
    marker.unlink()
    with Registry(_settings(tmp_path, "strict")) as registry:
        loaded = load_version(registry, registry.get("evil"), compiled=True)
        assert loaded.serving_format == "onnx"
        assert len(loaded.predict([dict.fromkeys(FEATURES, 1.0)])) == 1
    assert not marker.exists()


def test_a_swapped_artifact_is_refused_before_it_is_unpickled(
    tmp_path: Path, marker: Path, logistic: LogisticRegression, model_files: dict[str, Path]
) -> None:
    """sha256 on every load: replacing the stored blob with a trojan is caught before joblib reads it."""
    with Registry.init(_settings(tmp_path, "trusted")) as registry:
        version = registry.push("churn", model_files["logistic"])
        registry.artifact_path(version).write_bytes(trojan(marker, logistic))
        with pytest.raises(Corrupted, match="changed or damaged"):
            load_version(registry, version)
    assert not marker.exists()


def test_strict_refuses_custom_python_without_importing_it(tmp_path: Path, strict: Settings) -> None:
    marker = tmp_path / "IMPORTED"
    source = tmp_path / "model.py"
    source.write_text(
        f"open({str(marker)!r}, 'w').close()\n\n"
        "class Model:\n    def load(self, path):\n        pass\n\n    def predict(self, frame):\n        return frame.iloc[:, 0]\n"
    )
    with Registry(strict) as registry, pytest.raises(PickleRefused, match="custom Python models"):
        registry.push("custom", source)
    assert not marker.exists()


def test_strict_limits_skops_trusted_types_to_sklearn_classes(
    tmp_path: Path, strict: Settings, iris_frame: pd.DataFrame
) -> None:
    sio = pytest.importorskip("skops.io")
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=3, random_state=0)
    forest.fit(iris_frame[FEATURES], iris_frame["target"])
    path = tmp_path / "forest.skops"
    sio.dump(forest, path)
    with Registry(strict) as registry:
        with pytest.raises(PickleRefused, match=r"trusted_types=builtins\.open"):
            registry.push(
                "f", path, runtime_options={"trusted_types": ["sklearn.tree._tree.Tree", "builtins.open"]}
            )
        version = registry.push("f", path, runtime_options={"trusted_types": "sklearn.tree._tree.Tree"})
        loaded = load_version(registry, version)
        assert len(loaded.predict(iris_frame[FEATURES].head(3))) == 3


def _safe_files(d: Path, iris_frame: pd.DataFrame) -> dict[str, Path]:
    X, y = iris_frame[FEATURES], iris_frame["target"]
    files: dict[str, Path] = {}
    sio = pytest.importorskip("skops.io")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sio.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y), d / "m.skops")
    files["skops"] = d / "m.skops"
    from skl2onnx import to_onnx

    matrix = X.to_numpy(dtype="float32")
    onx = to_onnx(LogisticRegression(max_iter=500).fit(matrix, y), matrix[:1])
    (d / "m.onnx").write_bytes(onx.SerializeToString())
    files["onnx"] = d / "m.onnx"
    xgb = pytest.importorskip("xgboost")
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3}, xgb.DMatrix(X, label=y), 5)
    booster.save_model(d / "m.json")
    files["xgboost"] = d / "m.json"
    lgb = pytest.importorskip("lightgbm")
    lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(X, y), 5).save_model(
        d / "m.txt"
    )
    files["lightgbm"] = d / "m.txt"
    return files


def test_strict_accepts_safe_formats(tmp_path: Path, strict: Settings, iris_frame: pd.DataFrame) -> None:
    files = _safe_files(tmp_path, iris_frame)
    with Registry(strict) as registry:
        for fmt, path in files.items():
            version = registry.push(fmt, path)
            assert version.format == fmt
            rows = iris_frame[FEATURES].head(4).set_axis(version.signature.input_names, axis=1)
            prediction = load_version(registry, version).predict(rows)
            assert len(prediction) == 4


def _export(d: Path) -> Path:
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1))
    program = torch.export.export(net, (torch.zeros(2, 4),))
    torch.export.save(program, d / "m.pt2")
    return d / "m.pt2"


def test_strict_accepts_torch_and_refuses_a_crafted_torch_export_archive(
    tmp_path: Path, strict: Settings, marker: Path
) -> None:
    torch = pytest.importorskip("torch")
    scripted = tmp_path / "m.pt"
    torch.jit.script(torch.nn.Linear(4, 2)).save(str(scripted))
    good = _export(tmp_path)
    # torch.export.load retries a .pt member that its restricted loader refuses with plain pickle
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(evil, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            target.writestr(name, trojan(marker) if name.endswith("sample_inputs/model.pt") else data)
    with Registry(strict) as registry:
        assert registry.push("script", scripted).format == "torchscript"
        assert registry.push("exported", good).format == "torch_export"
        with pytest.raises(PickleRefused, match=r"sample_inputs/model\.pt"):
            registry.push("evil", evil)
    assert not marker.exists()
    # the control: torch itself runs the trojan in that archive
    with evil.open("rb") as fh, pytest.raises(Exception):  # noqa: B017 - torch fails after running it
        torch.export.load(fh)
    assert marker.exists()


def test_trusted_loads_a_plain_joblib_model(tmp_path: Path, model_files: dict[str, Path]) -> None:
    with Registry.init(_settings(tmp_path, "trusted")) as registry:
        version = registry.push("churn", model_files["forest"])
        assert version.lineage.pushed_by == "tester"
        loaded = load_version(registry, version)
        assert len(loaded.predict([dict.fromkeys(FEATURES, 1.0)])) == 1


def _rows(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    pd.DataFrame([dict.fromkeys(FEATURES, 1.0)]).to_csv(path, index=False)
    return path
