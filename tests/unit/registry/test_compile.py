"""Compiling at push: an ONNX form checked equal on the reference data, served in place of the original."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from liveml import Corrupted, Registry
from liveml.registry import compile as compile_module
from liveml.registry.loading import load_version
from liveml.serving import ModelHost
from liveml.serving.host import HostOptions

pytest.importorskip("skl2onnx")


def test_classifiers_compile_and_answer_the_same(
    registry: Registry, model_files: dict[str, Path], iris_frame: pd.DataFrame
) -> None:
    features = iris_frame.drop(columns=["target"])
    for name in ("logistic", "forest"):  # forest: trees compare in float32, as scikit-learn's do
        version = registry.push(name, model_files[name], reference=model_files["reference"])
        assert version.compiled is not None and version.compiled.format == "onnx"
        report = version.compile_report or {}
        assert report["status"] == "ok" and report["rows_checked"] == 150 and report["labels_equal"] is True
        assert report["max_abs_diff"] <= compile_module.TOLERANCE
        compiled = load_version(registry, version, compiled=True)
        original = load_version(registry, version)
        assert (compiled.serving_format, original.serving_format) == ("onnx", "sklearn")
        fast, slow = compiled.predict(features), original.predict(features)
        assert np.array_equal(fast.predictions, slow.predictions) and fast.classes == slow.classes
        assert np.allclose(fast.probabilities, slow.probabilities, atol=1e-5)


def test_regressor_compiles(
    registry: Registry, model_files: dict[str, Path], iris_frame: pd.DataFrame, tmp_path: Path
) -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    features = iris_frame.drop(columns=["target"])
    path = tmp_path / "gbr.joblib"
    joblib.dump(GradientBoostingRegressor(random_state=0).fit(features, iris_frame["target"]), path)
    version = registry.push("gbr", path, reference=model_files["reference"])
    assert version.compiled is not None and (version.compile_report or {})["labels_equal"] is None
    fast = load_version(registry, version, compiled=True).predict(features)
    assert np.allclose(fast.predictions, joblib.load(path).predict(features), atol=1e-5)


def test_what_is_not_compiled_says_why(
    registry: Registry, model_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = registry.push("m", model_files["logistic"])
    assert bare.compiled is None and "--reference" in (bare.compile_report or {})["reason"]
    off = registry.push("m", model_files["logistic"], reference=model_files["reference"], compile=False)
    assert off.compiled is None and off.compile_report is None

    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame({"plan": ["a", "b", "a", "c"] * 10, "x": np.arange(40.0)})
    pipe = make_pipeline(
        ColumnTransformer([("p", OneHotEncoder(), ["plan"])], remainder="passthrough"), LogisticRegression()
    )
    pipe.fit(frame, [0, 1, 0, 1] * 10)
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    frame.to_csv(tmp_path / "ref.csv", index=False)
    strings = registry.push("s", tmp_path / "pipe.joblib", reference=tmp_path / "ref.csv")
    assert strings.compiled is None and "all numbers" in (strings.compile_report or {})["reason"]

    monkeypatch.setattr(compile_module, "TOLERANCE", -1.0)  # nothing can agree: the check must refuse
    refused = registry.push("m", model_files["forest"], reference=model_files["reference"])
    assert refused.compiled is None and (refused.compile_report or {})["status"] == "failed"
    assert "the original is served" in (refused.compile_report or {})["reason"]


def test_the_host_serves_the_compiled_form_unless_told_not_to(
    registry: Registry, model_files: dict[str, Path]
) -> None:
    registry.push("m", model_files["logistic"], aliases=["production"], reference=model_files["reference"])
    rows = pd.read_csv(model_files["rows"])
    for compiled, expected in ((True, "onnx"), (False, "sklearn")):
        host = ModelHost(registry, options=HostOptions(compiled=compiled, poll_interval_s=0))
        host.start(watch=False)
        try:
            assert host.resolve("m").loaded.serving_format == expected
            expected = joblib.load(model_files["logistic"]).predict(rows).tolist()
            assert host.predict("m", rows).prediction.predictions.tolist() == expected
        finally:
            host.stop()


def test_compiled_blob_is_verified_and_collected(registry: Registry, model_files: dict[str, Path]) -> None:
    version = registry.push("m", model_files["logistic"], reference=model_files["reference"])
    assert version.compiled is not None
    path = registry.artifact_path(version, compiled=True)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(Corrupted, match="compiled"):
        load_version(registry, version, compiled=True)
    registry.delete_version("m", 1)
    if registry.store.is_local:
        assert not path.exists()
