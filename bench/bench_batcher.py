"""What micro-batching buys and costs, with pytest-benchmark (not part of `make test`).

- throughput: N threads (1, 8, 64) each send single-row requests back to back, through
  ``MicroBatcher.submit_sync`` vs calling the model per request (what ``ModelHost.predict`` does today);
- idle latency: one request at a time through ``submit_sync`` vs a direct call, for a random forest
  (~ms per call), a logistic regression (sub-ms) and a no-op model (the batcher's own overhead).

```bash
.venv/bin/pytest bench/bench_batcher.py --benchmark-only \
    --benchmark-columns=min,median,mean,ops,rounds -p no:cacheprovider -s
```
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from liveml.runtimes.base import Prediction
from liveml.serving.batcher import BatchStats, MicroBatcher

REQUESTS = 384  # per round, split over the threads
Run = Callable[[pd.DataFrame], Prediction]


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    x, y = make_classification(n_samples=2_000, n_features=20, n_informative=10, random_state=0)
    return pd.DataFrame(x, columns=[f"f{i}" for i in range(20)]), y


def predictor(model: RandomForestClassifier | LogisticRegression) -> Run:
    classes = tuple(model.classes_)

    def run(frame: pd.DataFrame) -> Prediction:
        probabilities = model.predict_proba(frame)
        return Prediction(model.classes_[probabilities.argmax(axis=1)], probabilities, classes)

    return run


@pytest.fixture(scope="module")
def models(data: tuple[pd.DataFrame, np.ndarray]) -> dict[str, Run]:
    x, y = data
    constant = Prediction(np.zeros(1, dtype=np.int64))
    return {
        "forest": predictor(RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y)),
        "logistic": predictor(LogisticRegression(max_iter=1_000).fit(x, y)),
        "noop": lambda frame: constant,
    }


@pytest.fixture(scope="module")
def rows(data: tuple[pd.DataFrame, np.ndarray]) -> list[pd.DataFrame]:
    """Single-row requests, as the HTTP layer hands them over (one small frame each)."""
    x, _ = data
    return [x.iloc[[i]].reset_index(drop=True) for i in range(REQUESTS)]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(64) as executor:
        yield executor


@pytest.mark.parametrize("threads", [1, 8, 64])
@pytest.mark.parametrize("path", ["direct", "batched"])
@pytest.mark.parametrize("model", ["forest", "logistic"])
def test_throughput(
    benchmark: BenchmarkFixture,
    models: dict[str, Run],
    rows: list[pd.DataFrame],
    pool: ThreadPoolExecutor,
    model: str,
    path: str,
    threads: int,
) -> None:
    run = models[model]
    sizes: list[int] = []
    batcher = MicroBatcher(run, max_batch_size=64, on_batch=lambda s: sizes.append(s.rows))
    call = run if path == "direct" else batcher.submit_sync
    share = [rows[i::threads] for i in range(threads)]

    def client(frames: list[pd.DataFrame]) -> None:
        for frame in frames:
            call(frame)

    elapsed: list[float] = []

    def one_round() -> None:
        started = time.perf_counter()
        for future in [pool.submit(client, frames) for frames in share]:
            future.result()
        elapsed.append(time.perf_counter() - started)

    benchmark.group = f"throughput {model} x{threads} threads ({REQUESTS} requests per round)"
    benchmark.pedantic(one_round, rounds=5, warmup_rounds=1, iterations=1)
    per_s = REQUESTS / statistics.median(elapsed[1:] or elapsed)  # the warm-up round left out
    benchmark.extra_info["requests_per_s"] = round(per_s)
    if sizes:
        benchmark.extra_info["mean_rows_per_call"] = round(statistics.fmean(sizes), 1)
        benchmark.extra_info["max_rows_per_call"] = max(sizes)
    print(f"\n{model} {path} x{threads}: {per_s:,.0f} req/s {benchmark.extra_info}")


@pytest.mark.parametrize("path", ["direct", "batched"])
@pytest.mark.parametrize("model", ["forest", "logistic", "noop"])
def test_idle_latency(
    benchmark: BenchmarkFixture,
    models: dict[str, Run],
    rows: list[pd.DataFrame],
    model: str,
    path: str,
) -> None:
    run = models[model]
    stats: list[BatchStats] = []
    batcher = MicroBatcher(run, max_batch_size=64, max_latency_ms=5, on_batch=stats.append)
    call = run if path == "direct" else batcher.submit_sync
    benchmark.group = f"idle latency {model} (1 row, 1 caller)"
    benchmark(call, rows[0])
    assert all(s.queue_waits_s == (0.0,) and s.window_s == 0.0 for s in stats)
