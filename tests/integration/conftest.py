"""Fixtures shared by the protocol tests: a few iris rows and what the logistic model says about them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest

from tests.integration.cloud_server import COLUMNS


@pytest.fixture(scope="module")
def rows(iris_frame: pd.DataFrame) -> pd.DataFrame:
    return iris_frame[COLUMNS].iloc[[0, 50, 100, 149]].reset_index(drop=True)


@pytest.fixture(scope="module")
def expected(model_files: dict[str, Path], rows: pd.DataFrame) -> dict[str, Any]:
    model = joblib.load(model_files["logistic"])
    return {"labels": model.predict(rows).tolist(), "proba": model.predict_proba(rows)}
