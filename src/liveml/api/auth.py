"""Who may call what: the API key check, the one table of route permissions, and the per-key limits.

``Guard`` is ASGI middleware in front of every route. It finds the route a request is for (the same way
Starlette's router does), looks up the permission that route needs in ``RULES``, checks the key
(``Authorization: Bearer <key>`` or ``X-API-Key: <key>``), its role and, for predictor keys limited to
some models, the model the request names; then it applies the caller's rate, concurrency and time limits
and runs the request as that key (``liveml.security.identity``), so the audit trail names it.

Health and readiness routes are open: no key, no limits. A path no route matches still needs a valid
key (so the API cannot be mapped without one), then gets the router's 404 or 405."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from liveml.api.errors import HeadersTooLarge, error_response
from liveml.api.limits import Limits, call_with_deadline, retry_after
from liveml.api.routing import RouteTable
from liveml.api.vertex import HEALTH_ROUTE, PREDICT_ROUTE
from liveml.errors import Forbidden, Invalid, LivemlError, TimedOut, TooManyRequests, Unauthorized
from liveml.registry.names import parse_ref
from liveml.security.identity import Actor, acting_as
from liveml.security.keys import ApiKey, KeyCache, KeyStore, Role, split_key

if TYPE_CHECKING:
    from liveml.api.context import ApiContext
    from liveml.settings import Settings

log = logging.getLogger("liveml.api.auth")

Permission = Literal["open", "describe", "read", "predict", "deploy", "admin"]
#: what each role may do. describe: one model's metadata and readiness (what clients read before they
#: predict); read: listings, metrics, jobs, the OpenAPI document; deploy: start and stop work (jobs, loading)
GRANTS: dict[Role, frozenset[Permission]] = {
    "admin": frozenset({"describe", "read", "predict", "deploy", "admin"}),
    "deployer": frozenset({"describe", "read", "predict", "deploy"}),
    "predictor": frozenset({"describe", "predict"}),
    "viewer": frozenset({"describe", "read"}),
}
#: the model of a single-model contract (SageMaker /invocations, Vertex AI) is the server's, not the path's
SINGLE = "*"
VERTEX_PREDICT, VERTEX_HEALTH = PREDICT_ROUTE, HEALTH_ROUTE


@dataclass(frozen=True)
class Rule:
    permission: Permission
    #: the path parameter naming the model (limited keys are checked against it), or SINGLE
    model: str | None = None
    #: the error body style of the route's protocol
    style: str = "native"


OPEN = Rule("open")
V2 = "v2"
#: (method, route path) → what it needs. Every route of every protocol is here; a route missing from it
#: needs an admin key (and fails the permission-matrix test). Vertex AI's routes are resolved per server.
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/health/live"): OPEN,
    ("GET", "/health/ready"): OPEN,
    ("GET", "/metrics"): Rule("read"),
    ("GET", "/v1/models"): Rule("read"),
    ("GET", "/v1/models/{ref}"): Rule("describe", "ref"),
    ("POST", "/v1/models/{ref}/predict"): Rule("predict", "ref"),
    ("POST", "/v1/models/{ref}/feedback"): Rule("predict", "ref"),
    ("POST", "/v1/models/{ref}/explain"): Rule("predict", "ref"),
    ("GET", "/v1/models/{ref}/explanations/{prediction_id}"): Rule("predict", "ref"),
    ("GET", "/v1/jobs"): Rule("read"),
    ("POST", "/v1/jobs"): Rule("deploy"),
    ("GET", "/v1/jobs/{job_id}"): Rule("read"),
    ("POST", "/v1/jobs/{job_id}/cancel"): Rule("deploy"),
    ("GET", "/v1/audit"): Rule("admin"),  # who changed what: for admins only
    ("GET", "/v2"): Rule("describe", style=V2),
    ("GET", "/v2/health/live"): OPEN,
    ("GET", "/v2/health/ready"): OPEN,
    ("GET", "/v2/models"): Rule("read", style=V2),
    ("GET", "/v2/models/{model}"): Rule("describe", "model", V2),
    ("GET", "/v2/models/{model}/versions/{version}"): Rule("describe", "model", V2),
    ("GET", "/v2/models/{model}/ready"): Rule("describe", "model", V2),
    ("GET", "/v2/models/{model}/versions/{version}/ready"): Rule("describe", "model", V2),
    ("POST", "/v2/models/{model}/infer"): Rule("predict", "model", V2),
    ("POST", "/v2/models/{model}/versions/{version}/infer"): Rule("predict", "model", V2),
    ("POST", "/v2/repository/index"): Rule("read", style=V2),
    ("POST", "/v2/repository/models/{model}/load"): Rule("deploy", style=V2),
    ("POST", "/v2/repository/models/{model}/unload"): Rule("deploy", style=V2),
    ("POST", "/v1/models/{m}:predict"): Rule("predict", "m", V2),
    ("GET", "/ping"): OPEN,
    ("GET", "/health"): OPEN,
    ("GET", "/version"): Rule("describe"),
    ("GET", "/execution-parameters"): Rule("describe", style="mlflow"),
    ("POST", "/invocations"): Rule("predict", SINGLE, "mlflow"),
    ("POST", VERTEX_PREDICT): Rule("predict", SINGLE, V2),
    ("GET", VERTEX_HEALTH): OPEN,
    ("GET", "/openapi.json"): Rule("read"),
    ("GET", "/docs"): OPEN,  # a static page; the document it shows needs a key
    ("*", "/docs/assets"): OPEN,  # Swagger UI's static files
}
#: what a route missing from RULES needs
FALLBACK = Rule("admin")
#: most request-header bytes accepted (all headers together), and most header lines
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
CHALLENGE = 'Bearer realm="liveml"'
HOW = (
    "send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'; `liveml keys create --role predictor` "
    "makes one, and the CLI and liveml.Client send LIVEML_API_KEY or the key in the credentials file "
    "`liveml init` wrote"
)


@dataclass(frozen=True)
class AuthConfig:
    """How a server guards its routes; ``ApiContext(auth=None)`` (the default) means no guard at all."""

    #: False: no key is asked for (a loopback address, or a platform that authenticates callers)
    require_keys: bool = True
    rate_limit_per_s: float = 100.0
    rate_limit_burst: int = 200
    max_concurrent_per_key: int = 32
    request_timeout_s: float = 60.0
    #: how long a key's row is trusted before it is read again: revocation and expiry latency
    key_cache_s: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings, *, require_keys: bool) -> AuthConfig:
        return cls(
            require_keys=require_keys,
            rate_limit_per_s=settings.rate_limit_per_s,
            rate_limit_burst=settings.rate_limit_burst,
            max_concurrent_per_key=settings.max_concurrent_per_key,
            request_timeout_s=settings.request_timeout_s,
        )


def rules_for(ctx: ApiContext) -> dict[tuple[str, str], Rule]:
    """RULES with Vertex AI's routes where this server has them (AIP_PREDICT_ROUTE, AIP_HEALTH_ROUTE)."""
    places = {VERTEX_PREDICT: ctx.vertex_predict_route or PREDICT_ROUTE}
    places[VERTEX_HEALTH] = ctx.vertex_health_route or HEALTH_ROUTE
    return {(method, places.get(path, path)): rule for (method, path), rule in RULES.items()}


