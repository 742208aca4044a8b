"""Per-key limits: a token bucket for the request rate, a cap on requests in progress, and a deadline.

Each caller (``key:<id>``, or ``addr:<ip>`` where no key is asked for) has its own bucket of
``burst`` tokens refilled at ``rate`` per second; a request takes one or gets a 429 with
``Retry-After``. At most ``max_concurrent`` of a caller's requests run at once; the next gets a 429. A
request not answered within ``timeout_s`` gets a 503; work already handed to a model thread finishes in
the background and keeps its slot until then, so a caller cannot pile up stuck work past the cap."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from liveml.errors import TooManyRequests

log = logging.getLogger("liveml.api.limits")
#: callers remembered at most; idle ones (bucket full again) are forgotten first
MAX_CALLERS = 50_000


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class TokenBuckets:
    """One token bucket per caller. ``rate`` 0 means no rate limit."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, who: str) -> float:
        """0 when the request may go ahead (a token is taken), else the seconds until one is free."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(who)
        if bucket is None:
            if len(self._buckets) >= MAX_CALLERS:
                self._forget_idle(now)
            bucket = self._buckets[who] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        full_after = self.burst / self.rate
        idle = [who for who, b in self._buckets.items() if now - b.at >= full_after]
        for who in idle or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[who]


@dataclass
class InFlight:
    """Requests in progress per caller, capped."""

    cap: int
    _counts: dict[str, int] = field(default_factory=dict)

    def enter(self, who: str) -> bool:
        count = self._counts.get(who, 0)
        if count >= self.cap:
            return False
        self._counts[who] = count + 1
        return True

    def leave(self, who: str) -> None:
        count = self._counts.get(who, 0) - 1
        if count > 0:
            self._counts[who] = count
        else:
            self._counts.pop(who, None)

    def count(self, who: str) -> int:
        return self._counts.get(who, 0)


@dataclass
class Limits:
    rate: TokenBuckets
    in_flight: InFlight
    timeout_s: float

    @classmethod
    def of(cls, *, rate_per_s: float, burst: int, max_concurrent: int, timeout_s: float) -> Limits:
        return cls(TokenBuckets(rate_per_s, burst), InFlight(max_concurrent), timeout_s)

    def admit(self, who: str, *, what: str) -> None:
        """Take a token and a slot for ``who`` (``what`` names it in messages), or raise a 429."""
        wait = self.rate.take(who)
        if wait > 0:
            raise TooManyRequests(
                f"{what} is over its rate limit ({self.rate.rate:g} requests/s, bursts of {self.rate.burst}); "
                f"retry after {math.ceil(wait)} s, or ask the operator to raise LIVEML_RATE_LIMIT_PER_S",
                retry_after_s=wait,
            )
        if not self.in_flight.enter(who):
            raise TooManyRequests(
                f"{what} has {self.in_flight.cap} requests in progress, the most allowed at once; wait for "
                "some to finish (or raise LIVEML_MAX_CONCURRENT_PER_KEY)",
                retry_after_s=1.0,
            )


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


async def call_with_deadline(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    timeout_s: float,
    on_timeout: Callable[[], ASGIApp],
    finished: Callable[[], None],
) -> None:
    """Run ``app`` for one request; past ``timeout_s`` answer with ``on_timeout()`` instead (when the
    response has not started) and drop whatever the app sends later. ``finished`` runs when the app's
    work really ends, which may be after the deadline.

    The app runs in the caller's task, with a timer beside it (an extra task per request cost ~10 µs):
    when the timer fires, the timeout answer goes out from a task of its own, at once, and the caller's
    task is cancelled where the app waits; work in a model thread still runs to its end first."""
    task = asyncio.current_task()
    assert task is not None
    deadline = _Deadline()

    async def guarded(message: Message) -> None:
        if deadline.late:
            return
        if message["type"] == "http.response.start":
            deadline.started = True
        await send(message)

    def expire() -> None:
        deadline.late = True
        if deadline.started:
            log.warning(
                "%s %s passed its %gs deadline mid-response", scope["method"], scope["path"], timeout_s
            )
        else:
            deadline.answer = asyncio.ensure_future(on_timeout()(scope, receive, send))
        task.cancel()

    timer = asyncio.get_running_loop().call_later(timeout_s, expire)
    try:
        await app(scope, receive, guarded)
    except asyncio.CancelledError:
        if not deadline.late or task.uncancel() > 0:  # not (only) the deadline's: the server's, goes on up
            raise
    except Exception as exc:
        if not deadline.late:
            raise  # the app's own exception goes up as it would without a deadline
        task.uncancel()  # the app turned the deadline's cancellation into an error of its own
        log.debug("request ended after its deadline with %r", exc)  # nobody waits for it any longer
    else:
        if deadline.late:  # the app swallowed the deadline's cancellation
            task.uncancel()
    finally:
        timer.cancel()
        finished()
    if deadline.answer is not None:
        await deadline.answer


@dataclass
class _Deadline:
    started: bool = False  # the app began its response
    late: bool = False  # the deadline passed: what the app sends from now on is dropped
    answer: asyncio.Future[None] | None = None  # the timeout answer, when the response had not begun


__all__ = ["InFlight", "Limits", "TokenBuckets", "call_with_deadline", "retry_after"]
