"""Drift detection: every score cross-checked against an independent scipy computation on the raw
reference rows, test selection, thresholds, min_rows, overrides, config errors, over-time slices and
multivariate (PCA reconstruction) drift. Seeded data throughout."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from liveml.errors import Invalid
from liveml.monitoring.config import DEFAULT_THRESHOLDS, DriftConfig
from liveml.monitoring.drift import detect, ks_p_value, multivariate, over_time, wasserstein_normed
from liveml.monitoring.results import FeatureDrift
from liveml.registry.profile import NumericProfile, ReferenceProfile, build_profile


def run(
    ref: pd.DataFrame, cur: pd.DataFrame, config: DriftConfig | None = None, **kw: Any
) -> dict[str, FeatureDrift]:
    profile = build_profile(ref, kw.get("ref_out"))
    features, _, predictions, _ = detect(
        profile, cur, kw.get("cur_out", pd.DataFrame(index=cur.index)), config
    )
    return {f.column: f for f in (*features, *predictions)}


def one(ref: Any, cur: Any, config: DriftConfig | None = None) -> FeatureDrift:
    return run(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}), config)["x"]


def score(result: FeatureDrift) -> float:
    assert result.score is not None, result.skipped
    return result.score


def numeric_profile(values: np.ndarray) -> NumericProfile:
    col = build_profile(pd.DataFrame({"x": values})).columns["x"]
    assert isinstance(col, NumericProfile)
    return col


def bins(ref: np.ndarray, cur: np.ndarray, edges: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Counts in the reference histogram's bins plus one below its minimum and one above its maximum."""
    inner = np.asarray(edges)
    out = []
    for data in (ref, cur):
        below, above = np.sum(data < inner[0]), np.sum(data > inner[-1])
        out.append(np.r_[below, np.histogram(data, bins=inner)[0], above].astype(float))
    return out[0], out[1]


def psi_formula(r: np.ndarray, c: np.ndarray) -> float:
    """PSI written out, empty buckets filled as Evidently's get_binned_data(feel_zeroes=True)."""
    shares = []
    for counts in (r, c):
        p = counts / counts.sum()
        smallest = p[p > 0].min()
        p = np.where(p == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001, p)
        shares.append(p)
    ref, cur = shares
    return float(np.sum((ref - cur) * np.log(ref / cur)))


@pytest.fixture
def rng() -> np.random.Generator:
    """Each test draws from its own seeded generator: results do not depend on which tests run."""
    return np.random.default_rng(20260101)


# --- Kolmogorov-Smirnov ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_ks_on_a_reference_the_sample_holds_whole_is_scipy_ks_2samp(
    shift: float, rng: np.random.Generator
) -> None:
    ref, cur = rng.normal(0, 1, 150), rng.normal(shift, 1, 400)
    profile = numeric_profile(ref)
    assert len(profile.sample) == 150  # every reference value is in the profile
    result = one(ref, cur)
    assert result.test == "ks" and result.score_is_p_value
    assert result.score == pytest.approx(stats.ks_2samp(np.asarray(profile.sample), cur).pvalue, rel=1e-12)
    assert result.score == pytest.approx(
        stats.ks_2samp(ref, cur).pvalue, rel=1e-3
    )  # sample rounded to 6 digits
    assert result.drift is (shift > 0)


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_ks_on_a_larger_reference_is_the_two_sample_test_of_the_profile_cdf(
    shift: float, rng: np.random.Generator
) -> None:
    ref, cur = rng.normal(0, 1, 900), rng.normal(shift, 1, 5000)
    profile = numeric_profile(ref)
    result = one(ref, cur)
    assert result.test == "ks" and (result.reference_rows, result.current_rows) == (900, 5000)
    d = stats.kstest(cur, profile.cdf).statistic  # one-sample statistic against the profile's CDF
    assert result.score == pytest.approx(stats.kstwo.sf(d, round(900 * 5000 / 5900)), rel=1e-9)
    raw = stats.ks_2samp(ref, cur)  # what the raw reference rows give
    assert abs(d - raw.statistic) < 0.011
    assert (score(result) < 0.05) == bool(raw.pvalue < 0.05) == result.drift == (shift > 0)
    assert ks_p_value(profile, np.sort(cur)) == result.score


