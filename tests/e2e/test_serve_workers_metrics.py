"""``/metrics`` of ``liveml serve --workers 2`` reports the whole server, whichever worker answers it."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Cli, checked
from tests.e2e.test_serve_cli import _children, serving

ROW = {"inputs": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}
CLOSE = {"Connection": "close"}  # a new connection per request: the kernel spreads them over the workers


def _scrape(url: str) -> dict[str, float]:
    """Sample name (with labels) -> value, from one scrape on a fresh connection."""
    text = httpx.get(f"{url}/metrics", headers=CLOSE).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            key = f"{sample.name}{{{labels}}}"
            assert key not in found, f"{key} appears twice in /metrics"
            found[key] = sample.value
    return found


def _predict(url: str, count: int) -> None:
    with httpx.Client(base_url=url, headers=CLOSE) as http:
        for _ in range(count):
            assert http.post("/v1/models/iris/predict", json=ROW).status_code == 200


def _wait_for_workers(pid: int, old: frozenset[int] = frozenset()) -> set[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        workers = _children(pid)
        if len(workers) == 2 and not workers & old:
            return workers
        time.sleep(0.1)
    raise AssertionError(f"liveml serve did not get 2 new workers: {_children(pid)}")


@pytest.mark.slow
def test_one_scrape_counts_the_requests_of_every_worker(
    tmp_path: Path, model_files: dict[str, Path], cli: Cli
) -> None:
    checked(cli, "init")
    checked(cli, "push", "iris", str(model_files["logistic"]), "--alias", "production")
    with serving(["--workers", "2", "--poll", "0"], tmp_path / "home", tmp_path) as (url, proc):
        workers = _wait_for_workers(proc.pid)
        with ThreadPoolExecutor(8) as pool:  # concurrent connections: both workers answer some
            list(pool.map(lambda _: _predict(url, 15), range(8)))
        requests = "liveml_predict_requests_total{model=iris,version=1}"
        latency = "liveml_model_seconds_count{model=iris,version=1}"
        for _ in range(6):  # every scrape, whichever worker answers it, shows all 120
            metrics = _scrape(url)
            assert metrics[requests] == 120
            assert metrics[latency] == 120
            assert metrics["liveml_predicted_rows_total{model=iris,version=1}"] == 120
            assert metrics["liveml_loaded_models{}"] == 1  # the same model in both workers is one model

        os.kill(min(workers), signal.SIGKILL)  # a worker dies: what it counted stays in the totals
        _wait_for_workers(proc.pid, frozenset({min(workers)}))
        _predict(url, 10)
        for _ in range(4):
            metrics = _scrape(url)
            assert metrics[requests] == 130
            assert metrics["liveml_loaded_models{}"] == 1
