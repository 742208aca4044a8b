"""The reference profile: statistics cross-checked against numpy, edge cases, JSON shape and size."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from liveml.errors import Invalid
from liveml.registry.profile import (
    QUANTILE_PROBS,
    TOP_CATEGORIES,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_profile,
    category_labels,
)


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity (which are not JSON)."""

    def refuse(constant: str) -> None:
        raise ValueError(f"profile JSON holds {constant}")

    return json.loads(text, parse_constant=refuse)


def numeric(profile: ReferenceProfile, name: str) -> NumericProfile:
    col = profile.columns[name]
    assert isinstance(col, NumericProfile)
    return col


def categorical(profile: ReferenceProfile, name: str) -> CategoricalProfile:
    col = profile.columns[name]
    assert isinstance(col, CategoricalProfile)
    return col


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    n = 10_000
    income = rng.lognormal(10, 1, n)
    income[rng.choice(n, 250, replace=False)] = np.nan
    return pd.DataFrame(
        {
            "income": income,
            "age": rng.integers(18, 91, n),
            "plan": rng.choice(["pro", "basic", "free"], n, p=[0.5, 0.4, 0.1]),
            "active": rng.random(n) < 0.7,
        }
    )


def test_numeric_statistics_match_numpy(data: pd.DataFrame) -> None:
    col = numeric(build_profile(data), "income")
    values = data["income"].dropna().to_numpy()
    assert (col.kind, col.value_type) == ("numeric", "number")
    assert (col.count, col.missing, col.missing_share) == (len(values), 250, 0.025)
    assert col.mean == pytest.approx(values.mean(), rel=1e-12)
    assert col.std == pytest.approx(values.std(), rel=1e-12)
    assert (col.min, col.max) == (values.min(), values.max())
    assert col.distinct == len(np.unique(values))
    assert col.value_counts is None  # only for low-cardinality columns
    # 101 quantiles, kept to 6 significant digits
    assert col.quantiles is not None and len(col.quantiles) == len(QUANTILE_PROBS) == 101
    np.testing.assert_allclose(col.quantiles, np.quantile(values, QUANTILE_PROBS), rtol=1e-5)
    assert col.quantiles[0] == pytest.approx(values.min(), rel=1e-5)
    # histogram: 20 equal-width bins over [min, max], counts exactly as np.histogram gives on the stored edges
    assert col.histogram is not None
    edges = np.asarray(col.histogram.edges)
    assert len(edges) == 21 and (edges[0], edges[-1]) == (values.min(), values.max())
    np.testing.assert_allclose(np.diff(edges), (values.max() - values.min()) / 20, rtol=1e-4)
    assert list(col.histogram.counts) == np.histogram(values, bins=edges)[0].tolist()
    assert sum(col.histogram.counts) == len(values)


def test_quantile_cdf_approximates_the_empirical_cdf(data: pd.DataFrame) -> None:
    col = numeric(build_profile(data), "income")
    values = np.sort(data["income"].dropna().to_numpy())
    probes = np.quantile(values, [0.005, 0.1, 0.37, 0.5, 0.9, 0.995])
    empirical = np.searchsorted(values, probes, side="right") / len(values)
    np.testing.assert_allclose(col.cdf(probes), empirical, atol=0.01)
    assert col.cdf([values.min() - 1, values.max() + 1]).tolist() == [0.0, 1.0]


def test_sample_is_deterministic_drawn_from_the_data_and_independent_of_row_order(data: pd.DataFrame) -> None:
    col = numeric(build_profile(data), "income")
    assert len(col.sample) == 200 and list(col.sample) == sorted(col.sample)
    values = data["income"].dropna().to_numpy()
    nearest = values[np.abs(values[None, :] - np.asarray(col.sample)[:, None]).argmin(axis=1)]
    np.testing.assert_allclose(col.sample, nearest, rtol=1e-5)  # real values, to 6 significant digits
    assert numeric(build_profile(data), "income").sample == col.sample
    shuffled = data.sample(frac=1, random_state=1)
    assert numeric(build_profile(shuffled), "income").sample == col.sample
    assert numeric(build_profile(data, seed=1), "income").sample != col.sample
    assert numeric(build_profile(data, sample_size=10), "income").sample.__len__() == 10
    assert (
        numeric(build_profile(data.head(50)), "income").sample.__len__()
        == data["income"].head(50).notna().sum()
    )