def test_ks_p_value_accounts_for_the_reference_being_a_sample_too(rng: np.random.Generator) -> None:
    """A million-row window from the reference's own distribution: a one-sample test against the 900-row
    reference's CDF would flag its sampling noise; the two-sample p-value does not."""
    ref, cur = rng.normal(0, 1, 900), rng.normal(0, 1, 1_000_000)
    profile = numeric_profile(ref)
    assert stats.kstest(cur, profile.cdf).pvalue < 1e-6
    assert one(ref, cur).drift is False


# --- Wasserstein ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("normal", lambda g, n, s: g.normal(s, 1, n)),
        ("lognormal", lambda g, n, s: g.lognormal(s, 1.5, n)),  # heavy right tail
        ("exponential", lambda g, n, s: g.exponential(1 + s, n)),
        ("bimodal", lambda g, n, s: np.r_[g.normal(0, 1, n // 2), g.normal(50 + 30 * s, 1, n - n // 2)]),
    ],
)
@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_wasserstein_matches_scipy_on_the_raw_reference(
    name: str, make: Any, shift: float, rng: np.random.Generator
) -> None:
    ref, cur = make(rng, 20_000, 0.0), make(rng, 5_000, shift)
    result = one(ref, cur)
    truth = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert result.test == "wasserstein" and not result.score_is_p_value and result.threshold == 0.1
    assert result.score == pytest.approx(truth, abs=0.007), name
    assert result.drift == bool(score(result) >= 0.1)
    if abs(truth - 0.1) > 0.007:  # clear of the threshold: the raw rows decide the same
        assert result.drift == bool(truth >= 0.1)
    profile = numeric_profile(ref)
    assert wasserstein_normed(profile, np.sort(cur)) == result.score


def test_wasserstein_of_a_heavy_tail_is_not_fooled_by_the_last_percentile(rng: np.random.Generator) -> None:
    """Taking the 101 quantiles as 101 equally likely points puts 1% of the mass at the maximum: on a
    lognormal that alone reads as drift. The profile's histogram edges keep the tail where it is."""
    ref, cur = rng.lognormal(0, 1.5, 50_000), rng.lognormal(0, 1.5, 50_000)
    profile = numeric_profile(ref)
    naive = stats.wasserstein_distance(np.asarray(profile.quantiles), cur) / np.std(ref)
    assert naive > 0.15  # would read as drift
    assert score(one(ref, cur)) < 0.03 and one(ref, cur).drift is False


# --- Categories: chi-square, Z-test, Jensen-Shannon, PSI ------------------------------------------------


def category_counts(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(ref) | set(cur))
    r, c = pd.Series(ref).value_counts(), pd.Series(cur).value_counts()
    return r.reindex(keys, fill_value=0).to_numpy(float), c.reindex(keys, fill_value=0).to_numpy(float)


@pytest.mark.parametrize("probs", [[0.5, 0.3, 0.2], [0.35, 0.35, 0.3]])
def test_chisquare_is_scipy_chi2_contingency_on_the_counts(
    probs: list[float], rng: np.random.Generator
) -> None:
    ref = rng.choice(["a", "b", "c"], 800, p=[0.5, 0.3, 0.2])
    cur = rng.choice(["a", "b", "c"], 600, p=probs)
    result = one(ref, cur)
    expected = stats.chi2_contingency(np.vstack(category_counts(ref, cur)), correction=False).pvalue
    assert result.test == "chisquare" and result.kind == "categorical"
    assert result.score == pytest.approx(expected, rel=1e-9)
    assert result.drift is (probs[0] != 0.5)


def test_chisquare_compares_two_samples_not_a_sample_with_exact_frequencies(rng: np.random.Generator) -> None:
    """Goodness of fit (scipy.stats.chisquare, Evidently's form) takes the 500 reference rows' shares as
    the truth and, with 200,000 window rows from the same distribution, calls their noise drift."""
    ref = rng.choice(["a", "b", "c"], 500, p=[0.5, 0.3, 0.2])
    cur = rng.choice(["a", "b", "c"], 200_000, p=[0.5, 0.3, 0.2])
    r, c = category_counts(ref, cur)
    assert stats.chisquare(c, r / r.sum() * c.sum()).pvalue < 0.05
    result = one(ref, cur)
    assert score(result) > 0.05 and result.drift is False


@pytest.mark.parametrize("share", [0.3, 0.4])
def test_ztest_for_two_values_is_the_pooled_two_proportion_test(
    share: float, rng: np.random.Generator
) -> None:
    ref, cur = rng.random(900) < 0.3, rng.random(700) < share
    result = one(ref, cur)
    p1, p2 = ref.mean(), cur.mean()
    pooled = (ref.sum() + cur.sum()) / (900 + 700)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 900 + 1 / 700))
    assert result.test == "ztest"
    assert result.score == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    table = np.vstack(category_counts(ref, cur))
    assert result.score == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue, rel=1e-9)
    assert result.drift is (share > 0.3)