def route_keys(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    """(method, path) of every route: what RULES must cover."""
    found: list[tuple[str, str]] = []
    for route in routes:
        if isinstance(route, Route):
            found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
        elif isinstance(route, Mount):
            found.append(("*", route.path))
    return found


def missing_rules(ctx: ApiContext, routes: list[BaseRoute]) -> list[str]:
    rules = rules_for(ctx)
    return [f"{m} {p}" for m, p in route_keys(routes) if (m, p) not in rules]


class Guard:
    """The middleware; built by ``create_app`` when the context has an ``AuthConfig``."""

    def __init__(self, app: ASGIApp, *, ctx: ApiContext, routes: RouteTable | Sequence[BaseRoute]) -> None:
        assert ctx.auth is not None
        self.app = app
        self.ctx = ctx
        self.config = ctx.auth
        self.routes = routes if isinstance(routes, RouteTable) else RouteTable(routes)
        self.rules = rules_for(ctx)
        self.keys = KeyCache(KeyStore(ctx.host.registry.db), ttl_s=self.config.key_cache_s)
        self.limits = Limits.of(
            rate_per_s=self.config.rate_limit_per_s,
            burst=self.config.rate_limit_burst,
            max_concurrent=self.config.max_concurrent_per_key,
            timeout_s=self.config.request_timeout_s,
        )
        self._background: set[asyncio.Future[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, rule, params = self.match(scope)
        try:
            check_headers(scope)
        except LivemlError as exc:
            await self.refuse(exc, rule, path, scope, receive, send)
            return
        if rule.permission == "open":  # health and readiness: no key, no limits
            await self.app(scope, receive, send)
            return
        try:
            address = scope["client"][0] if scope.get("client") else None
            if self.config.require_keys:
                key = await self.authenticate(scope, address)
                self.authorize(key, rule, params, scope["method"], path)
                actor = Actor(f"key:{key.id}", key.role, address)
                who, what = f"key:{key.id}", f"API key {key.id}"
            else:
                actor = Actor("anonymous", None, address)
                who, what = f"addr:{address}", f"client {address}"
            self.limits.admit(who, what=what)
        except LivemlError as exc:
            await self.refuse(exc, rule, path, scope, receive, send)
            return
        with acting_as(actor):
            await call_with_deadline(
                self.app,
                scope,
                receive,
                send,
                timeout_s=self.limits.timeout_s,
                on_timeout=lambda: self.timed_out(rule, path, scope),
                finished=lambda: self.limits.in_flight.leave(who),
            )

    def match(self, scope: Scope) -> tuple[str, Rule, dict[str, str]]:
        """The route's path, rule and path parameters, found as the router finds them: the first full
        match, else the first partial one (a wrong method); no route needs a valid key of any role."""
        found = self.routes.match(scope)
        if found is None:
            return "?", Rule("describe"), {}
        kind, route, child = found
        if kind is Match.FULL:
            return self._rule(route, scope["method"], child)
        return getattr(route, "path", "?"), Rule("describe"), {}  # 405 from the router, for any valid key

    def _rule(self, route: BaseRoute, method: str, child: Scope) -> tuple[str, Rule, dict[str, str]]:
        path = getattr(route, "path", "?")
        method = "GET" if method == "HEAD" else method
        rule = self.rules.get(("*", path)) or self.rules.get((method, path))
        if rule is None:
            log.error("route %s %s has no entry in liveml.api.auth.RULES: admin keys only", method, path)
            rule = FALLBACK
        return path, rule, {k: str(v) for k, v in child.get("path_params", {}).items()}

    async def authenticate(self, scope: Scope, address: str | None) -> ApiKey:
        text = presented_key(scope)
        if text is None:
            raise Unauthorized(f"this endpoint needs an API key: {HOW}")
        parsed = split_key(text)
        verdict = None
        if parsed is not None:
            key_id, secret = parsed
            hit, stored = self.keys.cached(key_id)
            if not hit:
                stored = await run_in_threadpool(self.keys.load, key_id)
            verdict = self.keys.verify(secret, stored)
        if verdict is None or verdict.key is None:
            wait = self.limits.rate.take(f"addr:{address}")  # guessing keys costs the address its rate
            if wait > 0:
                raise TooManyRequests(
                    f"too many requests with invalid API keys from {address}; retry after a while with a "
                    "valid key",
                    retry_after_s=wait,
                )
            raise _InvalidKey(
                "the API key is not valid (unknown, mistyped or revoked); check LIVEML_API_KEY or the "
                "credentials file, or ask an admin for a new key (`liveml keys create`)"
            )
        if verdict.problem == "expired":
            expired = verdict.key.expires_at
            raise _InvalidKey(
                f"API key {verdict.key.id} expired at {expired:%Y-%m-%d %H:%M:%S} UTC; ask an admin for a new "
                "key (`liveml keys create --expires 90d`)"
            )
        if self.keys.touch_due(verdict.key.id):
            future = asyncio.get_running_loop().run_in_executor(None, self.keys.touch, verdict.key.id)
            self._background.add(future)
            future.add_done_callback(self._background.discard)
        return verdict.key

    def authorize(self, key: ApiKey, rule: Rule, params: dict[str, str], method: str, path: str) -> None:
        if rule.permission not in GRANTS[key.role]:
            able = [role for role, grants in GRANTS.items() if rule.permission in grants]
            raise Forbidden(
                f"API key {key.id} has role {key.role}, which may not {method} {path} (it needs "
                f"{' or '.join(able)}); use a key with one of those roles"
            )
        if key.models is None or rule.model is None:
            return
        model = self.model_of(rule, params)
        if model not in key.models:
            raise Forbidden(
                f"API key {key.id} is limited to model(s) {', '.join(key.models)}; this request is for "
                f"{model or 'an unknown model'}. Use a key for that model (`liveml keys create --role "
                f"predictor --models {model or 'NAME'}`)"
            )

    def model_of(self, rule: Rule, params: dict[str, str]) -> str | None:
        try:
            ref = self.ctx.single_model() if rule.model == SINGLE else params.get(rule.model or "", "")
            return parse_ref(ref).name
        except LivemlError:
            return None

    async def refuse(
        self, exc: LivemlError, rule: Rule, path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        headers: dict[str, str] = {}
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = CHALLENGE + (
                ', error="invalid_token"' if isinstance(exc, _InvalidKey) else ""
            )
        elif isinstance(exc, TooManyRequests):
            headers["Retry-After"] = retry_after(exc.retry_after_s)
        response = error_response(exc, style=rule.style, headers=headers)
        self._count(path, scope["method"], response.status_code)
        await response(scope, receive, send)

    def timed_out(self, rule: Rule, path: str, scope: Scope) -> Response:
        exc = TimedOut(
            f"the request took longer than the server's {self.limits.timeout_s:g} s limit; send fewer rows, "
            "or ask the operator to raise LIVEML_REQUEST_TIMEOUT_S"
        )
        self._count(path, scope["method"], 503)
        return error_response(exc, style=rule.style, headers={"Retry-After": "1"})

    def _count(self, path: str, method: str, status: int) -> None:
        self.ctx.host.metrics.http_requests.labels(path, method, str(status)).inc()


class _InvalidKey(Unauthorized):
    """A key was sent, but it is not a valid one (RFC 6750's invalid_token)."""


def presented_key(scope: Scope) -> str | None:
    """The key in ``Authorization: Bearer`` or ``X-API-Key``; a 400 for two different ones, a 401 for
    another authorization scheme."""
    found: set[str] = set()
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized(f"the Authorization header must be 'Bearer <key>'; {HOW}")
            found.add(token.strip())
        elif name == b"x-api-key":
            found.add(value.decode("latin-1").strip())
    if len(found) > 1:
        raise Invalid(
            "the request carries more than one API key (several Authorization or X-API-Key headers); send one"
        )
    return found.pop() if found else None


def check_headers(scope: Scope) -> None:
    headers = scope["headers"]
    size = sum(len(name) + len(value) for name, value in headers)
    if len(headers) > MAX_HEADERS or size > MAX_HEADER_BYTES:
        raise HeadersTooLarge(
            f"the request headers are too large ({len(headers)} headers, {size} bytes; at most {MAX_HEADERS} "
            f"and {MAX_HEADER_BYTES} bytes); send fewer or shorter headers"
        )


__all__ = [
    "GRANTS",
    "RULES",
    "AuthConfig",
    "Guard",
    "Rule",
    "missing_rules",
    "presented_key",
    "route_keys",
    "rules_for",
]
