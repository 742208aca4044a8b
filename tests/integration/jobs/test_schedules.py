"""Schedules in a real registry database (SQLite and PostgreSQL): the store, the jobs a scheduler starts,
and leadership among several schedulers sharing the database."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from liveml import Registry
from liveml.errors import Invalid, NotFound
from liveml.jobs.scheduler import LEASE_NAME, Scheduler
from liveml.jobs.schedules import Schedule, ScheduleStore
from liveml.jobs.store import JobStore
from liveml.registry.schema import LeaseRow, ScheduleRow
from liveml.settings import Settings

SPEC = {"input": "in/{date}.parquet", "output": "out/{date}.parquet"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Launches:
    """Stands in for spawn_runner: records which jobs a scheduler started."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, job_id: int, settings: Settings) -> None:
        with self.lock:
            self.ids.append(job_id)


@pytest.fixture
def churn(registry: Registry, model_files: dict[str, Path]) -> Registry:
    registry.push("churn", model_files["logistic"], aliases=["production"])
    return registry


@pytest.fixture(scope="module")
def refusing(module_registry: Registry, model_files: dict[str, Path]) -> Registry:
    """``churn`` for the whole module, for schedules that must be refused (so none is ever stored)."""
    module_registry.push("churn", model_files["logistic"], aliases=["production"])
    return module_registry


@pytest.fixture
def schedulers(churn: Registry) -> Iterator[list[Scheduler]]:
    """Make schedulers with ``schedulers.append(...)``; all are stopped afterwards."""
    made: list[Scheduler] = []
    yield made
    for scheduler in made:
        scheduler.stop()


def make_scheduler(
    made: list[Scheduler], settings: Settings, *, poll_s: float = 10
) -> tuple[Scheduler, Launches]:
    launches = Launches()
    scheduler = Scheduler(settings, poll_s=poll_s, launcher=launches)
    made.append(scheduler)
    return scheduler, launches


def daily(store: ScheduleStore, catchup: str = "latest", *, since: str = "2026-11-18 01:00") -> Schedule:
    return store.create("churn@production", "0 2 * * *", SPEC, catchup=catchup, now=at(since))


# -- the store -------------------------------------------------------------------------------------
def test_create_list_pause_resume_delete(churn: Registry) -> None:
    store = ScheduleStore(churn)
    made = store.create(
        "churn@production",
        "0 2 * * *",
        {**SPEC, "keep": ["id"], "chunk_rows": 500},
        timezone="Europe/Berlin",
        now=at("2026-11-21 00:30"),
    )
    assert made.next_run_at == at("2026-11-21 01:00")  # 02:00 in Berlin
    assert (made.model, made.cron, made.timezone, made.catchup) == (
        "churn@production",
        "0 2 * * *",
        "Europe/Berlin",
        "latest",
    )
    assert made.spec["input"] == "in/{date}.parquet" and made.spec["output"] == "out/{date}.parquet"
    assert (
        made.spec["keep"] == ["id"]
        and made.spec["chunk_rows"] == 500
        and made.spec["model"] == "churn@production"
    )
    assert made.created_by == "tester" and not made.paused and made.last_run_at is None
    assert store.list() == [made] and store.get(made.id) == made

    paused = store.pause(made.id)
    assert paused.paused and store.get(made.id).paused
    resumed = store.resume(made.id, now=at("2026-12-01 12:00"))
    assert not resumed.paused and resumed.next_run_at == at("2026-12-02 01:00")  # slots while paused: none

    assert store.delete(made.id).id == made.id
    assert store.list() == []
    for action in (store.get, store.pause, store.resume, store.delete, store.history):
        with pytest.raises(NotFound, match=f"no schedule {made.id}"):
            action(made.id)


@pytest.mark.parametrize(
    ("model", "cron", "fields", "options", "message"),
    [
        ("churn", "0 2 * *", SPEC, {}, "invalid cron expression '0 2 \\* \\*': expected 5 fields"),
        ("churn", "0 2 * * *", SPEC, {"timezone": "Europe/Atlantis"}, "unknown timezone 'Europe/Atlantis'"),
        ("churn", "0 2 * * *", SPEC, {"catchup": "some"}, "unknown catch-up policy 'some'"),
        ("fraud", "0 2 * * *", SPEC, {}, "no model named 'fraud'"),
        ("churn@staging", "0 2 * * *", SPEC, {}, "has no alias 'staging'"),
        (
            "churn",
            "0 2 * * *",
            {**SPEC, "output": "out/{day}.parquet"},
            {},
            "unknown placeholder \\{day\\} in output",
        ),
        ("churn", "0 2 * * *", {"output": "o.parquet"}, {}, "give exactly one of input"),
        ("churn", "0 2 * * *", {**SPEC, "chunk_rows": 0}, {}, "chunk_rows"),
        ("churn", "0 2 * * *", {**SPEC, "output": "out/{date}.txt"}, {}, "cannot tell the output format"),
    ],
)
def test_bad_schedules_are_refused_and_nothing_is_stored(
    refusing: Registry, model: str, cron: str, fields: dict[str, Any], options: dict[str, str], message: str
) -> None:
    store = ScheduleStore(refusing)
    with pytest.raises((Invalid, NotFound), match=message) as caught:
        store.create(model, cron, fields, **options)
    assert "\n" not in str(caught.value)
    assert store.list() == []


