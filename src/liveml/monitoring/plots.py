"""The monitoring report's plots, drawn with matplotlib as inline SVG (no files, no network).

matplotlib is imported only here and only when a plot is drawn; a missing one raises ``Unavailable``
naming the extra to install. Figures are made with ``matplotlib.figure.Figure`` (no pyplot, no global
backend), so drawing is safe in a server thread too.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import numpy as np
import pandas as pd

from liveml.errors import Unavailable
from liveml.registry.profile import CategoricalProfile, NumericProfile, category_labels

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from liveml.monitoring.results import TimeChunk

MISSING_MATPLOTLIB = "the HTML report needs matplotlib; install it with pip install 'liveml[reports]'"
REFERENCE, CURRENT, DRIFT = "#4c72b0", "#dd8452", "#c44e52"
TOP_SHOWN = 10  # categories drawn: the reference's most frequent ones, then "other"
NEW_SHOWN = 3  # current categories outside the reference's top ones, drawn apart when frequent
MAX_EXTRA_BINS = 10  # bins added on each side for current values beyond the reference's range
_RC = {
    "svg.fonttype": "none",  # text stays text: selectable, searchable, small
    "svg.hashsalt": "liveml",  # deterministic ids
    "text.parse_math": False,  # a "$" in a category label is a dollar sign, not TeX
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}
_P = ParamSpec("_P")
_R = TypeVar("_R")


@dataclass(frozen=True)
class Plot:
    """One figure as inline SVG markup, and a line saying what it leaves out or what stands out."""

    svg: str
    note: str | None = None  # sentences, without the last full stop


def require_matplotlib() -> None:
    """Raise ``Unavailable`` when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise Unavailable(MISSING_MATPLOTLIB) from exc


