"""The scheduler: every poll interval, the leader of all schedulers sharing a database creates a job for
each due slot of each schedule and starts its runner (``liveml jobs run ID``) as its own process.

Leadership is a lease row (``leases``, name ``scheduler``) that the leader renews on every tick and that
expires after three poll intervals, so when the leader stops (or its machine dies) another scheduler
takes over; a scheduler that stops cleanly gives the lease up at once. Slots are claimed in a
transaction that locks the schedule's row and moves its next run on (``ScheduleStore.claim``), so even
two schedulers that both believe they lead never start the same slot twice."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import threading
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from liveml.errors import Invalid, LivemlError, Unavailable, first_line
from liveml.jobs.launch import spawn_runner
from liveml.jobs.schedules import DEFAULT_GRACE, Schedule, ScheduleStore, render_spec
from liveml.jobs.spec import Job
from liveml.jobs.store import JobStore
from liveml.registry.registry import Registry
from liveml.registry.schema import LeaseRow, utcnow
from liveml.security.audit import SCHEDULER
from liveml.security.identity import Actor, acting_as
from liveml.settings import Settings

log = logging.getLogger("liveml.scheduler")

DEFAULT_POLL_S = 10.0
LEASE_NAME = "scheduler"
#: how many poll intervals a lease lasts without being renewed
LEASE_POLLS = 3

#: starts a job's runner: (job id, settings) -> the process (or anything; a Popen is reaped when it ends)
Launcher = Callable[[int, Settings], object]
#: told about every job started: (its schedule, the job)
OnStart = Callable[[Schedule, Job], None]


class Scheduler:
    """Runs due schedules of one registry database. ``tick()`` is one pass; ``start()`` runs passes in a
    daemon thread (``liveml serve``), ``run_forever()`` in the calling thread (``liveml scheduler``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        poll_s: float = DEFAULT_POLL_S,
        launcher: Launcher = spawn_runner,
        on_start: OnStart | None = None,
    ) -> None:
        if not poll_s > 0:
            raise Invalid(
                f"poll interval {poll_s:g}s is not positive; give a number of seconds, e.g. --poll 10"
            )
        self.settings = settings
        self.poll_s = float(poll_s)
        self.lease = timedelta(seconds=LEASE_POLLS * self.poll_s)
        #: policy ``skip`` still runs a slot this late
        self.grace = max(timedelta(seconds=2 * self.poll_s), DEFAULT_GRACE)
        self.launcher = launcher
        self.on_start = on_start
        self.holder = f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.is_leader = False
        self._registry: Registry | None = None
        self._lock = threading.RLock()  # held during a pass, and across a fork (see _fork_hooks)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._children: list[subprocess.Popen[bytes]] = []
        self._monitoring: threading.Thread | None = None
        self._monitored_at: datetime | None = None
        self._notifier: Any = None

    @property
    def registry(self) -> Registry:
        """Opened on first use, so a scheduler started while the database is down keeps trying."""
        if self._registry is None:
            self._registry = Registry(self.settings)
        return self._registry

    # -- leadership ------------------------------------------------------------------------
    def lead(self, now: datetime | None = None) -> bool:
        """Take, or renew, the scheduler lease; True when this scheduler now leads."""
        now = now or utcnow()
        db = self.registry.db
        try:
            with db.read_session() as session:
                held = session.get(LeaseRow, LEASE_NAME)
                if held is not None and held.holder != self.holder and held.expires_at > now:
                    return self._leading(False, held.holder)
            with db.session() as session:
                db.lock_key(session, f"lease:{LEASE_NAME}")
                row = session.scalars(
                    select(LeaseRow).where(LeaseRow.name == LEASE_NAME).with_for_update()
                ).one_or_none()
                if row is None:
                    session.add(LeaseRow(name=LEASE_NAME, holder=self.holder, expires_at=now + self.lease))
                elif row.holder == self.holder or row.expires_at <= now:
                    row.holder = self.holder
                    row.expires_at = now + self.lease
                else:
                    return self._leading(False, row.holder)
        except IntegrityError:  # another scheduler created the lease first
            return self._leading(False, "another scheduler")
        except BaseException:
            self.is_leader = False
            raise
        return self._leading(True, self.holder)

    def _leading(self, leading: bool, holder: str) -> bool:
        if leading != self.is_leader:
            if leading:
                log.info("scheduler %s leads: it starts the scheduled jobs of %s", self.holder, self._where())
            else:
                log.info("scheduler %s: %s leads; standing by", self.holder, holder)
        self.is_leader = leading
        return leading

    def release(self) -> None:
        """Give the lease up (if held), so another scheduler takes over at its next tick."""
        if self._registry is None:
            return
        try:
            with self._registry.db.session() as session:
                session.execute(
                    delete(LeaseRow).where(LeaseRow.name == LEASE_NAME, LeaseRow.holder == self.holder)
                )
        except LivemlError as exc:
            log.warning("scheduler: could not give up the lease (%s); it expires by itself", exc.message)
        self.is_leader = False

    def _where(self) -> str:
        return self._registry.db.display_url if self._registry is not None else "the registry"

    # -- one pass --------------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> list[Job]:
        """One pass: when leading, create and start a job for every due slot; returns the jobs started."""
        with self._lock:
            now = now or utcnow()
            self._reap()
            if not self.lead(now):
                return []
            started: list[Job] = []
            for schedule in ScheduleStore(self.registry).list():
                if schedule.paused or schedule.next_run_at > now:
                    continue
                try:
                    started.extend(self.run_due(schedule, now))
                except Unavailable:
                    raise
                except LivemlError as exc:  # one broken schedule does not hold the others up
                    log.error("schedule %d: %s", schedule.id, exc.message)
            self._monitor(now)
            return started

    def _monitor(self, now: datetime) -> None:
        """The leader also runs the monitors of models with alert rules, every ``monitor_interval_s``, in a
        thread of their own (a window of a million predictions takes seconds; schedules must not wait)."""
        interval = self.settings.monitor_interval_s
        if interval <= 0 or (self._monitoring is not None and self._monitoring.is_alive()):
            return
        if self._monitored_at is not None and (now - self._monitored_at).total_seconds() < min(interval, 60):
            return
        self._monitored_at = now

        def run() -> None:
            if not self._any_alert_rule():
                return  # nothing to monitor; and scipy, scikit-learn and the drift tests stay unimported
            from liveml.monitoring.monitor import Monitor
            from liveml.monitoring.notifier import Notifier

            if self._notifier is None:
                self._notifier = Notifier(self.registry)
            try:
                Monitor(self.registry, notifier=self._notifier).run_due(
                    interval=timedelta(seconds=interval), now=now
                )
            except LivemlError as exc:
                log.error("monitors: %s", exc.message)
            except Exception:
                log.exception("monitors failed")

        self._monitoring = threading.Thread(target=run, name="liveml-monitors", daemon=True)
        self._monitoring.start()

    def _any_alert_rule(self) -> bool:
        """Whether any enabled alert rule exists (the monitors run only for models that have one)."""
        from liveml.registry.schema import AlertRuleRow

        try:
            with self.registry.db.read_session() as session:
                query = select(AlertRuleRow.id).where(AlertRuleRow.enabled).limit(1)
                return session.scalars(query).first() is not None
        except LivemlError as exc:
            log.error("monitors: %s", exc.message)
            return False

    def run_due(self, schedule: Schedule, now: datetime) -> list[Job]:
        """Claim the due slots of ``schedule`` (as read earlier), create their jobs and start them.
        Nothing happens when another scheduler claimed them since ``schedule`` was read."""
        claimed, slots = ScheduleStore(self.registry).claim(schedule, now, grace=self.grace)
        if not slots and claimed.next_run_at != schedule.next_run_at:
            log.info(
                "schedule %d: runs missed since %s skipped (catch-up %s); next run %s",
                schedule.id,
                schedule.next_run_at.isoformat(),
                claimed.catchup,
                claimed.next_run_at.isoformat(),
            )
        jobs: list[Job] = []
        store = JobStore(self.registry)
        for slot in slots:
            try:
                spec = render_spec(claimed.spec, slot, claimed.timezone)
                with acting_as(Actor(SCHEDULER, role="system")):  # the audit trail names the scheduler
                    jobs.append(store.create(spec, schedule_id=claimed.id, scheduled_for=slot))
            except LivemlError as exc:
                log.error(
                    "schedule %d: no job for its run at %s: %s", claimed.id, slot.isoformat(), exc.message
                )
        for job in jobs:
            self._launch(claimed, job)
        return jobs

    def _launch(self, schedule: Schedule, job: Job) -> None:
        try:
            process = self.launcher(job.id, self.settings)
        except Exception as exc:
            log.error(
                "job %d (schedule %d) is queued, but its runner did not start (%s); start it with "
                "`liveml jobs run %d`",
                job.id,
                schedule.id,
                first_line(exc),
                job.id,
            )
            return
        if isinstance(process, subprocess.Popen):
            self._children.append(process)
        if self.on_start is not None:  # the caller reports it
            self.on_start(schedule, job)
        else:
            log.info(
                "schedule %d: started job %d (%s, run of %s)", schedule.id, job.id, job.ref, job.scheduled_for
            )

    def _reap(self) -> None:
        """Collect runners that ended, so they do not linger as zombies of a long-lived server."""
        self._children = [p for p in self._children if p.poll() is None]

    # -- running ---------------------------------------------------------------------------
    def run_forever(self, stop_event: threading.Event | None = None) -> None:
        """Tick every poll interval until ``stop_event`` is set; then give the lease up."""
        stop = stop_event or self._stop
        failing: str | None = None  # the last failure, logged once rather than at every pass
        try:
            while not stop.is_set():
                try:
                    self.tick()
                    if failing is not None:
                        log.warning("scheduler: working again")
                    failing = None
                except LivemlError as exc:
                    if exc.message != failing:
                        log.warning("scheduler: %s; trying again every %gs", exc.message, self.poll_s)
                    failing = exc.message
                except Exception as exc:
                    if first_line(exc) != failing:
                        log.exception("scheduler: the pass failed; trying again every %gs", self.poll_s)
                    failing = first_line(exc)
                stop.wait(self.poll_s)
        finally:
            self.release()

    def start(self) -> Scheduler:
        """Run in a daemon thread of this process (``liveml serve``)."""
        if self._thread is not None and self._thread.is_alive():
            return self
        _fork_hooks()
        _running.add(self)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run_forever, args=(self._stop,), name="liveml-scheduler", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop ticking, give the lease up, close the database connections."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        else:
            self.release()
        _running.discard(self)
        self.close()

    def close(self) -> None:
        if self._monitoring is not None:
            self._monitoring.join(timeout=30)
        if self._notifier is not None:
            self._notifier.close(timeout=10)
            self._notifier = None
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    def _after_fork_in_child(self) -> None:
        # the thread does not exist in the child, and the parent's database connections are not its own
        self._thread = None
        self._stop.set()
        if self._registry is not None:
            self._registry.db.engine.dispose(close=False)


# A process that forks while a scheduler thread runs (``liveml serve --workers N``) waits for the pass
# in progress to end, so the child never inherits a half-done transaction or a lock held mid-pass.
_running: weakref.WeakSet[Scheduler] = weakref.WeakSet()
_held: list[Scheduler] = []
_hooks_registered = False


def _before_fork() -> None:
    _held[:] = list(_running)
    for scheduler in _held:
        scheduler._lock.acquire()


def _after_fork_in_parent() -> None:
    for scheduler in _held:
        scheduler._lock.release()
    _held.clear()


def _after_fork_in_child() -> None:
    for scheduler in _held:
        scheduler._lock.release()
        scheduler._after_fork_in_child()
    _held.clear()
    _running.clear()


def _fork_hooks() -> None:
    global _hooks_registered
    if not _hooks_registered:
        os.register_at_fork(
            before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
        )
        _hooks_registered = True


__all__ = ["DEFAULT_POLL_S", "LEASE_NAME", "Launcher", "OnStart", "Scheduler"]