def test_low_cardinality_integers_stay_numeric_with_exact_value_counts() -> None:
    frame = pd.DataFrame({"children": [0, 1, 1, 2, 2, 2, 3, 0, 0, 0]})
    col = numeric(build_profile(frame), "children")
    assert (col.value_type, col.distinct, col.zeros) == ("integer", 4, 4)
    assert col.value_counts is not None
    assert [(v.value, v.rows) for v in col.value_counts] == [(0, 4), (1, 2), (2, 3), (3, 1)]
    assert col.histogram is not None and len(col.histogram.counts) == 4  # fewer bins for few values
    assert sum(col.histogram.counts) == 10


def test_categorical_top_categories_and_other() -> None:
    # category c000 appears 200 times, c001 199 times, ... c149 51 times; c100 and c099 tie with c098 at 102
    counts = {f"c{i:03d}": 200 - i for i in range(150)}
    counts["c099"] = counts["c100"] = 102
    values = [name for name, k in counts.items() for _ in range(k)]
    frame = pd.DataFrame({"city": pd.Series(values).sample(frac=1, random_state=0).tolist() + [None] * 5})
    col = categorical(build_profile(frame), "city")
    assert (col.kind, col.value_type) == ("categorical", "string")
    assert (col.count, col.missing, col.unique) == (len(values), 5, 150)
    assert len(col.frequencies) == TOP_CATEGORIES
    assert col.frequencies[0] == ("c000", 200)
    assert [f.value for f in col.frequencies[97:]] == ["c097", "c098", "c099"]  # ties broken by label
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert [tuple(f) for f in col.frequencies] == expected[:TOP_CATEGORIES]
    assert col.other == sum(k for _, k in expected[TOP_CATEGORIES:])
    assert sum(f.rows for f in col.frequencies) + col.other == col.count


def test_categorical_from_category_dtype_and_long_labels() -> None:
    frame = pd.DataFrame(
        {
            "tier": pd.Categorical(["gold", "silver", None, "gold"]),
            "note": ["x" * 300, "x" * 300 + "y", "short", None],
        }
    )
    profile = build_profile(frame)
    assert categorical(profile, "tier").frequencies == (("gold", 2), ("silver", 1))
    note = categorical(profile, "note")
    long = "x" * 63 + "…"
    assert note.frequencies == ((long, 2), ("short", 1))  # cut to 64 characters, counted together
    assert category_labels(pd.Series(["x" * 500])).tolist() == [long]


def test_booleans_are_categorical_true_false() -> None:
    frame = pd.DataFrame(
        {
            "plain": [True, False, True, True],
            "nullable": pd.array([True, None, False, True], dtype="boolean"),
            "objects": [True, None, True, False],
        }
    )
    profile = build_profile(frame)
    assert categorical(profile, "plain").frequencies == (("true", 3), ("false", 1))
    for name in ("nullable", "objects"):
        col = categorical(profile, name)
        assert (col.value_type, col.missing, col.frequencies) == ("boolean", 1, (("true", 2), ("false", 1)))
    assert profile.summary()[0].kind == "boolean"


def test_datetimes_are_numeric_epoch_seconds() -> None:
    stamps = pd.to_datetime(pd.Series(["2024-01-01", "2024-01-02", None, "2024-01-04"]))
    frame = pd.DataFrame({"day": stamps, "local": stamps.dt.tz_localize("Europe/Paris")})
    profile = build_profile(frame)
    day = numeric(profile, "day")
    assert (day.kind, day.value_type, day.count, day.missing) == ("numeric", "datetime", 3, 1)
    assert day.min == pd.Timestamp("2024-01-01").timestamp() == 1704067200.0
    assert day.max == pd.Timestamp("2024-01-04").timestamp()
    assert day.quantiles is not None and day.quantiles[50] == pd.Timestamp("2024-01-02").timestamp()
    assert numeric(profile, "local").min == 1704067200.0 - 3600  # in UTC
    row = profile.summary()[0]
    assert (row.kind, row.text) == ("datetime", "median 2024-01-02, range 2024-01-01..2024-01-04")


