"""Cron schedules of batch jobs: cron times in a timezone, ``{date}`` path templates, the catch-up policy
for slots missed while no scheduler ran, and the ``schedules`` table (create, list, pause, resume, delete).

The scheduler (``liveml.jobs.scheduler``) asks :func:`due_runs` which slots to run and claims them with
:meth:`ScheduleStore.claim`; everything here but the store is pure and works on timezone-aware datetimes."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from string import Formatter
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from liveml.errors import Invalid, NotFound
from liveml.jobs.outputs import output_format
from liveml.jobs.spec import Job, JobSpec
from liveml.jobs.store import JobStore
from liveml.registry.registry import Registry
from liveml.registry.schema import JobRow, ScheduleRow, utcnow
from liveml.security import audit

log = logging.getLogger("liveml.schedules")

Catchup = Literal["latest", "all", "skip"]
CATCHUP_POLICIES: tuple[str, ...] = get_args(Catchup)
#: policy ``all`` starts at most this many missed runs at once (the newest ones)
MAX_CATCHUP = 100
#: policy ``skip`` still runs a slot this late (the scheduler uses 2 x its poll interval, at least this)
DEFAULT_GRACE = timedelta(seconds=60)
#: the spec fields that may hold ``{date}``-style templates
TEMPLATED = ("input", "input_sql", "output", "errors")
#: placeholder -> its form without a format spec (any strftime spec may be given: ``{date:%Y/%m/%d}``)
PLACEHOLDERS: dict[str, str] = {"date": "%Y-%m-%d", "yesterday": "%Y-%m-%d", "datetime": "%Y%m%dT%H%M%S"}
NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
CRON_FORM = (
    "expected 5 fields MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK, e.g. '0 2 * * *' for 02:00 every day "
    "or '*/15 * * * 1-5' for every 15 minutes on weekdays (or @hourly, @daily, @weekly, @monthly)"
)
VALID_PLACEHOLDERS = "{date}, {yesterday}, {datetime}, or a strftime form such as {date:%Y/%m/%d}"


# -- cron times ------------------------------------------------------------------------------------
def cron_fields(expression: str) -> str:
    """The 5-field form of a cron expression (nicknames such as @daily expanded); Invalid if it is not one."""
    text = " ".join(expression.split())
    if len(text) > 128:
        raise Invalid(
            f"cron expression {text[:40]!r}... is longer than 128 characters; use ranges (1-5) and steps (*/10)"
        )
    fields = NICKNAMES.get(text.lower(), text)
    if len(fields.split()) != 5:
        raise Invalid(f"invalid cron expression {expression!r}: {CRON_FORM}")
    try:
        croniter(fields, datetime(2026, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterError as exc:
        reason = str(exc).split("]", 1)[-1] if str(exc).startswith("[") else str(exc)
        reason = reason.strip(" ,").removeprefix("is not acceptable").strip(" ,") or "not acceptable"
        if "find next date" in reason:
            raise Invalid(f"cron expression {expression!r} never matches a date (e.g. 31 February)") from exc
        raise Invalid(f"invalid cron expression {expression!r} ({reason}): {CRON_FORM}") from exc
    return fields


def zone(name: str) -> tzinfo:
    """The timezone named ``name`` (IANA, e.g. Europe/Berlin); Invalid if there is none."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid(
            f"unknown timezone {name!r}: use an IANA name such as UTC, Europe/Berlin or America/New_York"
        ) from exc


def _slots(cron: str, tz: tzinfo, start: datetime, *, forward: bool) -> Iterator[datetime]:
    """Cron slots (UTC) after ``start`` (forward) or before it (backward), each once.

    croniter works in the schedule's wall-clock time: a slot in the hour skipped when clocks go forward
    runs when the new hour starts. When clocks go back, a schedule with a fixed hour (``30 2 * * *``)
    runs once, at the first of the two 02:30s; one whose hour is ``*`` runs in both repeated hours."""
    fields = cron_fields(cron)
    fixed_hour = fields.split()[1] != "*"
    it = croniter(fields, start.astimezone(tz))
    previous: datetime | None = None
    while True:
        local = it.get_next(datetime) if forward else it.get_prev(datetime)
        slot = local.astimezone(UTC).replace(fold=0)  # croniter leaves fold=1 on times it went back to
        if fixed_hour and slot.astimezone(tz).fold == 1:
            continue  # the second occurrence of a repeated wall-clock time
        if previous is not None and (slot <= previous if forward else slot >= previous):
            continue
        previous = slot
        yield slot


