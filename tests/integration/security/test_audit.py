"""The audit trail on a real registry database (SQLite and PostgreSQL): every change recorded in the same
transaction, with who, what, when, from where and before/after; the hash chain intact under concurrent
writers; and raw SQL tampering (edit, delete, swap, forge) named by ``verify`` entry by entry."""

from __future__ import annotations

import csv
import io
import json
import threading
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text, update

from liveml import Registry
from liveml.errors import Invalid, NotFound
from liveml.jobs.scheduler import Scheduler
from liveml.jobs.schedules import ScheduleStore
from liveml.jobs.spec import JobSpec
from liveml.jobs.store import JobStore
from liveml.monitoring.alerts import AlertStore
from liveml.monitoring.monitor import Monitor
from liveml.registry import registry as registry_module
from liveml.registry.schema import AuditRow
from liveml.security import audit
from liveml.security.chain import GENESIS, AuditReport, entry_hash
from liveml.security.identity import Actor, acting_as
from liveml.settings import Settings
from tests.integration.test_concurrent_push import run_workers

TABLE = AuditRow.__table__
COLUMNS = audit.COLUMNS


# -- helpers: what an attacker with database access does -----------------------------------------------
def raw(registry: Registry, sql: str, **params: Any) -> None:
    with registry.db.engine.begin() as conn:
        conn.execute(text(sql), params)


def stored(registry: Registry) -> list[dict[str, Any]]:
    with registry.db.engine.connect() as conn:
        rows = conn.execute(select(*(TABLE.c[c] for c in COLUMNS)).order_by(TABLE.c.seq)).all()
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def write(registry: Registry, seq: int, values: dict[str, Any]) -> None:
    with registry.db.engine.begin() as conn:
        conn.execute(update(TABLE).where(TABLE.c.seq == seq).values(**values))


def sealed(row: dict[str, Any], *, seq: int | None = None, prev: str | None = None) -> str:
    """The hash an attacker who knows the (public) algorithm computes for ``row``."""
    fields = [row[c] for c in ("at", "actor", "address", "action", "target", "before", "after")]
    return entry_hash(row["prev_hash"] if prev is None else prev, row["seq"] if seq is None else seq, *fields)


def rechain(registry: Registry, start: int) -> None:
    """Recompute every hash from entry ``start`` on, so that the chain is consistent again."""
    rows = stored(registry)
    prev = GENESIS
    for row in rows:
        if row["seq"] >= start:
            row["prev_hash"] = prev
            row["hash"] = sealed(row)
            write(registry, row["seq"], {"prev_hash": row["prev_hash"], "hash": row["hash"]})
        prev = row["hash"]


def found(report: AuditReport) -> list[tuple[int, str]]:
    return [(p.seq, p.kind) for p in report.problems]


@pytest.fixture
def trail(registry: Registry, model_files: dict[str, Path]) -> Registry:
    """Eight entries: push v1 (+ production), push v2, staging moved 1, 2, 1, 2, 1."""
    registry.push("churn", model_files["logistic"], aliases=["production"])
    registry.push("churn", model_files["forest"])
    for version in (1, 2, 1, 2, 1):
        registry.set_alias("churn", "staging", version)
    assert [r["seq"] for r in stored(registry)] == list(range(1, 9))
    assert audit.verify(registry.db).ok
    return registry


