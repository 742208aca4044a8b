"""API keys: created at random, stored only as hashes, checked in constant time, revocable, expiring.

A key reads ``lml_<id>_<secret>``: the id (16 hex digits) finds the row, the secret (32 random bytes,
URL-safe base64: 256 bits) is what proves it. Only ``sha256(secret)`` is stored; with 256 random bits a
fast hash is as strong as a slow one, and a stolen database gives no usable key. The full key is shown
once, when created."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import select, update

from liveml.errors import Conflict, Invalid, NotFound
from liveml.registry.db import Database
from liveml.registry.names import parse_ref
from liveml.registry.schema import ApiKeyRow, utcnow
from liveml.security import audit

log = logging.getLogger("liveml.security.keys")
Role = Literal["admin", "deployer", "predictor", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
PREFIX = "lml_"
ID_LENGTH = 16
SECRET_BYTES = 32
#: what a key looks like; anything else is refused without a database read
KEY_PATTERN = re.compile(rf"{PREFIX}(?P<id>[0-9a-f]{{{ID_LENGTH}}})_(?P<secret>[A-Za-z0-9_-]{{43}})")
#: one transaction at a time may create the first admin key (``liveml init`` run twice at once)
BOOTSTRAP_LOCK = "liveml-api-keys-bootstrap"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


@dataclass(frozen=True)
class ApiKey:
    """What is known about a key: never its secret."""

    id: str
    role: Role
    models: tuple[str, ...] | None
    description: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= utcnow():
            return "expired"
        return "active"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "models": list(self.models) if self.models is not None else None,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "status": self.status,
        }


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``secret`` is the whole key text, to show once and never again."""

    key: ApiKey
    secret: str


@dataclass(frozen=True)
class StoredKey:
    """A key with its stored hash, as the server's check needs it."""

    key: ApiKey
    key_hash: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(text: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None."""
    match = KEY_PATTERN.fullmatch(text)
    return (match["id"], match["secret"]) if match else None


#: compared against when no row has the given id, so an unknown id costs what a wrong secret costs
_DUMMY_HASH = hash_secret("no such key")


def secret_matches(secret: str, stored: StoredKey | None) -> bool:
    """Constant-time comparison of the secret's hash with the stored one."""
    expected = stored.key_hash if stored is not None else _DUMMY_HASH
    same = hmac.compare_digest(hash_secret(secret), expected)
    return same and stored is not None


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``2w``, ``1y`` (also ``45s``) as a positive duration."""
    match = _DURATION.match(text.lower())
    if not match or float(match[1]) <= 0:
        raise Invalid(f"expiry {text!r} is not a duration; use a number and a unit: 30m, 12h, 90d, 2w or 1y")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r}; the roles are: {', '.join(ROLES)}")
    return role


def check_models(role: Role, models: list[str] | None) -> tuple[str, ...] | None:
    """Model names a key is limited to: predictor keys only, each a valid model name."""
    if not models:
        return None
    if role != "predictor":
        raise Invalid(
            f"--models limits predictor keys only; a {role} key acts on every model (create a predictor "
            "key for the models instead)"
        )
    names = []
    for model in models:
        ref = parse_ref(model)
        if ref.version is not None or ref.alias is not None:
            raise Invalid(f"--models takes model names, not versions or aliases: {model!r}")
        names.append(ref.name)
    return tuple(dict.fromkeys(names))


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        role=check_role(row.role),
        models=tuple(row.models) if row.models is not None else None,
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


class KeyStore:
    """The ``api_keys`` table of a registry's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        role: str,
        *,
        created_by: str,
        models: list[str] | None = None,
        expires_in: timedelta | None = None,
        expires_at: datetime | None = None,
        description: str = "",
    ) -> NewKey:
        """A new key (recorded in the audit trail); the returned secret is the only copy there is."""
        checked = check_role(role)
        limited = check_models(checked, models)
        with self.db.session() as session:
            return self._create(session, checked, created_by, limited, expires_in, expires_at, description)

    def _create(
        self,
        session: Any,
        role: Role,
        created_by: str,
        models: tuple[str, ...] | None,
        expires_in: timedelta | None,
        expires_at: datetime | None,
        description: str,
    ) -> NewKey:
        now = utcnow()
        key_id = secrets.token_hex(ID_LENGTH // 2)
        secret = secrets.token_urlsafe(SECRET_BYTES)
        row = ApiKeyRow(
            id=key_id,
            key_hash=hash_secret(secret),
            role=role,
            models=list(models) if models is not None else None,
            description=description,
            created_by=created_by,
            created_at=now,
            expires_at=expires_at or (now + expires_in if expires_in is not None else None),
        )
        session.add(row)
        session.flush()
        key = _key(row)
        after = {k: v for k, v in key.to_json().items() if k not in ("last_used_at", "revoked_at")}
        audit.record(self.db, session, "key.create", f"key:{key_id}", after=after, actor_default=created_by)
        return NewKey(key, f"{PREFIX}{key_id}_{secret}")

    def ensure_admin(self, *, created_by: str) -> NewKey | None:
        """The first admin key, when no active admin key exists yet (else None): what ``liveml init`` does."""
        with self.db.session() as session:
            self.db.lock_key(session, BOOTSTRAP_LOCK)
            now = utcnow()
            active = session.scalars(
                select(ApiKeyRow.id).where(
                    ApiKeyRow.role == "admin",
                    ApiKeyRow.revoked_at.is_(None),
                    (ApiKeyRow.expires_at.is_(None)) | (ApiKeyRow.expires_at > now),
                )
            ).first()
            if active is not None:
                return None
            return self._create(session, "admin", created_by, None, None, None, "created by liveml init")

    def list(self) -> list[ApiKey]:
        with self.db.read_session() as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id))
            return [_key(row) for row in rows]

    def get(self, key_id: str) -> ApiKey:
        with self.db.read_session() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound(f"no API key {key_id!r}; `liveml keys list` shows the keys there are")
            return _key(row)

    def revoke(self, key_id: str, *, by: str | None = None) -> ApiKey:
        """Revoke a key (recorded in the audit trail as done by the acting identity, else ``by``);
        servers refuse it within seconds."""
        with self.db.session() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound(f"no API key {key_id!r}; `liveml keys list` shows the keys there are")
            if row.revoked_at is not None:
                raise Conflict(
                    f"API key {key_id} was already revoked at {row.revoked_at:%Y-%m-%d %H:%M:%S} UTC"
                )
            before = _key(row).to_json()
            row.revoked_at = utcnow()
            session.flush()
            after = _key(row).to_json()
            audit.record(
                self.db, session, "key.revoke", f"key:{key_id}", before=before, after=after, actor_default=by
            )
            return _key(row)

    def lookup(self, key_id: str) -> StoredKey | None:
        """The row for an id, with its hash (for the server's check); None when there is none."""
        with self.db.read_session() as session:
            row = session.get(ApiKeyRow, key_id)
            return StoredKey(_key(row), row.key_hash) if row is not None else None

    def touch(self, key_id: str, at: datetime | None = None) -> None:
        """Record that a key was used (the server calls this at most once a minute per key)."""
        with self.db.session() as session:
            session.execute(
                update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=at or utcnow())
            )


