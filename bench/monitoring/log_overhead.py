"""What the prediction log costs on the single-row predict path: `liveml serve` with the log on and off.

Trains a logistic regression on iris-like data (fixed seed), pushes it to a fresh data home, then runs
`liveml serve` (pinned to CPU 0) twice per round — LIVEML_LOG_PREDICTIONS=true and =false, in alternating
order — and loads each with wrk (pinned to CPU 1, 1 thread, 8 connections) with a one-row native predict
request. Prints and writes (``--json``) req/s and latency per setting, and the median ratio; also the
server's CPU time per request (user + system of the serving process, its writer threads included, over
the measured run), whose ratio moves much less than req/s when other work shares the machine.

    .venv/bin/python bench/monitoring/log_overhead.py [--rounds 3] [--duration 8] [--json out.json]

Needs wrk (apt-get install wrk) and the shared harness's wrk_post.lua (../shared/bench/).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[2]
LUA = ROOT.parent / "shared" / "bench" / "wrk_post.lua"
BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="liveml-log-bench-"))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(2000, 4)), columns=["a", "b", "c", "d"])
    model = LogisticRegression().fit(frame, (frame["a"] + frame["b"] > 0).astype(int))
    joblib.dump(model, work / "model.joblib")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEML_")} | {
        "LIVEML_HOME": str(work / "home")
    }
    liveml = str(BIN / "liveml")
    subprocess.run([liveml, "init"], env=env, check=True, capture_output=True)
    frame.to_parquet(
        work / "reference.parquet"
    )  # with a reference, push checks and keeps the ONNX form (served)
    subprocess.run(
        [liveml, "push", "m", str(work / "model.joblib"), "--alias", "production",
         "--reference", str(work / "reference.parquet")],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    body = work / "body.json"
    body.write_text(json.dumps({"inputs": [{"a": 0.1, "b": -0.2, "c": 0.3, "d": 0.4}]}))
    results: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for round_ in range(args.rounds):
        for setting in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
            results[setting].append(run_one(liveml, env, setting, body, args.duration, args.connections))
            print(setting, results[setting][-1], flush=True)
    summary: dict[str, Any] = {
        setting: {
            "req_s_median": statistics.median(r["req_s"] for r in runs),
            "p50_ms_median": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms_median": statistics.median(r["p99_ms"] for r in runs),
            "cpu_us_per_req_median": statistics.median(r["cpu_us_per_req"] for r in runs),
            "runs": runs,
        }
        for setting, runs in results.items()
    }
    summary["ratio_on_off"] = summary["on"]["req_s_median"] / summary["off"]["req_s_median"]
    summary["cpu_ratio_off_on"] = (
        summary["off"]["cpu_us_per_req_median"] / summary["on"]["cpu_us_per_req_median"]
    )
    summary["logged_rows"] = sum(
        pq_rows(p) for p in (work / "home" / "predictions").rglob("*.parquet") if "_errors" not in str(p)
    )
    print(
        json.dumps(
            {k: v for k, v in summary.items() if k not in ("on", "off")}
            | {s: {k: v for k, v in summary[s].items() if k != "runs"} for s in ("on", "off")},
            indent=2,
        )
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    shutil.rmtree(work, ignore_errors=True)


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.read_metadata(path).num_rows)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(
    liveml: str, env: dict[str, str], setting: str, body: Path, duration: int, connections: int
) -> dict[str, float]:
    port = 8190
    server = subprocess.Popen(
        ["taskset", "-c", "0", liveml, "serve", "--port", str(port), "--log-level", "warning", "--poll", "0",
         "--no-auth"],
        env=env | {"LIVEML_LOG_PREDICTIONS": "true" if setting == "on" else "false",
                   "LIVEML_RATE_LIMIT_PER_S": "0", "LIVEML_MAX_CONCURRENT_PER_KEY": "100000"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        wrk = [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{connections}",
            "-s",
            str(LUA),
            f"{url}/v1/models/m/predict",
        ]
        wrk_env = os.environ | {"BODY_FILE": str(body)}
        subprocess.run([*wrk, "-d2s"], env=wrk_env, capture_output=True, check=True)  # warm-up
        cpu_before = cpu_seconds(server.pid)
        out = subprocess.run(
            [*wrk, f"-d{duration}s"], env=wrk_env, capture_output=True, text=True, check=True
        ).stdout
        cpu = cpu_seconds(server.pid) - cpu_before
        found = json.loads(re.search(r"WRKJSON (\{.*\})", out).group(1))  # type: ignore[union-attr]
        errors = sum(found[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
        return {
            "req_s": found["requests"] / (found["duration_us"] / 1e6),
            "p50_ms": found["lat_p50_us"] / 1000,
            "p99_ms": found["lat_p99_us"] / 1000,
            "errors": float(errors),
            "cpu_us_per_req": cpu / max(found["requests"], 1) * 1e6,
        }
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
