"""Cron schedules of batch jobs: ``liveml batch schedule``, ``liveml schedules ...`` and ``liveml scheduler``."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from datetime import datetime
from types import FrameType
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
from liveml.cli.render import console, error_console, print_json, table
from liveml.jobs.scheduler import DEFAULT_POLL_S, Scheduler
from liveml.jobs.schedules import Schedule, ScheduleStore, render_spec, zone
from liveml.jobs.spec import DEFAULT_CHUNK_ROWS, Job

schedules_app = typer.Typer(
    help="Cron schedules of batch jobs: list (default), pause, resume, delete, history.",
    invoke_without_command=True,
)

JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ScheduleId = Annotated[int, typer.Argument(help="Schedule id (see `liveml schedules`).")]


def local_time(moment: datetime | None, timezone: str) -> str:
    """``2026-11-22 02:00 CET``: a moment in the schedule's timezone."""
    if moment is None:
        return ""
    return moment.astimezone(zone(timezone)).strftime("%Y-%m-%d %H:%M %Z")


def absolute(path: str | None) -> str | None:
    """A relative local path made absolute (keeping a trailing / and any {date} templates); URLs as given."""
    if path is None or "://" in path:
        return path
    return os.path.join(os.getcwd(), os.path.expanduser(path))


def schedule(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            help="NAME, NAME:VERSION or NAME@ALIAS; resolved at each run, so aliases are followed."
        ),
    ],
    cron: Annotated[
        str,
        typer.Option(
            "--cron", help="When to run: 5 cron fields, e.g. '0 2 * * *' (02:00 daily), or @hourly, @daily."
        ),
    ],
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
    timezone: Annotated[
        str, typer.Option("--timezone", help="IANA timezone the cron times and {date} are in.")
    ] = "UTC",
    catchup: Annotated[
        str,
        typer.Option(
            "--catchup",
            help="Runs missed while no scheduler was up: latest (run the newest once), all, skip.",
        ),
    ] = "latest",
    json_out: JsonOut = False,
) -> None:
    """Run a batch job on a cron schedule; `liveml serve` or `liveml scheduler` starts the runs."""
    fields = spec_fields(
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
    del fields["model"]  # the schedule keeps the reference and resolves it at each run
    for field in ("input", "output", "errors"):  # the scheduler may run elsewhere: paths from here on
        fields[field] = absolute(fields[field])
    with open_registry(ctx) as registry:
        created = ScheduleStore(registry).create(model, cron, fields, timezone=timezone, catchup=catchup)
    if json_out:
        print_json(created)
        return
    first = render_spec(created.spec, created.next_run_at, created.timezone)
    out = console()
    out.print(
        f"schedule {created.id}: {created.model} at '{created.cron}' ({created.timezone}), "
        f"catch-up {created.catchup}"
    )
    out.print(
        f"next run {local_time(created.next_run_at, created.timezone)}: {first.source} → {first.output}",
        markup=False,
    )
    out.print(
        "runs start while `liveml serve` or `liveml scheduler` is running; `liveml schedules` lists them"
    )


@schedules_app.callback()
def schedules_root(ctx: typer.Context, json_out: JsonOut = False) -> None:
    """Cron schedules of batch jobs (`liveml batch schedule` creates one)."""
    if ctx.invoked_subcommand is None:
        list_schedules(ctx, json_out)


@schedules_app.command("list")
def list_schedules(ctx: typer.Context, json_out: JsonOut = False) -> None:
    """Every schedule: when it runs next and last, and what it reads and writes."""
    with open_registry(ctx) as registry:
        found = ScheduleStore(registry).list()
    if json_out:
        print_json(found)
        return
    if not found:
        console().print(
            'no schedules yet: create one with `liveml batch schedule MODEL --cron "0 2 * * *" '
            "--input data/{date}.parquet --output out/{date}.parquet`",
            markup=False,
        )
        return
    table(
        None,
        ["id", "model", "cron", "tz", "next run", "last run", "paused", "input → output"],
        [
            (
                s.id,
                s.model,
                s.cron,
                s.timezone,
                "" if s.paused else local_time(s.next_run_at, s.timezone),
                local_time(s.last_run_at, s.timezone),
                "paused" if s.paused else "",
                f"{s.input} → {s.output}",
            )
            for s in found
        ],
    )


@schedules_app.command("pause")
def pause(ctx: typer.Context, schedule_id: ScheduleId) -> None:
    """Start no more runs until resumed (a run already started goes on)."""
    with open_registry(ctx) as registry:
        paused = ScheduleStore(registry).pause(schedule_id)
    console().print(f"schedule {paused.id} paused; `liveml schedules resume {paused.id}` starts it again")


@schedules_app.command("resume")
def resume(ctx: typer.Context, schedule_id: ScheduleId) -> None:
    """Start runs again from the next slot (slots passed while paused are not run)."""
    with open_registry(ctx) as registry:
        resumed = ScheduleStore(registry).resume(schedule_id)
    console().print(
        f"schedule {resumed.id} resumed; next run {local_time(resumed.next_run_at, resumed.timezone)}"
    )


@schedules_app.command("delete")
def delete(ctx: typer.Context, schedule_id: ScheduleId) -> None:
    """Remove a schedule; the jobs it started are kept."""
    with open_registry(ctx) as registry:
        gone = ScheduleStore(registry).delete(schedule_id)
    console().print(f"schedule {gone.id} deleted ({gone.model} at '{gone.cron}'); its past jobs are kept")


@schedules_app.command("history")
def history(
    ctx: typer.Context,
    schedule_id: ScheduleId,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many runs.")] = 50,
    json_out: JsonOut = False,
) -> None:
    """The jobs a schedule started, newest first."""
    with open_registry(ctx) as registry:
        store = ScheduleStore(registry)
        found = store.get(schedule_id)
        jobs = store.history(schedule_id, limit=limit)
    if json_out:
        print_json(jobs)
        return
    if not jobs:
        console().print(
            f"schedule {schedule_id} has started no job yet; next run "
            f"{local_time(found.next_run_at, found.timezone)}"
        )
        return
    table(
        None,
        ["job", "scheduled for", "status", "rows", "errors", "output"],
        [
            (
                j.id,
                local_time(j.scheduled_for, found.timezone),
                j.display_status,
                j.rows_done,
                j.errors,
                j.spec.output,
            )
            for j in jobs
        ],
    )


def scheduler(
    ctx: typer.Context,
    poll: Annotated[
        float, typer.Option("--poll", min=0.01, help="Seconds between looks for due schedules.")
    ] = DEFAULT_POLL_S,
) -> None:
    """Start scheduled batch jobs, in the foreground, until Ctrl-C (one leader among several)."""
    settings = settings_of(ctx)
    with open_registry(ctx) as registry:  # a missing or unreachable registry fails here, in one line
        where = registry.db.display_url
        count = len(ScheduleStore(registry).list())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("liveml.scheduler", "liveml.schedules"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    out = console()

    def started(schedule: Schedule, job: Job) -> None:
        out.print(
            f"started job {job.id} ({job.ref}) for schedule {schedule.id}, run of "
            f"{local_time(job.scheduled_for, schedule.timezone)}: {job.spec.source} → {job.spec.output}",
            markup=False,
        )
        sys.stdout.flush()

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    error_console().print(
        f"scheduler: {count} schedule(s) in {where}, looking every {poll:g}s; Ctrl-C stops it"
    )
    runner = Scheduler(settings, poll_s=poll, on_start=started)
    try:
        runner.run_forever(stop)
    finally:
        runner.close()
        for sig, old in previous.items():
            signal.signal(sig, old)
        for name in ("liveml.scheduler", "liveml.schedules"):
            logging.getLogger(name).removeHandler(handler)
    error_console().print("scheduler stopped")


__all__ = ["history", "schedule", "scheduler", "schedules_app"]
