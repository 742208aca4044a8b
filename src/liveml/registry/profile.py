"""The reference profile: compact statistics of a model version's training data and of its outputs on it.

Computed once at push time (``liveml push ... --reference train.parquet``) and stored with the version.
Drift detection fits its tests on it later (K-S and Wasserstein from the quantiles, chi-square,
Jensen-Shannon and PSI from the histogram or the category frequencies, Z-test from mean and std), so it
keeps enough for that and stays a few KB per column whatever the number of rows. The JSON never holds
NaN or Infinity: undefined statistics are ``null`` and infinities are counted apart from finite values.

``multivariate`` (optional) holds a PCA of the standardized numeric inputs and the reference's
reconstruction error, for shifts no single column shows (NannyML's data reconstruction drift).
"""

from __future__ import annotations

import math
import zlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

from liveml.errors import Invalid

QUANTILE_PROBS: tuple[float, ...] = tuple(i / 100 for i in range(101))
HISTOGRAM_BINS = 20
LOW_CARDINALITY = 20  # numeric columns with at most this many distinct values also keep exact value counts
TOP_CATEGORIES = 100
MAX_LABEL_CHARS = 64  # longer category values are cut to 63 characters + "…" (see ``category_labels``)
NumericType = Literal["integer", "number", "datetime", "duration"]
_SIGNIFICANT = 6  # digits kept in the quantiles, edges and sample of float columns
MULTIVARIATE_MIN_ROWS = 50
MULTIVARIATE_MAX_COLUMNS = 50  # the first 50 numeric inputs, in signature order: the section stays KBs
MULTIVARIATE_MAX_ROWS = 500_000  # a seeded sample of larger references (the statistics have converged)
PCA_VARIANCE = 0.65  # components kept: the fewest explaining 65% of the variance (as NannyML)
RECONSTRUCTION_CHUNKS = 10
_ROWS_PER_BLOCK = 65_536


class _Frozen(BaseModel):
    # extra="allow": a profile written by a newer liveml (with more fields) still loads, and keeps them.
    model_config = ConfigDict(frozen=True, extra="allow")


