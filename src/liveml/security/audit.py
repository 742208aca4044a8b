"""The audit trail: every change, append-only and hash-chained.

Each entry's ``hash`` is the sha256 of the previous entry's hash and the entry's own canonical JSON
(sequence number, time, actor, address, action, target, before, after). Editing, deleting or reordering
any entry breaks the chain from that entry on, which ``verify`` finds and names (``chain.py`` holds the
arithmetic). Entries are written in the same transaction as the change they describe, so a change without
its entry (or the reverse) cannot be committed.

Who acted: the identity the HTTP layer set for the request (``key:<id>``, with the caller's address), else
the caller's ``actor_default`` (``user:<settings.user>`` for the CLI and the Python API; the scheduler acts
as ``system:scheduler``)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Literal, Protocol

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from liveml.errors import Invalid
from liveml.registry.db import Database
from liveml.registry.schema import AuditRow, utcnow
from liveml.security.chain import GENESIS, AuditEntry, AuditProblem, AuditReport, ChainWalk, entry_hash
from liveml.security.identity import current_actor
from liveml.settings import Settings

LOCK_KEY = "liveml-audit-chain"
SCHEDULER = "system:scheduler"
PAGE = 2000
ExportFormat = Literal["jsonl", "csv"]
EXPORT_FORMATS: tuple[str, ...] = ("jsonl", "csv")
COLUMNS = ("seq", "at", "actor", "address", "action", "target", "before", "after", "prev_hash", "hash")
_FIELDS = tuple(getattr(AuditRow, c) for c in COLUMNS)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*[smhdw]\s*)+")
TIME_FORMS = (
    "an ISO date or time (2026-11-01, 2026-11-01T14:00:00Z) or a duration back from now (30m, 6h, 7d)"
)


class RegistryLike(Protocol):
    """What ``record_change`` needs of a registry: its database and its settings (the local user)."""

    @property
    def db(self) -> Database: ...

    @property
    def settings(self) -> Settings: ...


# -- writing -----------------------------------------------------------------------------------------
def record(
    db: Database,
    session: Session,
    action: str,
    target: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor: str | None = None,
    actor_default: str | None = None,
) -> AuditRow:
    """Append an entry inside ``session`` (the transaction making the change). The actor is ``actor``,
    else the acting identity (an API key, set per request), else ``actor_default`` (pass
    ``local_actor(settings)``: the CLI and Python API set no identity)."""
    who = current_actor()
    db.lock_key(
        session, LOCK_KEY
    )  # PostgreSQL: one appender at a time; SQLite writers are serialized already
    last = session.execute(
        select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)
    ).one_or_none()
    prev = last.hash if last is not None else GENESIS
    seq = (last.seq + 1) if last is not None else 1
    at = utcnow()
    name = (actor or (who.who if who is not None else None) or actor_default or "unknown")[:256]
    address = who.address[:128] if who is not None and who.address else None
    target = target[:512]
    before_json = _plain(before)
    after_json = _plain(after)
    row = AuditRow(
        seq=seq,
        at=at,
        actor=name,
        address=address,
        action=action,
        target=target,
        before=before_json,
        after=after_json,
        prev_hash=prev,
        hash=entry_hash(prev, seq, at, name, address, action, target, before_json, after_json),
    )
    session.add(row)
    session.flush()
    return row


def local_actor(settings: Settings) -> str:
    """The actor of a change made through the CLI or the Python API: ``user:<settings.user>``."""
    return f"user:{settings.user}"


def record_change(
    registry: RegistryLike,
    session: Session,
    action: str,
    target: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditRow:
    """``record`` for the registry's own stores: the local user unless a request's identity is set."""
    return record(
        registry.db,
        session,
        action,
        target,
        before=before,
        after=after,
        actor_default=local_actor(registry.settings),
    )


def _plain(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """JSON-safe (datetimes as ISO text, NaN and infinities as text: PostgreSQL's JSON has no such
    numbers), exactly as it will read back from the database."""
    return None if value is None else json.loads(json.dumps(_finite(value), default=str))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# -- reading -----------------------------------------------------------------------------------------
def parse_time(text: str | datetime, *, field: str = "time", now: datetime | None = None) -> datetime:
    """An ISO date or time (UTC unless it names a zone), or a duration such as ``7d`` meaning that long ago."""
    if isinstance(text, datetime):
        return text if text.tzinfo is not None else text.replace(tzinfo=UTC)
    value = text.strip()
    if _DURATION.fullmatch(value):
        seconds = sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)\s*([smhdw])", value))
        return (now or utcnow()) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{field} {text!r} is not a time: give {TIME_FORMS}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _filtered(
    query: Select[Any],
    *,
    since: datetime | None,
    until: datetime | None,
    action: str | None,
    actor: str | None,
) -> Select[Any]:
    if since is not None:
        query = query.where(AuditRow.at >= since)
    if until is not None:
        query = query.where(AuditRow.at < until)
    if action:  # ``alias`` matches alias.set, alias.delete, alias.rollback
        query = query.where(or_(AuditRow.action == action, AuditRow.action.startswith(action + ".")))
    if actor:
        query = query.where(AuditRow.actor == actor)
    return query


def _entry(row: Any) -> AuditEntry:
    # the columns' types are the fields' types: no validation, which is a fifth of a long verify
    return AuditEntry.model_construct(**dict(zip(COLUMNS, row, strict=True)))


def entries(
    db: Database,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    action: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
    newest_first: bool = False,
    before_seq: int | None = None,
    page: int = PAGE,
) -> Iterator[AuditEntry]:
    """Entries in ``seq`` order (or newest first), read ``page`` at a time: memory stays bounded on a log of
    any length. ``since`` is inclusive, ``until`` exclusive; ``before_seq`` resumes a newest-first listing."""
    cursor = before_seq
    left = limit
    while left is None or left > 0:
        size = page if left is None else min(page, left)
        query = _filtered(select(*_FIELDS), since=since, until=until, action=action, actor=actor)
        if cursor is not None:
            query = query.where(AuditRow.seq < cursor if newest_first else AuditRow.seq > cursor)
        query = query.order_by(AuditRow.seq.desc() if newest_first else AuditRow.seq).limit(size)
        with db.read_session() as session:
            rows = [_entry(r) for r in session.execute(query)]
        yield from rows
        if len(rows) < size:
            return
        cursor = rows[-1].seq
        if left is not None:
            left -= len(rows)


def head(db: Database) -> AuditEntry | None:
    """The newest entry: keep its seq and hash outside the database to detect a rewritten chain."""
    return next(entries(db, limit=1, newest_first=True), None)


# -- checking ----------------------------------------------------------------------------------------
def verify(db: Database, *, anchor: tuple[int, str] | None = None, page: int = PAGE) -> AuditReport:
    """Walk the whole chain in ``seq`` order and name every entry that was edited, deleted, inserted or
    reordered. ``anchor``: a (seq, hash) kept elsewhere (``liveml audit head``); that entry must still
    carry that hash, which catches a chain rewritten with every later hash recomputed."""
    walk = ChainWalk(anchor)
    for entry in entries(db, page=page):
        walk.feed(entry)
    return walk.report()


def parse_anchor(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as ``liveml audit head`` prints it."""
    seq, sep, digest = text.strip().partition(":")
    digest = digest.strip().lower()
    if not sep or not seq.strip().isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise Invalid(
            f"head {text!r} is not SEQ:HASH (a number, a colon and 64 hex digits), as `liveml audit head` prints it"
        )
    return int(seq), digest


