"""Job records in the registry database: submit, claim (one runner at a time), checkpoint, finish."""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from liveml.errors import Conflict, Invalid, NotFound
from liveml.jobs.spec import RESUMABLE, Job, JobSpec
from liveml.processes import alive
from liveml.registry.registry import Registry
from liveml.registry.schema import JobRow, utcnow
from liveml.security import audit

HEARTBEAT_S = 5.0
#: a running job whose runner has not been heard from for this long is shown as interrupted
STALE_AFTER_S = 30.0


class JobStopped(Exception):
    """The job was cancelled, or another runner took it over: this runner must stop at once."""


def runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobStore:
    """Reads and writes the ``jobs`` table of a registry's database."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.db = registry.db

    # -- submit and read -------------------------------------------------------------------
    def create(
        self,
        spec: JobSpec,
        *,
        schedule_id: int | None = None,
        scheduled_for: datetime | None = None,
    ) -> Job:
        """Record a queued job, with the model reference pinned to the version it resolves to now."""
        version = self.registry.get(spec.model)
        now = utcnow()
        row = JobRow(
            uid=secrets.token_hex(8),
            model=version.model,
            version=version.version,
            status="queued",
            spec=spec.model_dump(mode="json"),
            chunks_done=0,
            rows_done=0,
            rows_out=0,
            errors=0,
            busy_s=0.0,
            attempts=0,
            schedule_id=schedule_id,
            scheduled_for=scheduled_for,
            created_by=self.registry.settings.user,
            created_at=now,
            updated_at=now,
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            after = {
                "model": row.model,
                "version": row.version,
                "spec": row.spec,
                "schedule_id": schedule_id,
                "scheduled_for": scheduled_for,
            }
            audit.record_change(self.registry, session, "job.submit", f"job:{row.id}", after=after)
            return _job(row)

    def get(self, job_id: int) -> Job:
        with self.db.read_session() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                raise NotFound(f"no job {job_id}; `liveml jobs` lists the jobs there are")
            return _job(row)

    def list(
        self,
        *,
        limit: int = 50,
        status: str | None = None,
        model: str | None = None,
        schedule_id: int | None = None,
    ) -> list[Job]:
        """Newest first."""
        query = select(JobRow).order_by(JobRow.id.desc()).limit(limit)
        if status is not None:
            query = query.where(JobRow.status == status)
        if model is not None:
            query = query.where(JobRow.model == model)
        if schedule_id is not None:
            query = query.where(JobRow.schedule_id == schedule_id)
        with self.db.read_session() as session:
            return [_job(row) for row in session.scalars(query)]

    # -- the runner's side -----------------------------------------------------------------
    def claim(self, job_id: int) -> tuple[Job, str]:
        """Become the job's only runner. Refuses a job that succeeded or that a live runner holds."""
        owner = secrets.token_hex(16)
        with self.db.session() as session:
            row = session.scalars(select(JobRow).where(JobRow.id == job_id).with_for_update()).one_or_none()
            if row is None:
                raise NotFound(f"no job {job_id}; `liveml jobs` lists the jobs there are")
            if row.status == "succeeded":
                raise Conflict(f"job {job_id} already succeeded; its output is {row.spec['output']}")
            if row.status == "running" and not _stale(row):
                raise Conflict(
                    f"job {job_id} is running ({row.runner}, last heard from "
                    f"{_ago(row.heartbeat_at)}); wait for it, or cancel it with `liveml jobs cancel {job_id}`"
                )
            if row.status not in RESUMABLE:
                raise Conflict(f"job {job_id} is {row.status} and cannot be run")
            now = utcnow()
            row.status = "running"
            row.owner = owner
            row.runner = runner_name()
            row.heartbeat_at = now
            row.attempts += 1
            row.message = None
            row.started_at = row.started_at or now
            row.finished_at = None
            row.updated_at = now
            session.flush()
            return _job(row), owner

    def _update(self, job_id: int, token: str, **values: Any) -> None:
        now = utcnow()
        with self.db.session() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.owner == token, JobRow.status == "running")
                .values(heartbeat_at=now, updated_at=now, **values)
            )
            if getattr(result, "rowcount", 0) == 0:
                row = session.get(JobRow, job_id)
                state = row.status if row is not None else "deleted"
                raise JobStopped(f"job {job_id} is {state} or was taken over by another runner")

    def heartbeat(self, job_id: int, owner: str) -> None:
        self._update(job_id, owner)

    def set_total(self, job_id: int, owner: str, total_rows: int | None) -> None:
        self._update(job_id, owner, total_rows=total_rows)

    def checkpoint(
        self,
        job_id: int,
        owner: str,
        *,
        chunks_done: int,
        rows_done: int,
        rows_out: int,
        errors: int,
        busy_s: float,
    ) -> None:
        """Record that every chunk before ``chunks_done`` is written for good."""
        self._update(
            job_id,
            owner,
            chunks_done=chunks_done,
            rows_done=rows_done,
            rows_out=rows_out,
            errors=errors,
            busy_s=busy_s,
        )

    def finish(self, job_id: int, owner: str, status: str, message: str | None = None) -> None:
        self._update(job_id, owner, status=status, message=message, finished_at=utcnow(), owner=None)

    # -- the user's side -------------------------------------------------------------------
    def change(self, job_id: int, **fields: Any) -> Job:
        """Change spec fields that do not alter finished chunks (``max_errors``) before resuming."""
        allowed = {"max_errors"}
        if not set(fields) <= allowed:
            raise Invalid(f"only {', '.join(sorted(allowed))} can change on a resumed job")
        with self.db.session() as session:
            row = session.scalars(select(JobRow).where(JobRow.id == job_id).with_for_update()).one_or_none()
            if row is None:
                raise NotFound(f"no job {job_id}; `liveml jobs` lists the jobs there are")
            if row.status == "running" and not _stale(row):
                raise Conflict(f"job {job_id} is running; cancel it before changing it")
            spec = JobSpec.model_validate({**row.spec, **fields})
            before = {k: row.spec.get(k) for k in fields}
            row.spec = spec.model_dump(mode="json")
            row.updated_at = utcnow()
            session.flush()
            after = {k: row.spec.get(k) for k in fields}
            audit.record_change(
                self.registry, session, "job.change", f"job:{job_id}", before=before, after=after
            )
            return _job(row)

    def cancel(self, job_id: int) -> Job:
        """Stop a queued or running job; its runner notices at its next checkpoint or heartbeat."""
        with self.db.session() as session:
            row = session.scalars(select(JobRow).where(JobRow.id == job_id).with_for_update()).one_or_none()
            if row is None:
                raise NotFound(f"no job {job_id}; `liveml jobs` lists the jobs there are")
            if row.status not in ("queued", "running"):
                raise Conflict(f"job {job_id} is {row.status}; only queued or running jobs can be cancelled")
            before = {"status": row.status}
            now = utcnow()
            row.status = "cancelled"
            row.message = "cancelled by " + self.registry.settings.user
            row.owner = None
            row.finished_at = now
            row.updated_at = now
            session.flush()
            audit.record_change(
                self.registry,
                session,
                "job.cancel",
                f"job:{job_id}",
                before=before,
                after={"status": "cancelled"},
            )
            return _job(row)