@dataclass(frozen=True)
class Verdict:
    """What a presented key is: ``key`` when valid, else why not (``invalid`` covers unknown, wrong and
    revoked alike, so an answer never tells which)."""

    key: ApiKey | None
    problem: Literal["invalid", "expired"] | None = None


#: keys remembered at most (beyond it the cache starts over: a flood of made-up ids cannot grow it)
MAX_CACHED = 10_000
#: how often a key's last_used_at is written, at most
TOUCH_EVERY_S = 60.0


@dataclass
class KeyCache:
    """The server's view of the keys: rows read from the database, kept ``ttl_s`` (so a revocation or an
    expiry takes effect within that), unknown ids included."""

    store: KeyStore
    ttl_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _rows: dict[str, tuple[float, StoredKey | None]] = field(default_factory=dict)
    _touched: dict[str, float] = field(default_factory=dict)

    def cached(self, key_id: str) -> tuple[bool, StoredKey | None]:
        """(True, row or None) when a fresh enough answer is at hand, else (False, None): then ``load``."""
        entry = self._rows.get(key_id)
        if entry is None or self.clock() - entry[0] > self.ttl_s:
            return False, None
        return True, entry[1]

    def load(self, key_id: str) -> StoredKey | None:
        """Read the row (a database read: call it off the event loop) and remember it."""
        stored = self.store.lookup(key_id)
        if len(self._rows) >= MAX_CACHED:
            self._rows.clear()
        self._rows[key_id] = (self.clock(), stored)
        return stored

    @staticmethod
    def verify(secret: str, stored: StoredKey | None) -> Verdict:
        if not secret_matches(secret, stored) or stored is None or stored.key.revoked_at is not None:
            return Verdict(None, "invalid")
        if stored.key.expires_at is not None and stored.key.expires_at <= utcnow():
            return Verdict(stored.key, "expired")
        return Verdict(stored.key)

    def touch_due(self, key_id: str) -> bool:
        """True (and noted) when the key's last use has not been written for a minute."""
        now = self.clock()
        if now - self._touched.get(key_id, -TOUCH_EVERY_S) < TOUCH_EVERY_S:
            return False
        if len(self._touched) >= MAX_CACHED:
            self._touched.clear()
        self._touched[key_id] = now
        return True

    def touch(self, key_id: str) -> None:
        try:
            self.store.touch(key_id)
        except Exception as exc:  # bookkeeping only: a busy database must not fail the request
            log.warning("could not record the use of key %s: %s", key_id, exc)


__all__ = [
    "ROLES",
    "ApiKey",
    "KeyCache",
    "KeyStore",
    "NewKey",
    "Role",
    "StoredKey",
    "Verdict",
    "check_role",
    "hash_secret",
    "parse_duration",
    "secret_matches",
    "split_key",
]
