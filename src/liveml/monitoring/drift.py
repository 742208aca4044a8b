"""Drift: a window of the prediction log against the version's reference profile. Pure computation.

Tests per column as Evidently picks them by default (``DriftConfig`` overrides them per model and per
column; docs/drift.md has the table and the sources). Reference values <= 1000: numeric columns with more
than 5 distinct values (reference and window together) get Kolmogorov-Smirnov, the others chi-square
(Z-test for two values), drift when p < 0.05; more reference values: Wasserstein distance / std_ref,
respectively Jensen-Shannon distance, drift when >= 0.1. The reference is a profile, not rows, hence:

- ks: ``scipy.stats.ks_2samp`` against the profile's sample where it holds every reference value (<= 200);
  otherwise D = sup |F_ref - F_window| with F_ref = ``profile.cdf`` (exactly what
  ``kstest(window, profile.cdf)`` computes, within about one percentile of the two-sample D) and the
  *two-sample* p-value ``kstwo.sf(D, round(n m / (n + m)))`` (scipy's asymptotic ``ks_2samp``). A
  one-sample test would take the reference as exact and flag its sampling noise in every large window.
- chisquare: homogeneity of the 2 x k table of reference and window counts (``chi2_contingency`` without
  correction), not Evidently's goodness of fit, for the same reason; ztest: the pooled two-proportion
  Z-test (the same p-value as chi-square for two values).
- wasserstein: the integral of |Q_ref(p) - Q_window(p)|, exact for Q_ref linear between the percentiles
  and the histogram edges (the edges keep heavy tails honest), / max(std_ref, 0.001) as Evidently.
- jensenshannon (scipy's, natural log as Evidently: 0..0.833) and psi (sum (r - c) ln(r / c), empty
  buckets filled as Evidently): per category; per value for numbers with <= 20 distinct values; else on
  the reference histogram's bins plus one below its minimum and one above its maximum. Window labels
  outside the profile's top categories count in its "other" bucket (or one "new" bucket).

Missing and infinite values are left out of every test.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from liveml.errors import Invalid
from liveml.monitoring.config import NUMERIC_ONLY_TESTS, P_VALUE_TESTS, DriftConfig
from liveml.monitoring.performance import estimated
from liveml.monitoring.results import DatasetDrift, FeatureDrift, MultivariateDrift, TestName, TimeChunk
from liveml.registry.profile import (
    QUANTILE_PROBS,
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    ReferenceProfile,
    category_labels,
)

SIZE_SWITCH = 1000  # reference values: at most this many -> p-value tests, more -> distances (Evidently)
FEW_VALUES = 5  # numeric columns with at most this many distinct values are tested as categories
PER_VALUE = 20  # ... and binned per value (not by histogram) up to this many (Evidently)
_PARALLEL_ROWS = 50_000  # columns are tested on several threads from this many window rows
BAND_SIGMAS = 3.0  # multivariate band: reference mean +- 3 standard deviations (NannyML)
_SECOND = np.timedelta64(1, "s")
Kind = Literal["numeric", "categorical"]
Role = Literal["input", "output"]
Drifts = tuple[tuple[FeatureDrift, ...], DatasetDrift, tuple[FeatureDrift, ...], MultivariateDrift | None]


def detect(
    profile: ReferenceProfile,
    inputs: pd.DataFrame,
    outputs: pd.DataFrame,
    config: DriftConfig | None = None,
) -> Drifts:
    """Per input column drift, dataset drift, prediction drift (per output column) and multivariate drift
    (None when ``config.multivariate`` is off) of one window against ``profile``."""
    config = config or DriftConfig()
    features = _columns(profile.columns, inputs, "input", config, classifier=False)
    classifier = any(str(c).startswith("proba_") for c in [*profile.outputs, *outputs.columns])
    predictions = _columns(profile.outputs, outputs, "output", config, classifier=classifier)
    multi = multivariate(profile, inputs, min_rows=config.min_rows) if config.multivariate else None
    return features, _dataset(features, config, _short(len(inputs), config)), predictions, multi


def over_time(
    profile: ReferenceProfile,
    inputs: pd.DataFrame,
    outputs: pd.DataFrame,
    meta: pd.DataFrame,
    config: DriftConfig | None = None,
) -> tuple[TimeChunk, ...]:
    """The window cut by ``meta["at"]`` into ``config.time_chunks`` equal time slices (or, with
    ``config.chunk_rows``, into runs of that many rows in time order), each tested alone
    (rows without a time are left out).

    ``scores`` holds each column's score under its name (an output named like an input as
    ``output:<name>``); ``metrics`` the multivariate error (``multivariate``), ``latency_p95_ms`` and, for
    classifiers with ``proba_<class>`` columns, the CBPE estimates (``estimated_<metric>`` with
    ``_lower`` and ``_upper``). Slices with fewer than ``min_rows`` rows get ``drift_share=None`` and no
    scores.
    """
    config = config or DriftConfig()
    if not len(inputs) == len(outputs) == len(meta):
        raise Invalid(f"inputs, outputs and meta differ in rows: {len(inputs)}, {len(outputs)}, {len(meta)}")
    if len(meta) == 0:
        return ()
    at = pd.to_datetime(meta["at"], utc=True, errors="coerce")
    timed = at.notna().to_numpy()
    if not timed.any():
        return ()
    ns = at.to_numpy(dtype="datetime64[ns]").view("int64")
    start, span = int(ns[timed].min()), int(ns[timed].max() - ns[timed].min())
    if config.chunk_rows is not None:  # consecutive runs of chunk_rows rows, in time order
        order = np.argsort(np.where(timed, ns, np.iinfo(np.int64).max), kind="stable")
        rank = np.empty(len(ns), dtype=np.int64)
        rank[order] = np.arange(len(ns))
        k = max(1, min(1000, int(timed.sum()) // config.chunk_rows))  # the last run takes the rest
        slot = np.where(timed, np.minimum(rank // config.chunk_rows, k - 1), -1)
    else:
        k = config.time_chunks if span > 0 else 1
        slot = np.where(timed, np.minimum(((ns - start) / max(span, 1) * k).astype("int64"), k - 1), -1)
    latency = meta["latency_ms"].to_numpy(dtype="float64") if "latency_ms" in meta.columns else None
    chunks = []
    for j in range(k):
        rows = np.flatnonzero(slot == j)
        metrics: dict[str, float | None] = {}
        if latency is not None and len(rows):
            metrics["latency_p95_ms"] = float(np.nanpercentile(latency[rows], 95))
        share, scores = None, {}
        if len(rows) >= config.min_rows:
            features, dataset, predictions, multi = detect(
                profile, inputs.iloc[rows], outputs.iloc[rows], config
            )
            share = dataset.share if dataset.skipped is None else None
            scores = {f.column: f.score for f in features}
            scores |= {
                (f"output:{f.column}" if f.column in scores else f.column): f.score for f in predictions
            }
            if multi is not None:
                metrics["multivariate"] = multi.score
            for m in estimated(outputs.iloc[rows], None).metrics:
                metrics |= {f"estimated_{m.name}": m.value, f"estimated_{m.name}_lower": m.lower}
                metrics[f"estimated_{m.name}_upper"] = m.upper
        if config.chunk_rows is not None and len(rows):
            edges = [int(ns[rows].min()), int(ns[rows].max())]
        else:
            edges = [start + span * j // k, start + span * (j + 1) // k]
        bounds = pd.to_datetime(edges, utc=True).to_pydatetime()
        chunks.append(
            TimeChunk(
                start=bounds[0],
                end=bounds[1],
                rows=len(rows),
                drift_share=share,
                scores=scores,
                metrics=metrics,
            )
        )
    return tuple(chunks)


def multivariate(profile: ReferenceProfile, inputs: pd.DataFrame, *, min_rows: int = 1) -> MultivariateDrift:
    """The window's mean PCA reconstruction error against the reference's band (NannyML's data
    reconstruction drift): drift when outside reference mean +- 3 s, where s is the larger of the standard
    deviation of the reference chunk means (NannyML's band) and the standard error of the difference of
    two means, sigma * sqrt(1/n + 1/n_ref) (wider for windows smaller than a reference chunk)."""
    mv = profile.multivariate

    def skipped(why: str) -> MultivariateDrift:
        mean = mv.error_mean if mv is not None else None
        return MultivariateDrift(
            score=None, reference_mean=mean, lower=None, upper=None, drift=False, skipped=why
        )

    if mv is None:
        return skipped("the profile has no multivariate section (needs >= 2 numeric inputs, >= 50 rows)")
    absent = [c for c in mv.columns if c not in inputs.columns]
    if absent:
        return skipped(f"column(s) {', '.join(absent)} not in the window")
    n = len(inputs)
    if n < max(min_rows, 1):
        return skipped(f"{n} rows < min_rows {min_rows}")
    score = float(np.mean(mv.errors(inputs)))
    sigma = max(mv.error_std, mv.chunk_std * math.sqrt(mv.chunk_rows))
    half = BAND_SIGMAS * max(mv.chunk_std, sigma * math.sqrt(1 / n + 1 / mv.rows))
    lower, upper = max(mv.error_mean - half, 0.0), mv.error_mean + half
    return MultivariateDrift(
        score=score,
        reference_mean=mv.error_mean,
        lower=lower,
        upper=upper,
        drift=not lower <= score <= upper,
    )


def _short(rows: int, config: DriftConfig) -> str | None:
    return f"{rows} rows < min_rows {config.min_rows}" if rows < config.min_rows else None


def _dataset(features: tuple[FeatureDrift, ...], config: DriftConfig, short: str | None) -> DatasetDrift:
    tested = [f for f in features if f.skipped is None]
    drifted = sum(f.drift for f in tested)
    share = drifted / len(tested) if tested else 0.0
    return DatasetDrift(
        share=share,
        drifted_columns=drifted,
        columns=len(tested),
        threshold=config.drift_share,
        drift=bool(tested) and share >= config.drift_share,
        skipped=short or (None if tested else "no input column could be tested"),
    )


def _columns(
    profiles: dict[str, ColumnProfile], frame: pd.DataFrame, role: Role, config: DriftConfig, classifier: bool
) -> tuple[FeatureDrift, ...]:
    short = _short(len(frame), config)
    names = [*profiles, *(str(c) for c in frame.columns if str(c) not in profiles)]
    present = {str(c) for c in frame.columns}

    def one(name: str) -> FeatureDrift:
        series = frame[name] if name in present else None
        return _column(
            name, role, profiles.get(name), series, config, short, classifier and name == "prediction"
        )

    if len(frame) < _PARALLEL_ROWS or len(names) < 2:
        return tuple(map(one, names))
    with ThreadPoolExecutor(min(len(names), os.cpu_count() or 1, 8)) as pool:  # numpy sorts without the GIL
        return tuple(pool.map(one, names))


def _column(
    name: str,
    role: Role,
    ref: ColumnProfile | None,
    series: pd.Series | None,
    config: DriftConfig,
    short: str | None,
    as_category: bool,
) -> FeatureDrift:
    numeric = isinstance(ref, NumericProfile) or (ref is None and _numeric_dtype(series))
    kind: Kind = "numeric" if numeric and not as_category else "categorical"
    chosen = config.tests.get(name) or (
        config.default_numeric_test if kind == "numeric" else config.default_categorical_test
    )
    n_ref = 0 if ref is None else ref.finite if isinstance(ref, NumericProfile) else ref.count

    def result(test: TestName, score: float | None, n_cur: int, why: str | None = None) -> FeatureDrift:
        threshold = config.threshold(name, test)
        p_value = test in P_VALUE_TESTS
        drift = score is not None and why is None and (score < threshold if p_value else score >= threshold)
        return FeatureDrift(
            column=name,
            role=role,
            kind=kind,
            test=test,
            score=score,
            threshold=threshold,
            score_is_p_value=p_value,
            drift=drift,
            reference_rows=n_ref,
            current_rows=n_cur,
            skipped=why,
        )

    fallback = chosen or _automatic(n_ref, kind == "categorical", FEW_VALUES + 1)
    if ref is None:
        return result(fallback, None, 0, f"not in the reference profile of this version ({role} column)")
    if series is None:
        return result(fallback, None, 0, "not in the window")
    if short:
        return result(fallback, None, 0, short)
    if n_ref == 0:
        return result(fallback, None, 0, "the reference holds no values for this column")
    current: np.ndarray | None = None
    if isinstance(ref, NumericProfile):
        current = _numbers(series, ref.value_type)
        n_cur = len(current)
    else:
        labels = _label_counts(series)
        n_cur = int(labels.sum())
    if n_cur < config.min_rows:
        return result(fallback, None, n_cur, f"{n_cur} non-missing values < min_rows {config.min_rows}")
    if current is not None and isinstance(ref, NumericProfile):
        r, c, distinct = _numeric_buckets(ref, current)
    else:
        assert isinstance(ref, CategoricalProfile)
        r, c = _category_buckets(ref, labels)
        distinct = len(r)
    test: TestName = chosen or _automatic(n_ref, kind == "categorical" or distinct <= FEW_VALUES, distinct)
    if test in NUMERIC_ONLY_TESTS:
        if current is None or not isinstance(ref, NumericProfile):
            return result(test, None, n_cur, f"{test} needs numbers; use chisquare, jensenshannon or psi")
        score = ks_p_value(ref, current) if test == "ks" else wasserstein_normed(ref, current)
        return result(test, score, n_cur)
    if test == "ztest" and len(r) > 2:
        return result(test, None, n_cur, f"ztest compares two values and this column has {len(r)}")
    return result(test, _ON_COUNTS[test](r, c), n_cur)


def _automatic(n_ref: int, few: bool, distinct: int) -> TestName:
    if n_ref <= SIZE_SWITCH:
        return ("chisquare" if distinct > 2 else "ztest") if few else "ks"
    return "jensenshannon" if few else "wasserstein"


def _numeric_dtype(series: pd.Series | None) -> bool:
    return series is not None and (
        pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    )


def _numbers(series: pd.Series, value_type: str) -> np.ndarray:
    """The window's finite values as the profile counts them (datetimes as UTC epoch seconds), sorted."""
    if value_type == "datetime":
        times = pd.to_datetime(series, utc=True, errors="coerce").dt.tz_localize(None)
        values = (times.to_numpy(dtype="datetime64[ns]") - np.datetime64(0, "s")) / _SECOND
    elif value_type == "duration":
        values = pd.to_timedelta(series, errors="coerce").to_numpy(dtype="timedelta64[ns]") / _SECOND
    else:
        if not _numeric_dtype(series):
            series = pd.to_numeric(series.astype("object"), errors="coerce")
        values = series.to_numpy(dtype="float64", na_value=np.nan)
    values = values[np.isfinite(values)]
    values.sort()
    return values


def _label_counts(series: pd.Series) -> pd.Series:
    """Rows per category label (``category_labels``), missing left out; labels counted once each."""
    counts = series.value_counts(dropna=True, sort=False)
    counts = counts[counts.to_numpy() > 0]
    labels = category_labels(pd.Series(counts.index, dtype=counts.index.dtype))
    return pd.Series(counts.to_numpy(), index=labels.to_numpy()).groupby(level=0).sum()


def _category_buckets(ref: CategoricalProfile, labels: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Counts per reference category, its "other" bucket, and one bucket for new labels; empty ones
    dropped."""
    known = pd.Index([f.value for f in ref.frequencies])
    at = known.get_indexer(labels.index)
    at = np.where(at >= 0, at, len(known) + (0 if ref.other else 1))
    c = np.bincount(at, weights=labels.to_numpy(dtype="float64"), minlength=len(known) + 2)
    r = np.array([*(f.rows for f in ref.frequencies), ref.other, 0], dtype="float64")
    keep = (r + c) > 0
    return r[keep], c[keep]


def _numeric_buckets(ref: NumericProfile, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Reference and window counts per value (<= 20 distinct overall) or per histogram bin (with one bin
    below the reference minimum and one above its maximum), empty ones dropped; and the distinct values
    (a lower bound of 21 when binned)."""
    if ref.value_counts is not None:
        firsts = np.r_[True, current[1:] != current[:-1]] if len(current) else np.zeros(0, bool)
        keys = np.union1d([v.value for v in ref.value_counts], current[firsts])
        if len(keys) <= PER_VALUE:
            r = np.zeros(len(keys))
            r[np.searchsorted(keys, [v.value for v in ref.value_counts])] = [v.rows for v in ref.value_counts]
            c = np.searchsorted(current, keys, "right") - np.searchsorted(current, keys, "left")
            return r, c.astype("float64"), len(keys)
    assert ref.histogram is not None
    edges = np.asarray(ref.histogram.edges)
    left, top = np.searchsorted(current, edges[:-1], "left"), np.searchsorted(current, edges[-1], "right")
    c = np.r_[left[0], np.diff(np.r_[left, top]), len(current) - top].astype("float64")
    r = np.r_[0, ref.histogram.counts, 0].astype("float64")
    keep = (r + c) > 0
    return r[keep], c[keep], max(ref.distinct, PER_VALUE + 1)


def ks_p_value(ref: NumericProfile, current: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov p-value of the sorted finite ``current`` against the reference."""
    n, m = ref.finite, len(current)
    if len(ref.sample) >= n:  # the sample is every reference value
        return float(stats.ks_2samp(np.asarray(ref.sample), current).pvalue)
    assert ref.quantiles is not None
    q = np.asarray(ref.quantiles)
    new = q[1:] != q[:-1]  # a run of tied quantiles is a jump: keep its bottom and its top p
    keep = np.r_[True, new] | np.r_[new, True]
    cdf = np.interp(current, q[keep], np.asarray(QUANTILE_PROBS)[keep], left=0.0, right=1.0)  # = ref.cdf
    steps = np.arange(1, m + 1) / m
    d = max(float(np.max(steps - cdf)), float(np.max(cdf - steps + 1 / m)))
    return float(stats.kstwo.sf(d, max(round(n * m / (n + m)), 1)))


def wasserstein_normed(ref: NumericProfile, current: np.ndarray) -> float:
    """W1(reference, sorted finite ``current``) / max(std_ref, 0.001): the integral over p of
    |Q_ref(p) - Q_window(p)|, Q_window constant on each cell ((i-1)/m, i/m], Q_ref linear between knots."""
    assert ref.quantiles is not None and ref.histogram is not None
    x = np.r_[ref.quantiles, ref.histogram.edges[1:-1]]
    p = np.r_[QUANTILE_PROBS, np.cumsum(ref.histogram.counts)[:-1] / ref.finite]
    order = np.lexsort((p, x))
    x, p = x[order], np.maximum.accumulate(np.clip(p[order], 0, 1))
    m = len(current)
    q = np.interp(np.arange(m + 1) / m, p, x)
    total = _mean_abs_linear(q[:-1] - current, q[1:] - current).sum()
    # the cells holding knots are not linear: integrate them piece by piece, knot to knot
    cell = np.minimum((p * m).astype("int64"), m - 1)
    cells = np.unique(cell)
    total -= _mean_abs_linear(q[cells] - current[cells], q[cells + 1] - current[cells]).sum()
    at = np.r_[cells / m, p, (cells + 1) / m]
    value = np.r_[q[cells], x, q[cells + 1]]
    owner = np.r_[cells, cell, cells]
    rank = np.r_[np.zeros(len(cells)), np.ones(len(p)), np.full(len(cells), 2)]
    order = np.lexsort((np.arange(len(at)), rank, owner))  # per cell: left end, its knots, right end
    at, value, owner = at[order], value[order], owner[order]
    same = owner[1:] == owner[:-1]
    c = current[owner[:-1]][same]
    width = np.diff(at)[same]
    total += m * np.dot(width, _mean_abs_linear(value[:-1][same] - c, value[1:][same] - c))
    return float(total / m) / max(ref.std or 0.0, 0.001)


def _mean_abs_linear(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of |t| over t running linearly from ``lo`` to ``hi`` (elementwise)."""
    mean = np.abs(lo + hi) / 2
    crossing = np.flatnonzero((lo < 0) != (hi < 0))
    if len(crossing):
        a, b = lo[crossing], hi[crossing]
        mean[crossing] = (a * a + b * b) / (2 * np.abs(b - a))
    return mean


def chisquare_p_value(r: np.ndarray, c: np.ndarray) -> float:
    """Chi-square test of homogeneity of reference counts ``r`` and window counts ``c`` (one per bucket)."""
    if len(r) < 2:
        return 1.0
    table = np.vstack([r, c])
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return float(stats.chi2.sf(statistic, len(r) - 1))


def ztest_p_value(r: np.ndarray, c: np.ndarray) -> float:
    """Pooled two-proportion Z-test (two buckets), two-sided."""
    if len(r) < 2:
        return 1.0
    n1, n2 = float(r.sum()), float(c.sum())
    pooled = (r[1] + c[1]) / (n1 + n2)
    z = (r[1] / n1 - c[1] / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(2 * stats.norm.sf(abs(z)))


def js_distance(r: np.ndarray, c: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log) of the two distributions."""
    value = float(distance.jensenshannon(r / r.sum(), c / c.sum()))
    return 0.0 if math.isnan(value) else value


def psi(r: np.ndarray, c: np.ndarray) -> float:
    """Population stability index, sum (ref% - cur%) * ln(ref% / cur%), empty buckets as Evidently fills
    them (1e-4, or a millionth of the smallest share when that is below 1e-4)."""
    ref, cur = _fill_zeroes(r / r.sum()), _fill_zeroes(c / c.sum())
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    smallest = float(shares[shares > 0].min())
    return np.where(shares == 0, smallest / 1e6 if smallest <= 1e-4 else 1e-4, shares)


_ON_COUNTS = {
    "chisquare": chisquare_p_value,
    "ztest": ztest_p_value,
    "jensenshannon": js_distance,
    "psi": psi,
}

__all__ = [
    "chisquare_p_value",
    "detect",
    "js_distance",
    "ks_p_value",
    "multivariate",
    "over_time",
    "psi",
    "wasserstein_normed",
    "ztest_p_value",
]