@pytest.mark.parametrize("probs", [[0.5, 0.3, 0.2], [0.3, 0.3, 0.4]])
def test_jensen_shannon_on_categories_is_scipy_jensenshannon(
    probs: list[float], rng: np.random.Generator
) -> None:
    ref = rng.choice(["a", "b", "c"], 5000, p=[0.5, 0.3, 0.2])
    cur = rng.choice(["a", "b", "c"], 3000, p=probs)
    result = one(ref, cur)
    r, c = category_counts(ref, cur)
    assert result.test == "jensenshannon" and result.threshold == 0.1
    assert result.score == pytest.approx(jensenshannon(r / r.sum(), c / c.sum()), rel=1e-9)  # natural log
    assert result.drift is (probs[0] != 0.5)


def test_jensen_shannon_and_psi_on_numbers_use_the_reference_histogram_bins(rng: np.random.Generator) -> None:
    ref = rng.normal(0, 1, 5000)
    cur = np.r_[rng.normal(0.4, 1.2, 3000), 9.0, -9.0]  # two values beyond the reference's range
    profile = numeric_profile(ref)
    assert profile.histogram is not None
    r, c = bins(ref, cur, profile.histogram.edges)
    assert r.sum() == 5000 and c.sum() == len(cur) and r[0] == r[-1] == 0 and c[0] >= 1 and c[-1] >= 1
    js = one(ref, cur, DriftConfig(tests={"x": "jensenshannon"}))
    assert js.score == pytest.approx(jensenshannon(r / r.sum(), c / c.sum()), rel=1e-9)
    psi = one(ref, cur, DriftConfig(tests={"x": "psi"}))
    assert psi.test == "psi" and psi.threshold == DEFAULT_THRESHOLDS["psi"] == 0.1
    assert psi.score == pytest.approx(psi_formula(r, c), rel=1e-9)
    assert js.drift and psi.drift


def test_psi_on_categories_fills_empty_buckets_and_flags_a_new_category(rng: np.random.Generator) -> None:
    ref = rng.choice(["a", "b", "c"], 3000, p=[0.6, 0.3, 0.1])
    cur = rng.choice(["a", "b", "c", "d"], 3000, p=[0.55, 0.3, 0.1, 0.05])
    result = one(ref, cur, DriftConfig(default_categorical_test="psi"))
    assert result.score == pytest.approx(psi_formula(*category_counts(ref, cur)), rel=1e-9)
    assert result.drift
    same = one(
        ref, rng.choice(["a", "b", "c"], 3000, p=[0.6, 0.3, 0.1]), DriftConfig(default_categorical_test="psi")
    )
    assert score(same) < 0.01 and not same.drift


def test_small_integer_columns_are_tested_per_value(rng: np.random.Generator) -> None:
    ref, cur = rng.integers(0, 4, 5000), rng.choice(4, 3000, p=[0.1, 0.2, 0.3, 0.4])
    result = one(ref, cur)
    r, c = category_counts(ref, cur)
    assert (result.kind, result.test) == ("numeric", "jensenshannon")
    assert result.score == pytest.approx(jensenshannon(r / r.sum(), c / c.sum()), rel=1e-9)
    assert result.drift


