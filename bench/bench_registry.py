"""In-process cost of the registry path vs the floor (the framework's own predict), with pytest-benchmark."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import joblib
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from churn_data import FEATURES, churn_table
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from liveml import LoadedModel, Registry, Settings, load_model


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Registry, Pipeline, LoadedModel, pd.DataFrame]]:
    root = tmp_path_factory.mktemp("bench")
    table = churn_table(20_000)
    model = Pipeline(
        [
            ("encode", ColumnTransformer([("plan", OneHotEncoder(), ["plan"])], remainder="passthrough")),
            ("boost", HistGradientBoostingClassifier(max_iter=100, random_state=0)),
        ]
    ).fit(table[FEATURES], table["churned"])
    joblib.dump(model, root / "churn.joblib")
    table[FEATURES].to_parquet(root / "train.parquet")
    registry = Registry.init(Settings(home=root / "home"))
    registry.push("churn", root / "churn.joblib", aliases=["production"], reference=root / "train.parquet")
    loaded = load_model("churn@production", registry=registry)
    yield registry, model, loaded, table[FEATURES]
    registry.close()


@pytest.mark.parametrize("rows", [1, 10_000])
def test_floor_model_predict(benchmark, setup, rows: int) -> None:  # type: ignore[no-untyped-def]
    _, model, _, frame = setup
    batch = frame.head(rows)
    benchmark.group = f"predict {rows} rows"
    benchmark(lambda: (model.predict(batch), model.predict_proba(batch)))


@pytest.mark.parametrize("rows", [1, 10_000])
def test_liveml_loaded_predict(benchmark, setup, rows: int) -> None:  # type: ignore[no-untyped-def]
    _, _, loaded, frame = setup
    batch = frame.head(rows)
    benchmark.group = f"predict {rows} rows"
    benchmark(loaded.predict, batch)


def test_resolve_reference(benchmark, setup) -> None:  # type: ignore[no-untyped-def]
    registry = setup[0]
    benchmark.group = "registry"
    benchmark(registry.get, "churn@production")


def test_load_version_with_sha256_check(benchmark, setup) -> None:  # type: ignore[no-untyped-def]
    registry = setup[0]
    benchmark.group = "registry"
    benchmark(load_model, "churn@production", registry=registry)
