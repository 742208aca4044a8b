"""Cron times of schedules: which slots are due under each catch-up policy, timezones across DST changes,
and the {date}-style templates in paths."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import pytest

from liveml.errors import Invalid
from liveml.jobs.schedules import (
    MAX_CATCHUP,
    Schedule,
    check_catchup,
    cron_fields,
    due_runs,
    next_slot,
    render,
    render_spec,
    slots_until,
    zone,
)


def at(text: str) -> datetime:
    """A UTC moment from ``2026-11-21 02:00``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make(cron: str = "0 2 * * *", *, next_run: str, catchup: str = "latest", **extra: Any) -> Schedule:
    now = at("2026-01-01 00:00")
    fields: dict[str, Any] = {
        "id": 1,
        "model": "churn@production",
        "cron": cron,
        "timezone": "UTC",
        "catchup": catchup,
        "spec": {"model": "churn@production", "input": "in/{date}.csv", "output": "out/{date}.parquet"},
        "paused": False,
        "next_run_at": at(next_run),
        "last_run_at": None,
        "created_by": "tester",
        "created_at": now,
        "updated_at": now,
    }
    return Schedule(**{**fields, **extra})


# -- due runs ------------------------------------------------------------------------------------
def test_nothing_is_due_before_the_next_run() -> None:
    schedule = make(next_run="2026-11-21 02:00")
    assert due_runs(schedule, at("2026-11-21 01:59:59")) == []


def test_a_slot_is_due_at_its_time_and_while_late() -> None:
    schedule = make(next_run="2026-11-21 02:00")
    assert due_runs(schedule, at("2026-11-21 02:00")) == [at("2026-11-21 02:00")]
    assert due_runs(schedule, at("2026-11-21 02:00:07")) == [at("2026-11-21 02:00")]


def test_paused_schedules_have_nothing_due() -> None:
    schedule = make(next_run="2026-11-21 02:00", paused=True)
    assert due_runs(schedule, at("2026-11-25 12:00")) == []


def test_latest_runs_only_the_newest_missed_slot() -> None:
    schedule = make(next_run="2026-11-18 02:00", catchup="latest")
    assert due_runs(schedule, at("2026-11-21 09:30")) == [at("2026-11-21 02:00")]


def test_all_runs_every_missed_slot_oldest_first() -> None:
    schedule = make(next_run="2026-11-18 02:00", catchup="all")
    assert due_runs(schedule, at("2026-11-21 09:30")) == [
        at("2026-11-18 02:00"),
        at("2026-11-19 02:00"),
        at("2026-11-20 02:00"),
        at("2026-11-21 02:00"),
    ]


def test_all_is_capped_to_the_newest_slots_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    schedule = make("* * * * *", next_run="2026-11-20 00:00", catchup="all")  # a day of minutes missed
    now = at("2026-11-21 00:00")
    with caplog.at_level(logging.WARNING, logger="liveml.schedules"):
        due = due_runs(schedule, now)
    assert len(due) == MAX_CATCHUP
    assert due[-1] == now and due[0] == now - timedelta(minutes=MAX_CATCHUP - 1)
    assert due == sorted(due)
    assert "missed more than 100 runs" in caplog.text


def test_all_below_the_cap_warns_nothing(caplog: pytest.LogCaptureFixture) -> None:
    schedule = make("* * * * *", next_run="2026-11-21 00:00", catchup="all")
    with caplog.at_level(logging.WARNING, logger="liveml.schedules"):
        assert len(due_runs(schedule, at("2026-11-21 01:39"))) == MAX_CATCHUP
    assert caplog.text == ""


def test_skip_runs_no_missed_slot_but_one_that_is_barely_late() -> None:
    schedule = make(next_run="2026-11-18 02:00", catchup="skip")
    assert due_runs(schedule, at("2026-11-21 09:30")) == []
    grace = timedelta(seconds=30)
    assert due_runs(schedule, at("2026-11-21 02:00:20"), grace=grace) == [at("2026-11-21 02:00")]
    assert due_runs(schedule, at("2026-11-21 02:00:31"), grace=grace) == []


def test_unknown_catchup_policy_is_refused() -> None:
    assert check_catchup("all") == "all"
    with pytest.raises(Invalid, match=r"latest .* all .* skip"):
        check_catchup("some")


# -- cron expressions and timezones --------------------------------------------------------------
@pytest.mark.parametrize("expression", ["0 2 * *", "0 0 2 * * *", "61 2 * * *", "every day", "H 2 * * *"])
def test_bad_cron_names_the_expression_and_the_form(expression: str) -> None:
    with pytest.raises(Invalid) as caught:
        cron_fields(expression)
    assert repr(expression) in str(caught.value) and "5 fields" in str(caught.value)


def test_cron_that_never_matches_is_refused() -> None:
    with pytest.raises(Invalid, match="never matches"):
        cron_fields("0 0 30 2 *")


def test_overlong_cron_is_refused() -> None:
    with pytest.raises(Invalid, match="longer than 128 characters"):
        cron_fields(",".join(str(m) for m in range(60)) + " * * * *")


def test_nicknames_expand() -> None:
    assert cron_fields("@daily") == "0 0 * * *"
    assert cron_fields(" 0   2 * * * ") == "0 2 * * *"
    assert next_slot("@hourly", "UTC", at("2026-11-21 02:00")) == at("2026-11-21 03:00")


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(Invalid, match=r"unknown timezone 'Mars/Olympus'.*Europe/Berlin"):
        zone("Mars/Olympus")
    assert zone("utc") is UTC


