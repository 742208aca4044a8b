"""CPU time per ``ModelHost.predict`` call with the prediction log on and off, in one process (no HTTP,
no wrk): the log's own cost on the predict path, writer included, in microseconds per request.

Pushes a logistic regression (with a reference: served from its ONNX form) to a fresh data home, then
calls ``predict`` with one row ``--requests`` times per setting, in alternating rounds, flushing the log
every 2,000 requests (as the writer does about every second at that rate). CPU time (``thread_time``) of
the calling thread plus the flushes it runs, so other work on the machine moves it little.

    .venv/bin/python bench/monitoring/log_cpu.py [--requests 10000] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="liveml-log-cpu-"))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(2000, 4)), columns=["a", "b", "c", "d"])
    joblib.dump(LogisticRegression().fit(frame, (frame.a + frame.b > 0).astype(int)), work / "model.joblib")
    frame.to_parquet(work / "reference.parquet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEML_")} | {
        "LIVEML_HOME": str(work / "home")
    }
    liveml = str(Path(sys.executable).parent / "liveml")
    subprocess.run([liveml, "init"], env=env, check=True, capture_output=True)
    subprocess.run(
        [liveml, "push", "m", str(work / "model.joblib"), "--alias", "production",
         "--reference", str(work / "reference.parquet")],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    os.environ.update(env)
    from liveml.monitoring.log import PredictionLog
    from liveml.registry import Registry
    from liveml.serving import ModelHost
    from liveml.settings import Settings

    settings = Settings()
    registry = Registry(settings)
    results: dict[str, list[float]] = {"on": [], "off": []}
    row = {"a": 0.1, "b": -0.2, "c": 0.3, "d": 0.4}
    for round_ in range(args.rounds):
        for setting in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
            sink = (
                PredictionLog(settings.model_copy(update={"log_flush_s": 3600})) if setting == "on" else None
            )
            host = ModelHost(registry, sink=sink)
            host.start(watch=False)
            for _ in range(500):  # warm-up
                host.predict("m", [dict(row)], batch=False)
            if sink is not None:
                sink.flush()
            started = time.thread_time()
            for i in range(args.requests):
                host.predict("m", [dict(row)], batch=False)
                if sink is not None and i % 2000 == 1999:
                    sink.flush()
            if sink is not None:
                sink.flush()
            results[setting].append((time.thread_time() - started) / args.requests * 1e6)
            host.stop()
            print(setting, round(results[setting][-1], 1), "µs CPU per request", flush=True)
    on, off = statistics.median(results["on"]), statistics.median(results["off"])
    summary = {"cpu_us_per_req": results, "on_median": on, "off_median": off, "log_us_per_req": on - off}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    registry.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
