"""The monitoring report: summary before the per-column sections, drifted columns named and first, one
plot per expected figure, user strings escaped, nothing fetched from elsewhere, and JSON that reads back."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd
import pytest

from liveml.errors import Unavailable
from liveml.monitoring.report import render_html, render_json
from liveml.monitoring.results import (
    DatasetDrift,
    FeatureDrift,
    MetricValue,
    MonitorResult,
    MultivariateDrift,
    Performance,
    TimeChunk,
)
from liveml.registry.profile import ReferenceProfile, build_profile

pytest.importorskip("matplotlib")

START = datetime(2026, 11, 1, tzinfo=UTC)
GENERATED = datetime(2026, 11, 8, 6, 0, tzinfo=UTC)
XSS = "<script>alert(1)</script>"
Role = Literal["input", "output"]


@dataclass
class Window:
    """A reference profile, a current window (inputs, outputs) and a hand-made result for it."""

    profile: ReferenceProfile
    inputs: pd.DataFrame
    outputs: pd.DataFrame
    result: MonitorResult
    #: the number of <svg> plots the page should hold
    plots: int


def _ks(column: str, p: float, rows: int = 500, role: Role = "input") -> FeatureDrift:
    return FeatureDrift(column=column, role=role, kind="numeric", test="ks", score=p, threshold=0.05,
                        score_is_p_value=True, drift=p < 0.05, reference_rows=2000, current_rows=rows)  # fmt: skip


def _categorical(column: str, distance: float, role: Role = "input") -> FeatureDrift:
    return FeatureDrift(column=column, role=role, kind="categorical", test="jensenshannon", score=distance,
                        threshold=0.1, score_is_p_value=False, drift=distance >= 0.1, reference_rows=2000,
                        current_rows=500)  # fmt: skip


def churn_window(extra_column: str | None = None) -> Window:
    """Reference: 2,000 customers. Window: 500 rows where ``age`` shifted up by 15 years and ``plan`` has
    a new category ``enterprise`` (and 10 ages are missing); ``tenure`` and ``signup`` did not move. Seven daily chunks: drift from
    day 4 on."""
    rng = np.random.default_rng(7)
    n, m = 2000, 500
    reference = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.6, 0.3, 0.1]),
            "tenure": rng.integers(0, 60, n),
            "signup": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
        }
    )
    current = pd.DataFrame(
        {
            "age": rng.normal(55, 10, m),
            "plan": rng.choice(["basic", "pro", "enterprise"], m, p=[0.4, 0.3, 0.3]),
            "tenure": rng.integers(0, 60, m),
            "signup": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365, m), unit="D"),
        }
    )
    current.loc[:9, "age"] = np.nan  # 10 of 500 missing, none in the reference
    if extra_column is not None:
        reference[extra_column] = rng.choice(["<b>x</b>", "y"], n)
        current[extra_column] = rng.choice(["<b>x</b>", "y", XSS], m)
    ref_out = pd.DataFrame({"prediction": rng.choice(["churn", "stay"], n, p=[0.2, 0.8])})
    cur_out = pd.DataFrame({"prediction": rng.choice(["churn", "stay"], m, p=[0.4, 0.6])})
    profile = build_profile(reference, ref_out)

    features = [_ks("tenure", 0.4), _ks("age", 1e-40), _categorical("plan", 0.31), _ks("signup", 0.6)]
    if extra_column is not None:
        features.append(_categorical(extra_column, 0.2))
    shares = [0.0, 0.0, 0.25, 0.5, 0.5, 0.5, 0.75]
    chunks = tuple(
        TimeChunk(
            start=START + timedelta(days=i),
            end=START + timedelta(days=i + 1),
            rows=70,
            drift_share=shares[i],
            scores={
                "age": [0.5, 0.3, 0.01, 1e-5, 1e-9, 1e-12, 0.0][i],
                "plan": [0.02, 0.03, 0.05, 0.12, 0.2, 0.25, 0.3][i],
                "tenure": 0.4,
                "signup": None if i == 0 else 0.6,
                "prediction": 0.2,
                **({extra_column: 0.2} if extra_column else {}),
            },
            metrics={
                "accuracy": 0.9 - 0.02 * i,
                "estimated_accuracy": 0.88 - 0.02 * i,
                "estimated_accuracy_lower": 0.85 - 0.02 * i,
                "estimated_accuracy_upper": 0.91 - 0.02 * i,
                "multivariate": [0.95, 1.0, 1.05, 1.2, 1.3, 1.4, 1.5][i],
                "latency_p95_ms": 10.0 + i,
            },
        )
        for i in range(7)
    )
    result = MonitorResult(
        model="churn",
        versions=(3, 4),
        reference_version=3,
        start=START,
        end=START + timedelta(days=7),
        rows=m,
        min_rows=100,
        enough_rows=True,
        features=tuple(features),
        dataset=DatasetDrift(share=0.5, drifted_columns=2, columns=4, drift=True),
        predictions=(_categorical("prediction", 0.15, role="output"),),
        multivariate=MultivariateDrift(score=1.4, reference_mean=1.0, lower=0.9, upper=1.1, drift=True),
        realized=Performance(kind="realized", task="classification", labelled_rows=300,
                             metrics=(MetricValue(name="accuracy", value=0.81, rows=300, lower=0.77, upper=0.85),)),
        estimated=Performance(kind="estimated", task="classification",
                              metrics=(MetricValue(name="accuracy", value=0.79, rows=500, lower=0.75, upper=0.83),)),
        over_time=chunks,
        error_rate=0.002,
        latency_p95_ms=12.5,
        notes=("labels arrived for 300 of 500 predictions",),
    )  # fmt: skip
    columns = len(features) + 1  # each input column and the prediction: a distribution and a score over time
    # + drift share, multivariate error, accuracy and latency over time
    return Window(profile, current, cur_out, result, plots=2 * columns + 4)


@pytest.fixture(scope="module")
def window() -> Window:
    return churn_window()


@pytest.fixture(scope="module")
def page(window: Window) -> str:
    return render_html(window.result, window.profile, window.inputs, window.outputs, generated_at=GENERATED)


def _section(page: str, anchor: str) -> str:
    match = re.search(rf'<(article|section)[^>]* id="{anchor}">(.*?)</\1>', page, flags=re.DOTALL)
    assert match, f"no section {anchor}"
    return match.group(2)


def test_summary_comes_first_and_names_the_drifted_columns(page: str) -> None:
    positions = [page.index(f'id="{anchor}"') for anchor in ["summary", "features", "predictions"]]
    assert positions == sorted(positions)
    summary = _section(page, "summary")
    assert "Dataset drift: 2 of 4 input columns drifted (50%" in summary
    assert "since 2026-11-04 00:00 UTC: 4 of 7 time slices drifted, and still in the last one" in summary
    drifted = re.findall(r'<a href="#input-([a-z]+)"><code>', summary)
    assert drifted == ["age", "plan"]  # most severe first; tenure and signup did not drift
    assert "p = 1.00e-40 &lt; 0.05" in summary and "0.31 ≥ 0.1 (3.1 times the threshold)" in summary
    assert "drift: reconstruction error 1.4, expected 0.9 to 1.1" in summary  # multivariate
    for kind, value, band, rows in [
        ("realized", "0.81", "0.77 to 0.85", "300"),
        ("estimated", "0.79", "0.75 to 0.83", "500"),
    ]:
        assert re.search(rf"<td>{kind}</td><td>accuracy</td><td[^>]*>{value}</td><td>{band}</td><td[^>]*>{rows}</td>", summary)  # fmt: skip
    assert "labels arrived for 300 of 500 predictions" in summary
    assert "0.20%" in summary and "12.5 ms" in summary
    # the sections follow the same order: drifted first, most severe first
    order = [
        page.index(f'<article class="column" id="input-{c}">') for c in ["age", "plan", "tenure", "signup"]
    ]
    assert order == sorted(order)


def test_header_names_the_model_versions_and_window(page: str) -> None:
    header = page[page.index("<header>") : page.index("</header>")]
    assert "<code>churn</code>" in header and "3, 4" in header and "version 3" in header
    assert "2026-11-01 00:00 UTC to 2026-11-08 00:00 UTC (7 days)" in header
    assert "2026-11-08 06:00 UTC" in header and "500" in header
    sections = [
        "summary",
        "features",
        "predictions",
        "drift-over-time",
        "performance-over-time",
        "operations-over-time",
    ]
    for anchor in [f"#{s}" for s in sections]:
        assert f'href="{anchor}"' in header


def test_one_svg_per_plot(window: Window, page: str) -> None:
    assert page.count("<svg ") == window.plots
    for column in ["age", "plan", "tenure", "signup"]:
        assert _section(page, f"input-{column}").count("<svg ") == 2, column
    assert _section(page, "output-prediction").count("<svg ") == 2
    assert _section(page, "drift-over-time").count("<svg ") == 2  # drifted share, multivariate error
    assert _section(page, "performance-over-time").count("<svg ") == 1  # accuracy, not latency
    assert "<h3>accuracy</h3>" in _section(page, "performance-over-time")
    assert _section(page, "operations-over-time").count("<svg ") == 1  # latency
    for svg in re.findall(r"<svg .*?</svg>", page, flags=re.DOTALL):
        assert svg.count("<path") >= 5  # drawn, not an empty frame
    age = _section(page, "input-age")
    assert re.search(r"\d+ of 490 current values lie outside the reference range", age)  # shifted up
    assert "Missing values: 0.0% in the reference, 2.0% now (not drawn)" in age
    plan = _section(page, "input-plan")
    assert "enterprise (new)" in plan and "Categories not seen in the reference: enterprise" in plan
    assert "date (UTC)" in _section(page, "input-signup") and "density per day" in _section(
        page, "input-signup"
    )  # a datetime column's axis reads as dates
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # the inlined SVGs' ids do not collide


def test_page_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "<link" not in page and "<img" not in page and "@import" not in page
    assert not re.search(r"\b(src|srcset)\s*=", page)
    references = re.findall(r'(?:href|url\()\s*=?\s*"?([^")\s]+)', page)
    assert references and all(ref.startswith("#") for ref in references), references


def test_user_strings_are_escaped() -> None:
    window = churn_window(extra_column=XSS)
    result = window.result.model_copy(update={"model": '<img src=x onerror="alert(1)">', "notes": (XSS,)})
    page = render_html(result, window.profile, window.inputs, window.outputs, generated_at=GENERATED)
    assert XSS not in page and "<img" not in page and "<b>x</b>" not in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert page.count("<svg ") == window.plots
    assert 'id="input-script-alert-1-script"' in page  # a safe anchor for the odd column name


def test_too_few_rows_and_no_profile() -> None:
    window = churn_window()
    result = window.result.model_copy(
        update={"enough_rows": False, "rows": 40, "over_time": (), "realized": None, "estimated": None,
                "dataset": None, "multivariate": None, "notes": ("40 rows in the window; 100 needed",)}
    )  # fmt: skip
    page = render_html(result, None, window.inputs.head(40), window.outputs.head(40), generated_at=GENERATED)
    again = render_html(result, None, window.inputs.head(40), window.outputs.head(40), generated_at=GENERATED)
    assert again == page  # the same result gives the same page, byte for byte
    summary = _section(page, "summary")
    assert "Too few rows to judge: 40 in the window, at least 100 needed." in summary
    assert "40 rows in the window; 100 needed" in summary
    assert "No performance figures" in summary
    for section in ["drift-over-time", "performance-over-time", "operations-over-time"]:
        assert f'id="{section}"' not in page
    assert page.count("<svg ") == 5  # one distribution per column, current data only
    assert "No reference histogram for this column: current values only" in _section(page, "input-age")
    assert "No reference frequencies for this column: current values only" in _section(page, "input-plan")


def test_a_column_missing_from_the_log_says_so(window: Window) -> None:
    tenure = next(f for f in window.result.features if f.column == "tenure")
    result = window.result.model_copy(update={"features": (tenure,), "predictions": ()})
    page = render_html(result, window.profile, window.inputs.drop(columns=["tenure"]), window.outputs)
    section = _section(page, "input-tenure")
    assert "no distribution plot" in section and section.count("<svg ") == 1  # the score over time remains


def test_an_output_named_like_an_input_reads_its_own_scores(window: Window) -> None:
    """Over time, an output that shares an input's name is scored under ``output:<name>``."""
    plan_in = next(f for f in window.result.features if f.column == "plan")
    chunks = tuple(
        c.model_copy(update={"scores": {"output:plan": 0.05}, "drift_share": None, "metrics": {}})
        for c in window.result.over_time
    )
    result = window.result.model_copy(
        update={"features": (plan_in,), "predictions": (_categorical("plan", 0.05, role="output"),),
                "over_time": chunks, "multivariate": None}
    )  # fmt: skip
    outputs = window.outputs.assign(plan=window.inputs["plan"].to_numpy())
    page = render_html(result, window.profile, window.inputs, outputs)
    assert _section(page, "input-plan").count("<svg ") == 1  # its distribution; no score over time
    assert _section(page, "output-plan").count("<svg ") == 2  # its distribution and its scores
    assert "No reference frequencies" in _section(page, "output-plan")  # the profile has no output "plan"


def test_dataset_drift_skipped_is_inconclusive(window: Window) -> None:
    dataset = DatasetDrift(
        share=0.0, drifted_columns=0, columns=0, drift=False, skipped="no column could be tested"
    )
    result = window.result.model_copy(
        update={"dataset": dataset, "features": (), "predictions": (), "over_time": (), "multivariate": None}
    )
    page = render_html(result, window.profile, window.inputs, window.outputs)
    assert "No dataset drift verdict: no column could be tested." in page
    assert 'class="headline inconclusive"' in page and "<svg" not in page


def test_json_round_trips(window: Window) -> None:
    text = render_json(window.result)
    assert text.startswith("{\n  ")
    assert MonitorResult.model_validate_json(text) == window.result


def test_without_matplotlib_the_error_says_what_to_install(
    window: Window, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(Unavailable, match=r"pip install 'liveml\[reports\]'"):
        render_html(window.result, window.profile, window.inputs, window.outputs)
    assert render_json(window.result)  # the JSON form needs no plotting
