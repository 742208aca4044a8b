"""The liveml ASGI app's own cost per request, with no HTTP server and no load generator: the app that
`liveml serve` runs (guard on, keys off, the prediction log per the settings) is called in-process with
one-row Open Inference V2 requests, as uvicorn would call it, and the CPU time of the calling thread is
taken per request. What it leaves out (uvicorn, httptools, the socket) is the same for every version of
liveml, so it separates the app's changes from the machine's noise far better than wrk does.

A logistic regression on 20 features (fixed seed) is pushed with a reference to a fresh data home, so it
is served from its compiled ONNX form, as in the peer harness.

    .venv/bin/python bench/serving/app_inprocess.py [--requests 3000] [--rounds 3] [--log on|off]
        [--rows 1] [--warmup 2000] [--profile]      # PROFILE_SORT=cumulative PROFILE_LINES=60: other views

Prints CPU µs per request per round (take the minimum or the median of several runs). ``--profile``
prints cProfile's top functions for the last round. For an exact count that no other load moves, run it
under callgrind with ``--callgrind``: instructions are counted only over the measured requests and the
log's flush of their rows (the script turns counting on and off with callgrind_control), and every
request is served on the event loop, as the fast model is without callgrind's slow-down:

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/dev/null .venv/bin/python \\
        bench/serving/app_inprocess.py --callgrind --requests 1000 --log on    # "Collected" / 1000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import json
import os
import pstats
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

FEATURES = 20


def _prepare(work: Path) -> dict[str, str]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(2000, FEATURES)), columns=[f"x{i}" for i in range(FEATURES)])
    target = (frame.x0 + frame.x1 > 0).astype(int)
    joblib.dump(LogisticRegression().fit(frame, target), work / "model.joblib")
    frame.iloc[:500].to_parquet(work / "reference.parquet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEML_")}
    env["LIVEML_HOME"] = str(work / "home")
    os.environ.update(env)
    from liveml.registry import Registry
    from liveml.settings import Settings

    registry = Registry.init(Settings())  # what `liveml init` and `liveml push` do, in this process
    registry.push("m", work / "model.joblib", aliases=["production"], reference=work / "reference.parquet")
    registry.close()
    return env


def _count_instructions(on: bool) -> None:
    """Turn callgrind's counting on or off for this process (it takes effect within a moment)."""
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], check=True)
    time.sleep(2)


async def _drive(app: Any, body: bytes, args: argparse.Namespace, flush: Any) -> list[float]:
    path = "/v2/models/m/infer"
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]

    async def one() -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 5555),
            "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        if status != [200]:
            raise SystemExit(f"the app answered {status}")

    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await lifespan.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, lifespan.get, replies.put)
    )
    started = await replies.get()
    if started["type"] != "lifespan.startup.complete":
        raise SystemExit(f"the app did not start: {started}")
    for _ in range(args.warmup):
        await one()
    per_request = []
    profile = None
    for round_ in range(args.rounds):
        if args.profile and round_ == args.rounds - 1:
            profile = cProfile.Profile()
            profile.enable()
        if args.callgrind:
            flush()  # the warm-up's rows are not counted
            _count_instructions(True)
        cpu = time.thread_time()
        for _ in range(args.requests):
            await one()
        if args.callgrind:
            flush()  # the writer's work on these requests' rows is counted
            _count_instructions(False)
        per_request.append((time.thread_time() - cpu) / args.requests * 1e6)
        if profile is not None:
            profile.disable()
        print(f"round {round_}: {per_request[-1]:.1f} µs CPU per request", flush=True)
    await lifespan.put({"type": "lifespan.shutdown"})
    await replies.get()
    await task
    if profile is not None:
        order, lines = os.environ.get("PROFILE_SORT", "tottime"), int(os.environ.get("PROFILE_LINES", "30"))
        pstats.Stats(profile).sort_stats(order).print_stats(lines)
    return per_request


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1, help="rows per request (the harness's batch100: 100)")
    parser.add_argument("--log", choices=("on", "off"), default="on")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--callgrind", action="store_true", help="count instructions (see the docstring)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="liveml-app-inprocess-"))
    try:
        os.environ.update(_prepare(work))
        os.environ.update(
            {
                "LIVEML_LOG_PREDICTIONS": "true" if args.log == "on" else "false",
                # flush about once per second of real serving, also when callgrind slows it ~50x
                "LIVEML_LOG_FLUSH_S": "60",
                "LIVEML_RATE_LIMIT_PER_S": "0",
                "LIVEML_MAX_CONCURRENT_PER_KEY": "100000",
            }
        )
        from liveml.api import create_app
        from liveml.deploy.clouds import assemble, host_options
        from liveml.settings import Settings

        settings = Settings().model_copy(update={"alias_poll_s": 0, "auth": False})
        parts = assemble(settings, require_keys=False, options=host_options(settings))
        context = parts.context
        if args.callgrind:  # the model's measured cost is ~50x too high under callgrind: serve inline anyway
            context = dataclasses.replace(context, inline_below_s=1e9)
        app = create_app(parts.host, context=context)
        sink = parts.host.sink
        flush = getattr(sink, "flush", lambda: None)
        data = np.random.default_rng(1).normal(size=args.rows * FEATURES).tolist()
        body = json.dumps(
            {"inputs": [{"name": "x", "shape": [args.rows, FEATURES], "datatype": "FP64", "data": data}]}
        ).encode()
        per_request = asyncio.run(_drive(app, body, args, flush))
        print(json.dumps({"log": args.log, "cpu_us_per_request": per_request}))
        parts.registry.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