# -- exporting ---------------------------------------------------------------------------------------
def entry_record(entry: AuditEntry) -> dict[str, Any]:
    """The entry as plain JSON: ``at`` in ISO form with microseconds, exactly the text its hash covers."""
    body = entry.model_dump(mode="json")
    body["at"] = entry.at.isoformat(timespec="microseconds")
    return body


def export(
    db: Database,
    out: IO[str],
    *,
    format: str = "jsonl",
    since: datetime | None = None,
    until: datetime | None = None,
    action: str | None = None,
    actor: str | None = None,
) -> int:
    """Write the entries (oldest first) to ``out`` as JSON lines or CSV, streaming; returns how many.
    Every field is kept, hashes included, so an export can be checked on its own."""
    if format not in EXPORT_FORMATS:
        raise Invalid(f"unknown export format {format!r}: use jsonl or csv")
    writer = csv.writer(out, lineterminator="\n") if format == "csv" else None
    if writer is not None:
        writer.writerow(COLUMNS)
    count = 0
    for entry in entries(db, since=since, until=until, action=action, actor=actor):
        body = entry_record(entry)
        if writer is None:
            out.write(json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n")
        else:
            for key in ("before", "after"):
                body[key] = (
                    "" if body[key] is None else json.dumps(body[key], ensure_ascii=False, sort_keys=True)
                )
            writer.writerow(["" if body[c] is None else body[c] for c in COLUMNS])
        count += 1
    return count


def export_text(db: Database, *, format: str = "jsonl", **filters: Any) -> str:
    """``export`` into a string (small logs, tests)."""
    buffer = io.StringIO()
    export(db, buffer, format=format, **filters)
    return buffer.getvalue()


__all__ = [
    "EXPORT_FORMATS",
    "GENESIS",
    "SCHEDULER",
    "AuditEntry",
    "AuditProblem",
    "AuditReport",
    "entries",
    "entry_hash",
    "entry_record",
    "export",
    "export_text",
    "head",
    "local_actor",
    "parse_anchor",
    "parse_time",
    "record",
    "record_change",
    "verify",
]