def next_slot(cron: str, timezone: str, after: datetime) -> datetime:
    """The first slot of ``cron`` strictly after ``after``, in UTC."""
    return next(s for s in _slots(cron, zone(timezone), after, forward=True) if s > after)


def slots_until(cron: str, timezone: str, until: datetime) -> Iterator[datetime]:
    """Slots at or before ``until``, newest first, in UTC."""
    for slot in _slots(cron, zone(timezone), until + timedelta(seconds=1), forward=False):
        if slot <= until:
            yield slot


# -- path templates --------------------------------------------------------------------------------
class _Moment:
    """A date for ``str.format``: its default form when the placeholder has no spec, else strftime."""

    __slots__ = ("default", "value")

    def __init__(self, value: date, default: str) -> None:
        self.value = value
        self.default = default

    def __format__(self, spec: str) -> str:
        return self.value.strftime(spec or self.default)


def check_template(field: str, text: str) -> None:
    """Invalid when ``text`` has a placeholder other than those in :data:`PLACEHOLDERS`."""
    try:
        parts = list(Formatter().parse(text))
    except ValueError as exc:
        raise Invalid(
            f"{field} {text!r}: {exc}; placeholders are {VALID_PLACEHOLDERS}, and {{{{ or }}}} is a literal brace"
        ) from exc
    unknown = [
        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        for _, name, spec, conversion in parts
        if name is not None and (name not in PLACEHOLDERS or conversion or "{" in (spec or ""))
    ]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise Invalid(
            f"unknown placeholder{plural} {', '.join(unknown)} in {field} {text!r}; use {VALID_PLACEHOLDERS} "
            "({{ or }} for a literal brace)"
        )


def template_values(slot: datetime, timezone: str) -> dict[str, _Moment]:
    """What the placeholders stand for at ``slot``, in the schedule's timezone."""
    local = slot.astimezone(zone(timezone))
    day = local.date()
    return {
        "date": _Moment(day, PLACEHOLDERS["date"]),
        "yesterday": _Moment(day - timedelta(days=1), PLACEHOLDERS["yesterday"]),
        "datetime": _Moment(local.replace(tzinfo=None), PLACEHOLDERS["datetime"]),
    }


def render(text: str, slot: datetime, timezone: str = "UTC") -> str:
    """``text`` with its placeholders filled in for ``slot``."""
    check_template("template", text)
    return text.format_map(template_values(slot, timezone))


def render_spec(spec: Mapping[str, Any], slot: datetime, timezone: str) -> JobSpec:
    """The job a schedule's spec (with templates) stands for at ``slot``."""
    values = template_values(slot, timezone)
    data = dict(spec)
    for field in TEMPLATED:
        if isinstance(data.get(field), str):
            check_template(field, data[field])
            data[field] = data[field].format_map(values)
    return JobSpec.parse(data)


# -- schedules -------------------------------------------------------------------------------------
class Schedule(BaseModel):
    """A schedule as recorded; ``spec`` is the job's spec with its templates unfilled."""

    model_config = ConfigDict(frozen=True)

    id: int
    model: str
    cron: str
    timezone: str
    catchup: Catchup
    spec: dict[str, Any]
    paused: bool
    next_run_at: datetime
    last_run_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def input(self) -> str:
        return str(self.spec["input"]) if self.spec.get("input") else f"sql: {self.spec.get('input_sql')}"

    @property
    def output(self) -> str:
        return str(self.spec.get("output"))


