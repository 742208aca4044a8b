"""``liveml batch run``: score a file, a folder, a glob or a query in chunks, with the version on record."""

from __future__ import annotations

from typing import Annotated

import typer

from liveml.cli.context import open_registry, settings_of
from liveml.cli.job_options import (
    ChunkRows,
    DaskScheduler,
    Db,
    EngineOpt,
    Errors,
    Explain,
    Input,
    InputFormat,
    InputSql,
    Keep,
    LogSample,
    MaxErrors,
    Output,
    OutputFormat,
    Proba,
    Workers,
    spec_fields,
)
from liveml.cli.jobs import run_in_foreground
from liveml.cli.lazy import lazy_group
from liveml.cli.render import error_console, print_json
from liveml.jobs.launch import spawn_runner
from liveml.jobs.runner import check_spec
from liveml.jobs.spec import DEFAULT_CHUNK_ROWS, JobSpec
from liveml.jobs.store import JobStore

batch_app = typer.Typer(
    cls=lazy_group({"schedule": "liveml.cli.schedules:schedule"}),  # the scheduler's modules: only for it
    help="Batch predictions: score big files and tables, now or on a schedule.",
    no_args_is_help=True,
)


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
    explain: Explain = False,
    chunk_rows: ChunkRows = DEFAULT_CHUNK_ROWS,
    max_errors: MaxErrors = None,
    engine: EngineOpt = "local",
    workers: Workers = 1,
    scheduler: DaskScheduler = None,
    log_sample: LogSample = None,
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
            explain,
            log_sample,
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
