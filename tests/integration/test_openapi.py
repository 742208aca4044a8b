"""The OpenAPI document and the /docs page of a real server: valid OpenAPI 3.1, per-model request schemas
from the signatures (followed when an alias moves), documented examples the server accepts, and Swagger
UI really rendering in headless Chromium from the packaged assets (no CDN)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import joblib
import pandas as pd
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator
from sklearn.linear_model import LogisticRegression

import liveml
from liveml import ColumnSpec, Registry, Signature
from liveml.api import app as app_module
from liveml.api import create_app
from liveml.api.openapi import assets_dir, column_schema
from liveml.serving import ModelHost
from liveml.serving.host import HostOptions
from tests.browser import require_chromium, run_chromium
from tests.live_server import LiveServer

#: what the second iris version takes: a different signature, so an alias move shows in the document
V2_SIGNATURE = Signature(
    inputs=(
        ColumnSpec(name="sepal_length", type="number", nullable=False),
        ColumnSpec(name="petal_count", type="integer"),
    )
)


def _with_openapi(monkeypatch: pytest.MonkeyPatch) -> None:
    if "liveml.api.openapi" not in app_module.PROTOCOLS:
        monkeypatch.setattr(app_module, "PROTOCOLS", (*app_module.PROTOCOLS, "liveml.api.openapi"))


@dataclass
class Served:
    url: str
    host: ModelHost
    registry: Registry


@pytest.fixture
def served(
    registry: Registry,
    model_files: dict[str, Path],
    iris_frame: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Served]:
    """iris:1 (production, with an input example), iris:2 (staging, another signature), flowers:1."""
    frame = pd.DataFrame(
        {
            "sepal_length": iris_frame["sepal_length"],
            "petal_count": (iris_frame["petal_width"] * 10).astype(int),
        }
    )
    joblib.dump(LogisticRegression(max_iter=300).fit(frame, iris_frame["target"]), tmp_path / "v2.joblib")
    registry.push(
        "iris", model_files["forest"], aliases=["production"], example=model_files["rows"], compile=False
    )
    registry.push("iris", tmp_path / "v2.joblib", aliases=["staging"], signature=V2_SIGNATURE, compile=False)
    registry.push("flowers", model_files["logistic"], reference=model_files["reference"], compile=False)
    _with_openapi(monkeypatch)
    host = ModelHost(
        registry, refs=["iris", "iris@staging", "flowers"], options=HostOptions(poll_interval_s=0)
    )
    with LiveServer(create_app(host)) as server:
        yield Served(server.url, host, registry)


def _document(url: str) -> dict:
    response = httpx.get(f"{url}/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    document: dict = response.json()
    OpenAPIV31SpecValidator(document).validate()  # raises, naming the problem, when invalid
    return document


def _resolve(document: dict, node: dict) -> dict:
    while "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _row_schema(document: dict, path: str) -> dict:
    """The row schema of a per-model predict operation (its JSON body's first form, a list of rows)."""
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    wrapped = _resolve(document, body)["oneOf"][0]
    rows = wrapped["properties"]["inputs"]["anyOf"][0]
    return _resolve(document, rows["items"])


def test_document_is_valid_openapi_with_each_models_signature(served: Served) -> None:
    document = _document(served.url)
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {**document["info"], "title": "liveml", "version": liveml.__version__}
    paths = document["paths"]
    for path in ["/v1/models", "/v1/models/{ref}", "/v1/models/{ref}/predict", "/health/ready", "/metrics"]:
        assert path in paths, path
    for path in [
        "/v2/models/{model}/infer",
        "/v1/models/{m}:predict",
        "/invocations",
        "/ping",
        "/vertex/predict",
    ]:
        assert paths[path], path
    for ref, number in [("iris", 1), ("iris@staging", 2), ("flowers", 1)]:
        path = f"/v1/models/{ref}/predict"
        signature = served.registry.get(ref).signature
        row = _row_schema(document, path)
        assert list(row["properties"]) == signature.input_names  # exactly the columns, in order
        assert row["required"] == signature.input_names
        assert row["properties"] == {c.name: column_schema(c) for c in signature.inputs}
        operation = paths[path]["post"]
        assert f":{number}" in operation["summary"]
        assert {"text/csv", "application/vnd.apache.parquet"} <= set(operation["requestBody"]["content"])
        for status in ["400", "404", "413", "415", "503"]:
            error = document["components"]["responses"][
                operation["responses"][status]["$ref"].rsplit("/", 1)[1]
            ]
            assert _resolve(document, error["content"]["application/json"]["schema"])["required"] == [
                "error",
                "kind",
            ]
    v2_row = _row_schema(document, "/v1/models/iris@staging/predict")["properties"]
    assert v2_row == {"sepal_length": {"type": "number"}, "petal_count": {"type": ["integer", "null"]}}
    iris = _row_schema(document, "/v1/models/iris/predict")["properties"]
    assert list(iris) == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    response = _resolve(
        document,
        paths["/v1/models/iris/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"],
    )
    assert {"model", "version", "predictions", "ids", "probabilities", "classes"} <= set(
        response["properties"]
    )


def test_documented_examples_are_accepted_by_the_server(served: Served) -> None:
    operation = _document(served.url)["paths"]["/v1/models/iris/predict"]["post"]
    content = operation["requestBody"]["content"]
    assert (
        "examples"
        not in _document(served.url)["paths"]["/v1/models/flowers/predict"]["post"]["requestBody"]["content"][
            "application/json"
        ]
    )
    with httpx.Client(base_url=served.url) as http:
        for name, example in content["application/json"]["examples"].items():
            response = http.post("/v1/models/iris/predict", json=example["value"])
            assert response.status_code == 200, (name, response.text)
            assert len(response.json()["predictions"]) == 5  # the input example's rows
        csv = http.post(
            "/v1/models/iris/predict",
            content=content["text/csv"]["example"],
            headers={"content-type": "text/csv"},
        )
        assert csv.status_code == 200, csv.text


def test_alias_move_changes_the_document(served: Served) -> None:
    before = _document(served.url)
    assert _document(served.url) == before  # cached, and stable
    served.registry.set_alias("iris", "production", 2)
    assert ("iris", 1, 2) in served.host.refresh()
    after = _document(served.url)
    row = _row_schema(after, "/v1/models/iris/predict")
    assert list(row["properties"]) == ["sepal_length", "petal_count"]
    assert "serves iris:2" in after["paths"]["/v1/models/iris/predict"]["post"]["summary"]
    assert (
        "examples"
        not in after["paths"]["/v1/models/iris/predict"]["post"]["requestBody"]["content"]["application/json"]
    )
    assert "iris.v1.Row" not in after["components"]["schemas"]  # no version is served twice
    response = httpx.post(
        f"{served.url}/v1/models/iris/predict", json={"inputs": [{"sepal_length": 5.0, "petal_count": 2}]}
    )
    assert response.status_code == 200 and response.json()["version"] == 2


def test_column_types_map_to_json_schema() -> None:
    expected = {
        "integer": {"type": "integer"},
        "number": {"type": "number"},
        "boolean": {"type": "boolean"},
        "string": {"type": "string"},
        "datetime": {"type": "string", "format": "date-time"},
    }
    for kind, schema in expected.items():
        assert column_schema(ColumnSpec(name="c", type=kind, nullable=False)) == schema  # type: ignore[arg-type]
        nullable = column_schema(ColumnSpec(name="c", type=kind))  # type: ignore[arg-type]
        assert nullable == {**schema, "type": [schema["type"], "null"]}


def test_nothing_served_and_no_swagger_assets(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no model served the document is still valid; without swagger-ui-py, /docs links to it."""
    _with_openapi(monkeypatch)
    monkeypatch.setattr("liveml.api.openapi.assets_dir", lambda: None)
    with LiveServer(create_app(ModelHost(registry))) as server, httpx.Client(base_url=server.url) as client:
        document = client.get("/openapi.json").json()
        OpenAPIV31SpecValidator(document).validate()
        assert not [p for p in document["paths"] if "{" not in p and p.startswith("/v1/models/")]
        page = client.get("/docs")
        assert page.status_code == 200 and 'href="openapi.json"' in page.text and "<script" not in page.text
        assert client.get("/docs/assets/swagger-ui.css").status_code == 404


def test_docs_page_is_offline_and_assets_are_packaged(served: Served) -> None:
    assert assets_dir() is not None, "swagger-ui-py is not installed; it is a dependency of liveml"
    page = httpx.get(f"{served.url}/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "http" not in page.text  # no CDN, no external validator: everything from this server
    for asset, kind in [("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "text/css")]:
        response = httpx.get(f"{served.url}/docs/assets/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"], asset
        assert len(response.content) > 100_000


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_chromium(url, profile, *extra)


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium, or a loud skip (before any model is pushed) saying how to get it."""
    return require_chromium("/docs")


@pytest.mark.slow
# the browser renders the same document on either backend (the document itself is checked on both)
@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_docs_renders_in_headless_chromium(chromium: str, served: Served, tmp_path: Path) -> None:
    wanted = [
        'id="operations-tag-iris"',
        'id="operations-tag-flowers"',
        'data-path="/v1/models/iris/predict"',
        'data-path="/v1/models/flowers/predict"',
        'data-path="/v1/models/iris@staging/predict"',
    ]
    dom = ""
    for attempt in range(3):  # the page renders after fetching /openapi.json: give a slow machine more tries
        run = _chromium(f"{served.url}/docs", tmp_path / f"profile-{attempt}", "--dump-dom")
        dom = run.stdout
        if all(marker in dom for marker in wanted):
            break
    missing = [marker for marker in wanted if marker not in dom]
    assert not missing, (
        f"Swagger UI did not render {missing}; DOM starts: {dom[:500]!r}; stderr: {run.stderr[-800:]}"
    )
    assert "opblock-summary-path" in dom and "Predict with iris (serves iris:1)" in dom
    shot = tmp_path / "docs.png"
    _chromium(
        f"{served.url}/docs",
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        "--window-size=1280,900",
        "--hide-scrollbars",
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000  # not a blank page
    if keep := os.environ.get("LIVEML_SCREENSHOT_DIR"):  # to look at it
        shutil.copy(shot, Path(keep) / "docs.png")
