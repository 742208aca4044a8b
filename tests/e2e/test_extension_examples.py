"""The docs' extension examples as a user would use them: a custom Python model folder, and a
third-party runtime found through the ``liveml.runtimes`` entry-point group."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from liveml import Registry, load_model
from liveml.runtimes import catalog

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from churn_data import churn_table  # noqa: E402


def test_custom_model_folder(registry: Registry, tmp_path: Path) -> None:
    example = tmp_path / "rows.csv"
    churn_table(5).to_csv(example, index=False)  # gives the column types: plan is a string
    folder = ROOT / "examples" / "custom_model" / "churn_rules"
    version = registry.push("rules", folder, aliases=["production"], example=example)
    assert [c.type for c in version.signature.inputs] == ["string", "integer", "number", "integer"]
    assert (version.format, version.task, version.classes) == ("custom", "classification", ("stay", "leave"))
    assert version.signature.input_names == ["plan", "tenure_months", "monthly_charges", "support_calls"]
    again = registry.push("rules", folder, example=example)
    assert again.sha256 == version.sha256  # the folder packs the same way every time

    rows = churn_table(50)
    result = load_model("rules@production", registry=registry).predict(rows)
    weights = np.array([0.8, -0.09, 0.04, 0.9, 0.0, 0.0, -1.5])
    plans = np.column_stack([(rows["plan"] == p).to_numpy(float) for p in ("basic", "pro", "enterprise")])
    features = np.column_stack(
        [
            np.ones(len(rows)),
            rows[["tenure_months", "monthly_charges", "support_calls"]].to_numpy(float),
            plans,
        ]
    )
    expected = 1 / (1 + np.exp(-(features @ weights)))
    assert result.probabilities is not None
    assert np.allclose(result.probabilities[:, 1], expected)
    assert list(result.predictions) == ["leave" if p > 0.5 else "stay" for p in expected]


@pytest.fixture
def npz_runtime_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Install examples/liveml_npz the way pip would expose it: its code on the path, a dist-info with
    its entry point (what `pip install ./examples/liveml_npz` writes)."""
    site = tmp_path / "site"
    info = site / "liveml_npz-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: liveml-npz\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[liveml.runtimes]\nnpz_linear = liveml_npz:NpzLinearRuntime\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "liveml_npz"))
    catalog.runtimes.cache_clear()
    yield
    catalog.runtimes.cache_clear()


def test_third_party_runtime_through_entry_points(
    npz_runtime_installed: None, registry: Registry, tmp_path: Path
) -> None:
    assert "npz_linear" in catalog.runtimes()
    coef = np.array([2.0, -1.0, 0.5])
    path = tmp_path / "prices.bin"  # detected from content, not from the name
    with path.open("wb") as fh:
        np.savez(fh, coef=coef, intercept=np.array(3.0))
    assert catalog.detect_format(path).name == "npz_linear"
    version = registry.push("prices", path)
    assert (version.format, version.task, version.signature.input_names) == (
        "npz_linear",
        "regression",
        ["x0", "x1", "x2"],
    )
    rows = [{"x0": 1.0, "x1": 2.0, "x2": 4.0}, {"x0": 0.0, "x1": 0.0, "x2": 0.0}]
    assert load_model("prices", registry=registry).predict(rows).predictions.tolist() == [
        2.0 - 2.0 + 2.0 + 3.0,
        3.0,
    ]