def _stale(row: JobRow) -> bool:
    """Running, but its runner is gone: a dead process on this host, or silent for ``STALE_AFTER_S``."""
    if row.status != "running":
        return False
    if row.heartbeat_at is None or utcnow() - row.heartbeat_at > timedelta(seconds=STALE_AFTER_S):
        return True
    return _dead_here(row.runner)


def _dead_here(runner: str | None) -> bool:
    host, _, pid = (runner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not alive(int(pid))


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    return f"{(utcnow() - when).total_seconds():.0f}s ago"


def _job(row: JobRow) -> Job:
    return Job(
        id=row.id,
        uid=row.uid,
        model=row.model,
        version=row.version,
        status=row.status,
        spec=JobSpec.model_validate(row.spec),
        chunks_done=row.chunks_done,
        rows_done=row.rows_done,
        rows_out=row.rows_out,
        errors=row.errors,
        total_rows=row.total_rows,
        busy_s=row.busy_s,
        message=row.message,
        runner=row.runner,
        heartbeat_at=row.heartbeat_at,
        attempts=row.attempts,
        schedule_id=row.schedule_id,
        scheduled_for=row.scheduled_for,
        created_by=row.created_by,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        stale=_stale(row),
    )


__all__ = ["HEARTBEAT_S", "STALE_AFTER_S", "JobStopped", "JobStore", "runner_name"]
