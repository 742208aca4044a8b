"""The scikit-learn runtime scores argmax classifiers with one ``predict_proba`` call, without importing
the packages of the other argmax classifiers to find out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from liveml.runtimes.sklearn import SklearnRuntime, _predicts_by_argmax


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    return x, (x["a"] + x["b"] > 0).astype(int).to_numpy()


def test_argmax_classifiers_and_pipelines_ending_in_one() -> None:
    x, y = _data()
    assert _predicts_by_argmax(LogisticRegression().fit(x, y))
    assert _predicts_by_argmax(make_pipeline(StandardScaler(), RandomForestClassifier(3)).fit(x, y))
    assert not _predicts_by_argmax(StandardScaler().fit(x))

    class Mine(LogisticRegression):  # a subclass may predict otherwise: scored with its own predict
        pass

    assert not _predicts_by_argmax(Mine().fit(x, y))


def test_a_logistic_regression_is_scored_without_importing_the_ensembles(tmp_path: Path) -> None:
    x, y = _data()
    model = LogisticRegression().fit(x, y)
    joblib.dump(model, tmp_path / "m.joblib")
    x.to_parquet(tmp_path / "x.parquet")
    code = (
        "import sys, pandas as pd\n"
        "from liveml.runtimes.sklearn import SklearnRuntime\n"
        "r = SklearnRuntime(sys.argv[1]); r.load()\n"
        "p = r.predict(pd.read_parquet(sys.argv[2]))\n"
        "print(''.join(str(v) for v in p.predictions))\n"
        "print(sorted(m for m in ('sklearn.ensemble', 'sklearn.tree', 'sklearn.naive_bayes') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m.joblib"), str(tmp_path / "x.parquet")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "".join(str(v) for v in model.predict(x))
    assert out[1] == "[]"
    runtime = SklearnRuntime(tmp_path / "m.joblib")
    runtime.load()
    np.testing.assert_allclose(runtime.predict(x).probabilities, model.predict_proba(x))  # type: ignore[arg-type]
