"""KServe V1 ``:predict`` and Vertex AI over real HTTP, as their clients call them; and what every single-model
contract says when the server cannot tell which model to use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from starlette.applications import Starlette

from liveml import Registry
from liveml.api import kserve_v1, native
from liveml.api.context import ApiContext
from tests.integration.cloud_server import COLUMNS, Served, iris_registry, serve
from tests.live_server import LiveServer

AIP_PREDICT = "/v1/endpoints/123/deployedModels/456:predict"
AIP_HEALTH = "/v1/endpoints/123/deployedModels/456"
ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]) -> Iterator[Served]:
    registry = iris_registry(tmp_path_factory.mktemp("cloud") / "home", model_files)
    with serve(
        registry, default_model="iris", vertex_predict_route=AIP_PREDICT, vertex_health_route=AIP_HEALTH
    ) as served:
        yield served
    registry.close()


# -- KServe V1 -------------------------------------------------------------------------------
def test_kserve_instances_as_lists_and_objects(server: Served, rows: pd.DataFrame, expected: dict) -> None:
    for payload in (
        {"instances": rows.values.tolist()},
        {"instances": rows.to_dict(orient="records")},
        {"inputs": rows.values.tolist()},
    ):
        answer = server.http.post("/v1/models/iris:predict", json=payload)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": expected["labels"]}


def test_kserve_probabilities_when_parameters_ask(server: Served, rows: pd.DataFrame, expected: dict) -> None:
    asked = {"instances": rows.values.tolist(), "parameters": {"probabilities": True}}
    body = server.http.post("/v1/models/iris:predict", json=asked).json()
    assert body["predictions"] == expected["labels"] and body["classes"] == [0, 1, 2]
    np.testing.assert_allclose(body["probabilities"], expected["proba"], rtol=1e-6)
    by_query = server.http.post(
        "/v1/models/iris:predict?probabilities=true", json={"instances": rows.values.tolist()}
    )
    assert "probabilities" in by_query.json()


def test_kserve_references_a_version_or_alias_and_leaves_native_routes_alone(
    server: Served, rows: pd.DataFrame, expected: dict
) -> None:
    instances = {"instances": rows.values.tolist()}
    for path in ("/v1/models/iris:1:predict", "/v1/models/iris@production:predict"):
        assert server.http.post(path, json=instances).json() == {"predictions": expected["labels"]}
    forest = server.http.post("/v1/models/forest:predict", json=instances)
    assert forest.status_code == 200 and len(forest.json()["predictions"]) == 4
    metadata = server.http.get("/v1/models/iris")
    assert metadata.status_code == 200 and metadata.json()["name"] == "iris"
    native = server.http.post("/v1/models/iris/predict", json={"inputs": rows.to_dict(orient="records")})
    assert native.status_code == 200 and native.json()["predictions"] == expected["labels"]


@pytest.mark.parametrize("kserve_first", [True, False])
def test_kserve_and_native_paths_match_in_either_order(server: Served, kserve_first: bool) -> None:
    ctx = ApiContext(host=server.host)
    groups = [kserve_v1.routes(ctx), native.routes(ctx)]
    app = Starlette(routes=[*groups[not kserve_first], *groups[kserve_first]])
    record = dict(zip(COLUMNS, ROW, strict=True))
    with LiveServer(app) as live, httpx.Client(base_url=live.url) as http:
        assert http.get("/v1/models/iris").json()["name"] == "iris"
        assert http.post("/v1/models/iris:predict", json={"instances": [ROW]}).json() == {"predictions": [0]}
        assert http.post("/v1/models/iris/predict", json={"inputs": [record]}).json()["predictions"] == [0]


KSERVE_BAD = [
    pytest.param(b'{"instances": [[5.1,', "application/json", 400, "not valid JSON", id="malformed-json"),
    pytest.param(b"5.1,3.5,1.4,0.2", "text/csv", 415, "application/json", id="wrong-content-type"),
    pytest.param(b"", "application/json", 400, "empty", id="empty-body"),
    pytest.param(b"[[5.1, 3.5, 1.4, 0.2]]", "application/json", 400, "must be an object", id="bare-list"),
    pytest.param(b'{"rows": [[1]]}', "application/json", 400, '"instances" or "inputs"', id="no-field"),
    pytest.param(b'{"instances": {"a": 1}}', "application/json", 400, "to be a list", id="not-a-list"),
    pytest.param(b'{"instances": []}', "application/json", 400, "at least one", id="no-instances"),
    pytest.param(b'{"instances": [[5.1, 3.5]]}', "application/json", 400, "sepal_length, sepal_width, petal_length, petal_width", id="short-row"),
    pytest.param(b'{"instances": [5.1, 3.5]}', "application/json", 400, "single number", id="scalars"),
    pytest.param(b'{"instances": [{"sepal_length": 5.1}]}', "application/json", 400, "'petal_length'", id="missing-column"),
    pytest.param(b'{"instances": [["x", 3.5, 1.4, 0.2]]}', "application/json", 400, "'sepal_length' expects number", id="wrong-type"),
    pytest.param(b'{"instances": [[5.1, 3.5, 1.4, 0.2]], "parameters": 1}', "application/json", 400, '"parameters"', id="bad-parameters"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "content_type", "status", "says"), KSERVE_BAD)
def test_kserve_bad_input_is_a_clear_4xx(
    server: Served, body: bytes, content_type: str, status: int, says: str
) -> None:
    answer = server.http.post("/v1/models/iris:predict", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]


def test_kserve_unknown_model_is_404(server: Served) -> None:
    answer = server.http.post("/v1/models/nope:predict", json={"instances": [ROW]})
    assert answer.status_code == 404 and "nope" in answer.json()["error"]


# -- Vertex AI ----------------------------------------------------------------------------------
def test_vertex_predicts_on_the_aip_routes(server: Served, rows: pd.DataFrame, expected: dict) -> None:
    assert server.http.get(AIP_HEALTH).status_code == 200
    for instances in (rows.values.tolist(), rows.to_dict(orient="records")):
        answer = server.http.post(AIP_PREDICT, json={"instances": instances, "parameters": {}})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": expected["labels"]}


def test_vertex_probabilities_per_instance(server: Served, rows: pd.DataFrame, expected: dict) -> None:
    asked = {"instances": rows.values.tolist(), "parameters": {"probabilities": True}}
    predictions = server.http.post(AIP_PREDICT, json=asked).json()["predictions"]
    assert [p["label"] for p in predictions] == expected["labels"]
    assert all(p["classes"] == [0, 1, 2] for p in predictions)
    np.testing.assert_allclose([p["scores"] for p in predictions], expected["proba"], rtol=1e-6)


VERTEX_BAD = [
    pytest.param(b"{not json", "application/json", 400, "not valid JSON", id="malformed-json"),
    pytest.param(b"<xml/>", "application/xml", 415, "application/json", id="wrong-content-type"),
    pytest.param(b"  ", "application/json", 400, "empty", id="empty-body"),
    pytest.param(b'{"inputs": [[1, 2, 3, 4]]}', "application/json", 400, '"instances"', id="no-instances"),
    pytest.param(b'{"instances": {"sepal_length": [5.1]}}', "application/json", 400, "to be a list", id="columns-object"),
    pytest.param(b'{"instances": [{"sepal_length": 5.1, "sepal_width": 3.5}]}', "application/json", 400, "'petal_length'", id="missing-column"),
    pytest.param(b'{"instances": [[5.1, 3.5, true, "big"]]}', "application/json", 400, "'petal_width' expects number", id="wrong-type"),
    pytest.param(b'{"instances": [[5.1]], "parameters": []}', "application/json", 400, '"parameters"', id="bad-parameters"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "content_type", "status", "says"), VERTEX_BAD)
def test_vertex_bad_input_is_a_clear_4xx(
    server: Served, body: bytes, content_type: str, status: int, says: str
) -> None:
    answer = server.http.post(AIP_PREDICT, content=body, headers={"Content-Type": content_type})
    assert answer.status_code == status, answer.text
    assert list(answer.json()) == ["error"] and says in answer.json()["error"]


# -- several models, no default: per-model routes work, single-model contracts name the fix -----
def test_several_models_without_a_default(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("iris", model_files["logistic"], aliases=["production"])
    registry.push("forest", model_files["forest"])
    with serve(registry) as server:
        assert server.http.get("/vertex/health").status_code == 200
        assert server.http.get("/ping").status_code == 200
        assert server.http.post("/v1/models/forest:predict", json={"instances": [ROW]}).status_code == 200
        vertex = server.http.post("/vertex/predict", json={"instances": [ROW]})
        assert vertex.status_code == 404 and "--default-model" in vertex.json()["error"]
        sagemaker = server.http.post("/invocations", json={"instances": [ROW]})
        assert sagemaker.status_code == 404
        assert sagemaker.json()["error_code"] and "--default-model" in sagemaker.json()["message"]
        assert "forest, iris" in sagemaker.json()["message"]


def test_health_is_503_until_the_models_are_loaded(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("iris", model_files["logistic"])
    with serve(registry, start_host=False) as server:
        for path in ("/ping", "/health", "/vertex/health"):
            assert server.http.get(path).status_code == 503, path


def test_an_unknown_default_model_is_404_not_500(server: Served) -> None:
    with serve(server.host.registry, default_model="nope") as other:
        for path, key in (("/invocations", "message"), ("/vertex/predict", "error")):
            answer = other.http.post(path, json={"instances": [ROW]})
            assert answer.status_code == 404 and "nope" in answer.json()[key], answer.text
