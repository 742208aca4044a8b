"""Shared fixtures: settings per backend (SQLite file, real PostgreSQL), registries, and real trained models."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import joblib
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from liveml import Registry, Settings

PG_ADMIN_URL = os.environ.get("LIVEML_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@cache
def postgres_problem() -> str | None:
    """None when the PostgreSQL server answers, else why not (the tests that need it skip with it)."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("select 1")
        return None
    except Exception as exc:  # any failure means: skip, loudly
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    problem = postgres_problem()
    if problem:
        terminalreporter.write_sep("!", "PostgreSQL tests were SKIPPED", red=True, bold=True)
        terminalreporter.write_line(problem)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the real server, dropped afterwards."""
    problem = postgres_problem()
    if problem:
        pytest.skip(problem)
    import psycopg

    name = f"liveml_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh data home, on each metadata backend."""
    home = tmp_path / "home"
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        return Settings(home=home, database_url=url, user="tester")
    return Settings(home=home, user="tester")


@pytest.fixture
def registry(settings: Settings) -> Iterator[Registry]:
    reg = Registry.init(settings)
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def iris_frame() -> pd.DataFrame:
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    return frame


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory, iris_frame: pd.DataFrame) -> dict[str, Path]:
    """Real models trained on iris, with reference data: the registry tests' raw material."""
    root = tmp_path_factory.mktemp("models")
    features = iris_frame.drop(columns=["target"])
    target = iris_frame["target"]
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features, target)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(features, target)
    joblib.dump(logistic, root / "logistic.joblib")
    joblib.dump(forest, root / "forest.joblib")
    features.to_parquet(root / "reference.parquet")
    iris_frame.to_csv(root / "reference_with_label.csv", index=False)
    features.head(20).to_csv(root / "rows.csv", index=False)
    return {
        "logistic": root / "logistic.joblib",
        "forest": root / "forest.joblib",
        "reference": root / "reference.parquet",
        "reference_with_label": root / "reference_with_label.csv",
        "rows": root / "rows.csv",
    }
