"""The registry as a user of the Python API sees it, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liveml import Conflict, Corrupted, Invalid, NotFound, Registry, Signature, load_model
from liveml.signature import ColumnSpec


def test_push_records_everything(registry: Registry, model_files: dict[str, Path]) -> None:
    v = registry.push(
        "churn",
        model_files["logistic"],
        aliases=["production"],
        reference=model_files["reference"],
        description="logistic, iris",
        tags={"team": "risk"},
        metrics={"auc": "0.91"},
        data_hash="abc123",
        code_commit="deadbeef",
    )
    assert (v.model, v.version, v.aliases, v.format, v.task) == (
        "churn",
        1,
        ("production",),
        "sklearn",
        "classification",
    )
    assert v.classes == (0, 1, 2)
    assert v.signature.source == "model"
    assert v.signature.input_names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert {c.name for c in v.signature.outputs} == {"prediction", "proba_0", "proba_1", "proba_2"}
    assert v.metrics == {"auc": 0.91} and v.tags == {"team": "risk"}
    assert v.lineage.pushed_by == "tester" and v.lineage.file_name == "logistic.joblib"
    assert (v.lineage.data_hash, v.lineage.code_commit) == ("abc123", "deadbeef")
    assert len(v.sha256) == 64 and v.size == model_files["logistic"].stat().st_size
    profile = registry.reference_profile("churn@production")
    assert profile is not None and profile.rows == 150
    assert list(profile.columns) == v.signature.input_names
    assert "prediction" in profile.outputs


def test_versions_are_numbered_and_refs_resolve(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("m", model_files["logistic"])
    registry.push("m", model_files["forest"], aliases=["staging"])
    registry.push("m", model_files["logistic"])
    assert [v.version for v in registry.versions("m")] == [1, 2, 3]
    assert registry.get("m").version == 3  # no production alias: the latest
    registry.set_alias("m", "production", 1)
    assert registry.get("m").version == 1  # production wins over latest
    assert registry.get("m:latest").version == 3
    assert registry.get("m@staging").version == 2
    assert registry.get("m:2").format == "sklearn"
    summary = registry.models()[0]
    assert (summary.name, summary.latest_version, summary.versions) == ("m", 3, 3)
    assert summary.aliases == {"production": 1, "staging": 2}


def test_not_found_errors_list_what_exists(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("churn", model_files["logistic"], aliases=["production", "staging"])
    with pytest.raises(NotFound, match="no alias 'prod'; aliases: production, staging"):
        registry.get("churn@prod")
    with pytest.raises(NotFound, match="no version 7; versions: 1"):
        registry.get("churn:7")
    with pytest.raises(NotFound, match="no model named 'nope'; models: churn"):
        registry.get("nope")


def test_alias_history_and_rollback(registry: Registry, model_files: dict[str, Path]) -> None:
    for _ in range(3):
        registry.push("m", model_files["logistic"])
    registry.set_alias("m", "production", 1)
    registry.set_alias("m", "production", 3)
    event = registry.rollback("m", "production")
    assert (event.from_version, event.to_version, event.action) == (3, 1, "rollback")
    assert registry.get("m@production").version == 1
    registry.rollback("m", "production")  # like `kubectl rollout undo`: twice goes forward again
    assert registry.get("m@production").version == 3
    history = registry.alias_history("m", "production")
    assert [(e.action, e.from_version, e.to_version) for e in history] == [
        ("set", None, 1),
        ("set", 1, 3),
        ("rollback", 3, 1),
        ("rollback", 1, 3),
    ]
    assert all(e.actor == "tester" for e in history)
    assert [e.at for e in history] == sorted(e.at for e in history)


def test_rollback_with_nothing_before_is_refused(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("m", model_files["logistic"], aliases=["production"])
    with pytest.raises(Conflict, match="nothing to roll back"):
        registry.rollback("m", "production")
    with pytest.raises(NotFound, match="never been set"):
        registry.rollback("m", "staging")


def test_delete_version_guarded_by_aliases(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("m", model_files["logistic"], aliases=["production"])
    registry.push("m", model_files["forest"])
    with pytest.raises(Conflict, match="alias"):
        registry.delete_version("m", 1)
    assert [v.version for v in registry.versions("m")] == [1, 2]
    deleted = registry.delete_version("m", 1, force=True)
    assert deleted.aliases == ("production",)
    assert [v.version for v in registry.versions("m")] == [2]
    assert registry.alias_history("m")[-1].action == "delete"
    # numbers are never reused
    assert registry.push("m", model_files["logistic"]).version == 3
    registry.delete_version("m", 2)


def test_same_content_is_stored_once_and_kept_while_used(
    registry: Registry, model_files: dict[str, Path]
) -> None:
    a = registry.push("a", model_files["logistic"])
    b = registry.push("b", model_files["logistic"])
    assert a.sha256 == b.sha256
    registry.delete_version("a", 1)
    assert load_model("b:1", registry=registry).predict(
        pd.read_csv(model_files["rows"])
    ).predictions.shape == (20,)


def test_tampered_artifact_is_refused(registry: Registry, model_files: dict[str, Path]) -> None:
    v = registry.push("m", model_files["logistic"])
    path = registry.artifact_path(v)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(Corrupted, match="changed or damaged"):
        load_model("m", registry=registry)


def test_load_model_predicts_like_the_model(
    registry: Registry, model_files: dict[str, Path], iris_frame: pd.DataFrame
) -> None:
    import joblib

    registry.push("m", model_files["forest"], aliases=["production"])
    model = load_model("m@production", registry=registry)
    rows = iris_frame.drop(columns=["target"]).sample(30, random_state=1)
    expected = joblib.load(model_files["forest"])
    result = model.predict(rows[list(reversed(rows.columns))])  # column order does not matter
    assert np.array_equal(result.predictions, expected.predict(rows))
    assert np.allclose(result.probabilities, expected.predict_proba(rows))
    as_records = model.predict(rows.to_dict(orient="records"))
    assert np.array_equal(as_records.predictions, result.predictions)
    with pytest.raises(Invalid, match="missing input column"):
        model.predict([{"sepal_length": 1.0}])
    with pytest.raises(Invalid, match="row 0 has 'abc'"):
        model.predict(rows.head(1).assign(sepal_width="abc"))


def test_unnamed_model_takes_names_from_reference(
    registry: Registry, model_files: dict[str, Path], iris_frame: pd.DataFrame, tmp_path: Path
) -> None:
    import joblib
    from sklearn.tree import DecisionTreeRegressor

    X = iris_frame.drop(columns=["target"]).to_numpy()
    path = tmp_path / "tree.pkl"
    joblib.dump(DecisionTreeRegressor(random_state=0).fit(X, iris_frame["target"]), path)
    with pytest.raises(Invalid, match="4 unnamed input columns but the reference file has 5"):
        registry.push("tree", path, reference=model_files["reference_with_label"])
    assert registry.models() == []
    v = registry.push("tree", path, reference=model_files["reference"])
    assert v.signature.source == "reference" and v.task == "regression"
    assert v.signature.input_names[0] == "sepal_length"
    bare = registry.push("tree", path)
    assert bare.signature.input_names == ["x0", "x1", "x2", "x3"]


def test_reference_that_does_not_match_is_refused_and_nothing_stored(
    registry: Registry, model_files: dict[str, Path], tmp_path: Path
) -> None:
    registry.push("m", model_files["logistic"], aliases=["production"])
    before = (registry.versions("m"), registry.alias_history("m"))
    wrong = tmp_path / "wrong.csv"
    pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(wrong, index=False)
    with pytest.raises(Invalid, match="reference file does not match the model: missing input column"):
        registry.push("m", model_files["logistic"], reference=wrong, aliases=["production"])
    typo = tmp_path / "typo.csv"
    pd.read_parquet(model_files["reference"]).assign(petal_width="wide").to_csv(typo, index=False)
    with pytest.raises(Invalid, match=r"could not predict on the reference.*'wide'"):
        registry.push("m", model_files["logistic"], reference=typo)
    assert (registry.versions("m"), registry.alias_history("m")) == before


def test_signature_override(registry: Registry, model_files: dict[str, Path]) -> None:
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    sig = Signature(inputs=tuple(ColumnSpec(name=n, type="number", nullable=False) for n in names))
    v = registry.push("m", model_files["logistic"], signature=sig)
    assert v.signature.source == "user" and not v.signature.inputs[0].nullable
    with pytest.raises(Invalid, match="lacks column"):
        registry.push("m", model_files["logistic"], signature=Signature(inputs=(ColumnSpec(name="x"),)))


def test_bad_metadata_is_refused(registry: Registry, model_files: dict[str, Path]) -> None:
    with pytest.raises(Invalid, match="metric 'auc' must be a number"):
        registry.push("m", model_files["logistic"], metrics={"auc": "high"})
    with pytest.raises(Invalid, match="invalid alias"):
        registry.push("m", model_files["logistic"], aliases=["Prod"])
    with pytest.raises(Invalid, match="parent version 4"):
        registry.push("m", model_files["logistic"], parent_version=4)
    with pytest.raises(Invalid, match="invalid model name"):
        registry.push("../m", model_files["logistic"])
    assert registry.models() == []
    assert not any((Path(registry.store.root) / "sha256").glob("*/*")) if registry.store.is_local else True


def test_uninitialized_home_says_run_init(tmp_path: Path) -> None:
    from liveml import NotInitialized, Settings

    with pytest.raises(NotInitialized, match="liveml init"):
        Registry(Settings(home=tmp_path / "nowhere"))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"\x00" * 4096, "supported formats"),
        (b"just some text, not a model\n" * 10, "supported formats"),
    ],
)
def test_files_that_are_not_models_leave_the_registry_as_it_was(
    registry: Registry, model_files: dict[str, Path], tmp_path: Path, content: bytes, expected: str
) -> None:
    registry.push("m", model_files["logistic"], aliases=["production"])
    before = (registry.versions("m"), registry.alias_history("m"))
    path = tmp_path / "model.joblib"
    path.write_bytes(content)
    with pytest.raises(Invalid, match=expected):
        registry.push("m", path, aliases=["production"])
    assert (registry.versions("m"), registry.alias_history("m")) == before


def test_pickle_of_something_else_is_not_a_model(registry: Registry, tmp_path: Path) -> None:
    import joblib

    path = tmp_path / "weights.pkl"
    joblib.dump({"weights": [1, 2, 3]}, path)
    with pytest.raises(Invalid, match=r"holds a builtins\.dict, not a model"):
        registry.push("m", path)
    truncated = tmp_path / "cut.joblib"
    truncated.write_bytes(path.read_bytes()[:10])
    with pytest.raises(Invalid, match="corrupt or truncated"):
        registry.push("m", truncated)
    assert registry.models() == []


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.csv", b"", "is empty"),
        ("header_only.csv", b"sepal_length,sepal_width,petal_length,petal_width\n", "has no rows"),
        ("broken.parquet", b"PAR1 this is not parquet", "could not be read"),
        ("data.xlsx", b"whatever", "cannot tell the format"),
    ],
)
def test_bad_reference_files(
    registry: Registry, model_files: dict[str, Path], tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(Invalid, match=expected):
        registry.push("m", model_files["logistic"], reference=path)
    with pytest.raises(NotFound, match="does not exist"):
        registry.push("m", model_files["logistic"], reference=tmp_path / "missing.parquet")
    assert registry.models() == []


def test_alias_history_outlives_the_last_version(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("m", model_files["logistic"], aliases=["production"])
    registry.delete_version("m", 1, force=True)
    assert registry.models() == []
    assert [(e.action, e.from_version, e.to_version) for e in registry.alias_history("m")] == [
        ("set", None, 1),
        ("delete", 1, None),
    ]
    assert registry.push("m", model_files["logistic"]).version == 2  # numbers are never reused