def test_cron_times_are_in_the_schedules_timezone() -> None:
    assert next_slot("0 2 * * *", "America/New_York", at("2026-11-21 00:00")) == at("2026-11-21 07:00")
    assert next_slot("0 2 * * *", "Europe/Berlin", at("2026-07-01 12:00")) == at("2026-07-02 00:00")


def forward(cron: str, timezone: str, start: str, count: int) -> list[datetime]:
    out: list[datetime] = []
    moment = at(start)
    for _ in range(count):
        moment = next_slot(cron, timezone, moment)
        out.append(moment)
    return out


def test_a_daily_slot_runs_once_on_the_day_clocks_go_back() -> None:
    # Berlin, 25 October 2026: 03:00 CEST becomes 02:00 CET, so 02:30 happens twice; it runs once
    slots = forward("30 2 * * *", "Europe/Berlin", "2026-10-23 12:00", 4)
    assert slots == [
        at("2026-10-24 00:30"),  # 02:30 CEST
        at("2026-10-25 00:30"),  # the first 02:30 (CEST)
        at("2026-10-26 01:30"),  # 02:30 CET
        at("2026-10-27 01:30"),
    ]


def test_a_daily_slot_in_the_skipped_hour_runs_when_clocks_go_forward() -> None:
    # Berlin, 29 March 2026: 02:00 CET becomes 03:00 CEST, so there is no 02:30; it runs at 03:00 CEST
    slots = forward("30 2 * * *", "Europe/Berlin", "2026-03-27 12:00", 3)
    assert slots == [at("2026-03-28 01:30"), at("2026-03-29 01:00"), at("2026-03-30 00:30")]


def test_every_half_hour_keeps_running_through_the_repeated_hour() -> None:
    slots = forward("*/30 * * * *", "Europe/Berlin", "2026-10-24 23:00", 6)
    assert slots == [at("2026-10-24 23:30") + timedelta(minutes=30 * i) for i in range(6)]


def test_slots_backwards_match_slots_forwards_across_dst() -> None:
    for cron in ("30 2 * * *", "*/30 * * * *", "15 1-3 * * *"):
        ahead = forward(cron, "Europe/Berlin", "2026-10-23 12:00", 30)
        behind = list(islice(slots_until(cron, "Europe/Berlin", ahead[-1]), 30))
        assert behind[::-1] == ahead, cron


def test_due_runs_in_a_timezone_around_the_change() -> None:
    schedule = make("30 2 * * *", next_run="2026-10-24 00:30", catchup="all", timezone="Europe/Berlin")
    assert due_runs(schedule, at("2026-10-26 12:00")) == [
        at("2026-10-24 00:30"),
        at("2026-10-25 00:30"),
        at("2026-10-26 01:30"),
    ]


# -- templates -----------------------------------------------------------------------------------
def test_templates_render_the_slot_date() -> None:
    slot = at("2026-11-21 02:00")
    assert render("data/{date}.parquet", slot) == "data/2026-11-21.parquet"
    assert render("data/{yesterday}.parquet", slot) == "data/2026-11-20.parquet"
    assert render("out/{datetime}/", slot) == "out/20261121T020000/"
    assert render("s3://b/{date:%Y/%m/%d}/{date:%A}.csv", slot) == "s3://b/2026/11/21/Saturday.csv"
    assert render("{{literal}}-{date}", slot) == "{literal}-2026-11-21"
    assert render("no/template.csv", slot) == "no/template.csv"


def test_templates_use_the_date_in_the_schedules_timezone() -> None:
    slot = at("2026-11-22 07:30")  # 23:30 on the 21st in Los Angeles
    assert render("{date}|{yesterday}|{datetime}", slot, "America/Los_Angeles") == (
        "2026-11-21|2026-11-20|20261121T233000"
    )
    assert render("{yesterday}", at("2026-03-01 12:00")) == "2026-02-28"


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("out/{day}.parquet", "{day}"),
        ("out/{date.year}/{hour}.parquet", "{date.year}, {hour}"),
        ("out/{}.parquet", "{}"),
        ("out/{date!r}.parquet", "{date!r}"),
        ("out/{date:{fmt}}.parquet", "{date:{fmt}}"),
    ],
)
def test_unknown_placeholders_are_named_with_the_valid_ones(template: str, named: str) -> None:
    with pytest.raises(Invalid) as caught:
        render(template, at("2026-11-21 02:00"))
    message = str(caught.value)
    assert named in message and "{date}, {yesterday}, {datetime}" in message and "\n" not in message


def test_unbalanced_braces_are_refused() -> None:
    with pytest.raises(Invalid, match="literal brace"):
        render("out/{date.parquet", at("2026-11-21 02:00"))


def test_render_spec_fills_every_templated_field() -> None:
    spec = {
        "model": "churn@production",
        "input": "in/{yesterday}.csv",
        "output": "out/{date}/",
        "errors": "bad/{date}.csv",
    }
    job = render_spec(spec, at("2026-11-21 02:00"), "UTC")
    assert (job.input, job.output, job.errors) == (
        "in/2026-11-20.csv",
        "out/2026-11-21/",
        "bad/2026-11-21.csv",
    )
    sql = render_spec(
        {
            "model": "churn",
            "input_sql": "select * from t where day = '{date}'",
            "db": "sqlite://",
            "output": "o.csv",
        },
        at("2026-11-21 02:00"),
        "UTC",
    )
    assert sql.input_sql == "select * from t where day = '2026-11-21'"
    with pytest.raises(Invalid, match="output"):
        render_spec({**spec, "output": "out/{when}/"}, at("2026-11-21 02:00"), "UTC")