def due_runs(
    schedule: Schedule, now: datetime, *, grace: timedelta = DEFAULT_GRACE, limit: int = MAX_CATCHUP
) -> list[datetime]:
    """The slots to run now, oldest first: of the slots from ``next_run_at`` to ``now``, the newest one
    (``latest``), every one (``all``; the newest ``limit`` when more were missed), or those at most
    ``grace`` late (``skip``). None while paused or before ``next_run_at``."""
    if schedule.paused or now < schedule.next_run_at:
        return []
    found: list[datetime] = []
    for slot in slots_until(schedule.cron, schedule.timezone, now):
        if slot < schedule.next_run_at or (schedule.catchup == "skip" and now - slot > grace):
            break
        found.append(slot)
        if schedule.catchup == "latest" or len(found) > limit:
            break
    if len(found) > limit:
        found = found[:limit]
        log.warning(
            "schedule %d missed more than %d runs since %s; starting the newest %d (from %s) and skipping "
            "the older ones",
            schedule.id,
            limit,
            schedule.next_run_at.isoformat(),
            limit,
            found[-1].isoformat(),
        )
    return found[::-1]


def check_catchup(catchup: str) -> Catchup:
    if catchup not in CATCHUP_POLICIES:
        raise Invalid(
            f"unknown catch-up policy {catchup!r}: use latest (run the most recent missed slot once), "
            "all (run every missed slot) or skip (run none of them)"
        )
    return catchup  # type: ignore[return-value]


