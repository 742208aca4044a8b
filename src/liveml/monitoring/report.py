"""The monitoring report: one self-contained HTML page for people (summary first, then a section per
column with its plots) and the ``MonitorResult`` as JSON for machines.

The page has no script and loads nothing from elsewhere: CSS is inline and the plots are inline SVG, so
it opens offline, from an e-mail attachment as well as from disk, and prints. Every string that comes from
a user (model and column names, category labels) is escaped by the template's autoescaping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

import liveml
from liveml.errors import Unavailable
from liveml.monitoring import plots
from liveml.monitoring.results import FeatureDrift, MonitorResult, Performance, TimeChunk
from liveml.registry.profile import CategoricalProfile, ColumnProfile, NumericProfile, ReferenceProfile

TEMPLATE = "report.html.j2"
#: chunk metrics that are not model performance: drawn in their own plots
MULTIVARIATE, LATENCY = "multivariate", "latency_p95_ms"


@dataclass(frozen=True)
class ColumnView:
    """One column's section: its test and verdict, and its plots."""

    anchor: str
    column: str
    role: str
    kind: str
    test: str
    score: str
    threshold: str
    verdict: str  # "drift", "no drift" or "skipped"
    how_much: str
    rows: str
    skipped: str | None
    distribution: plots.Plot | None
    over_time: plots.Plot | None


@dataclass(frozen=True)
class MetricRow:
    kind: str
    name: str
    value: str
    band: str
    rows: int


@dataclass(frozen=True)
class ReportView:
    """Everything the template shows, formatted; built from a ``MonitorResult`` by ``_view``."""

    generated_at: str
    window: str
    versions: str
    headline: str
    verdict: str  # "drift", "no drift" or "inconclusive"
    drifted: list[ColumnView]
    features: list[ColumnView]
    predictions: list[ColumnView]
    multivariate: str | None
    performance: list[MetricRow]
    performance_skipped: list[str]
    since: str | None
    operations: list[tuple[str, str]]
    drift_share_plot: plots.Plot | None
    multivariate_plot: plots.Plot | None
    latency_plot: plots.Plot | None
    performance_plots: list[tuple[str, plots.Plot]] = field(default_factory=list)


def render_json(result: MonitorResult) -> str:
    """The result whole, as indented JSON (``MonitorResult.model_validate_json`` reads it back)."""
    return result.model_dump_json(indent=2)


