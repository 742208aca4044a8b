"""Zero-downtime swap: under continuous load, moving an alias from another process fails no request,
and every response names the version that computed it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd

from liveml import Registry, Settings
from liveml.api import create_app
from liveml.serving import ModelHost
from liveml.serving.host import HostOptions
from tests.live_server import LiveServer

LOAD_THREADS = 4


def _wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_swap_under_load(registry: Registry, settings: Settings, model_files: dict[str, Path]) -> None:
    registry.push("iris", model_files["logistic"], aliases=["production"], reference=model_files["reference"])
    registry.push("iris", model_files["forest"], reference=model_files["reference"])
    rows = pd.read_csv(model_files["rows"]).head(3)
    expected = {
        1: joblib.load(model_files["logistic"]).predict_proba(rows),
        2: joblib.load(model_files["forest"]).predict_proba(rows),
    }
    host = ModelHost(registry, options=HostOptions(poll_interval_s=0.2))
    body = {"inputs": rows.to_dict(orient="records")}
    results: list[list[tuple[int, int | None, list[list[float]] | None]]] = [[] for _ in range(LOAD_THREADS)]
    stop = threading.Event()

    def load(index: int) -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                response = http.post(f"{server.url}/v1/models/iris/predict?probabilities=true", json=body)
                data = response.json() if response.status_code == 200 else {}
                results[index].append((response.status_code, data.get("version"), data.get("probabilities")))

    with LiveServer(create_app(host)) as server:
        threads = [threading.Thread(target=load, args=(i,)) for i in range(LOAD_THREADS)]
        for thread in threads:
            thread.start()
        _wait_until(lambda: all(len(answers) >= 3 for answers in results))  # all under load, on version 1
        env = {**os.environ, "LIVEML_HOME": str(settings.home), "LIVEML_USER": "deployer"}
        if settings.database_url:
            env["LIVEML_DATABASE_URL"] = settings.database_url
        moved = subprocess.run(
            [sys.executable, "-m", "liveml.cli.main", "alias", "set", "iris", "production", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert moved.returncode == 0, moved.stderr
        # bounded: the swap is expected within ~2 s; then every thread goes on for a few more answers
        _wait_until(lambda: all(any(r[1] == 2 for r in answers[-3:]) for answers in results))
        seen = [len(answers) for answers in results]
        _wait_until(lambda: all(len(a) >= n + 5 for a, n in zip(results, seen, strict=True)))
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    answered = [r for rs in results for r in rs]
    assert len(answered) > 20
    assert {status for status, _, _ in answered} == {200}, "a request failed during the swap"
    for per_thread in results:
        versions = [version for _, version, _ in per_thread]
        assert versions[0] == 1 and versions[-1] == 2
        first_new = versions.index(2)
        assert set(versions[first_new:]) == {2}, "a thread saw the old version after the new one"
    for _, version, probabilities in answered:
        assert version is not None and np.allclose(
            probabilities, expected[version]
        )  # the version named computed it