def test_missing_values_in_every_kind() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, None, 3.0, np.nan],
            "n": pd.array([1, None, 3, None], dtype="Int64"),
            "s": ["a", None, "b", np.nan],
        }
    )
    profile = build_profile(frame)
    for name in ("x", "n", "s"):
        col = profile.columns[name]
        assert (col.count, col.missing, col.missing_share) == (2, 2, 0.5)
    assert numeric(profile, "n").value_type == "integer"
    assert numeric(profile, "n").mean == 2.0


def test_all_missing_columns_give_empty_profiles_without_nan() -> None:
    frame = pd.DataFrame({"x": [np.nan] * 3, "s": pd.Series([None] * 3, dtype="str"), "o": [None] * 3})
    profile = build_profile(frame)
    x = numeric(profile, "x")
    assert (x.count, x.missing, x.missing_share) == (0, 3, 1.0)
    assert (x.mean, x.std, x.min, x.max, x.quantiles, x.histogram) == (None, None, None, None, None, None)
    assert x.sample == ()
    assert np.isnan(x.cdf([1.0])).all()
    for name in ("s", "o"):
        col = categorical(profile, name)
        assert (col.count, col.unique, col.frequencies, col.other) == (0, 0, (), 0)
    assert {r.text for r in profile.summary()} == {"all missing"}
    strict_json(profile.to_json())


def test_constant_column() -> None:
    col = numeric(build_profile(pd.DataFrame({"c": [7.5] * 1000})), "c")
    assert (col.mean, col.std, col.min, col.max, col.distinct) == (7.5, 0.0, 7.5, 7.5, 1)
    assert col.quantiles == (7.5,) * 101
    assert col.histogram is not None and col.histogram.model_dump() == {
        "edges": (7.5, 7.5),
        "counts": (1000,),
    }
    assert col.cdf([7.4, 7.5, 7.6]).tolist() == [0.0, 1.0, 1.0]


def test_infinities_are_counted_apart_and_never_reach_the_json() -> None:
    frame = pd.DataFrame({"x": [1.0, np.inf, -np.inf, np.inf, 2.0, np.nan], "all_inf": [np.inf] * 6})
    profile = build_profile(frame)
    x = numeric(profile, "x")
    assert (x.count, x.missing, x.pos_inf, x.neg_inf, x.finite) == (5, 1, 2, 1, 2)
    assert (x.mean, x.min, x.max) == (1.5, 1.0, 2.0)
    assert x.histogram is not None and sum(x.histogram.counts) == 2
    all_inf = numeric(profile, "all_inf")
    assert (all_inf.count, all_inf.pos_inf, all_inf.mean, all_inf.quantiles) == (6, 6, None, None)
    assert "3 infinite" in profile.summary()[0].text
    strict_json(profile.to_json())


def test_extreme_magnitudes_do_not_overflow() -> None:
    frame = pd.DataFrame({"huge": [1e308, -1e308, 1.7e308, 0.0], "tiny": [1e-300, 2e-300, 3e-300, 0.0]})
    profile = build_profile(frame)
    huge, tiny = numeric(profile, "huge"), numeric(profile, "tiny")
    assert huge.mean == pytest.approx(np.mean(np.asarray(frame["huge"]) / 1e308) * 1e308)
    assert huge.histogram is not None and sum(huge.histogram.counts) == 4
    assert tiny.std == pytest.approx(np.std(np.asarray(frame["tiny"]) * 1e300) / 1e300)
    strict_json(profile.to_json())


def test_outputs_are_profiled_with_their_role(data: pd.DataFrame) -> None:
    rng = np.random.default_rng(3)
    proba = rng.random(len(data))
    outputs = pd.DataFrame({"prediction": (proba > 0.5).astype(int), "proba_1": proba})
    profile = build_profile(data, outputs)
    assert list(profile.columns) == ["income", "age", "plan", "active"]  # input order kept
    assert list(profile.outputs) == ["prediction", "proba_1"]
    prediction = profile.outputs["prediction"]
    assert isinstance(prediction, NumericProfile) and prediction.distinct == 2
    assert [(r.column, r.role) for r in profile.summary()][-2:] == [
        ("prediction", "output"),
        ("proba_1", "output"),
    ]
    assert build_profile(data).outputs == {}
    with pytest.raises(Invalid, match="output rows"):
        build_profile(data, outputs.head(10))