# -- what is recorded ----------------------------------------------------------------------------------
def test_every_change_is_recorded_with_who_what_and_before_after(
    registry: Registry, model_files: dict[str, Path]
) -> None:
    registry.push("churn", model_files["logistic"], aliases=["production"], tags={"team": "risk"})
    registry.push("churn", model_files["forest"])
    registry.set_alias("churn", "production", 2)
    registry.rollback("churn")
    registry.set_alias("churn", "staging", 2)
    registry.delete_alias("churn", "staging")
    registry.delete_version("churn", 2)
    jobs = JobStore(registry)
    job = jobs.create(JobSpec.parse({"model": "churn@production", "input": "in.csv", "output": "out.csv"}))
    jobs.change(job.id, max_errors=5)
    jobs.cancel(job.id)
    schedules = ScheduleStore(registry)
    schedule = schedules.create(
        "churn@production", "0 2 * * *", {"input": "in.csv", "output": "o/{date}.csv"}
    )
    schedules.pause(schedule.id)
    schedules.resume(schedule.id)
    schedules.delete(schedule.id)
    alerts = AlertStore(registry)
    rule = alerts.add(
        "churn",
        "drift_share",
        above=0.3,
        channels=[{"type": "webhook", "url": "https://h.example/x", "secret": "s3cret"}],
    )
    alerts.disable(rule.id)
    alerts.enable(rule.id)
    alerts.delete(rule.id)
    Monitor(registry).set_config("churn", {"min_rows": 10})

    entries = list(audit.entries(registry.db))
    assert [(e.action, e.target) for e in entries] == [
        ("model.push", "churn:1"),
        ("alias.set", "churn@production"),
        ("model.push", "churn:2"),
        ("alias.set", "churn@production"),
        ("alias.rollback", "churn@production"),
        ("alias.set", "churn@staging"),
        ("alias.delete", "churn@staging"),
        ("version.delete", "churn:2"),
        ("job.submit", f"job:{job.id}"),
        ("job.change", f"job:{job.id}"),
        ("job.cancel", f"job:{job.id}"),
        ("schedule.create", f"schedule:{schedule.id}"),
        ("schedule.pause", f"schedule:{schedule.id}"),
        ("schedule.resume", f"schedule:{schedule.id}"),
        ("schedule.delete", f"schedule:{schedule.id}"),
        ("alert.add", f"alert:{rule.id}"),
        ("alert.disable", f"alert:{rule.id}"),
        ("alert.enable", f"alert:{rule.id}"),
        ("alert.delete", f"alert:{rule.id}"),
        ("monitor.config", "monitor:churn"),
    ]
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert {e.actor for e in entries} == {"user:tester"} and {e.address for e in entries} == {None}
    times = [e.at for e in entries]
    assert times == sorted(times) and datetime.now(UTC) - times[0] < timedelta(minutes=5)
    by = {(e.action, e.target): e for e in entries}

    push = by[("model.push", "churn:1")]
    assert push.before is None and push.after is not None
    assert push.after["version"] == 1 and push.after["aliases"] == ["production"]
    assert (
        push.after["format"] == "sklearn"
        and len(push.after["sha256"]) == 64
        and push.after["tags"] == {"team": "risk"}
    )
    assert [(e.before, e.after) for e in entries[1:7] if e.action.startswith("alias")] == [
        (None, {"version": 1}),
        ({"version": 1}, {"version": 2}),
        ({"version": 2}, {"version": 1}),
        (None, {"version": 2}),
        ({"version": 2}, None),
    ]
    deleted = by[("version.delete", "churn:2")]
    assert deleted.after is None and deleted.before is not None and deleted.before["version"] == 2
    submitted = by[("job.submit", f"job:{job.id}")]
    assert (
        submitted.after is not None
        and submitted.after["version"] == 1
        and submitted.after["spec"]["output"] == "out.csv"
    )
    assert by[("job.change", f"job:{job.id}")].after == {"max_errors": 5}
    assert (by[("job.cancel", f"job:{job.id}")].before, by[("job.cancel", f"job:{job.id}")].after) == (
        {"status": "queued"},
        {"status": "cancelled"},
    )
    created = by[("schedule.create", f"schedule:{schedule.id}")].after
    assert (
        created is not None and created["cron"] == "0 2 * * *" and created["spec"]["output"] == "o/{date}.csv"
    )
    assert by[("schedule.pause", f"schedule:{schedule.id}")].after == {"paused": True}
    assert by[("schedule.delete", f"schedule:{schedule.id}")].before is not None
    added = by[("alert.add", f"alert:{rule.id}")].after
    assert added is not None and (added["metric"], added["op"], added["threshold"]) == (
        "drift_share",
        "above",
        0.3,
    )
    assert "s3cret" not in json.dumps(added), "channel secrets must not reach the audit trail"
    assert by[("alert.disable", f"alert:{rule.id}")].after == {"enabled": False}
    config = by[("monitor.config", "monitor:churn")]
    assert config.before is None and config.after == {"min_rows": 10}
    assert audit.verify(registry.db).ok


