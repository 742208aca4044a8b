"""``liveml monitor run|report|config`` and ``liveml feedback``: drift and performance from the prediction log."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from liveml.cli.context import key_values, open_registry
from liveml.cli.render import console, error_console, print_json, table, when
from liveml.errors import Invalid
from liveml.monitoring.alerts import parse_duration
from liveml.monitoring.results import FeatureDrift, MonitorResult

#: ``liveml monitor run`` exits with this when the dataset drifted (0: no drift, 1/2: errors)
EXIT_DRIFT = 3

monitor_app = typer.Typer(
    help="Drift and performance over a window of the prediction log.", no_args_is_help=True
)
Window = Annotated[str, typer.Option("--window", help="How far back from now: 30m, 24h, 7d, …")]


def _score(f: FeatureDrift) -> str:
    if f.skipped:
        return f"skipped: {f.skipped}"
    if f.score is None:
        return "—"
    sign = "<" if f.score_is_p_value else "≥"
    return f"{f.score:.4g} ({'p-value' if f.score_is_p_value else 'distance'}; drift when {sign} {f.threshold:g})"


def show_result(result: MonitorResult) -> None:
    out = console()
    versions = ", ".join(map(str, result.versions)) or "—"
    out.print(
        f"[bold]{result.model}[/] {when(result.start)} → {when(result.end)}: {result.rows:,} predictions "
        f"(versions {versions}; reference: version {result.reference_version})"
    )
    if result.dataset is not None:
        d = result.dataset
        verdict = "[red]DRIFT[/]" if result.drift else "no drift"
        out.print(
            f"dataset: {verdict}: {d.drifted_columns} of {d.columns} columns drifted "
            f"(share {d.share:.2f}, threshold {d.threshold:.2f})"
        )
    if result.multivariate is not None and result.multivariate.score is not None:
        m = result.multivariate
        out.print(
            f"multivariate (PCA reconstruction error): {m.score:.4g}, reference band "
            f"{m.lower:.4g} to {m.upper:.4g}: {'[red]DRIFT[/]' if m.drift else 'no drift'}"
        )
    rows = [
        [f.column, f.role, f.kind, f.test, _score(f), "DRIFT" if f.drift else ""]
        for f in (*result.features, *result.predictions)
    ]
    if rows:
        table(None, ["column", "role", "kind", "test", "score", "drift"], rows)
    for perf in (result.realized, result.estimated):
        if perf is None:
            continue
        if perf.skipped:
            out.print(f"{perf.kind} performance: {perf.skipped}")
            continue
        figures = ", ".join(
            f"{m.name} {m.value:.3f}"
            + (f" [{m.lower:.3f}, {m.upper:.3f}]" if m.lower is not None and m.upper is not None else "")
            for m in perf.metrics
            if m.value is not None
        )
        behind = (
            f"{perf.labelled_rows:,} labelled rows" if perf.kind == "realized" else f"{result.rows:,} rows"
        )
        out.print(f"{perf.kind} performance ({behind}): {figures}")
    for note in result.notes:
        out.print(f"note: {note}", markup=False)


@monitor_app.command("run")
def run(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model reference; its current version is the reference.")],
    window: Window = "24h",
    json_out: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON.")] = False,
    alerts: Annotated[
        bool, typer.Option("--alerts/--no-alerts", help="Apply the model's alert rules.")
    ] = True,
) -> None:
    """Drift and performance now; exit code 3 when the dataset drifted."""
    from liveml.monitoring.monitor import Monitor
    from liveml.monitoring.notifier import Notifier

    span = _window(window)
    with open_registry(ctx) as registry:
        notifier = Notifier(registry) if alerts else None
        try:
            done = Monitor(registry, notifier=notifier).run(model, window=span, alert=alerts)
        finally:
            if notifier is not None:
                notifier.close(timeout=30)  # deliver (with retries) before the command ends
    if json_out:
        print_json(done.result)
    else:
        show_result(done.result)
    if done.result.drift:
        raise typer.Exit(EXIT_DRIFT)


@monitor_app.command("report")
def report(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model reference.")],
    window: Window = "7d",
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")] = None,
    json_path: Annotated[
        str | None, typer.Option("--json", help="Write the JSON result here (- for stdout).")
    ] = None,
) -> None:
    """An HTML page to read offline (plots per feature and over time), and/or the result as JSON."""
    from liveml.monitoring.monitor import Monitor
    from liveml.monitoring.report import render_html, render_json

    if html is None and json_path is None:
        raise Invalid("say where the report goes: --html report.html and/or --json report.json")
    with open_registry(ctx) as registry:
        done = Monitor(registry).run(model, window=_window(window), alert=False)
    if html is not None:
        html.write_text(render_html(done.result, done.profile, done.window.inputs, done.window.outputs))
        error_console().print(f"wrote {html} ({done.result.rows:,} predictions)")
    if json_path == "-":
        sys.stdout.write(render_json(done.result) + "\n")
    elif json_path is not None:
        Path(json_path).write_text(render_json(done.result))
        error_console().print(f"wrote {json_path}")


@monitor_app.command("config")
def config(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    test: Annotated[
        list[str] | None,
        typer.Option("--test", help="COLUMN=TEST (ks, chisquare, ztest, wasserstein, jensenshannon, psi)."),
    ] = None,
    threshold: Annotated[list[str] | None, typer.Option("--threshold", help="COLUMN=VALUE.")] = None,
    drift_share: Annotated[
        float | None,
        typer.Option("--drift-share", help="Share of drifted columns that makes the dataset drift."),
    ] = None,
    min_rows: Annotated[
        int | None, typer.Option("--min-rows", help="Below this many rows nothing is declared.")
    ] = None,
    numeric_test: Annotated[
        str | None, typer.Option("--numeric-test", help="Test for every numeric column (default: automatic).")
    ] = None,
    categorical_test: Annotated[
        str | None, typer.Option("--categorical-test", help="Test for every categorical column.")
    ] = None,
    multivariate: Annotated[
        bool | None, typer.Option("--multivariate/--no-multivariate", help="PCA reconstruction drift.")
    ] = None,
    time_chunks: Annotated[
        int | None, typer.Option("--time-chunks", help="Slices of the window over time (report, plots).")
    ] = None,
    chunk_rows: Annotated[
        int | None,
        typer.Option("--chunk-rows", help="Slice the window by this many rows instead of by time."),
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Back to the defaults first.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show or change a model's drift settings (tests and thresholds per column, dataset share, min rows)."""
    from liveml.monitoring.monitor import Monitor

    changes: dict[str, object] = {}
    if test:
        changes["tests"] = key_values(test, what="--test", example="plan=psi")
    if threshold:
        values = key_values(threshold, what="--threshold", example="age=0.2")
        try:
            changes["thresholds"] = {k: float(v) for k, v in values.items()}
        except ValueError as exc:
            raise Invalid(f"--threshold values must be numbers: {exc}") from exc
    for key, value in (
        ("drift_share", drift_share),
        ("min_rows", min_rows),
        ("default_numeric_test", numeric_test),
        ("default_categorical_test", categorical_test),
        ("multivariate", multivariate),
        ("time_chunks", time_chunks),
        ("chunk_rows", chunk_rows),
    ):
        if value is not None:
            changes[key] = value
    with open_registry(ctx) as registry:
        monitor = Monitor(registry)
        current = (
            monitor.set_config(model, changes, reset=reset) if (changes or reset) else monitor.config(model)
        )
    if json_out:
        print_json(current)
        return
    console().print_json(current.model_dump_json())