def render_html(
    result: MonitorResult,
    profile: ReferenceProfile | None,
    inputs: pd.DataFrame,
    outputs: pd.DataFrame,
    *,
    generated_at: datetime | None = None,
) -> str:
    """The report as one HTML page: ``profile`` is the reference version's profile (None: plots of the
    current data only), ``inputs`` and ``outputs`` the window's logged model inputs and outputs."""
    plots.require_matplotlib()
    try:
        import jinja2
        from markupsafe import Markup
    except ImportError as exc:  # pragma: no cover - jinja2 comes with liveml[reports]
        raise Unavailable(
            "the HTML report needs jinja2; install it with pip install 'liveml[reports]'"
        ) from exc
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("liveml.monitoring", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["svg"] = lambda plot: Markup(plot.svg)  # matplotlib's own SVG: its text is XML-escaped
    view = _view(result, profile, inputs, outputs, generated_at or datetime.now(UTC))
    return env.get_template(TEMPLATE).render(view=view, r=result, version=liveml.__version__)


def _view(
    result: MonitorResult,
    profile: ReferenceProfile | None,
    inputs: pd.DataFrame,
    outputs: pd.DataFrame,
    generated_at: datetime,
) -> ReportView:
    anchors: set[str] = set()
    names = {f.column for f in result.features}
    features = [
        _column(f, _profile(profile, f), inputs, result.over_time, f.column, anchors)
        for f in sorted(result.features, key=_rank)
    ]
    predictions = [  # over time, an output named like an input is scored as "output:<name>"
        _column(f, _profile(profile, f), outputs, result.over_time,
                f"output:{f.column}" if f.column in names else f.column, anchors)
        for f in sorted(result.predictions, key=_rank)
    ]  # fmt: skip
    multi = result.multivariate
    threshold = result.dataset.threshold if result.dataset else 0.5
    headline, verdict = _headline(result)
    performance, skipped = _performance(result.realized, result.estimated)
    operations = [("rows in the window", f"{result.rows:,} (at least {result.min_rows:,} needed)")]
    if result.error_rate is not None:
        operations.append(("error rate", f"{result.error_rate:.2%}"))
    if result.latency_p95_ms is not None:
        operations.append(("latency p95", f"{result.latency_p95_ms:.1f} ms"))
    return ReportView(
        generated_at=_time(generated_at),
        window=f"{_time(result.start)} to {_time(result.end)} ({_duration(result.end - result.start)})",
        versions=", ".join(str(v) for v in result.versions) or "none",
        headline=headline,
        verdict=verdict,
        drifted=[f for f in features if f.verdict == "drift"],
        features=features,
        predictions=predictions,
        multivariate=_multivariate(result),
        performance=performance,
        performance_skipped=skipped,
        since=_since(result.over_time, threshold),
        operations=operations,
        drift_share_plot=plots.drift_share_over_time(result.over_time, threshold),
        multivariate_plot=plots.metric_over_time(
            result.over_time,
            MULTIVARIATE,
            "reconstruction error",
            (multi.lower, multi.upper) if multi else (None, None),
        ),
        latency_plot=plots.metric_over_time(result.over_time, LATENCY, "latency p95 (ms)"),
        performance_plots=[
            (name, plot)
            for name in _metric_names(result.over_time)
            if (plot := plots.performance_over_time(result.over_time, name)) is not None
        ],
    )


def _profile(profile: ReferenceProfile | None, feature: FeatureDrift) -> ColumnProfile | None:
    if profile is None:
        return None
    return (profile.outputs if feature.role == "output" else profile.columns).get(feature.column)


def _column(
    f: FeatureDrift,
    reference: ColumnProfile | None,
    data: pd.DataFrame,
    chunks: Sequence[TimeChunk],
    score_key: str,
    anchors: set[str],
) -> ColumnView:
    distribution = None
    if f.column in data.columns:
        series = data[f.column]
        if isinstance(reference, NumericProfile) or (reference is None and f.kind == "numeric"):
            distribution = plots.numeric_distribution(reference, series)
        else:
            distribution = plots.categorical_distribution(
                reference if isinstance(reference, CategoricalProfile) else None, series
            )
    skipped = f.skipped or (None if f.score is not None else "no score")
    return ColumnView(
        anchor=_anchor(f.role, f.column, anchors),
        column=f.column,
        role=f.role,
        kind=f.kind,
        test=f.test,
        score=_number(f.score),
        threshold=_number(f.threshold),
        verdict="skipped" if skipped else ("drift" if f.drift else "no drift"),
        how_much=_how_much(f),
        rows=f"{f.reference_rows:,} reference, {f.current_rows:,} current",
        skipped=skipped,
        distribution=distribution,
        over_time=plots.score_over_time(chunks, score_key, f.threshold, f.score_is_p_value),
    )


def _rank(f: FeatureDrift) -> tuple[int, float, str]:
    """Drifted first, most severe first; skipped last."""
    return (0 if f.drift else 2 if f.skipped or f.score is None else 1, -_severity(f), f.column)


def _severity(f: FeatureDrift) -> float:
    """How many times past (or short of) its threshold a score is: above 1 means drift."""
    if f.score is None or f.skipped:
        return -1.0
    if f.score_is_p_value:
        return f.threshold / max(f.score, 1e-300)
    return f.score / f.threshold if f.threshold > 0 else math.inf


def _how_much(f: FeatureDrift) -> str:
    if f.score is None or f.skipped:
        return f.skipped or "not tested"
    if f.score_is_p_value:
        sign = "<" if f.score < f.threshold else "≥"
        return f"p = {_number(f.score)} {sign} {_number(f.threshold)}"
    sign = "≥" if f.score >= f.threshold else "<"
    return f"{_number(f.score)} {sign} {_number(f.threshold)} ({_severity(f):.1f} times the threshold)"


def _headline(result: MonitorResult) -> tuple[str, str]:
    if not result.enough_rows:
        return (
            f"Too few rows to judge: {result.rows:,} in the window, at least {result.min_rows:,} needed.",
            "inconclusive",
        )
    d = result.dataset
    if d is None or d.skipped:
        why = d.skipped if d is not None and d.skipped else "no input column could be tested"
        return f"No dataset drift verdict: {why}.", "inconclusive"
    text = (
        f"{d.drifted_columns} of {d.columns} input columns drifted ({d.share:.0%}; "
        f"the dataset drifts at {d.threshold:.0%} or more)."
    )
    return ("Dataset drift: " if d.drift else "No dataset drift: ") + text, "drift" if d.drift else "no drift"


def _multivariate(result: MonitorResult) -> str | None:
    m = result.multivariate
    if m is None:
        return None
    if m.skipped or m.score is None:
        return f"not tested: {m.skipped or 'no score'}"
    band = f"expected {_number(m.lower)} to {_number(m.upper)} (reference mean {_number(m.reference_mean)})"
    return f"{'drift' if m.drift else 'no drift'}: reconstruction error {_number(m.score)}, {band}"


def _performance(*performances: Performance | None) -> tuple[list[MetricRow], list[str]]:
    rows, skipped = [], []
    for p in performances:
        if p is None:
            continue
        if p.skipped:
            skipped.append(f"{p.kind} performance not computed: {p.skipped}")
        for m in p.metrics:
            band = (
                f"{_number(m.lower)} to {_number(m.upper)}"
                if m.lower is not None or m.upper is not None
                else "—"
            )
            rows.append(MetricRow(p.kind, m.name, _number(m.value), band, m.rows))
    return rows, skipped


def _since(chunks: Sequence[TimeChunk], threshold: float) -> str | None:
    """When drift first shows: the first chunk at or above the dataset threshold, and how many did."""
    drifted = [c for c in chunks if c.drift_share is not None and c.drift_share >= threshold]
    if not drifted:
        return None
    counted = sum(1 for c in chunks if c.drift_share is not None)
    still = "and still in the last one" if chunks[-1] in drifted else "not in the last one"
    return f"since {_time(drifted[0].start)}: {len(drifted)} of {counted} time slices drifted, {still}"


def _metric_names(chunks: Sequence[TimeChunk]) -> list[str]:
    """The metrics over time, realized and estimated together: ``accuracy`` for ``accuracy``,
    ``estimated_accuracy`` and their ``_lower`` / ``_upper`` bands."""
    names: dict[str, None] = {}
    for chunk in chunks:
        for key in (k for k in chunk.metrics if k not in (MULTIVARIATE, LATENCY)):
            names[re.sub(r"_(lower|upper)$", "", key.removeprefix("estimated_"))] = None
    return list(names)


def _anchor(role: str, column: str, taken: set[str]) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", column).strip("-").lower()[:40] or "column"
    anchor, n = f"{role}-{slug}", 2
    while anchor in taken:
        anchor, n = f"{role}-{slug}-{n}", n + 1
    taken.add(anchor)
    return anchor


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.2e}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _time(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M") + (" UTC" if moment.tzinfo is not None else "")


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:.0f} days" if seconds != 86400 else "1 day"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"


__all__ = ["render_html", "render_json"]