def test_summary_texts(data: pd.DataFrame) -> None:
    rows = {r.column: r for r in build_profile(data).summary()}
    assert rows["plan"].text.startswith("3 categories: pro 5")
    assert rows["plan"].kind == "categorical"
    assert rows["age"].text.startswith("mean ") and "range 18..90" in rows["age"].text
    assert rows["income"].missing_share == 0.025


def test_json_round_trip_is_lossless_and_valid_json(data: pd.DataFrame) -> None:
    outputs = pd.DataFrame({"prediction": np.arange(len(data)) % 2})
    profile = build_profile(data, outputs)
    text = profile.to_json()
    document = strict_json(text)
    assert document["schema_version"] == 1 and document["rows"] == len(data)
    pro = int((data["plan"] == "pro").sum())
    assert document["columns"]["plan"]["frequencies"][0] == ["pro", pro]  # compact [label, rows] pairs
    assert ": " not in text and "\n" not in text
    again = ReferenceProfile.from_json(text)
    assert again == profile
    assert again.to_json() == text


def test_unknown_fields_survive_a_round_trip() -> None:
    """A profile written by a newer liveml, with fields this one does not know, still loads and keeps them."""
    document = strict_json(build_profile(pd.DataFrame({"x": [1.0, 2.0], "s": ["a", "b"]})).to_json())
    document["drift"] = {"method": "psi", "threshold": 0.2}
    document["columns"]["x"]["skew"] = 0.0
    document["columns"]["s"]["entropy"] = 1.0
    profile = ReferenceProfile.from_json(json.dumps(document))
    assert profile.model_extra == {"drift": {"method": "psi", "threshold": 0.2}}
    assert strict_json(profile.to_json()) == document


def test_minimal_old_profile_loads() -> None:
    text = (
        '{"rows": 3, "columns": {"x": {"kind": "numeric", "count": 3, "missing": 0, "missing_share": 0.0}}}'
    )
    profile = ReferenceProfile.from_json(text)
    assert profile.schema_version == 1 and profile.outputs == {} and profile.created_at is None
    assert numeric(profile, "x").quantiles is None


def test_size_stays_small_for_a_million_rows() -> None:
    rng = np.random.default_rng(7)
    n = 1_000_000
    columns: dict[str, Any] = {}
    for i in range(8):
        columns[f"num{i}"] = rng.normal(i * 10, i + 1, n)
    columns["count"] = rng.poisson(3, n)
    columns["amount"] = rng.lognormal(3, 2, n)
    columns["when"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 10**8, n), unit="s")
    columns["flag"] = rng.random(n) < 0.2
    for i, k in enumerate([3, 50, 1_000, 20_000]):
        columns[f"cat{i}"] = rng.choice([f"value_{j}" for j in range(k)], n)
    columns["user_id"] = np.char.add("user-", np.arange(n).astype(str))
    countries = np.array(["fr", "de", "us", None], dtype=object)
    columns["country"] = pd.Series(rng.choice(countries, n), dtype="str")
    columns["zero"] = np.zeros(n)
    columns["sparse"] = np.where(rng.random(n) < 0.9, np.nan, rng.random(n))
    frame = pd.DataFrame(columns)
    assert frame.shape == (n, 20)
    profile = build_profile(frame)
    size = len(profile.to_json().encode())
    assert size < 64 * 1024, f"profile of 1,000,000 x 20 is {size} bytes"
    assert categorical(profile, "user_id").unique == n
    assert numeric(profile, "sparse").missing_share == pytest.approx(0.9, abs=0.01)


@pytest.mark.parametrize("frame", [pd.DataFrame(), pd.DataFrame({"x": []}), pd.DataFrame({"x": [], "s": []})])
def test_empty_reference_is_invalid(frame: pd.DataFrame) -> None:
    with pytest.raises(Invalid, match="reference data has no rows"):
        build_profile(frame)


def test_reference_without_columns_is_invalid() -> None:
    with pytest.raises(Invalid, match="no columns"):
        build_profile(pd.DataFrame(index=range(3)))


def test_duplicate_column_names_are_invalid() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["x", "x"])
    with pytest.raises(Invalid, match="more than once"):
        build_profile(frame)
