"""``liveml explain``: explain rows in this process, or read back a stored explanation by prediction id."""

from __future__ import annotations

import sys
from typing import Annotated

import pandas as pd
import typer

from liveml.cli.context import open_registry, settings_of
from liveml.cli.render import console, error_console, print_json, table
from liveml.errors import Invalid, NotFound
from liveml.explain.results import Explanation


def explain(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@ALIAS.")],
    input: Annotated[
        str | None, typer.Option("--input", "-i", help="Rows to explain: CSV, Parquet or JSON lines.")
    ] = None,
    prediction_id: Annotated[
        str | None,
        typer.Option("--prediction-id", help="Show the explanation stored with this prediction id."),
    ] = None,
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="Where to write explanations (.parquet, .csv, .jsonl) or - for CSV on stdout.",
        ),
    ] = "-",
    target_class: Annotated[
        str | None,
        typer.Option("--class", help="Explain this class's output (default: each row's predicted class)."),
    ] = None,
    space: Annotated[
        str,
        typer.Option("--space", help="auto (each family's exact space) or probability (classifiers)."),
    ] = "auto",
    keep: Annotated[
        str | None, typer.Option(help="Comma-separated input columns to copy to the output (ids).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a stored explanation as JSON.")] = False,
) -> None:
    """Per-column attributions that add up to the model's output (base + attributions = output)."""
    if (input is None) == (prediction_id is None):
        raise Invalid(
            "give exactly one of --input (rows to explain) and --prediction-id (a stored explanation)"
        )
    if prediction_id is not None:
        _show_stored(ctx, ref, prediction_id, json_out=json_out)
        return
    assert input is not None
    from liveml.explain import background_for
    from liveml.explain import explain as explain_rows
    from liveml.registry.loading import load_version
    from liveml.tabular import read_table, table_format, write_table

    if output != "-":
        table_format(output)  # refuse an unknown output type before doing the work
    frame = read_table(input, what="input")
    kept = [c.strip() for c in keep.split(",") if c.strip()] if keep else []
    missing = [c for c in kept if c not in frame.columns]
    if missing:
        raise Invalid(f"--keep names column(s) not in the input: {', '.join(missing)}")
    with open_registry(ctx) as registry:
        version = registry.get(ref)
        model = load_version(registry, version)
        background, source = background_for(registry, version)
    explained = explain_rows(
        model, frame, target_class=target_class, background=background, background_source=source, space=space
    )
    out = pd.concat([frame[kept].reset_index(drop=True), explained.to_frame()], axis=1)
    if output == "-":
        out.to_csv(sys.stdout, index=False)
    else:
        write_table(out, output)
        error_console().print(
            f"wrote explanations of {len(out)} rows of {version.ref} to {output} ({explained.method}, "
            f"{explained.output_space} space, background: {explained.background})"
        )


def _show_stored(ctx: typer.Context, ref: str, prediction_id: str, *, json_out: bool) -> None:
    from liveml.explain import ExplanationStore
    from liveml.registry import parse_ref

    name = parse_ref(ref).name
    found = ExplanationStore(settings_of(ctx)).lookup(name, prediction_id)
    if found is None:
        raise NotFound(
            f"no stored explanation for prediction {prediction_id!r} of model {name!r}; explanations are stored "
            f"when made through the server (POST /v1/models/{name}/explain) with the prediction log on"
        )
    if json_out:
        print_json(found)
        return
    _print(found)


def _print(found: Explanation) -> None:
    row = found.rows[0]
    head = f"prediction {row.prediction_id} of {found.model}:{found.version}"
    if row.target_class is not None:
        head += f", class {row.target_class!r}"
    console().print(head)
    console().print(
        f"{found.method} attributions in {found.output_space} space (background: {found.background}); "
        f"base {row.base_value:.6g} + attributions = output {row.output:.6g}"
    )
    ranked = sorted(row.attributions.items(), key=lambda item: -abs(item[1]))
    table(None, ["column", "attribution"], [(name, f"{value:+.6g}") for name, value in ranked])


__all__ = ["explain"]
