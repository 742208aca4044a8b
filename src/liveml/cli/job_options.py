"""The options a batch job takes, shared by ``liveml batch run`` and ``liveml batch schedule``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

Input = Annotated[
    str | None,
    typer.Option(
        "--input", "-i", help="File, glob, partitioned folder or fsspec URL (CSV, Parquet, JSON lines)."
    ),
]
InputSql = Annotated[str | None, typer.Option("--input-sql", help="A query to read the rows from --db.")]
Db = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL that --input-sql runs on.")]
InputFormat = Annotated[str, typer.Option("--input-format", help="auto, csv, parquet or jsonl.")]
Output = Annotated[
    str,
    typer.Option("--output", "-o", help="A .parquet or .csv file, or a folder ending in / (Parquet parts)."),
]
OutputFormat = Annotated[str, typer.Option("--output-format", help="auto, parquet or csv.")]
Errors = Annotated[
    str | None,
    typer.Option("--errors", help="CSV for rows that fail validation (default: next to the output)."),
]
Keep = Annotated[str | None, typer.Option("--keep", help="Comma-separated input columns to copy (ids).")]
Proba = Annotated[bool, typer.Option("--proba", help="Add class probability columns (classifiers).")]
Explain = Annotated[
    bool,
    typer.Option(
        "--explain", help="Add per-column attributions (shap_<column>, shap_base, shap_output, shap_space)."
    ),
]
ChunkRows = Annotated[
    int, typer.Option("--chunk-rows", help="Rows read and scored at a time (bounds memory).")
]
MaxErrors = Annotated[
    int | None, typer.Option("--max-errors", help="Fail the job when more rows than this fail validation.")
]
EngineOpt = Annotated[str, typer.Option("--engine", help="local (process pool) or dask.")]
Workers = Annotated[int, typer.Option("--workers", help="Processes (local) or local Dask workers.")]
DaskScheduler = Annotated[
    str | None, typer.Option("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786.")
]
LogSample = Annotated[
    float | None,
    typer.Option(
        "--log-sample",
        help="Share of the rows logged to the prediction log (0 to 1; default: the log_sample_rate setting).",
    ),
]


def spec_fields(
    model: str,
    input: str | None,
    input_sql: str | None,
    db: str | None,
    input_format: str,
    output: str,
    output_format: str,
    errors: str | None,
    keep: str | None,
    proba: bool,
    chunk_rows: int,
    max_errors: int | None,
    engine: str,
    workers: int,
    scheduler: str | None,
    explain: bool = False,
    log_sample: float | None = None,
) -> dict[str, Any]:
    """The CLI options as JobSpec fields (shared by ``batch run`` and ``batch schedule``)."""
    return {
        "model": model,
        "input": input,
        "input_sql": input_sql,
        "db": db,
        "input_format": input_format,
        "output": output,
        "output_format": output_format,
        "errors": errors,
        "keep": tuple(c.strip() for c in keep.split(",") if c.strip()) if keep else (),
        "proba": proba,
        "chunk_rows": chunk_rows,
        "max_errors": max_errors,
        "engine": engine,
        "workers": workers,
        "scheduler": scheduler,
        "explain": explain,
        "log_sample": log_sample,
    }