class ScheduleStore:
    """Reads and writes the ``schedules`` table of a registry's database."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.db = registry.db

    def create(
        self,
        model_ref: str,
        cron: str,
        spec_fields: Mapping[str, Any],
        timezone: str = "UTC",
        catchup: str = "latest",
        *,
        now: datetime | None = None,
    ) -> Schedule:
        """Record a schedule whose first run is the first slot after ``now``. Checks everything a run
        will need: the cron expression, the timezone, the model reference, the templates and the job."""
        cron = " ".join(cron.split())
        cron_fields(cron)
        tz = zone(timezone)
        timezone = "UTC" if tz is UTC else timezone
        policy = check_catchup(catchup)
        self.registry.get(model_ref)
        spec = {k: v for k, v in spec_fields.items() if v is not None}
        spec["model"] = model_ref
        if isinstance(spec.get("keep"), list | tuple):
            spec["keep"] = list(spec["keep"])
        for field in TEMPLATED:
            if isinstance(spec.get(field), str):
                check_template(field, spec[field])
        now = now or utcnow()
        first = next_slot(cron, timezone, now)
        sample = render_spec(spec, first, timezone)
        output_format(sample.output, sample.output_format)
        stored = sample.model_dump(mode="json")
        for field in TEMPLATED:  # keep the templates, but the checked, defaulted form of everything else
            stored[field] = spec.get(field)
        row = ScheduleRow(
            model=model_ref,
            cron=cron,
            timezone=timezone,
            catchup=policy,
            spec=stored,
            paused=False,
            next_run_at=first,
            last_run_at=None,
            created_by=self.registry.settings.user,
            created_at=now,
            updated_at=now,
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            created = _schedule(row)
            audit.record_change(
                self.registry, session, "schedule.create", f"schedule:{row.id}", after=_audited(created)
            )
            return created

    def list(self) -> list[Schedule]:
        with self.db.read_session() as session:
            return [_schedule(row) for row in session.scalars(select(ScheduleRow).order_by(ScheduleRow.id))]

    def get(self, schedule_id: int) -> Schedule:
        with self.db.read_session() as session:
            return _schedule(_row(session.get(ScheduleRow, schedule_id), schedule_id))

    def pause(self, schedule_id: int) -> Schedule:
        """Stop starting runs until :meth:`resume`."""
        with self.db.session() as session:
            row = _locked(session, schedule_id)
            before = {"paused": row.paused}
            row.paused = True
            row.updated_at = utcnow()
            session.flush()
            audit.record_change(
                self.registry,
                session,
                "schedule.pause",
                f"schedule:{schedule_id}",
                before=before,
                after={"paused": True},
            )
            return _schedule(row)

    def resume(self, schedule_id: int, *, now: datetime | None = None) -> Schedule:
        """Start runs again from the next slot; slots that passed while paused are not run."""
        now = now or utcnow()
        with self.db.session() as session:
            row = _locked(session, schedule_id)
            before = {"paused": row.paused, "next_run_at": row.next_run_at}
            if row.paused:
                row.paused = False
                row.next_run_at = next_slot(row.cron, row.timezone, now)
                row.updated_at = now
            session.flush()
            after = {"paused": row.paused, "next_run_at": row.next_run_at}
            audit.record_change(
                self.registry,
                session,
                "schedule.resume",
                f"schedule:{schedule_id}",
                before=before,
                after=after,
            )
            return _schedule(row)

    def delete(self, schedule_id: int) -> Schedule:
        """Remove the schedule; the jobs it started stay, no longer linked to it."""
        with self.db.session() as session:
            row = _locked(session, schedule_id)
            gone = _schedule(row)
            session.execute(update(JobRow).where(JobRow.schedule_id == schedule_id).values(schedule_id=None))
            session.delete(row)
            audit.record_change(
                self.registry, session, "schedule.delete", f"schedule:{schedule_id}", before=_audited(gone)
            )
            return gone

    def history(self, schedule_id: int, *, limit: int = 50) -> builtins.list[Job]:
        """The jobs the schedule started, newest first."""
        self.get(schedule_id)
        return JobStore(self.registry).list(schedule_id=schedule_id, limit=limit)

    def claim(
        self, schedule: Schedule, now: datetime, *, grace: timedelta = DEFAULT_GRACE
    ) -> tuple[Schedule, builtins.list[datetime]]:
        """Take the runs of ``schedule`` due at ``now`` and move its next run past ``now``, in one
        transaction that locks the row; returns no runs when the row changed since ``schedule`` was read
        (another scheduler took them, or it was paused or deleted), so no slot is ever claimed twice."""
        with self.db.session() as session:
            row = session.scalars(
                select(ScheduleRow).where(ScheduleRow.id == schedule.id).with_for_update()
            ).one_or_none()
            if row is None or row.paused or row.next_run_at != schedule.next_run_at or now < row.next_run_at:
                return schedule, []
            current = _schedule(row)
            slots = due_runs(current, now, grace=grace)
            row.next_run_at = next_slot(row.cron, row.timezone, now)
            if slots:
                row.last_run_at = slots[-1]
            row.updated_at = now
            session.flush()
            return _schedule(row), slots


def _row(row: ScheduleRow | None, schedule_id: int) -> ScheduleRow:
    if row is None:
        raise NotFound(f"no schedule {schedule_id}; `liveml schedules` lists the schedules there are")
    return row


def _locked(session: Session, schedule_id: int) -> ScheduleRow:
    query = select(ScheduleRow).where(ScheduleRow.id == schedule_id).with_for_update()
    return _row(session.scalars(query).one_or_none(), schedule_id)


def _audited(schedule: Schedule) -> dict[str, Any]:
    return schedule.model_dump(
        mode="json", include={"model", "cron", "timezone", "catchup", "spec", "paused", "next_run_at"}
    )


def _schedule(row: ScheduleRow) -> Schedule:
    return Schedule(
        id=row.id,
        model=row.model,
        cron=row.cron,
        timezone=row.timezone,
        catchup=row.catchup,
        spec=dict(row.spec),
        paused=row.paused,
        next_run_at=row.next_run_at,
        last_run_at=row.last_run_at,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


__all__ = [
    "CATCHUP_POLICIES",
    "DEFAULT_GRACE",
    "MAX_CATCHUP",
    "PLACEHOLDERS",
    "TEMPLATED",
    "Catchup",
    "Schedule",
    "ScheduleStore",
    "check_catchup",
    "check_template",
    "cron_fields",
    "due_runs",
    "next_slot",
    "render",
    "render_spec",
    "slots_until",
    "template_values",
    "zone",
]
