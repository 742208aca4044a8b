"""A real server with API keys on, over a registry with iris models, and a key of every role."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from liveml import Registry
from liveml.api import create_app
from liveml.api.auth import AuthConfig
from liveml.api.context import ApiContext
from liveml.registry.schema import utcnow
from liveml.security.keys import KeyStore
from liveml.serving.host import HostOptions, ModelHost
from tests.live_server import LiveServer

#: no rate limit, generous caps: the matrix test is about who, not how much
UNLIMITED = AuthConfig(rate_limit_per_s=0, max_concurrent_per_key=1000, request_timeout_s=60)
ROLES = ("admin", "deployer", "predictor", "viewer")


@dataclass
class Served:
    url: str
    app: Starlette
    ctx: ApiContext
    host: ModelHost
    registry: Registry
    keys: KeyStore


@contextmanager
def guarded(
    registry: Registry,
    auth: AuthConfig = UNLIMITED,
    *,
    refs: list[str] | None = None,
    default_model: str | None = "iris",
    batching: bool = True,
    inline: bool = True,
) -> Iterator[Served]:
    """``inline=False``: every prediction in a worker thread (a model that blocks never stalls the loop)."""
    host = ModelHost(registry, refs=refs, options=HostOptions(poll_interval_s=0, batching=batching))
    ctx = ApiContext(host=host, default_model=default_model, auth=auth)
    if not inline:
        ctx = dataclasses.replace(ctx, inline_below_s=0)
    app = create_app(host, context=ctx)
    with LiveServer(app) as server:
        yield Served(server.url, app, ctx, host, registry, KeyStore(registry.db))


@dataclass(frozen=True)
class Keys:
    """Key texts: one per role, a predictor limited to another model, and keys that must not work."""

    admin: str
    deployer: str
    predictor: str
    viewer: str
    predictor_other_model: str
    revoked: str
    expired: str
    wrong_secret: str
    unknown: str

    def valid(self) -> dict[str, str]:
        return {
            "admin": self.admin,
            "deployer": self.deployer,
            "predictor": self.predictor,
            "viewer": self.viewer,
            "predictor (forest only)": self.predictor_other_model,
        }


def make_keys(store: KeyStore) -> Keys:
    made = {role: store.create(role, created_by="test").secret for role in ROLES}
    other = store.create("predictor", created_by="test", models=["forest"]).secret
    revoked = store.create("admin", created_by="test")
    store.revoke(revoked.key.id, by="test")
    expired = store.create("admin", created_by="test", expires_at=utcnow() - timedelta(seconds=1)).secret
    admin_id = made["admin"].split("_")[1]
    return Keys(
        **made,
        predictor_other_model=other,
        revoked=revoked.secret,
        expired=expired,
        wrong_secret=f"lml_{admin_id}_{'A' * 43}",
        unknown=f"lml_{'0' * 16}_{'B' * 43}",
    )


def iris_models(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("iris", model_files["logistic"], aliases=["production"], compile=False)
    registry.push("forest", model_files["forest"], compile=False)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def served(registry: Registry, model_files: dict[str, Path]) -> Iterator[Served]:
    iris_models(registry, model_files)
    with guarded(registry) as server:
        yield server


@pytest.fixture
def keys(served: Served) -> Keys:
    return make_keys(served.keys)


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        yield client
