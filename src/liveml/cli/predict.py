"""``liveml predict``: score a file in this process, no server needed."""

from __future__ import annotations

import sys
from typing import Annotated

import pandas as pd
import typer

from liveml.cli.context import open_registry, settings_of
from liveml.cli.render import error_console
from liveml.errors import Invalid
from liveml.registry.loading import load_version
from liveml.tabular import read_table, table_format, write_table


def predict(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@ALIAS.")],
    input: Annotated[str, typer.Option("--input", "-i", help="Rows to score: CSV, Parquet or JSON lines.")],
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="Where to write predictions (.parquet, .csv, .jsonl) or - for CSV on stdout.",
        ),
    ] = "-",
    proba: Annotated[
        bool, typer.Option("--proba", help="Add class probability columns (classifiers).")
    ] = False,
    keep: Annotated[
        str | None, typer.Option(help="Comma-separated input columns to copy to the output (ids).")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Predict on a running liveml server (e.g. http://127.0.0.1:8000), not in this process.",
        ),
    ] = None,
) -> None:
    """Predict with a registered version, in this process (or on a server with --url)."""
    if output != "-":
        table_format(output)  # refuse an unknown output type before doing the work
    frame = read_table(input, what="input")
    kept = [c.strip() for c in keep.split(",") if c.strip()] if keep else []
    missing = [c for c in kept if c not in frame.columns]
    if missing:
        raise Invalid(
            f"--keep names column(s) not in the input: {', '.join(missing)}; input columns: {', '.join(frame.columns)}"
        )
    if url is not None:
        from liveml.client import Client

        with Client(url, settings=settings_of(ctx)) as client:
            remote = client.predict(ref, frame, probabilities=proba)
        answered, predictions = f"{remote.model}:{remote.version} at {url}", remote.to_frame()
    else:
        with open_registry(ctx) as registry:
            model = load_version(registry, registry.get(ref))
        answered, predictions = model.version.ref, model.predict(frame).to_frame(probabilities=proba)
    out = pd.concat([frame[kept].reset_index(drop=True), predictions], axis=1)
    if output == "-":
        out.to_csv(sys.stdout, index=False)
    else:
        write_table(out, output)
        error_console().print(f"wrote {len(out)} predictions from {answered} to {output}")
