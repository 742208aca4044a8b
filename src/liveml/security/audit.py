"""The audit trail: every change, append-only and hash-chained.

Each entry's ``hash`` is the sha256 of the previous entry's hash and the entry's own canonical JSON
(sequence number, time, actor, address, action, target, before, after). Editing, deleting or reordering
any entry breaks the chain from that entry on, which ``verify`` finds and names. Entries are written in
the same transaction as the change they describe, so a change without its entry (or the reverse) cannot
be committed."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liveml.registry.db import Database
from liveml.registry.schema import AuditRow, utcnow
from liveml.security.identity import current_actor

GENESIS = "0" * 64
LOCK_KEY = "liveml-audit-chain"


def entry_hash(prev_hash: str, seq: int, at: datetime, actor: str, address: str | None, action: str,
               target: str, before: Any, after: Any) -> str:  # fmt: skip
    """The hash an entry must carry, given the one before it."""
    body = json.dumps(
        [seq, at.isoformat(timespec="microseconds"), actor, address, action, target, before, after],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
        ensure_ascii=False,
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def record(
    db: Database,
    session: Session,
    action: str,
    target: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor: str | None = None,
) -> AuditRow:
    """Append an entry inside ``session`` (the transaction making the change). ``actor`` defaults to the
    acting identity (an API key's id, the local user), else ``user:<settings.user>``-style callers pass it."""
    who = current_actor()
    db.lock_key(
        session, LOCK_KEY
    )  # PostgreSQL: one appender at a time; SQLite writers are serialized already
    last = session.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).one_or_none()
    prev = last.hash if last is not None else GENESIS
    seq = (last.seq + 1) if last is not None else 1
    at = utcnow()
    name = actor or (who.who if who is not None else "unknown")
    address = who.address if who is not None else None
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


def _plain(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """JSON-safe (datetimes as ISO text), exactly as it will read back from the database."""
    return None if value is None else json.loads(json.dumps(value, default=str))


__all__ = ["GENESIS", "entry_hash", "record"]
