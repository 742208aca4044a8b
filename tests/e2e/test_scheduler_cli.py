"""`liveml scheduler` and `liveml serve` as a user runs them: a real process that finds an overdue
schedule, records its job, starts the job's runner (`liveml jobs run`), and stops cleanly on SIGTERM,
giving its lease up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

import pandas as pd
import pytest

from liveml import Registry, Settings
from liveml.jobs.scheduler import LEASE_NAME
from liveml.jobs.schedules import Schedule, ScheduleStore, slots_until
from liveml.jobs.spec import Job
from liveml.jobs.store import JobStore
from liveml.registry.schema import LeaseRow, utcnow
from tests.e2e.test_serve_cli import serving

LIVEML = [sys.executable, "-m", "liveml.cli.main"]
pytestmark = pytest.mark.slow


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEML_")}
    return {**env, "LIVEML_HOME": str(home)}


def _wait_for_job(registry: Registry, schedule_id: int, proc: subprocess.Popen[str]) -> Job:
    """The schedule's job once its runner has finished it (or the first failure to get that far)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        jobs = JobStore(registry).list(schedule_id=schedule_id)
        if jobs and jobs[0].status in ("succeeded", "failed", "cancelled"):
            return jobs[0]
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"liveml scheduler exited early ({proc.returncode}):\n{out}\n{err}")
        time.sleep(0.2)
    raise AssertionError(f"no finished job for schedule {schedule_id}: {JobStore(registry).list()}")


@dataclass
class Overdue:
    """A registry with a daily schedule whose next run was due days ago, and the data its run reads."""

    home: Path
    registry: Registry
    schedule: Schedule
    now: datetime
    rows: int

    def check(self, job: Job, tmp_path: Path) -> None:
        """The job is the newest missed slot's, read and wrote that day's files, and is the only one."""
        assert job.status == "succeeded", job.message
        assert job.scheduled_for is not None and job.scheduled_for <= self.now
        day = f"{job.scheduled_for:%Y-%m-%d}"
        assert (job.spec.input, job.spec.output) == (
            f"{tmp_path}/data/{day}.parquet",
            f"{tmp_path}/out/{day}.parquet",
        )
        assert len(pd.read_parquet(tmp_path / "out" / f"{day}.parquet")) == self.rows
        assert (self.home / "jobs" / str(job.id) / "runner.log").exists()
        assert [j.id for j in JobStore(self.registry).list()] == [job.id]  # the latest missed slot, once
        after = ScheduleStore(self.registry).get(self.schedule.id)
        assert after.last_run_at == job.scheduled_for and after.next_run_at > self.now
        with self.registry.db.read_session() as session:
            assert session.get(LeaseRow, LEASE_NAME) is None  # given up when it stopped


@pytest.fixture
def overdue(tmp_path: Path, model_files: dict[str, Path]) -> Iterator[Overdue]:
    home = tmp_path / "home"
    rows = pd.read_csv(model_files["rows"])
    now = utcnow()
    for slot in islice(slots_until("0 2 * * *", "UTC", now + timedelta(hours=1)), 2):
        data = tmp_path / "data" / f"{slot:%Y-%m-%d}.parquet"  # today's slot or yesterday's: either runs
        data.parent.mkdir(exist_ok=True)
        rows.to_parquet(data)
    with Registry.init(Settings(home=home, user="tester")) as registry:
        registry.push("churn", model_files["logistic"], aliases=["production"])
        schedule = ScheduleStore(registry).create(
            "churn@production",
            "0 2 * * *",
            {"input": f"{tmp_path}/data/{{date}}.parquet", "output": f"{tmp_path}/out/{{date}}.parquet"},
            now=now - timedelta(days=3),  # its next run was due days ago: no scheduler was up
        )
        yield Overdue(home, registry, schedule, now, len(rows))


def test_the_scheduler_starts_an_overdue_run(overdue: Overdue, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*LIVEML, "scheduler", "--poll", "0.5"],
        cwd=tmp_path,
        env=_env(overdue.home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        job = _wait_for_job(overdue.registry, overdue.schedule.id, proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"started job {job.id} (churn:1) for schedule {overdue.schedule.id}" in out
    assert "leads" in err and "scheduler stopped" in err and "Traceback" not in err
    overdue.check(job, tmp_path)


def test_serve_runs_the_scheduler_once_in_its_master_process(overdue: Overdue, tmp_path: Path) -> None:
    with serving(["--workers", "2"], overdue.home, tmp_path) as (_url, proc):
        job = _wait_for_job(overdue.registry, overdue.schedule.id, proc)
    overdue.check(job, tmp_path)
