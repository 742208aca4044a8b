"""What the per-request deadline of the API guard (``liveml.api.limits.call_with_deadline``) costs, in
isolation: a trivial ASGI app awaited directly vs through the deadline, on uvloop as ``liveml serve``
runs it. CPU microseconds per request, median of 7 rounds of 20,000 requests.

    flock /tmp/liveml-bench.lock .venv/bin/python bench/targets/deadline_overhead.py
    PYTHONPATH=/tmp/liveml-base/src .venv/bin/python bench/targets/deadline_overhead.py   # another tree
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from liveml.api.limits import call_with_deadline

SCOPE = {"type": "http", "method": "POST", "path": "/"}
REQUESTS, ROUNDS = 20_000, 7


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def send(message: Any) -> None:
    return None


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def direct() -> None:
    await app(SCOPE, receive, send)


async def deadline() -> None:
    await call_with_deadline(
        app, SCOPE, receive, send, timeout_s=60, on_timeout=lambda: app, finished=lambda: None
    )


async def measure() -> dict[str, list[float]]:
    cases: dict[str, Callable[[], Awaitable[None]]] = {"direct": direct, "deadline": deadline}
    found: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, call in cases.items():
            started = time.process_time()
            for _ in range(REQUESTS):
                await call()
            found[name].append((time.process_time() - started) / REQUESTS * 1e6)
    return found


def main() -> None:
    found = uvloop.run(measure())
    summary = {
        name: {"median_us": statistics.median(v), "min_us": min(v), "max_us": max(v)}
        for name, v in found.items()
    }
    summary["added_us"] = {"median_us": summary["deadline"]["median_us"] - summary["direct"]["median_us"]}
    json.dump(summary, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