def feedback(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model reference (labels are kept per model).")],
    input: Annotated[str, typer.Option("--input", "-i", help="Labels: CSV, Parquet or JSON lines.")],
    id_column: Annotated[
        str, typer.Option("--id-column", help="Column holding the prediction ids.")
    ] = "prediction_id",
    label_column: Annotated[str, typer.Option("--label-column", help="Column holding the labels.")] = "label",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Ground-truth labels arriving later, joined to predictions by prediction id."""
    from liveml.monitoring.labels import LabelStore, labels_from_frame
    from liveml.monitoring.log import PredictionLog
    from liveml.tabular import read_table

    entries = labels_from_frame(read_table(input, what="labels"), id_column, label_column)
    with open_registry(ctx) as registry:
        result = LabelStore(registry).add(model, entries)
        logged = PredictionLog(registry.settings).ids(result.model, registry.settings.log_retention_days)
    unmatched = sum(1 for e in entries if str(e["prediction_id"]) not in logged)
    if json_out:
        print_json({**result.model_dump(mode="json"), "unmatched": unmatched})
        return
    out = console()
    out.print(
        f"{result.model}: {result.accepted:,} new labels, {result.repeated:,} replaced, {result.invalid:,} refused; "
        f"{unmatched:,} match no logged prediction (yet)"
    )
    for problem in result.problems:
        out.print(f"  {problem}", markup=False)


def _window(text: str) -> timedelta:
    span = parse_duration(text, field="--window")
    if span <= timedelta(0):
        raise Invalid("--window must be longer than 0, e.g. 24h or 7d")
    return span