# --- Which test, thresholds, overrides ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "test"),
    [
        (lambda g: (g.normal(size=1000), g.normal(size=300)), "ks"),  # 1000 reference values: still K-S
        (lambda g: (g.normal(size=1001), g.normal(size=300)), "wasserstein"),
        (lambda g: (g.integers(0, 3, 800), g.integers(0, 3, 300)), "chisquare"),
        (lambda g: (g.integers(0, 2, 800), g.integers(0, 2, 300)), "ztest"),
        (lambda g: (g.integers(0, 5, 5000), g.integers(0, 5, 300)), "jensenshannon"),
        (lambda g: (g.integers(0, 4, 800), g.integers(2, 6, 300)), "ks"),  # 6 distinct in reference + window
        (lambda g: (g.choice(["a", "b", "c"], 800), g.choice(["a", "b", "c"], 300)), "chisquare"),
        (lambda g: (g.random(800) < 0.5, g.random(300) < 0.5), "ztest"),
        (lambda g: (g.choice(["a", "b"], 5000), g.choice(["a", "b"], 300)), "jensenshannon"),
    ],
)
def test_the_automatic_test_follows_reference_size_type_and_distinct_values(
    make: Any, test: str, rng: np.random.Generator
) -> None:
    ref, cur = make(rng)
    result = one(ref, cur)
    assert result.test == test and result.skipped is None
    assert result.threshold == DEFAULT_THRESHOLDS[result.test]
    assert result.score_is_p_value is (test in ("ks", "chisquare", "ztest"))


def frames(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "num": rng.normal(shift, 1, n),
            "small": rng.choice(3, n, p=[0.5 - shift / 2, 0.3, 0.2 + shift / 2]),
            "plan": rng.choice(["free", "pro", "team"], n, p=[0.6 - shift / 2, 0.3, 0.1 + shift / 2]),
            "flag": rng.random(n) < 0.2 + shift / 2,
        }
    )


@pytest.mark.parametrize("reference_rows", [600, 8000])
def test_same_distribution_stays_under_the_thresholds_and_a_shift_drifts(
    reference_rows: int, rng: np.random.Generator
) -> None:
    profile = build_profile(frames(rng, reference_rows))
    features, dataset, _, _ = detect(profile, frames(rng, 3000), pd.DataFrame(index=range(3000)))
    assert [f.drift for f in features] == [False] * 4 and not dataset.drift and dataset.share == 0
    features, dataset, _, _ = detect(profile, frames(rng, 3000, shift=0.4), pd.DataFrame(index=range(3000)))
    assert [f.drift for f in features] == [True] * 4
    assert (dataset.share, dataset.drifted_columns, dataset.columns, dataset.drift) == (1.0, 4, 4, True)


def test_fewer_rows_than_min_rows_declare_nothing(rng: np.random.Generator) -> None:
    ref_out = pd.DataFrame({"prediction": rng.integers(0, 2, 5000), "proba_1": rng.random(5000)})
    profile = build_profile(frames(rng, 5000), ref_out)
    cur = frames(rng, 60, shift=1.0)
    out = pd.DataFrame({"prediction": np.ones(60, int), "proba_1": np.ones(60)})
    features, dataset, predictions, multi = detect(profile, cur, out, DriftConfig())
    for f in (*features, *predictions):
        assert (f.drift, f.score, f.skipped) == (False, None, "60 rows < min_rows 100")
    assert (dataset.drift, dataset.columns, dataset.skipped) == (False, 0, "60 rows < min_rows 100")
    assert multi is not None and multi.drift is False and multi.skipped == "60 rows < min_rows 100"
    features, dataset, _, _ = detect(profile, cur, out, DriftConfig(min_rows=50))
    assert dataset.drift and all(f.skipped is None for f in features)


