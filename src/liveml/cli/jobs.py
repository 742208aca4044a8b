"""``liveml jobs``: the batch jobs there are, one job's record, resume, cancel, and running a queued job."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from liveml.cli import startup
from liveml.cli.context import open_registry, settings_of
from liveml.cli.render import console, error_console, print_json, table, when
from liveml.jobs.launch import spawn_runner
from liveml.jobs.runner import Progress as ProgressCallback
from liveml.jobs.runner import run_job
from liveml.jobs.spec import Job
from liveml.jobs.store import JobStore
from liveml.registry import Registry

jobs_app = typer.Typer(help="Batch jobs: list, show, resume, cancel.")


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "— rows/s", style="progress.data.speed")


@contextmanager
def progress_bar(label: str, *, quiet: bool = False) -> Iterator[ProgressCallback | None]:
    """A bar with rows, rows/s and ETA on a terminal (stderr); nothing when piped or ``quiet``."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        _RowsPerSecond(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=error_console(), transient=False) as bar:
        task = bar.add_task(label, total=None)

        def update(rows: int, total: int | None) -> None:
            bar.update(task, completed=rows, total=total)

        yield update


def summary(job: Job) -> str:
    speed = f", {job.rows_per_s:,.0f} rows/s" if job.rows_per_s else ""
    errors = f", {job.errors:,} bad rows ({job.message})" if job.errors else ""
    return (
        f"job {job.id} {job.display_status}: {job.rows_done:,} rows → {job.rows_out:,} predictions by "
        f"{job.ref} in {job.spec.output} ({job.busy_s:.1f}s{speed}){errors}"
    )


def run_in_foreground(registry: Registry, job: Job, *, quiet: bool = False) -> Job:
    startup.hold()  # until the job reports its first progress: the model is loaded by then
    try:
        with progress_bar(f"job {job.id} {job.ref}", quiet=quiet) as update:

            def progress(rows: int, total: int | None) -> None:
                startup.release()
                if update is not None:
                    update(rows, total)

            done = run_job(registry, job.id, progress=progress)
    finally:
        startup.release()
    if not quiet or done.status != "succeeded":
        error_console().print(summary(done), highlight=False)
    return done


@jobs_app.callback(invoke_without_command=True)
def jobs(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    status: Annotated[str | None, typer.Option(help="Only jobs in this state (queued, running, …).")] = None,
    model: Annotated[str | None, typer.Option(help="Only jobs of this model.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
) -> None:
    """Running and past jobs: id, status, rows, rows/s, errors, model version."""
    if ctx.invoked_subcommand is not None:
        return
    with open_registry(ctx) as registry:
        found = JobStore(registry).list(limit=limit, status=status, model=model)
    if json_out:
        print_json([_json(j) for j in found])
        return
    table(
        None,
        ["id", "status", "model", "rows", "rows/s", "errors", "input", "output", "started", "finished"],
        [
            [
                j.id,
                j.display_status,
                j.ref,
                f"{j.rows_done:,}" + (f"/{j.total_rows:,}" if j.total_rows else ""),
                f"{j.rows_per_s:,.0f}" if j.rows_per_s else "",
                f"{j.errors:,}",
                j.spec.source,
                j.spec.output,
                when(j.started_at) if j.started_at else "",
                when(j.finished_at) if j.finished_at else "",
            ]
            for j in found
        ],
    )


def _json(job: Job) -> dict[str, object]:
    data = job.model_dump(mode="json")
    data["display_status"] = job.display_status
    data["rows_per_s"] = job.rows_per_s
    return data


@jobs_app.command("show")
def show(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """One job's whole record: spec, status, counts, timings, model version."""
    with open_registry(ctx) as registry:
        job = JobStore(registry).get(job_id)
    if json_out:
        print_json(_json(job))
        return
    out = console()
    out.print(f"[bold]job {job.id}[/]  {job.display_status}  {job.ref}  (uid {job.uid})")
    out.print(f"  input:   {job.spec.source}")
    out.print(f"  output:  {job.spec.output}")
    total = f" of {job.total_rows:,}" if job.total_rows else ""
    out.print(f"  rows:    {job.rows_done:,}{total} read, {job.rows_out:,} predicted, {job.errors:,} bad")
    out.print(f"  chunks:  {job.chunks_done} of {job.spec.chunk_rows:,} rows, engine {job.spec.engine}")
    speed = f", {job.rows_per_s:,.0f} rows/s" if job.rows_per_s else ""
    out.print(f"  time:    {job.busy_s:.1f}s working{speed}, {job.attempts} attempt(s)")
    out.print(f"  created: {when(job.created_at)} by {job.created_by}")
    if job.started_at:
        out.print(f"  started: {when(job.started_at)} on {job.runner}")
    if job.finished_at:
        out.print(f"  ended:   {when(job.finished_at)}")
    if job.schedule_id is not None:
        slot = when(job.scheduled_for) if job.scheduled_for else ""
        out.print(f"  schedule {job.schedule_id}, run for {slot}")
    if job.message:
        out.print(f"  message: {job.message}")


@jobs_app.command("resume")
def resume(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    detach: Annotated[
        bool, typer.Option("--detach", help="Run in the background; follow with `liveml jobs show`.")
    ] = False,
) -> None:
    """Continue a job after a crash, a kill, a failure or a cancel: no duplicated or missing rows."""
    with open_registry(ctx) as registry:
        job = JobStore(registry).get(job_id)
        if detach:
            spawn_runner(job.id, settings_of(ctx))
            error_console().print(f"job {job.id} resuming in the background; `liveml jobs show {job.id}`")
            return
        done = run_in_foreground(registry, job)
    if done.status != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("cancel")
def cancel(ctx: typer.Context, job_id: Annotated[int, typer.Argument(help="Job id.")]) -> None:
    """Stop a queued or running job (its runner stops at the next chunk); it can be resumed later."""
    with open_registry(ctx) as registry:
        job = JobStore(registry).cancel(job_id)
    console().print(f"job {job.id} cancelled; `liveml jobs resume {job.id}` continues it")


@jobs_app.command("run", hidden=True)
def run(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Run a queued job in this process (what the scheduler and the HTTP API start)."""
    with open_registry(ctx) as registry:
        done = run_in_foreground(registry, JobStore(registry).get(job_id), quiet=quiet)
    if done.status != "succeeded":
        raise typer.Exit(1)