def _styled(draw: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a plot function under the report's matplotlib style (fonts, grid, SVG text as text)."""

    @functools.wraps(draw)
    def styled(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        require_matplotlib()
        import matplotlib

        with matplotlib.rc_context(cast(Any, _RC)):
            return draw(*args, **kwargs)

    return styled


@_styled
def numeric_distribution(reference: NumericProfile | None, current: pd.Series) -> Plot:
    """The reference histogram (the profile's edges and counts) as a density against the current values
    counted on the same edges, extended by bins of the same width where current values fall outside."""
    value_type = reference.value_type if reference else _value_type(current)
    per = 86400.0 if value_type == "datetime" else 1.0  # dates: density per day, not per second
    values = numeric_values(current, value_type)
    finite = values[np.isfinite(values)]
    hist = reference.histogram if reference is not None else None
    note: list[str] = []
    fig, ax = _figure(6.4, 2.6)
    if hist is not None and sum(hist.counts) > 0:
        edges = np.asarray(hist.edges, dtype="float64")
        if edges[-1] <= edges[0]:  # one distinct value: give its bin a width
            edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
        ref_density = np.asarray(hist.counts) / sum(hist.counts) / np.diff(edges) * per
        ax.stairs(ref_density, edges, fill=True, alpha=0.35, color=REFERENCE, label="reference")
        ax.stairs(ref_density, edges, color=REFERENCE, linewidth=1)
        current_edges = _extended_edges(edges, finite)
        outside = int(np.count_nonzero((finite < edges[0]) | (finite > edges[-1])))
        if outside:
            note.append(f"{outside} of {len(finite)} current values lie outside the reference range")
    else:
        current_edges = np.histogram_bin_edges(finite, bins=20) if len(finite) else np.array([0.0, 1.0])
        note.append("No reference histogram for this column: current values only")
    if len(finite):
        counts, _ = np.histogram(np.clip(finite, current_edges[0], current_edges[-1]), bins=current_edges)
        density = counts / len(finite) / np.diff(current_edges) * per
        ax.stairs(density, current_edges, color=CURRENT, linewidth=2, label="current")
    else:
        note.append("No current values to draw")
    ax.set_ylabel("density per day" if value_type == "datetime" else "density")
    _format_value_axis(ax, value_type)
    ax.legend(loc="best")
    return Plot(
        _svg(fig), ". ".join([*note, *_missing(reference, current, int(np.isnan(values).sum()))]) or None
    )


@_styled
def categorical_distribution(reference: CategoricalProfile | None, current: pd.Series) -> Plot:
    """Shares of the reference's most frequent categories (and of the rest, as "other"), reference next
    to current; frequent current categories the reference's top ones lack are drawn apart."""
    labels = category_labels(current)
    counts = labels.value_counts()
    total = max(len(labels), 1)
    ref_total = max(reference.count, 1) if reference else 1
    ref_all = {c.value: c.rows for c in reference.frequencies} if reference else {}
    shown = [c.value for c in reference.frequencies[:TOP_SHOWN]] if reference else []
    if not shown:
        shown = [str(v) for v in counts.index[:TOP_SHOWN]]
    extra = [str(v) for v in counts.index if v not in shown and counts[v] / total >= 0.01][:NEW_SHOWN]
    new = [v for v in extra if v not in ref_all and reference is not None and reference.other == 0]
    names = [*shown, *extra]
    ref_shares = [ref_all.get(v, 0) / ref_total for v in names]
    cur_shares = [float(counts.get(v, 0)) / total for v in names]
    ref_other = max(0.0, 1.0 - sum(ref_shares)) if reference else 0.0
    cur_other = max(0.0, 1.0 - sum(cur_shares)) if len(labels) else 0.0
    if ref_other > 1e-9 or cur_other > 1e-9:
        names, ref_shares, cur_shares = (
            [*names, "(other)"],
            [*ref_shares, ref_other],
            [*cur_shares, cur_other],
        )
    ticks = [_short(v) + (" (new)" if v in new else "") for v in names]
    rotated = len(names) > 4
    fig, ax = _figure(6.4, 3.0 if rotated else 2.6)
    x, width = np.arange(len(names)), 0.4
    if reference is not None:
        ax.bar(x - width / 2, ref_shares, width, color=REFERENCE, alpha=0.7, label="reference")
    ax.bar(x + width / 2 if reference is not None else x, cur_shares, width, color=CURRENT, label="current")
    ax.set_xticks(x, ticks, rotation=30 if rotated else 0, ha="right" if rotated else "center")
    ax.set_ylabel("share of rows")
    ax.legend(loc="upper right")
    note = []
    if new:
        note.append("Categories not seen in the reference: " + ", ".join(new))
    if reference is None:
        note.append("No reference frequencies for this column: current values only")
    if not len(labels):
        note.append("No current values to draw")
    note.extend(_missing(reference, current, len(current) - len(labels)))
    return Plot(_svg(fig), ". ".join(note) or None)


@_styled
def score_over_time(chunks: Sequence[TimeChunk], column: str, threshold: float, p_value: bool) -> Plot | None:
    """One column's test score per chunk, the threshold as a dashed line; drifted chunks in red.
    None when no chunk has a score for the column."""
    times, scores = _over_time(chunks, lambda c: c.scores.get(column))
    if not len(times):
        return None
    if p_value:  # p-values span many decades: a log axis, with zero drawn at the smallest float shown
        scores = np.maximum(scores, 1e-16)
    drifted = scores < threshold if p_value else scores >= threshold
    fig, ax = _figure(6.4, 2.2)
    ax.plot(times, scores, marker="o", markersize=3, color=REFERENCE, label="score")
    if drifted.any():
        ax.scatter(times[drifted], scores[drifted], color=DRIFT, zorder=3, s=18, label="drift")
    ax.axhline(threshold, color=DRIFT, linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    if p_value:
        _log_axis(ax, min(float(scores.min()), threshold) / 3)
    ax.set_ylabel("p-value (drift below)" if p_value else "distance (drift at or above)")
    _format_time_axis(ax)
    ax.legend(loc="best")
    return Plot(_svg(fig))


@_styled
def drift_share_over_time(chunks: Sequence[TimeChunk], threshold: float) -> Plot | None:
    """The share of drifted input columns per chunk against the dataset threshold; None without data."""
    times, shares = _over_time(chunks, lambda c: c.drift_share)
    if not len(times):
        return None
    fig, ax = _figure(6.4, 2.2)
    ax.plot(times, shares, marker="o", markersize=3, color=REFERENCE, label="drifted share of columns")
    over = shares >= threshold
    if over.any():
        ax.scatter(times[over], shares[over], color=DRIFT, zorder=3, s=18, label="dataset drift")
    ax.axhline(threshold, color=DRIFT, linestyle="--", linewidth=1, label=f"threshold {threshold:.0%}")
    ax.set_ylim(-0.03, 1.03)
    ax.yaxis.set_major_formatter(_percent_formatter())
    _format_time_axis(ax)
    ax.legend(loc="best")
    return Plot(_svg(fig))


@_styled
def performance_over_time(chunks: Sequence[TimeChunk], name: str) -> Plot | None:
    """A metric per chunk: realized (``name``) and estimated (``estimated_<name>``), each with its band
    where the chunks carry ``<key>_lower`` and ``<key>_upper``; None when no chunk has either."""
    fig, ax = _figure(6.4, 2.2)
    drawn = False
    for key, color, style, label in [
        (name, REFERENCE, "-", "realized"),
        (f"estimated_{name}", CURRENT, "--", "estimated"),
    ]:
        times, values = _over_time(chunks, _metric(key))
        if not len(times):
            continue
        drawn = True
        ax.plot(times, values, style, marker="o", markersize=3, color=color, label=label)
        banded = [c for c in chunks if c.metrics.get(f"{key}_lower") is not None]
        banded = [c for c in banded if c.metrics.get(f"{key}_upper") is not None]
        if banded:
            band_times, lower = _over_time(banded, _metric(f"{key}_lower"))
            _, upper = _over_time(banded, _metric(f"{key}_upper"))
            ax.fill_between(
                band_times, lower, upper, color=color, alpha=0.2, linewidth=0, label=f"{label} band"
            )
    if not drawn:
        return None
    ax.set_ylabel(_short(name))
    _format_time_axis(ax)
    ax.legend(loc="best")
    return Plot(_svg(fig))


@_styled
def metric_over_time(
    chunks: Sequence[TimeChunk], key: str, label: str, band: tuple[float | None, float | None] = (None, None)
) -> Plot | None:
    """One chunk metric as a line (e.g. ``multivariate``, ``latency_p95_ms``), with the reference's
    expected band shaded when given; None when no chunk has it."""
    times, values = _over_time(chunks, _metric(key))
    if not len(times):
        return None
    fig, ax = _figure(6.4, 2.2)
    lower, upper = band
    if lower is not None and upper is not None:
        ax.axhspan(lower, upper, color=REFERENCE, alpha=0.15, linewidth=0, label="reference band")
        outside = (values < lower) | (values > upper)
        if outside.any():
            ax.scatter(times[outside], values[outside], color=DRIFT, zorder=3, s=18, label="outside the band")
    ax.plot(times, values, marker="o", markersize=3, color=REFERENCE, label=label)
    ax.set_ylabel(_short(label, 32))
    _format_time_axis(ax)
    ax.legend(loc="best")
    return Plot(_svg(fig))


def numeric_values(series: pd.Series, value_type: str) -> np.ndarray:
    """A column as float64 the way the reference profile counts it: datetimes as seconds since the Unix
    epoch (UTC), durations as seconds, anything unparseable as NaN."""
    if value_type == "datetime" or pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamps = pd.to_datetime(series, errors="coerce", utc=True).dt.tz_localize(None)
        return np.asarray((stamps - pd.Timestamp(0)).dt.total_seconds(), dtype="float64")
    if value_type == "duration" or pd.api.types.is_timedelta64_dtype(series.dtype):
        return np.asarray(pd.to_timedelta(series, errors="coerce").dt.total_seconds(), dtype="float64")
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(pd.to_numeric(series, errors="coerce"), dtype="float64")


def _value_type(series: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    return "duration" if pd.api.types.is_timedelta64_dtype(series.dtype) else "number"


def _missing(
    reference: NumericProfile | CategoricalProfile | None, current: pd.Series, missing: int
) -> list[str]:
    """A line on missing values when either side has some (the plots show non-missing values only)."""
    before = reference.missing_share if reference is not None else 0.0
    now = missing / len(current) if len(current) else 0.0
    if not before and not now:
        return []
    return [f"Missing values: {before:.1%} in the reference, {now:.1%} now (not drawn)"]


def _extended_edges(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``edges`` with bins of the mean width added below and above to reach ``values`` (at most
    MAX_EXTRA_BINS a side; values farther out are counted in the outermost bin)."""
    if not len(values):
        return edges
    width = float(np.mean(np.diff(edges)))
    below = (
        min(MAX_EXTRA_BINS, int(np.ceil((edges[0] - values.min()) / width))) if values.min() < edges[0] else 0
    )
    above = (
        min(MAX_EXTRA_BINS, int(np.ceil((values.max() - edges[-1]) / width)))
        if values.max() > edges[-1]
        else 0
    )
    low = edges[0] - width * np.arange(below, 0, -1)
    high = edges[-1] + width * np.arange(1, above + 1)
    return np.concatenate([low, edges, high])


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element for inlining: no XML prolog or metadata, ids made unique in the
    page (every figure would otherwise have ``figure_1``, ``patch_1``, …), width scaled by CSS."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    prefix = "p" + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:10] + "-"
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m[1]}"', text)
    text = re.sub(r'((?:xlink:)?href="#)([^"]+)"', lambda m: f'{m[1]}{prefix}{m[2]}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m[1]})", text)
    return text.replace("<svg ", '<svg role="img" ', 1).strip()


def _metric(key: str) -> Callable[[TimeChunk], float | None]:
    return lambda chunk: chunk.metrics.get(key)


def _over_time(
    chunks: Sequence[TimeChunk], value: Callable[[TimeChunk], float | None]
) -> tuple[np.ndarray, np.ndarray]:
    """The chunks' middles (naive UTC datetime64) and values, where the value is known."""
    known = [(c.start + (c.end - c.start) / 2, v) for c in chunks if (v := value(c)) is not None]
    middles = pd.to_datetime([t for t, _ in known], utc=True).tz_localize(None)
    return middles.to_numpy(), np.array([v for _, v in known], dtype="float64")


def _format_time_axis(ax: Axes) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _log_axis(ax: Axes, bottom: float) -> None:
    """A log y axis for p-values, labelled in plain text (no mathtext) from ``bottom`` to above 1."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.set_ylim(bottom, 1.5)
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=6))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}" if v >= 0.01 else f"{v:.0e}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _format_value_axis(ax: Axes, value_type: str) -> None:
    from matplotlib.ticker import FuncFormatter

    if value_type == "datetime":
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda x, _: pd.Timestamp(x, unit="s").strftime("%Y-%m-%d"))
        )
        ax.set_xlabel("date (UTC)")
    elif value_type == "duration":
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda x, _: str(pd.Timedelta(seconds=x)).replace("0 days ", ""))
        )
        ax.set_xlabel("duration")


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "Plot",
    "categorical_distribution",
    "drift_share_over_time",
    "metric_over_time",
    "numeric_distribution",
    "numeric_values",
    "performance_over_time",
    "require_matplotlib",
    "score_over_time",
]