def test_per_feature_and_per_model_overrides(rng: np.random.Generator) -> None:
    profile = build_profile(frames(rng, 5000))
    cur = frames(rng, 2000, shift=0.1)
    config = DriftConfig(
        tests={"num": "psi", "plan": "chisquare"},
        thresholds={"num": 0.5, "small": 0.001},
        stattest_threshold={"jensenshannon": 0.2},
        drift_share=0.25,
    )
    features, dataset, _, _ = detect(profile, cur, pd.DataFrame(index=cur.index), config)
    by = {f.column: f for f in features}
    assert (by["num"].test, by["num"].threshold) == ("psi", 0.5)
    assert (by["plan"].test, by["plan"].threshold, by["plan"].score_is_p_value) == ("chisquare", 0.05, True)
    assert (by["small"].test, by["small"].threshold, by["small"].drift) == ("jensenshannon", 0.001, True)
    assert (by["flag"].test, by["flag"].threshold) == ("jensenshannon", 0.2)
    assert dataset.threshold == 0.25 and dataset.drift is (dataset.share >= 0.25)
    assert config.stattest_threshold["psi"] == 0.1  # the other defaults stay
    numeric = DriftConfig(default_numeric_test="psi", default_categorical_test="psi")
    features, _, _, _ = detect(profile, cur, pd.DataFrame(index=cur.index), numeric)
    assert {f.test for f in features} == {"psi"}


def test_a_test_that_does_not_fit_the_column_is_skipped_with_the_reason(rng: np.random.Generator) -> None:
    result = run(frames(rng, 3000), frames(rng, 500), DriftConfig(tests={"plan": "ks", "num": "ztest"}))
    assert result["plan"].skipped == "ks needs numbers; use chisquare, jensenshannon or psi"
    assert result["num"].skipped is not None and result["num"].skipped.startswith("ztest compares two values")
    assert not result["plan"].drift and result["plan"].score is None


def test_columns_missing_on_either_side_are_skipped_and_missing_values_ignored(
    rng: np.random.Generator,
) -> None:
    ref, cur = frames(rng, 3000), frames(rng, 800)
    cur["extra"] = 1.0
    cur = cur.drop(columns=["flag"])
    result = run(ref, cur)
    assert result["extra"].skipped == "not in the reference profile of this version (input column)"
    assert result["flag"].skipped == "not in the window"
    holes = cur.copy()
    holes.loc[holes.index[:300], "num"] = np.nan
    holes.loc[holes.index[:300], "plan"] = None
    with_holes = run(ref, holes)
    without = run(ref, cur.iloc[300:])
    for column in ("num", "plan"):
        assert with_holes[column].current_rows == 500
        assert with_holes[column].score == pytest.approx(without[column].score, rel=1e-12)


def test_prediction_drift_treats_a_classifiers_prediction_as_categories(rng: np.random.Generator) -> None:
    ref_p = rng.beta(2, 3, 5000)
    ref_out = pd.DataFrame({"prediction": (ref_p > 0.5).astype(int), "proba_1": ref_p})
    cur_p = rng.beta(3, 2, 2000)  # the model now says "1" much more often
    cur_out = pd.DataFrame({"prediction": (cur_p > 0.5).astype(int), "proba_1": cur_p})
    result = run(frames(rng, 5000), frames(rng, 2000), ref_out=ref_out, cur_out=cur_out)
    assert (result["prediction"].role, result["prediction"].kind, result["prediction"].test) == (
        "output",
        "categorical",
        "jensenshannon",
    )
    assert result["prediction"].drift and result["proba_1"].test == "wasserstein" and result["proba_1"].drift
    regressor = run(frames(rng, 5000), frames(rng, 2000), ref_out=pd.DataFrame({"prediction": ref_p * 100}),
                    cur_out=pd.DataFrame({"prediction": rng.beta(2, 3, 2000) * 100}))  # fmt: skip
    assert (regressor["prediction"].kind, regressor["prediction"].test) == ("numeric", "wasserstein")
    assert not regressor["prediction"].drift


def test_datetime_columns_drift_in_seconds(rng: np.random.Generator) -> None:
    start = pd.Timestamp("2025-01-01", tz="UTC")
    ref = start + pd.to_timedelta(rng.integers(0, 86400 * 365, 3000), unit="s")
    same = start + pd.to_timedelta(rng.integers(0, 86400 * 365, 1000), unit="s")
    later = same + pd.Timedelta(days=120)
    assert not one(pd.Series(ref), pd.Series(same)).drift and one(pd.Series(ref), pd.Series(later)).drift