# -- the scheduler ---------------------------------------------------------------------------------
def test_a_due_slot_becomes_a_job_with_its_dates_filled_in(
    churn: Registry, schedulers: list[Scheduler]
) -> None:
    store = ScheduleStore(churn)
    schedule = daily(store)
    scheduler, launches = make_scheduler(schedulers, churn.settings)
    assert scheduler.tick(at("2026-11-18 01:59")) == []
    (job,) = scheduler.tick(at("2026-11-18 02:00:03"))
    assert launches.ids == [job.id]
    assert (job.status, job.model, job.version) == ("queued", "churn", 1)
    assert job.schedule_id == schedule.id and job.scheduled_for == at("2026-11-18 02:00")
    assert (job.spec.input, job.spec.output) == ("in/2026-11-18.parquet", "out/2026-11-18.parquet")
    after = store.get(schedule.id)
    assert after.last_run_at == at("2026-11-18 02:00") and after.next_run_at == at("2026-11-19 02:00")
    assert scheduler.tick(at("2026-11-18 02:00:13")) == []  # the same slot again: nothing

    (second,) = scheduler.tick(at("2026-11-19 02:00:01"))
    assert [j.id for j in store.history(schedule.id)] == [second.id, job.id]

    store.delete(schedule.id)  # the jobs stay, unlinked
    kept = JobStore(churn).get(job.id)
    assert kept.schedule_id is None and kept.scheduled_for == at("2026-11-18 02:00")


@pytest.mark.parametrize(
    ("catchup", "expected"),
    [
        ("latest", ["2026-11-21"]),
        ("all", ["2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"]),
        ("skip", []),
    ],
)
def test_runs_missed_while_down_follow_the_catchup_policy(
    churn: Registry, schedulers: list[Scheduler], catchup: str, expected: list[str]
) -> None:
    store = ScheduleStore(churn)
    schedule = daily(store, catchup)
    scheduler, launches = make_scheduler(schedulers, churn.settings)
    jobs = scheduler.tick(at("2026-11-21 09:00"))  # down since before the 18th's run
    assert [j.spec.output for j in jobs] == [f"out/{day}.parquet" for day in expected]
    assert launches.ids == [j.id for j in jobs]
    assert store.get(schedule.id).next_run_at == at("2026-11-22 02:00")
    assert scheduler.tick(at("2026-11-21 09:00:10")) == []


def test_paused_schedules_start_nothing(churn: Registry, schedulers: list[Scheduler]) -> None:
    store = ScheduleStore(churn)
    schedule = daily(store)
    store.pause(schedule.id)
    scheduler, launches = make_scheduler(schedulers, churn.settings)
    assert scheduler.tick(at("2026-11-21 09:00")) == [] and launches.ids == []
    assert store.history(schedule.id) == []


def test_a_run_that_cannot_be_made_is_logged_and_the_schedule_goes_on(
    churn: Registry, schedulers: list[Scheduler], caplog: pytest.LogCaptureFixture
) -> None:
    store = ScheduleStore(churn)
    churn.set_alias("churn", "staging", 1)
    schedule = store.create("churn@staging", "0 2 * * *", SPEC, now=at("2026-11-18 01:00"))
    churn.delete_alias("churn", "staging")
    scheduler, _ = make_scheduler(schedulers, churn.settings)
    with caplog.at_level(logging.ERROR, logger="liveml.scheduler"):
        assert scheduler.tick(at("2026-11-18 02:00:05")) == []
    assert f"schedule {schedule.id}: no job for its run at 2026-11-18T02:00:00+00:00" in caplog.text
    assert "has no alias 'staging'" in caplog.text
    assert store.get(schedule.id).next_run_at == at("2026-11-19 02:00")


def test_a_broken_schedule_does_not_hold_the_others_up(
    churn: Registry, schedulers: list[Scheduler], caplog: pytest.LogCaptureFixture
) -> None:
    store = ScheduleStore(churn)
    broken, working = daily(store), daily(store)
    with churn.db.session() as session:  # e.g. a timezone the machine's tz database no longer knows
        session.execute(update(ScheduleRow).where(ScheduleRow.id == broken.id).values(timezone="Gone/Zone"))
    scheduler, _ = make_scheduler(schedulers, churn.settings)
    with caplog.at_level(logging.ERROR, logger="liveml.scheduler"):
        (job,) = scheduler.tick(at("2026-11-18 02:00:05"))
    assert job.schedule_id == working.id
    assert f"schedule {broken.id}: unknown timezone 'Gone/Zone'" in caplog.text
    assert store.get(broken.id).next_run_at == broken.next_run_at  # nothing claimed, nothing lost