def test_the_acting_identity_and_its_address_are_recorded(trail: Registry) -> None:
    with acting_as(Actor("key:ab12cd34", role="admin", address="203.0.113.9")):
        trail.set_alias("churn", "production", 2)
    entry = audit.head(trail.db)
    assert entry is not None and (entry.actor, entry.address, entry.action) == (
        "key:ab12cd34",
        "203.0.113.9",
        "alias.set",
    )
    with trail.db.session() as session:  # a caller with no identity and no default is still named
        audit.record(trail.db, session, "test.note", "nothing", actor_default="user:someone")
    assert audit.head(trail.db).actor == "user:someone"  # type: ignore[union-attr]


def test_the_scheduler_records_its_jobs_as_system(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("churn", model_files["logistic"], aliases=["production"])
    since = datetime(2026, 11, 18, 1, 0, tzinfo=UTC)
    ScheduleStore(registry).create(
        "churn@production", "0 2 * * *", {"input": "i.csv", "output": "o.csv"}, now=since
    )
    scheduler = Scheduler(registry.settings, launcher=lambda job_id, settings: None)
    try:
        (job,) = scheduler.tick(since + timedelta(hours=1, seconds=3))
    finally:
        scheduler.stop()
    entry = audit.head(registry.db)
    assert entry is not None and (entry.action, entry.target, entry.actor) == (
        "job.submit",
        f"job:{job.id}",
        "system:scheduler",
    )
    assert entry.after is not None and entry.after["schedule_id"] is not None


def test_a_change_and_its_entry_commit_together_or_not_at_all(
    trail: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(NotFound, match="no version 9"):
        trail.set_alias("churn", "production", 9)

    def crash(*args: object) -> None:  # fails after the entry is written, before the commit
        raise RuntimeError("crash after the audit entry")

    monkeypatch.setattr(registry_module, "_alias_event", crash)
    with pytest.raises(RuntimeError, match="crash after"):
        trail.set_alias("churn", "production", 2)
    assert audit.head(trail.db).seq == 8  # type: ignore[union-attr]
    assert trail.get("churn@production").version == 1 and audit.verify(trail.db).ok


# -- tampering: raw SQL, as someone with write access to the database ---------------------------------
def test_an_edited_entry_is_named(trail: Registry) -> None:
    raw(trail, """UPDATE audit_log SET "after" = '{"version": 99}' WHERE seq = 4""")
    report = audit.verify(trail.db)
    assert not report.ok and found(report) == [(4, "edited")]
    assert report.problems[0].message == "entry 4 was edited: its content no longer matches its hash"


def test_an_entry_rewritten_with_its_hash_recomputed_is_named(trail: Registry) -> None:
    row = stored(trail)[3]
    row["actor"] = "user:somebody-else"
    write(trail, 4, {"actor": row["actor"], "hash": sealed(row)})
    report = audit.verify(trail.db)
    assert found(report) == [(4, "edited")]
    assert "entry 4 was rewritten and its hash recomputed: entry 5 still links" in report.problems[0].message


def test_a_changed_link_is_named_as_an_edit(trail: Registry) -> None:
    write(trail, 6, {"prev_hash": "f" * 64})
    assert found(audit.verify(trail.db)) == [(6, "edited")]


@pytest.mark.parametrize(
    ("where", "expected", "says"),
    [
        ("seq = 5", [(5, "deleted")], "entry 5 is missing (deleted)"),
        ("seq BETWEEN 3 AND 5", [(3, "deleted")], "entries 3 to 5 are missing (deleted)"),
        ("seq = 1", [(1, "deleted")], "entry 1 is missing (deleted); the head of the log was removed"),
        (
            "seq <= 2",
            [(1, "deleted")],
            "entries 1 to 2 are missing (deleted); the head of the log was removed",
        ),
    ],
)
def test_a_deleted_entry_is_named(
    trail: Registry, where: str, expected: list[tuple[int, str]], says: str
) -> None:
    raw(trail, f"DELETE FROM audit_log WHERE {where}")
    report = audit.verify(trail.db)
    assert found(report) == expected and report.problems[0].message == says


def test_a_deleted_entry_hidden_by_renumbering_is_named(trail: Registry) -> None:
    raw(trail, "DELETE FROM audit_log WHERE seq = 5")
    raw(trail, "UPDATE audit_log SET seq = -(seq - 1) WHERE seq > 5")
    raw(trail, "UPDATE audit_log SET seq = -seq WHERE seq < 0")
    assert [r["seq"] for r in stored(trail)] == list(range(1, 8))  # no gap left
    report = audit.verify(trail.db)
    assert found(report) == [(5, "deleted")]
    assert report.problems[0].message.startswith(
        "entry 5 is missing (deleted); the entries after it were renumbered"
    )


@pytest.mark.parametrize(
    ("one", "other", "columns"),
    [
        (2, 6, [c for c in COLUMNS if c != "seq"]),  # whole rows swapped, their numbers kept
        (4, 5, [c for c in COLUMNS if c != "seq"]),  # neighbours
        (2, 6, ["at", "actor", "address", "action", "target", "before", "after"]),  # content only
    ],
)
def test_swapped_entries_are_named_as_out_of_order(
    trail: Registry, one: int, other: int, columns: list[str]
) -> None:
    rows = {r["seq"]: r for r in stored(trail)}
    write(trail, one, {c: rows[other][c] for c in columns})
    write(trail, other, {c: rows[one][c] for c in columns})
    report = audit.verify(trail.db)
    assert found(report) == [(one, "reordered")]
    assert report.problems[0].seqs == [one, other]
    assert report.problems[0].message.startswith(f"entries {one} and {other} are out of order")


def test_a_forged_entry_inserted_by_renumbering_is_named(trail: Registry) -> None:
    """The forger makes room at 4 and computes a perfect hash for the forged entry: the renumbered entries
    after it no longer hash under their new numbers."""
    raw(trail, "UPDATE audit_log SET seq = -(seq + 1) WHERE seq >= 4")
    raw(trail, "UPDATE audit_log SET seq = -seq WHERE seq < 0")
    third = stored(trail)[2]
    forged = {**third, "seq": 4, "actor": "user:alice", "action": "alias.set", "prev_hash": third["hash"]}
    forged["hash"] = sealed(forged)
    with trail.db.engine.begin() as conn:
        conn.execute(insert(TABLE).values(**forged))
    report = audit.verify(trail.db)
    assert found(report) == [(4, "inserted")]
    assert report.problems[0].message.startswith("entry 4 was inserted (forged)")


def test_a_forged_entry_that_does_not_chain_is_named(trail: Registry) -> None:
    last = stored(trail)[-1]
    forged = {**last, "seq": 9, "actor": "user:mallory", "prev_hash": "a" * 64, "hash": "b" * 64}
    with trail.db.engine.begin() as conn:
        conn.execute(insert(TABLE).values(**forged))
    report = audit.verify(trail.db)
    assert found(report) == [(9, "inserted")]
    assert "entry 9 is not one liveml wrote" in report.problems[0].message


def test_a_forged_entry_with_a_skipped_number_is_named(trail: Registry) -> None:
    last = stored(trail)[-1]
    forged = {**last, "seq": 20, "actor": "user:mallory", "prev_hash": last["hash"]}
    forged["hash"] = sealed(forged)
    with trail.db.engine.begin() as conn:
        conn.execute(insert(TABLE).values(**forged))
    assert found(audit.verify(trail.db)) == [(20, "inserted")]


def test_a_replaced_head_is_named(trail: Registry) -> None:
    first = stored(trail)[0]
    first["prev_hash"] = "1" * 64
    write(trail, 1, {"prev_hash": first["prev_hash"], "hash": sealed(first)})
    assert found(audit.verify(trail.db)) == [(1, "broken_link")]


def test_a_head_kept_elsewhere_catches_a_recomputed_chain_and_truncation(trail: Registry) -> None:
    head = audit.head(trail.db)
    assert head is not None
    anchor = (head.seq, head.hash)
    assert audit.verify(trail.db, anchor=anchor).ok
    trail.set_alias("churn", "staging", 2)  # later entries do not disturb the anchor
    assert audit.verify(trail.db, anchor=anchor).ok

    raw(trail, """UPDATE audit_log SET actor = 'user:nobody' WHERE seq = 3""")
    rechain(trail, 3)  # the chain is consistent again: only the kept head can tell
    assert audit.verify(trail.db).ok
    report = audit.verify(trail.db, anchor=anchor)
    assert (
        found(report) == [(8, "broken_link")]
        and "rewritten and its hashes recomputed" in report.problems[0].message
    )

    raw(trail, "DELETE FROM audit_log WHERE seq >= 8")  # dropping the newest entries leaves no gap
    assert audit.verify(trail.db).ok
    report = audit.verify(trail.db, anchor=anchor)
    assert found(report) == [(8, "deleted")] and "truncated" in report.problems[0].message
    with pytest.raises(Invalid, match="SEQ:HASH"):
        audit.parse_anchor("8:nothex")
    assert audit.parse_anchor(f"{head.seq}:{head.hash}") == anchor


def test_appending_after_tampering_keeps_naming_the_damage(trail: Registry) -> None:
    raw(trail, """UPDATE audit_log SET target = 'churn@canary' WHERE seq = 6""")
    trail.set_alias("churn", "staging", 2)
    report = audit.verify(trail.db)
    assert found(report) == [(6, "edited")] and report.entries_checked == 9


# -- many writers at once ----------------------------------------------------------------------------
def test_writers_in_threads_keep_one_intact_chain(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("race", model_files["forest"])
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with Registry(registry.settings.model_copy(update={"user": f"thread-{i}"})) as reg:
                barrier.wait(timeout=30)
                for _ in range(2):
                    reg.push("race", model_files["logistic"], aliases=[f"a{i}"])
                    for version in (1, 2, 1):
                        reg.set_alias("race", "shared", version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    entries = list(audit.entries(registry.db))
    assert [e.seq for e in entries] == list(range(1, 1 + 1 + 2 * 2 * (2 + 3)))
    assert {e.actor for e in entries[1:]} == {"user:thread-0", "user:thread-1"}
    report = audit.verify(registry.db)
    assert report.ok and report.entries_checked == len(entries)


def test_writers_in_processes_keep_one_intact_chain(settings: Settings, model_files: dict[str, Path]) -> None:
    Registry.init(settings).close()
    files = [str(model_files["logistic"]), str(model_files["forest"])]
    configs = [
        {"name": "race", "files": files, "aliases": ["production"], "alias": "staging", "moves": [1, 2, 3, 4]}
        for _ in range(2)
    ]
    run_workers(settings, configs)
    with Registry(settings) as reg:
        entries = list(audit.entries(reg.db))
        assert [e.seq for e in entries] == list(range(1, 17))  # 2 x (2 pushes with an alias + 4 moves)
        assert {e.actor for e in entries} == {"user:writer-0", "user:writer-1"}
        assert sorted(e.target for e in entries if e.action == "model.push") == [
            f"race:{v}" for v in range(1, 5)
        ]
        assert audit.verify(reg.db).ok


@pytest.mark.slow
def test_a_long_log_is_verified_in_bounded_memory(registry: Registry) -> None:
    """20,000 entries written in bulk; verify reads them page by page and still finds one edit deep inside."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    prev = GENESIS
    rows = []
    for seq in range(1, 20_001):
        at = now + timedelta(seconds=seq)
        after = {"version": seq % 7, "note": "x" * 40}
        digest = entry_hash(prev, seq, at, "user:bulk", None, "alias.set", f"m@a{seq % 3}", None, after)
        rows.append({"seq": seq, "at": at, "actor": "user:bulk", "address": None, "action": "alias.set",
                     "target": f"m@a{seq % 3}", "before": None, "after": after, "prev_hash": prev, "hash": digest})  # fmt: skip
        prev = digest
    with registry.db.engine.begin() as conn:
        conn.execute(insert(TABLE), rows)
    del rows
    raw(registry, """UPDATE audit_log SET target = 'm@forged' WHERE seq = 17182""")
    tracemalloc.start()
    try:
        report = audit.verify(registry.db, page=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.entries_checked == 20_000 and found(report) == [(17182, "edited")]
    # measured: about 5 MB with pages of 1,000 entries; about 44 MB reading all 20,000 at once
    assert peak < 12 * 1024 * 1024, f"verify held {peak / 1e6:.0f} MB"


# -- reading and exporting ---------------------------------------------------------------------------
def test_listing_filters_by_time_action_and_actor(trail: Registry) -> None:
    entries = list(audit.entries(trail.db))
    newest = list(audit.entries(trail.db, newest_first=True, limit=3))
    assert [e.seq for e in newest] == [8, 7, 6]
    assert [e.seq for e in audit.entries(trail.db, newest_first=True, limit=3, before_seq=6)] == [5, 4, 3]
    assert [e.action for e in audit.entries(trail.db, action="model")] == ["model.push", "model.push"]
    assert len(list(audit.entries(trail.db, action="alias.set"))) == 6
    assert list(audit.entries(trail.db, actor="user:nobody")) == []
    middle = entries[3].at
    assert [e.seq for e in audit.entries(trail.db, since=middle)] == [4, 5, 6, 7, 8]
    assert [e.seq for e in audit.entries(trail.db, until=middle)] == [1, 2, 3]


def test_export_as_json_lines_and_csv_keeps_every_field(trail: Registry, tmp_path: Path) -> None:
    lines = audit.export_text(trail.db, format="jsonl").splitlines()
    assert len(lines) == 8
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == list(range(1, 9)) and set(records[0]) == set(COLUMNS)
    prev = GENESIS
    for r in records:  # an export can be checked on its own, without the database
        fields = [
            datetime.fromisoformat(r["at"]),
            r["actor"],
            r["address"],
            r["action"],
            r["target"],
            r["before"],
            r["after"],
        ]
        assert r["prev_hash"] == prev and entry_hash(prev, r["seq"], *fields) == r["hash"]
        prev = r["hash"]
    table = list(csv.DictReader(io.StringIO(audit.export_text(trail.db, format="csv"))))
    assert [int(r["seq"]) for r in table] == list(range(1, 9)) and list(table[0]) == list(COLUMNS)
    assert table[1]["action"] == "alias.set" and json.loads(table[1]["after"]) == {"version": 1}
    assert table[1]["before"] == "" and table[1]["hash"] == records[1]["hash"]
    since = datetime.fromisoformat(records[5]["at"])
    assert len(audit.export_text(trail.db, format="jsonl", since=since).splitlines()) == 3
    with pytest.raises(Invalid, match="jsonl or csv"):
        audit.export_text(trail.db, format="xml")


def test_times_are_iso_dates_times_or_durations_back_from_now() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert audit.parse_time("7d", now=now) == now - timedelta(days=7)
    assert audit.parse_time("1h30m", now=now) == now - timedelta(minutes=90)
    assert audit.parse_time("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert audit.parse_time("2026-11-01T14:00:00+02:00") == datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert audit.parse_time("2026-11-01T14:00:00Z") == datetime(2026, 11, 1, 14, tzinfo=UTC)
    with pytest.raises(Invalid, match=r"--since 'last tuesday' is not a time: give an ISO date"):
        audit.parse_time("last tuesday", field="--since")
