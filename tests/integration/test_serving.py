"""The server as clients see it: liveml's native API over real HTTP, bad input, metrics, the client SDK."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from liveml import Client, Invalid, NotFound, Registry
from liveml.api import create_app
from liveml.api.context import ApiContext
from liveml.serving import MemorySink, ModelHost
from liveml.serving.host import HostOptions
from tests.live_server import LiveServer


@contextmanager
def _serving(registry: Registry, model_files: dict[str, Path]) -> Iterator[tuple[str, MemorySink]]:
    registry.push("iris", model_files["forest"], aliases=["production"], reference=model_files["reference"])
    registry.push("iris", model_files["logistic"], aliases=["staging"])
    sink = MemorySink()
    host = ModelHost(registry, sink=sink, options=HostOptions(poll_interval_s=0.2, max_rows=500))
    app = create_app(host, context=ApiContext(host=host, max_body_bytes=256 * 1024))
    with LiveServer(app) as server:
        yield server.url, sink


@pytest.fixture
def served(registry: Registry, model_files: dict[str, Path]) -> Iterator[tuple[str, MemorySink]]:
    with _serving(registry, model_files) as served:
        yield served


@pytest.fixture(scope="module")
def refusing(module_registry: Registry, model_files: dict[str, Path]) -> Iterator[tuple[str, MemorySink]]:
    """One server for the requests that must be refused (so nothing they send is kept)."""
    with _serving(module_registry, model_files) as served:
        yield served


def _rows(model_files: dict[str, Path], n: int = 5) -> pd.DataFrame:
    return pd.read_csv(model_files["rows"]).head(n)


def test_predict_in_every_body_format(served: tuple[str, MemorySink], model_files: dict[str, Path]) -> None:
    url, sink = served
    rows = _rows(model_files)
    forest = joblib.load(model_files["forest"])
    expected = forest.predict(rows).tolist()
    parquet, arrow = io.BytesIO(), io.BytesIO()
    rows.to_parquet(parquet)
    with pa.ipc.new_stream(arrow, pa.Schema.from_pandas(rows)) as writer:
        writer.write_table(pa.Table.from_pandas(rows))
    bodies = [
        (
            "application/json",
            httpx.Request("POST", "/", json={"inputs": rows.to_dict(orient="records")}).content,
        ),
        (
            "application/json",
            httpx.Request("POST", "/", json={"inputs": rows.to_dict(orient="list")}).content,
        ),
        ("application/json", httpx.Request("POST", "/", json=rows.to_dict(orient="records")).content),
        ("text/csv", rows.to_csv(index=False).encode()),
        ("application/vnd.apache.parquet", parquet.getvalue()),
        ("application/vnd.apache.arrow.stream", arrow.getvalue()),
    ]
    with httpx.Client(base_url=url) as http:
        for content_type, body in bodies:
            response = http.post(
                "/v1/models/iris/predict", content=body, headers={"content-type": content_type}
            )
            assert response.status_code == 200, (content_type, response.text)
            data = response.json()
            assert (data["model"], data["version"], data["predictions"]) == ("iris", 1, expected)
            assert len(set(data["ids"])) == len(rows)
        with_proba = http.post(
            "/v1/models/iris@staging/predict?probabilities=true",
            json={"inputs": rows.head(2).to_dict(orient="records")},
        )
        data = with_proba.json()
        logistic = joblib.load(model_files["logistic"])
        assert data["version"] == 2 and data["classes"] == [0, 1, 2]
        assert np.allclose(data["probabilities"], logistic.predict_proba(rows.head(2)))
        assert (
            http.post(
                "/v1/models/iris:2/predict", json={"inputs": rows.head(1).to_dict(orient="records")}
            ).json()["version"]
            == 2
        )
    recorded = sink.records
    assert len(recorded) == len(rows) * len(bodies) + 3
    assert {r.version for r in recorded} == {1, 2} and recorded[0].inputs.keys() == set(rows.columns)


BAD = [
    (b"{", "application/json", 400, "not valid JSON"),
    (b"", "application/json", 400, "empty"),
    (b'{"rows": []}', "application/json", 400, "needs an 'inputs' field"),
    (b'{"inputs": []}', "application/json", 400, "at least one row"),
    (b'{"inputs": [1, 2]}', "application/json", 400, "list of objects"),
    (
        b'{"inputs": {"sepal_length": [1, 2], "sepal_width": [1]}}',
        "application/json",
        400,
        "different lengths",
    ),
    (b'{"inputs": [{"sepal_length": 1}]}', "application/json", 400, "missing input column(s) 'sepal_width'"),
    (
        b'{"inputs": [{"sepal_length": "long", "sepal_width": 1, "petal_length": 1, "petal_width": 1}]}',
        "application/json",
        400,
        "column 'sepal_length' expects number values; row 0 has 'long'",
    ),
    (b"a,b\n", "text/csv", 400, "no rows"),
    (b"\x00\x01\x02", "application/vnd.apache.parquet", 400, "could not be read"),
    (b"<xml/>", "application/xml", 415, "not supported"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "message"), BAD)
def test_bad_input_gets_a_clear_4xx(
    refusing: tuple[str, MemorySink], body: bytes, content_type: str, status: int, message: str
) -> None:
    url, sink = refusing
    with httpx.Client(base_url=url) as http:
        response = http.post("/v1/models/iris/predict", content=body, headers={"content-type": content_type})
        assert response.status_code == status
        assert message in response.json()["error"]
        assert http.get("/health/ready").status_code == 200  # and the server keeps answering
    assert sink.records == []  # no prediction was made (nor logged) for any refused request


def test_limits_and_unknown_models(served: tuple[str, MemorySink], model_files: dict[str, Path]) -> None:
    url, _ = served
    many = pd.concat([_rows(model_files, 20)] * 30, ignore_index=True)  # 600 rows, limit 500
    with httpx.Client(base_url=url) as http:
        too_many = http.post(
            "/v1/models/iris/predict",
            content=many.to_csv(index=False).encode(),
            headers={"content-type": "text/csv"},
        )
        assert too_many.status_code == 400 and "limit is 500" in too_many.json()["error"]
        huge = http.post(
            "/v1/models/iris/predict", content=b"x" * 300_000, headers={"content-type": "text/csv"}
        )
        assert huge.status_code == 413 and "limit" in huge.json()["error"]
        unknown = http.post("/v1/models/nope/predict", json={"inputs": [{"a": 1}]})
        assert unknown.status_code == 404 and "no model named 'nope'" in unknown.json()["error"]
        alias = http.post("/v1/models/iris@canary/predict", json={"inputs": [{"a": 1}]})
        assert alias.status_code == 404 and "no alias 'canary'" in alias.json()["error"]
        version = http.post("/v1/models/iris:9/predict", json={"inputs": [{"a": 1}]})
        assert version.status_code == 404 and "no version 9" in version.json()["error"]


def test_metadata_metrics_and_health(served: tuple[str, MemorySink], model_files: dict[str, Path]) -> None:
    url, _ = served
    with httpx.Client(base_url=url) as http:
        listed = http.get("/v1/models").json()["models"]
        assert listed == [
            {
                "name": "iris",
                "latest_version": 2,
                "aliases": {"production": 1, "staging": 2},
                "format": "sklearn",
                "served_version": 1,
                "loaded_versions": [1],
            }
        ]
        meta = http.get("/v1/models/iris@staging").json()
        assert meta["version"] == 2 and meta["signature"]["inputs"][0]["name"] == "sepal_length"
        http.post("/v1/models/iris/predict", json={"inputs": _rows(model_files, 3).to_dict(orient="records")})
        http.post("/v1/models/iris/predict", content=b"{", headers={"content-type": "application/json"})
        metrics = http.get("/metrics").text
        assert 'liveml_predict_requests_total{model="iris",version="1"} 1.0' in metrics
        assert 'liveml_predicted_rows_total{model="iris",version="1"} 3.0' in metrics
        assert (
            'liveml_http_requests_total{method="POST",route="/v1/models/{ref}/predict",status="400"} 1.0'
            in metrics
        )
        assert "liveml_model_seconds_bucket" in metrics and "liveml_loaded_models 1.0" in metrics
        assert http.get("/health/live").json() == {"live": True}


def test_python_client(served: tuple[str, MemorySink], model_files: dict[str, Path]) -> None:
    url, _ = served
    rows = _rows(model_files)
    with Client(url) as client:
        assert client.ready()
        result = client.predict("iris", rows, probabilities=True)
        assert (
            result.version == 1
            and result.predictions.tolist() == joblib.load(model_files["forest"]).predict(rows).tolist()
        )
        assert result.probabilities is not None and result.probabilities.shape == (5, 3)
        assert list(result.to_frame().columns) == [
            "prediction",
            "proba_0",
            "proba_1",
            "proba_2",
            "prediction_id",
        ]
        assert client.predict("iris@staging", rows.to_dict(orient="records")).version == 2
        assert client.models()[0]["name"] == "iris" and client.model("iris:2")["version"] == 2
        with pytest.raises(NotFound, match="no model named 'nope'"):
            client.predict("nope", rows)
        with pytest.raises(Invalid, match="missing input column"):
            client.predict("iris", [{"sepal_length": 1.0}])
    assert not Client("http://127.0.0.1:9").ready()


def test_lazy_loading_is_ready_before_any_request(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("a", model_files["logistic"], aliases=["production"])
    registry.push("b", model_files["forest"], aliases=["production"])
    host = ModelHost(registry, options=HostOptions(poll_interval_s=0, lazy=True))
    host.start(watch=False)
    try:
        assert host.ready and host.served_models() == []  # nothing loaded, nothing asked: ready
        host.predict("a", pd.read_csv(model_files["rows"]).head(2))
        assert host.ready and [m.name for m in host.served_models()] == ["a"]
    finally:
        host.stop()


def test_memory_budget_unloads_the_least_recently_used(
    registry: Registry, model_files: dict[str, Path]
) -> None:
    for name in ("a", "b", "c"):
        registry.push(
            name, model_files["forest"] if name == "b" else model_files["logistic"], aliases=["production"]
        )
    rows = pd.read_csv(model_files["rows"]).head(2)
    # a budget smaller than any one model: only the one used last stays loaded
    host = ModelHost(registry, options=HostOptions(poll_interval_s=0, lazy=True, memory_budget_mb=0.001))
    host.start(watch=False)
    try:
        for name in ("a", "b", "c"):
            host.predict(name, rows)
        assert [m.name for m in host.served_models()] == ["c"]
        assert host.predict("a", rows).version == 1  # evicted, loaded again on use
        assert [m.name for m in host.served_models()] == ["a"]
        assert host.refresh() == [] and [m.name for m in host.served_models()] == [
            "a"
        ]  # the watcher leaves it
        assert host.ready
        evicted = {
            s.labels["model"]: s.value
            for m in host.metrics.evictions.collect()
            for s in m.samples
            if s.name.endswith("_total")
        }
        assert evicted == {"a": 1.0, "b": 1.0, "c": 1.0}
    finally:
        host.stop()
    unlimited = ModelHost(registry, options=HostOptions(poll_interval_s=0))
    unlimited.start(watch=False)
    try:
        assert [m.name for m in unlimited.served_models()] == ["a", "b", "c"]
        # each version is charged at least its artifact (more when loading grew the process further)
        assert all(m.memory_bytes >= m.version.size for m in unlimited.served_models())
    finally:
        unlimited.stop()