def test_a_runner_that_does_not_start_leaves_the_job_queued(
    churn: Registry, schedulers: list[Scheduler], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(job_id: int, settings: Settings) -> None:
        raise OSError("no such file: python")

    daily(ScheduleStore(churn))
    scheduler = Scheduler(churn.settings, launcher=broken)
    schedulers.append(scheduler)
    with caplog.at_level(logging.ERROR, logger="liveml.scheduler"):
        (job,) = scheduler.tick(at("2026-11-18 02:00:05"))
    assert JobStore(churn).get(job.id).status == "queued"
    assert f"start it with `liveml jobs run {job.id}`" in caplog.text


# -- several schedulers on one database -------------------------------------------------------------
def test_only_the_leader_starts_jobs_and_leadership_passes_on(
    churn: Registry, schedulers: list[Scheduler]
) -> None:
    store = ScheduleStore(churn)
    schedule = store.create("churn@production", "* * * * *", SPEC, now=at("2026-11-18 01:59:30"))
    # polls of a minute: a lease lasts 3 minutes unless renewed
    first, first_launches = make_scheduler(schedulers, churn.settings, poll_s=60)
    second, second_launches = make_scheduler(schedulers, churn.settings, poll_s=60)

    (job,) = second.tick(at("2026-11-18 02:00:02"))  # the first to look leads
    assert second.is_leader and job.scheduled_for == at("2026-11-18 02:00")
    assert first.tick(at("2026-11-18 02:01:05")) == [] and not first.is_leader  # 02:01 is due: not its job
    assert first_launches.ids == [] and second_launches.ids == [job.id]

    second.stop()  # a leader that stops gives the lease up at once
    (taken,) = first.tick(at("2026-11-18 02:01:06"))
    assert first.is_leader and taken.scheduled_for == at("2026-11-18 02:01")
    assert first_launches.ids == [taken.id] and second_launches.ids == [job.id]

    # a leader that vanishes without stopping: its lease (renewed at 02:01:06) expires at 02:04:06
    third, third_launches = make_scheduler(schedulers, churn.settings, poll_s=60)
    assert third.tick(at("2026-11-18 02:04:05")) == [] and not third.is_leader
    (late,) = third.tick(at("2026-11-18 02:05:00"))
    assert third.is_leader and late.scheduled_for == at("2026-11-18 02:05")  # catch-up latest
    assert first.tick(at("2026-11-18 02:05:01")) == [] and not first.is_leader
    assert first_launches.ids == [taken.id] and third_launches.ids == [late.id]
    assert [j.scheduled_for for j in store.history(schedule.id)] == [
        at("2026-11-18 02:05"),
        at("2026-11-18 02:01"),
        at("2026-11-18 02:00"),
    ]


def test_schedulers_racing_for_the_lease_elect_one(churn: Registry, schedulers: list[Scheduler]) -> None:
    racers = [make_scheduler(schedulers, churn.settings)[0] for _ in range(4)]
    for racer in racers:
        racer.registry  # noqa: B018 - open the databases before the race
    start = threading.Barrier(len(racers))
    results: list[bool] = []

    def race(scheduler: Scheduler) -> None:
        start.wait()
        results.append(scheduler.lead(at("2026-11-18 02:00")))

    threads = [threading.Thread(target=race, args=(r,)) for r in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    with churn.db.read_session() as session:
        lease = session.scalars(select(LeaseRow).where(LeaseRow.name == LEASE_NAME)).one()
    assert lease.holder == next(r for r in racers if r.is_leader).holder


def test_a_slot_is_claimed_once_even_by_schedulers_that_all_think_they_lead(
    churn: Registry, schedulers: list[Scheduler]
) -> None:
    store = ScheduleStore(churn)
    seen = daily(store, "all")  # what each of them read before acting
    racers = [make_scheduler(schedulers, churn.settings) for _ in range(4)]
    for racer, _ in racers:
        racer.registry  # noqa: B018
    start = threading.Barrier(len(racers))
    now = at("2026-11-20 09:00")

    def race(scheduler: Scheduler) -> None:
        start.wait()
        scheduler.run_due(seen, now)

    threads = [threading.Thread(target=race, args=(r,)) for r, _ in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    jobs = store.history(seen.id)
    assert sorted(j.scheduled_for for j in jobs if j.scheduled_for) == [
        at("2026-11-18 02:00"),
        at("2026-11-19 02:00"),
        at("2026-11-20 02:00"),
    ]
    assert sorted(i for _, launches in racers for i in launches.ids) == sorted(j.id for j in jobs)
    assert racers[0][0].run_due(seen, now) == []  # a stale view again: nothing


def test_the_thread_of_a_server_starts_jobs_and_gives_the_lease_up_when_stopped(churn: Registry) -> None:
    store = ScheduleStore(churn)
    schedule = daily(store)  # due since the 18th: the first pass starts the newest slot
    started = threading.Event()
    background = Scheduler(churn.settings, poll_s=0.05, launcher=lambda job_id, settings: started.set())
    background.start()
    try:
        assert started.wait(timeout=60), "the scheduler thread started no job"
        assert background.is_leader
    finally:
        background.stop()
    jobs = store.history(schedule.id)
    assert jobs and all(j.scheduled_for is not None and j.status == "queued" for j in jobs)
    with churn.db.read_session() as session:
        assert session.get(LeaseRow, LEASE_NAME) is None
