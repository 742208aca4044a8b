"""Start a job's runner as its own process (``liveml jobs run ID``), as the scheduler and the HTTP API do.

A runner process keeps a batch job's CPU and memory away from the process that asked for it (a server
answering requests, a scheduler keeping time); the job record in the database is how they follow it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from liveml.settings import Settings


def runner_command(job_id: int) -> list[str]:
    return [sys.executable, "-m", "liveml.cli.main", "jobs", "run", str(job_id), "--quiet"]


def spawn_runner(job_id: int, settings: Settings) -> subprocess.Popen[bytes]:
    """Start ``liveml jobs run JOB_ID`` detached, on the same registry; its output goes to a log file in
    the data home (``jobs/<id>/runner.log``)."""
    env = dict(os.environ)
    env["LIVEML_HOME"] = str(settings.home_path)
    if settings.database_url:
        env["LIVEML_DATABASE_URL"] = settings.database_url
    log_dir = job_dir(settings, job_id)
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "runner.log", "ab") as log:
        return subprocess.Popen(
            runner_command(job_id),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not killed with the caller's terminal or process group
        )


def job_dir(settings: Settings, job_id: int) -> Path:
    """The job's working folder in the data home: staged output parts, the runner's log."""
    return settings.home_path / "jobs" / str(job_id)


__all__ = ["job_dir", "runner_command", "spawn_runner"]