class Histogram(_Frozen):
    """``len(edges) == len(counts) + 1``; bins are [e_i, e_i+1), the last one closed (as ``np.histogram``)."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


class ValueCount(NamedTuple):
    """A number and the rows holding it; a JSON pair ``[value, rows]``."""

    value: float
    rows: int


class CategoryCount(NamedTuple):
    """A category label and the rows holding it; a JSON pair ``[label, rows]``."""

    value: str
    rows: int


class NumericProfile(_Frozen):
    """Numbers, and datetimes/durations as seconds (since the Unix epoch, in UTC, for datetimes).

    ``count`` is the non-missing values, infinities included; all other statistics use the finite ones.
    """

    kind: Literal["numeric"] = "numeric"
    value_type: NumericType = "number"
    count: int
    missing: int
    missing_share: float
    pos_inf: int = 0
    neg_inf: int = 0
    zeros: int = 0
    distinct: int = 0
    mean: float | None = None
    std: float | None = Field(default=None, description="population standard deviation (ddof=0)")
    min: float | None = None
    max: float | None = None
    quantiles: tuple[float, ...] | None = Field(default=None, description="the values at QUANTILE_PROBS")
    histogram: Histogram | None = None
    value_counts: tuple[ValueCount, ...] | None = Field(
        default=None, description=f"every distinct value, when there are at most {LOW_CARDINALITY}"
    )
    sample: tuple[float, ...] = Field(default=(), description="finite values drawn with a fixed seed, sorted")

    @property
    def finite(self) -> int:
        return self.count - self.pos_inf - self.neg_inf

    def cdf(self, values: Any) -> np.ndarray:
        """Approximate P(X <= x) under the reference's finite values, interpolated between its quantiles."""
        x = np.asarray(values, dtype="float64")
        if self.quantiles is None:
            return np.full(x.shape, np.nan)
        q, p = np.asarray(self.quantiles), np.asarray(QUANTILE_PROBS)
        j = np.clip(np.searchsorted(q, x, side="right"), 1, len(q) - 1)
        lo, hi = q[j - 1], q[j]
        frac = np.where(hi > lo, np.clip((x - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0), 1.0)
        return np.where(x < q[0], 0.0, np.where(x >= q[-1], 1.0, p[j - 1] + frac * (p[j] - p[j - 1])))


class CategoricalProfile(_Frozen):
    """Strings, categories and booleans (as ``"true"``/``"false"``): the most frequent labels and the rest."""

    kind: Literal["categorical"] = "categorical"
    value_type: Literal["string", "boolean"] = "string"
    count: int
    missing: int
    missing_share: float
    unique: int
    frequencies: tuple[CategoryCount, ...] = Field(default=(), description="most frequent first")
    other: int = Field(default=0, description="rows holding a value not in `frequencies`")


ColumnProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class MultivariateProfile(_Frozen):
    """PCA data reconstruction of the numeric inputs, standardized with their reference mean and std.

    A row's error is the Euclidean distance between its standardized values (missing or infinite ones
    imputed with the mean, i.e. 0) and their reconstruction from the kept components. As NannyML does,
    the reference errors come from the fitted PCA itself, and ``chunk_means`` from
    ``RECONSTRUCTION_CHUNKS`` consecutive chunks of the reference rows (in their order), so a reference
    that varies over its own rows gets a wider band.
    """

    method: Literal["pca_reconstruction"] = "pca_reconstruction"
    columns: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    components: tuple[tuple[float, ...], ...] = Field(description="k unit vectors over the columns")
    explained_variance: float = Field(description="share of the variance the kept components explain")
    rows: int = Field(description="reference rows the statistics come from")
    error_mean: float
    error_std: float = Field(description="per row (ddof=0)")
    chunk_rows: int
    chunk_means: tuple[float, ...]
    chunk_std: float = Field(description="standard deviation (ddof=1) of the chunk means")

    def errors(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's reconstruction error; ``frame`` holds (at least) ``columns``."""
        z = _standardized(frame, self.columns, np.asarray(self.means), np.asarray(self.scales))
        return _reconstruction_errors(z, np.asarray(self.components, dtype="float64"))


class ProfileSummaryRow(_Frozen):
    column: str
    role: Literal["input", "output"]
    kind: str  # numeric, datetime, duration, categorical or boolean
    missing_share: float
    text: str


class ReferenceProfile(_Frozen):
    """Statistics of the reference rows: per input column, and per model output on those rows."""

    schema_version: int = 1
    rows: int
    columns: dict[str, ColumnProfile] = Field(description="the model inputs, in signature order")
    outputs: dict[str, ColumnProfile] = Field(default_factory=dict, description="model outputs on the rows")
    created_at: datetime | None = None
    multivariate: MultivariateProfile | None = Field(
        default=None, description=f"numeric inputs: >= 2 columns, >= {MULTIVARIATE_MIN_ROWS} rows"
    )

    def to_json(self) -> str:
        """Compact JSON (no NaN or Infinity), keeping fields this version does not know."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> ReferenceProfile:
        return cls.model_validate_json(text)

    def summary(self) -> list[ProfileSummaryRow]:
        """One row per column, inputs then outputs, for ``liveml show``."""
        return [
            ProfileSummaryRow(
                column=name,
                role=role,
                kind=col.value_type if col.value_type in ("datetime", "duration", "boolean") else col.kind,
                missing_share=col.missing_share,
                text=_describe(col),
            )
            for role, profiles in (("input", self.columns), ("output", self.outputs))
            for name, col in profiles.items()
        ]


def build_profile(
    inputs: pd.DataFrame, outputs: pd.DataFrame | None = None, *, sample_size: int = 200, seed: int = 0
) -> ReferenceProfile:
    """Profile every column of ``inputs`` (in order) and of ``outputs``, the model's outputs on those rows."""
    if len(inputs) == 0:
        raise Invalid("reference data has no rows; give a reference table with a header and at least one row")
    if len(inputs.columns) == 0:
        raise Invalid("reference data has no columns; give a reference table with the model's input columns")
    if outputs is not None and len(outputs) != len(inputs):
        raise Invalid(f"the model gave {len(outputs)} output rows for {len(inputs)} reference rows")
    columns = _profile_frame(inputs, sample_size, seed)
    return ReferenceProfile(
        rows=len(inputs),
        columns=columns,
        outputs={} if outputs is None else _profile_frame(outputs, sample_size, seed),
        created_at=datetime.now(UTC),
        multivariate=_multivariate(inputs, columns, seed),
    )


def category_labels(series: pd.Series) -> pd.Series:
    """The labels a column's non-missing values are counted under (apply it to new data to compare)."""
    values = series[series.notna()]
    if _is_boolean(values):
        flags = values.astype(bool).to_numpy()
        return pd.Series(np.where(flags, "true", "false"), index=values.index, dtype="str")
    text = values.astype("str")
    long = text.str.len() > MAX_LABEL_CHARS
    if long.any():
        text = text.where(~long, text.str.slice(0, MAX_LABEL_CHARS - 1) + "…")
    return text


def _profile_frame(frame: pd.DataFrame, sample_size: int, seed: int) -> dict[str, ColumnProfile]:
    names = [str(c) for c in frame.columns]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise Invalid(f"column name(s) {', '.join(map(repr, duplicated))} appear more than once; rename them")
    return {name: _profile_column(frame.iloc[:, i], name, sample_size, seed) for i, name in enumerate(names)}


def _is_boolean(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series.dtype):
        return True
    head = series.dropna().head(1000)
    return series.dtype == object and len(head) > 0 and all(isinstance(v, bool | np.bool_) for v in head)


def _profile_column(series: pd.Series, name: str, sample_size: int, seed: int) -> ColumnProfile:
    dtype, missing = series.dtype, int(series.isna().sum())
    value_type: NumericType = "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        if getattr(dtype, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        values, value_type = (series.to_numpy() - np.datetime64(0, "s")) / np.timedelta64(1, "s"), "datetime"
    elif pd.api.types.is_timedelta64_dtype(dtype):
        values, value_type = series.to_numpy() / np.timedelta64(1, "s"), "duration"
    elif (
        pd.api.types.is_numeric_dtype(dtype)
        and not _is_boolean(series)
        and not pd.api.types.is_complex_dtype(dtype)
    ):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        value_type = "integer" if pd.api.types.is_integer_dtype(dtype) else "number"
    else:  # most frequent first, ties by label: a stable sort by count of the label-sorted counts
        counts = category_labels(series).value_counts(sort=False).sort_index()
        counts = counts.sort_values(ascending=False, kind="stable")
        top = tuple(CategoryCount(str(v), int(c)) for v, c in counts.iloc[:TOP_CATEGORIES].items())
        return CategoricalProfile(
            value_type="boolean" if _is_boolean(series) else "string",
            count=len(series) - missing,
            missing=missing,
            missing_share=missing / len(series),
            unique=len(counts),
            frequencies=top,
            other=len(series) - missing - sum(c.rows for c in top),
        )
    present = values[~np.isnan(values)]
    finite = np.sort(present[np.isfinite(present)])
    stats: dict[str, Any] = {}
    if len(finite):
        # seeded per column name: a column's sample depends neither on the row order nor on other columns
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        picked = np.sort(rng.choice(len(finite), size=min(max(sample_size, 0), len(finite)), replace=False))
        stats = _numeric_stats(finite, value_type, finite[picked])
    return NumericProfile(
        value_type=value_type,
        count=len(present),
        missing=missing,
        missing_share=missing / len(series),
        pos_inf=int(np.count_nonzero(present == np.inf)),
        neg_inf=int(np.count_nonzero(present == -np.inf)),
        **stats,
    )


def _numeric_stats(finite: np.ndarray, value_type: NumericType, sample: np.ndarray) -> dict[str, Any]:
    """Statistics of sorted, finite, non-empty ``finite``."""
    n, lo, hi = len(finite), float(finite[0]), float(finite[-1])
    starts = np.flatnonzero(np.r_[True, finite[1:] != finite[:-1]])  # first index of each distinct value
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        mean, std = float(np.mean(finite)), float(np.std(finite))
    if not (math.isfinite(mean) and math.isfinite(std)) or (std == 0 and hi > lo):  # overflow, underflow
        scale = max(abs(lo), abs(hi))
        mean, std = float(np.mean(finite / scale)) * scale, float(np.std(finite / scale)) * scale
    span = hi - lo if math.isfinite(hi - lo) else math.inf
    edges: tuple[float, ...] = (lo, hi)
    if hi > lo:  # halved, then doubled (exactly): a range wider than the largest float cannot overflow
        inner = np.linspace(lo / 2, hi / 2, min(HISTOGRAM_BINS, len(starts)) + 1)[1:-1] * 2
        edges = (lo, *_compact(inner, value_type, span), hi)
    # counted against the stored (rounded) edges: np.histogram(values, bins=edges) gives the same counts
    counts = np.diff(np.r_[np.searchsorted(finite, edges[:-1], side="left"), n])
    value_counts = None
    if len(starts) <= LOW_CARDINALITY:
        rows = np.diff(np.r_[starts, n])
        value_counts = tuple(ValueCount(float(finite[s]), int(c)) for s, c in zip(starts, rows, strict=True))
    return {
        "zeros": int(np.count_nonzero(finite == 0)),
        "distinct": len(starts),
        "mean": mean,
        "std": std,
        "min": lo,
        "max": hi,
        "quantiles": _compact(np.quantile(finite, QUANTILE_PROBS), value_type, span),
        "histogram": Histogram(edges=edges, counts=tuple(int(c) for c in counts)),
        "value_counts": value_counts,
        "sample": _compact(sample, value_type, span),
    }


def _multivariate(
    frame: pd.DataFrame, profiles: dict[str, ColumnProfile], seed: int
) -> MultivariateProfile | None:
    """PCA reconstruction statistics of the numeric (integer, number) inputs that vary; None if too few."""
    picked = [
        (i, name, col)
        for i, (name, col) in enumerate(profiles.items())
        if isinstance(col, NumericProfile) and col.value_type in ("integer", "number") and col.std
    ][:MULTIVARIATE_MAX_COLUMNS]
    if len(picked) < 2 or len(frame) < MULTIVARIATE_MIN_ROWS:
        return None
    rng = np.random.default_rng([seed, 1])
    rows = frame.iloc[:, [i for i, _, _ in picked]]
    if len(rows) > MULTIVARIATE_MAX_ROWS:
        rows = rows.iloc[np.sort(rng.choice(len(rows), MULTIVARIATE_MAX_ROWS, replace=False))]
    rows.columns = pd.Index([name for _, name, _ in picked])
    means = np.array([col.mean for _, _, col in picked], dtype="float64")
    scales = np.array([col.std for _, _, col in picked], dtype="float64")
    z = _standardized(rows, tuple(rows.columns), means, scales)
    with threadpool_limits(1, user_api="blas"):
        gram = z.T @ z
    axes, explained = _principal_components(gram)
    components = tuple(tuple(float(f"{v:.6g}") for v in row) for row in axes.tolist())
    errors = _reconstruction_errors(z, np.asarray(components))
    chunk_means = np.array([chunk.mean() for chunk in np.array_split(errors, RECONSTRUCTION_CHUNKS)])
    return MultivariateProfile(
        columns=tuple(rows.columns),
        means=tuple(means.tolist()),
        scales=tuple(scales.tolist()),
        components=components,
        explained_variance=round(explained, 6),
        rows=len(z),
        error_mean=float(errors.mean()),
        error_std=float(errors.std()),
        chunk_rows=len(z) // RECONSTRUCTION_CHUNKS,
        chunk_means=tuple(chunk_means.tolist()),
        chunk_std=float(chunk_means.std(ddof=1)),
    )


def _principal_components(gram: np.ndarray) -> tuple[np.ndarray, float]:
    """Unit principal axes (rows, largest variance first, sign fixed) of the centred data whose
    ``X.T @ X`` is ``gram``: the fewest explaining ``PCA_VARIANCE`` of the variance; and their share."""
    _, singular, vt = np.linalg.svd(gram, hermitian=True)  # gram is symmetric positive semi-definite
    share = np.cumsum(singular) / max(float(singular.sum()), np.finfo(float).tiny)
    k = min(int(np.searchsorted(share, PCA_VARIANCE - 1e-12)) + 1, len(share))
    axes = vt[:k] * np.sign(vt[:k, [0]] + (vt[:k, [0]] == 0))  # first coordinate >= 0: deterministic
    return axes, float(share[k - 1])


def _standardized(
    frame: pd.DataFrame, columns: tuple[str, ...], means: np.ndarray, scales: np.ndarray
) -> np.ndarray:
    """(rows, columns) standardized values; missing, infinite and non-numeric values imputed with 0."""
    z = np.empty((len(frame), len(columns)))
    for j, name in enumerate(columns):
        series = frame[name]
        if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
            series = pd.to_numeric(series.astype("object"), errors="coerce")
        with np.errstate(invalid="ignore", over="ignore"):
            z[:, j] = (series.to_numpy(dtype="float64", na_value=np.nan) - means[j]) / scales[j]
    z[~np.isfinite(z)] = 0.0
    return z


def _reconstruction_errors(z: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Euclidean distance of each row of ``z`` to its projection on the span of ``components``."""
    errors = np.empty(len(z))
    with threadpool_limits(1, user_api="blas"):  # tall and thin: threads only add overhead (5x when busy)
        for start in range(0, len(z), _ROWS_PER_BLOCK):
            block = z[start : start + _ROWS_PER_BLOCK]
            residual = block - (block @ components.T) @ components
            errors[start : start + len(block)] = np.sqrt(np.einsum("ij,ij->i", residual, residual))
    return errors


def _compact(values: np.ndarray, value_type: str, span: float) -> tuple[float, ...]:
    """Round for a small JSON: floats to 6 significant digits, integers to 3 decimals, times to whole
    seconds; never coarser than a millionth of the column's range."""
    finest = 6 - math.floor(math.log10(span)) if 0 < span < math.inf else -400
    if value_type != "number":
        return tuple(round(v, max(3 if value_type == "integer" else 0, finest)) for v in values.tolist())
    return tuple(
        round(v, max(finest, _SIGNIFICANT - 1 - math.floor(math.log10(abs(v))) if v else 0))
        for v in values.tolist()
    )


def _fmt(value: float | None, value_type: str = "number") -> str:
    if value is None:
        return "?"
    if value_type == "datetime":
        stamp = pd.Timestamp(value, unit="s")
        return (
            str(stamp.date()) if stamp == stamp.normalize() else stamp.isoformat(sep=" ", timespec="seconds")
        )
    if value_type == "duration":
        return str(pd.Timedelta(seconds=value)).replace("0 days ", "")
    if (float(value).is_integer() or abs(value) >= 1000) and abs(value) < 1e12:
        return f"{value:.0f}"
    return f"{value:.4g}"


def _describe(col: NumericProfile | CategoricalProfile) -> str:
    if col.count == 0:
        return "all missing"
    if isinstance(col, CategoricalProfile):
        shown = ", ".join(f"{f.value} {100 * f.rows / col.count:.0f}%" for f in col.frequencies[:3])
        plural = "category" if col.unique == 1 else "categories"
        return f"{col.unique} {plural}: {shown}{', …' if col.unique > 3 else ''}"
    if col.finite == 0:
        return f"{col.count} infinite value(s), no finite one"
    vt, p50 = col.value_type, col.quantiles[50] if col.quantiles else None
    if vt in ("datetime", "duration"):
        text = f"median {_fmt(p50, vt)}, range {_fmt(col.min, vt)}..{_fmt(col.max, vt)}"
    else:
        text = f"mean {_fmt(col.mean)}, p50 {_fmt(p50)}, range {_fmt(col.min)}..{_fmt(col.max)}"
    if col.pos_inf or col.neg_inf:
        text += f", {col.pos_inf + col.neg_inf} infinite"
    if col.value_counts is not None and vt in ("integer", "number"):
        text += f" ({col.distinct} distinct value{'' if col.distinct == 1 else 's'})"
    return text


__all__ = [
    "HISTOGRAM_BINS",
    "LOW_CARDINALITY",
    "QUANTILE_PROBS",
    "TOP_CATEGORIES",
    "CategoricalProfile",
    "CategoryCount",
    "ColumnProfile",
    "Histogram",
    "MultivariateProfile",
    "NumericProfile",
    "ProfileSummaryRow",
    "ReferenceProfile",
    "ValueCount",
    "build_profile",
    "category_labels",
]