# --- Config errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tests": {"age": "anova"}}, "tests.age: unknown test 'anova'"),
        ({"thresholds": {"age": -0.1}}, "thresholds.age"),
        ({"tests": {"age": "ks"}, "thresholds": {"age": 1.5}}, "ks gives a p-value"),
        ({"stattest_threshold": {"psi": 0}}, "stattest_threshold"),
        ({"stattest_threshold": {"hellinger": 0.1}}, "unknown test 'hellinger'"),
        ({"stattest_threshold": {"jensenshannon": 0.9}}, "jensenshannon never exceeds"),
        ({"drift_share": 0}, "drift_share"),
        ({"drift_share": 1.5}, "drift_share"),
        ({"min_rows": 0}, "min_rows"),
        ({"time_chunks": 0}, "time_chunks"),
        ({"default_categorical_test": "wasserstein"}, "default_categorical_test"),
        ({"default_numeric_test": "ztest"}, "default_numeric_test"),
        ({"drift_shares": 0.3}, "unknown field 'drift_shares'"),
    ],
)
def test_bad_config_names_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid, match="invalid drift config") as caught:
        DriftConfig.parse(data)
    assert message in str(caught.value)


def test_config_parses_defaults_and_merges_test_thresholds() -> None:
    assert DriftConfig.parse(None) == DriftConfig()
    config = DriftConfig.parse({"stattest_threshold": {"psi": 0.2}, "min_rows": 500, "drift_share": 0.3})
    assert config.stattest_threshold == {**DEFAULT_THRESHOLDS, "psi": 0.2}
    assert (config.min_rows, config.drift_share, config.time_chunks, config.multivariate) == (
        500,
        0.3,
        10,
        True,
    )
    assert DriftConfig.parse(json.loads(config.model_dump_json())) == config
    with pytest.raises(Invalid, match="must be a mapping"):
        DriftConfig.parse([1, 2])  # type: ignore[arg-type]


# --- Over time ------------------------------------------------------------------------------------------


