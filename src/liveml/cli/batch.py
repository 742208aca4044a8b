"""``liveml batch run``: score a file, a folder, a glob or a query in chunks, with the version on record."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from liveml.cli.context import open_registry, settings_of
from liveml.cli.jobs import run_in_foreground
from liveml.cli.render import error_console, print_json
from liveml.jobs.launch import spawn_runner
from liveml.jobs.runner import check_spec
from liveml.jobs.spec import DEFAULT_CHUNK_ROWS, JobSpec
from liveml.jobs.store import JobStore

batch_app = typer.Typer(
    help="Batch predictions: score big files and tables, now or on a schedule.", no_args_is_help=True
)

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
ChunkRows = Annotated[
    int, typer.Option("--chunk-rows", help="Rows read and scored at a time (bounds memory).")
]
MaxErrors = Annotated[
    int | None, typer.Option("--max-errors", help="Fail the job when more rows than this fail validation.")
]
EngineOpt = Annotated[str, typer.Option("--engine", help="local (process pool) or dask.")]
Workers = Annotated[int, typer.Option("--workers", help="Processes (local) or local Dask workers.")]
Scheduler = Annotated[
    str | None, typer.Option("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786.")
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
    }


@batch_app.command("run")
def run(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@ALIAS (pinned to a version now).")],
    output: Output,
    input: Input = None,
    input_sql: InputSql = None,
    db: Db = None,
    input_format: InputFormat = "auto",
    output_format: OutputFormat = "auto",
    errors: Errors = None,
    keep: Keep = None,
    proba: Proba = False,
    chunk_rows: ChunkRows = DEFAULT_CHUNK_ROWS,
    max_errors: MaxErrors = None,
    engine: EngineOpt = "local",
    workers: Workers = 1,
    scheduler: Scheduler = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Run in the background; follow with `liveml jobs show ID`.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the job record as JSON when done.")] = False,
) -> None:
    """Score rows in bounded-memory chunks; output in input order, resumable with `liveml jobs resume`."""
    spec = JobSpec.parse(
        spec_fields(
            model,
            input,
            input_sql,
            db,
            input_format,
            output,
            output_format,
            errors,
            keep,
            proba,
            chunk_rows,
            max_errors,
            engine,
            workers,
            scheduler,
        )
    )
    check_spec(spec)
    with open_registry(ctx) as registry:
        job = JobStore(registry).create(spec)
        if detach:
            spawn_runner(job.id, settings_of(ctx))
            error_console().print(f"job {job.id} started in the background; `liveml jobs show {job.id}`")
            if json_out:
                print_json(job)
            return
        done = run_in_foreground(registry, job, quiet=json_out)
    if json_out:
        print_json(done)
    if done.status != "succeeded":
        raise typer.Exit(1)
