"""The token bucket and the in-progress cap, on a fake clock."""

from __future__ import annotations

import pytest

from liveml.api.limits import InFlight, Limits, TokenBuckets, retry_after
from liveml.errors import TooManyRequests


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # the next token in half a second
    assert buckets.take("b") == 0.0  # every caller has its own bucket
    clock.now = 0.5
    assert buckets.take("a") == 0.0
    clock.now = 100.0  # refills up to the burst, never past it
    assert [buckets.take("a") for _ in range(4)][-1] > 0


def test_rate_zero_means_no_limit() -> None:
    buckets = TokenBuckets(rate=0, burst=1)
    assert all(buckets.take("a") == 0.0 for _ in range(1000))


def test_the_in_progress_cap() -> None:
    flight = InFlight(cap=2)
    assert flight.enter("a") and flight.enter("a") and not flight.enter("a") and flight.enter("b")
    flight.leave("a")
    assert flight.enter("a") and flight.count("a") == 2


def test_admit_raises_429s_with_retry_after() -> None:
    limits = Limits.of(rate_per_s=1, burst=1, max_concurrent=10, timeout_s=1)
    limits.admit("a", what="key a")
    with pytest.raises(TooManyRequests, match="rate limit") as over:
        limits.admit("a", what="key a")
    assert retry_after(over.value.retry_after_s) == "1"
    capped = Limits.of(rate_per_s=0, burst=1, max_concurrent=1, timeout_s=1)
    capped.admit("a", what="key a")
    with pytest.raises(TooManyRequests, match="in progress"):
        capped.admit("a", what="key a")
