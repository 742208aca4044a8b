"""Adaptive batching through the real server: under concurrency every caller gets exactly its own rows,
in order, while the model is called with merged batches."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd

from liveml import Registry
from liveml.api import create_app
from liveml.api.context import ApiContext
from liveml.serving import ModelHost
from liveml.serving.host import HostOptions
from tests.live_server import LiveServer

CALLERS = 24
ROUNDS = 6


def test_each_caller_gets_its_own_rows(
    registry: Registry, model_files: dict[str, Path], iris_frame: pd.DataFrame
) -> None:
    # the original scikit-learn forest (not compiled): slow enough that concurrent requests queue
    registry.push(
        "forest",
        model_files["forest"],
        aliases=["production"],
        reference=model_files["reference"],
        compile=False,
    )
    model = joblib.load(model_files["forest"])
    features = iris_frame.drop(columns=["target"])
    host = ModelHost(registry, options=HostOptions(poll_interval_s=0, max_batch_size=32))
    failures: list[str] = []
    barrier = threading.Barrier(CALLERS)

    def caller(index: int) -> None:
        rng = np.random.default_rng(index)
        with httpx.Client(base_url=server.url, timeout=60) as http:
            barrier.wait()
            for round_ in range(ROUNDS):
                rows = features.iloc[rng.choice(len(features), size=int(rng.integers(1, 6)))]
                rows = rows + rng.normal(0, 0.3, size=rows.shape)  # distinct rows per caller
                response = http.post(
                    "/v1/models/forest/predict?probabilities=true",
                    json={"inputs": rows.to_dict(orient="records")},
                )
                if response.status_code != 200:
                    failures.append(f"{index}/{round_}: HTTP {response.status_code} {response.text}")
                    continue
                data = response.json()
                if data["predictions"] != model.predict(rows).tolist() or not np.allclose(
                    data["probabilities"], model.predict_proba(rows)
                ):
                    failures.append(f"caller {index} round {round_} got rows that are not its own")
                if len(data["ids"]) != len(rows):
                    failures.append(
                        f"caller {index} round {round_}: {len(data['ids'])} ids for {len(rows)} rows"
                    )

    # every request through the thread pool and the batcher, however fast this machine runs the forest
    with LiveServer(create_app(host, context=ApiContext(host=host, inline_below_s=0))) as server:
        threads = [threading.Thread(target=caller, args=(i,)) for i in range(CALLERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        metrics = httpx.get(f"{server.url}/metrics").text
    assert failures == []
    calls = float(re.search(r'liveml_batch_rows_count\{model="forest",version="1"\} (\S+)', metrics)[1])  # type: ignore[index]
    rows = float(re.search(r'liveml_batch_rows_sum\{model="forest",version="1"\} (\S+)', metrics)[1])  # type: ignore[index]
    requests = float(
        re.search(r'liveml_predict_requests_total\{model="forest",version="1"\} (\S+)', metrics)[1]
    )  # type: ignore[index]
    assert requests == CALLERS * ROUNDS + 1 or requests == CALLERS * ROUNDS  # (+ the warm-up when counted)
    assert calls < requests, "concurrent requests were never merged into one model call"
    assert rows / calls > 1.0
    assert "liveml_queue_seconds_bucket" in metrics
