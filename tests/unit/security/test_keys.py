"""API keys without a server: the key format, hashing, constant-time checks, durations, roles, the store."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from liveml import Registry, Settings
from liveml.errors import Conflict, Invalid, NotFound
from liveml.registry.schema import ApiKeyRow
from liveml.security.credentials import api_key, read_credentials, write_credentials
from liveml.security.keys import (
    KeyCache,
    KeyStore,
    hash_secret,
    parse_duration,
    secret_matches,
    split_key,
)


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(Registry.init(Settings(home=tmp_path / "home", user="tester")).db)


def test_keys_are_random_256_bit_and_stored_only_as_hashes(store: KeyStore) -> None:
    made = [store.create("viewer", created_by="t") for _ in range(3)]
    texts = [m.secret for m in made]
    assert len(set(texts)) == 3
    for new in made:
        key_id, secret = split_key(new.secret) or ("", "")
        assert key_id == new.key.id and len(secret) == 43  # 32 bytes of base64url: 256 bits
    with store.db.read_session() as session:
        rows = session.query(ApiKeyRow).all()
        stored = " ".join(f"{r.id} {r.key_hash} {r.description}" for r in rows)
    secrets = [(split_key(t) or ("", ""))[1] for t in texts]
    assert all(secret not in stored for secret in secrets)
    assert {r.key_hash for r in rows} == {hash_secret(secret) for secret in secrets}


def test_checking_a_key(store: KeyStore) -> None:
    new = store.create("predictor", created_by="t", models=["churn"])
    key_id, secret = split_key(new.secret) or ("", "")
    stored = store.lookup(key_id)
    assert stored is not None and secret_matches(secret, stored)
    assert not secret_matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), stored)
    assert not secret_matches(secret, None)  # an unknown id: compared against a dummy, never a match
    assert store.lookup("0" * 16) is None
    for bad in (
        "",
        "lml_",
        new.secret + "x",
        new.secret.replace("lml_", "key_"),
        "Bearer " + new.secret,
        new.secret + "\n",
    ):
        assert split_key(bad) is None
    cache = KeyCache(store)
    assert cache.verify(secret, stored).key == new.key
    store.revoke(key_id, by="t")
    assert cache.verify(secret, store.lookup(key_id)).problem == "invalid"


def test_the_cache_reads_again_after_its_ttl(store: KeyStore) -> None:
    now = itertools.count()
    cache = KeyCache(store, ttl_s=1.5, clock=lambda: float(next(now)))
    new = store.create("viewer", created_by="t")
    assert cache.cached(new.key.id) == (False, None)
    assert cache.load(new.key.id) is not None
    hit, row = cache.cached(new.key.id)
    assert hit and row is not None and row.key.revoked_at is None
    store.revoke(new.key.id)
    assert cache.cached(new.key.id)[0] is False  # stale now: the server reads the revocation
    assert cache.touch_due(new.key.id) and not cache.touch_due(new.key.id)


def test_expired_keys(store: KeyStore) -> None:
    from liveml.registry.schema import utcnow

    old = store.create("viewer", created_by="t", expires_at=utcnow() - timedelta(seconds=1))
    key_id, secret = split_key(old.secret) or ("", "")
    verdict = KeyCache.verify(secret, store.lookup(key_id))
    assert verdict.problem == "expired" and old.key.status == "expired"


def test_store_errors_and_bootstrap(store: KeyStore) -> None:
    with pytest.raises(Invalid, match="unknown role"):
        store.create("root", created_by="t")
    with pytest.raises(Invalid, match="predictor keys only"):
        store.create("viewer", created_by="t", models=["churn"])
    with pytest.raises(Invalid, match="model names"):
        store.create("predictor", created_by="t", models=["churn@production"])
    with pytest.raises(NotFound):
        store.revoke("nope")
    first = store.ensure_admin(created_by="t")
    assert first is not None and first.key.role == "admin"
    assert store.ensure_admin(created_by="t") is None  # one admin key, however often init runs
    store.revoke(first.key.id)
    with pytest.raises(Conflict, match="already revoked"):
        store.revoke(first.key.id)
    assert store.ensure_admin(created_by="t") is not None  # none active: a new one


@pytest.mark.parametrize(
    ("text", "seconds"), [("90d", 90 * 86400), ("12h", 43200), ("30m", 1800), ("2w", 1209600), ("1.5h", 5400)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "90", "d", "-1d", "0d", "soon", "1x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(Invalid, match="not a duration"):
        parse_duration(text)


def test_credentials_file_is_0600_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "home" / "credentials"
    write_credentials(path, "lml_first")
    write_credentials(path, "lml_second")
    assert path.stat().st_mode & 0o777 == 0o600 and read_credentials(path) == "lml_second"
    assert [p.name for p in path.parent.iterdir()] == ["credentials"]  # no temporary left behind
    settings = Settings(home=tmp_path / "home")
    assert api_key(settings) == "lml_second"
    assert api_key(settings.model_copy(update={"api_key": SecretStr("lml_env")})) == "lml_env"
    assert read_credentials(tmp_path / "none") is None