def test_over_time_slices_the_window_by_time(rng: np.random.Generator) -> None:
    profile = build_profile(frames(rng, 5000), pd.DataFrame({"prediction": rng.integers(0, 2, 5000)}))
    n = 4000
    cur = pd.concat([frames(rng, n // 2), frames(rng, n // 2, shift=0.5)], ignore_index=True)
    out = pd.DataFrame({"prediction": rng.integers(0, 2, n)})
    start = pd.Timestamp("2026-03-01", tz="UTC")
    at = start + pd.to_timedelta(np.arange(n), unit="min")
    at = at.where(np.arange(n) != 1000, start + pd.Timedelta(minutes=1000.5))  # unsorted is fine
    meta = pd.DataFrame(
        {"prediction_id": [f"p{i}" for i in range(n)], "version": 1, "at": at, "latency_ms": 5.0}
    )
    chunks = over_time(profile, cur, out, meta, DriftConfig(time_chunks=4))
    assert [c.rows for c in chunks] == [1000] * 4
    assert chunks[0].start == start and chunks[-1].end == start + pd.Timedelta(minutes=n - 1)
    assert [c.end for c in chunks[:-1]] == [c.start for c in chunks[1:]]
    assert [c.drift_share for c in chunks] == [0.0, 0.0, 1.0, 1.0]
    assert set(chunks[0].scores) == {"num", "small", "plan", "flag", "prediction"}
    assert chunks[0].metrics["latency_p95_ms"] == 5.0 and "multivariate" in chunks[0].metrics
    sparse = over_time(profile, cur, out, meta, DriftConfig(time_chunks=50))  # 80 rows a slice
    assert all(c.drift_share is None and c.scores == {} for c in sparse) and sum(c.rows for c in sparse) == n
    untimed = meta.assign(at=meta["at"].where(np.arange(n) != 5))  # a row without a time is left out
    assert sum(c.rows for c in over_time(profile, cur, out, untimed, DriftConfig(time_chunks=4))) == n - 1
    assert over_time(profile, cur.iloc[:0], out.iloc[:0], meta.iloc[:0]) == ()
    with pytest.raises(Invalid, match="differ in rows"):
        over_time(profile, cur, out.iloc[:10], meta)


# --- Multivariate ---------------------------------------------------------------------------------------


def correlated(rng: np.random.Generator, n: int, rho: float) -> pd.DataFrame:
    a = rng.normal(size=n)
    b = rho * a + math.sqrt(1 - rho**2) * rng.normal(size=n)
    return pd.DataFrame({"a": 10 + 2 * a, "b": -5 + 0.5 * b, "noise": rng.normal(size=n)})


def test_a_flipped_correlation_with_unchanged_marginals_is_caught(rng: np.random.Generator) -> None:
    profile = build_profile(correlated(rng, 5000, 0.9))
    assert profile.multivariate is not None and profile.multivariate.columns == ("a", "b", "noise")
    flipped = correlated(rng, 2000, -0.9)
    features, dataset, _, multi = detect(profile, flipped, pd.DataFrame(index=flipped.index))
    assert not any(f.drift for f in features) and not dataset.drift  # every column alone looks the same
    assert multi is not None and multi.drift and multi.upper is not None and multi.score is not None
    assert multi.score > multi.upper
    _, _, _, same = detect(profile, correlated(rng, 2000, 0.9), pd.DataFrame(index=range(2000)))
    assert same is not None and not same.drift and same.lower is not None and same.upper is not None
    assert same.lower <= same.score <= same.upper  # type: ignore[operator]


def test_multivariate_section_round_trips_stays_small_and_old_profiles_still_work(
    rng: np.random.Generator,
) -> None:
    data = pd.concat([correlated(rng, 3000, 0.7), pd.DataFrame({"c": rng.choice(["x", "y"], 3000)})], axis=1)
    data.loc[::7, "a"] = np.nan  # imputed with the mean
    profile = build_profile(data)
    mv = profile.multivariate
    assert mv is not None and 0.65 <= mv.explained_variance <= 1 and len(mv.components) >= 1
    assert mv.components[0] and math.isclose(sum(v * v for v in mv.components[0]), 1, rel_tol=1e-5)
    assert ReferenceProfile.from_json(profile.to_json()) == profile
    assert len(mv.model_dump_json()) < 4096
    old = ReferenceProfile.model_validate(profile.model_dump(exclude={"multivariate"}))
    skipped = multivariate(old, data)
    assert skipped.skipped is not None and "no multivariate section" in skipped.skipped and not skipped.drift
    assert build_profile(data[["a", "c"]]).multivariate is None  # one numeric column
    assert build_profile(data.head(49)).multivariate is None
    missing = multivariate(profile, data.drop(columns=["b"]))
    assert missing.skipped == "column(s) b not in the window"


def test_over_time_by_row_count_gives_equal_slices_in_time_order() -> None:
    import itertools
    from datetime import UTC, datetime, timedelta

    from liveml.monitoring.config import DriftConfig
    from liveml.monitoring.drift import over_time
    from liveml.registry.profile import build_profile

    rng = np.random.default_rng(42)
    reference = pd.DataFrame({"x": rng.normal(size=2000), "y": rng.normal(size=2000)})
    profile = build_profile(reference)
    n = 1050
    inputs = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)})
    start = datetime(2026, 11, 1, tzinfo=UTC)
    # uneven traffic: most rows in the last hour of a day
    at = [
        start + timedelta(seconds=int(s))
        for s in np.sort(np.concatenate([rng.uniform(0, 82800, 50), rng.uniform(82800, 86400, n - 50)]))
    ]
    meta = pd.DataFrame({"prediction_id": [str(i) for i in range(n)], "at": at, "latency_ms": np.ones(n)})
    chunks = over_time(
        profile, inputs, pd.DataFrame(index=range(n)), meta, DriftConfig(chunk_rows=200, min_rows=100)
    )
    assert [c.rows for c in chunks] == [200, 200, 200, 200, 250]
    assert all(c.drift_share is not None for c in chunks)
    assert all(a.end <= b.start for a, b in itertools.pairwise(chunks))
    by_time = over_time(
        profile, inputs, pd.DataFrame(index=range(n)), meta, DriftConfig(time_chunks=5, min_rows=100)
    )
    assert by_time[0].rows < 100 and by_time[0].drift_share is None  # the quiet hours: too few rows to judge
