"""SageMaker's container contract and MLflow's scoring payloads over real HTTP, sent as
``invoke_endpoint`` (body, ContentType, Accept, custom attributes) and ``mlflow models serve`` clients send them."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import liveml
from liveml import Registry, Settings
from tests.integration.cloud_server import COLUMNS, Served, iris_registry, serve

ROOT = Path(__file__).resolve().parents[2]
ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]) -> Iterator[Served]:
    registry = iris_registry(tmp_path_factory.mktemp("sagemaker") / "home", model_files)
    with serve(registry, default_model="iris") as served:
        yield served
    registry.close()


def invoke(
    server: Served, body: bytes | str, content_type: str, accept: str | None = None, **headers: str
) -> Any:
    """What SageMaker forwards for ``invoke_endpoint(Body=..., ContentType=..., Accept=...)``."""
    sent = {"Content-Type": content_type, **({"Accept": accept} if accept else {}), **headers}
    return server.http.post("/invocations", content=body, headers=sent)


def test_health_ping_and_version(server: Served) -> None:
    ping = server.http.get("/ping")
    assert ping.status_code == 200 and ping.content == b""
    assert server.http.get("/health").status_code == 200
    assert server.http.get("/version").text == liveml.__version__


def test_every_mlflow_payload(server: Served, rows: pd.DataFrame, expected: dict) -> None:
    split = rows.to_dict(orient="split")
    payloads = [
        {"dataframe_split": {"columns": split["columns"], "data": split["data"], "index": split["index"]}},
        {"dataframe_split": {"data": rows.values.tolist()}},  # no columns: signature order
        {"dataframe_records": rows.to_dict(orient="records")},
        {"instances": rows.to_dict(orient="records")},
        {"instances": rows.values.tolist()},
        {"inputs": rows.to_dict(orient="list")},  # columns
        {"inputs": rows.values.tolist()},  # a tensor-like list of lists
        {"inputs": rows.values.tolist(), "params": {}},
    ]
    for payload in payloads:
        answer = server.http.post("/invocations", json=payload)
        assert answer.status_code == 200, (payload, answer.text)
        assert answer.json() == {"predictions": expected["labels"]}, payload
    bare = server.http.post("/invocations", json=rows.to_dict(orient="records"))
    assert bare.json() == {"predictions": expected["labels"]}


def test_csv_with_or_without_a_header(server: Served, rows: pd.DataFrame, expected: dict) -> None:
    with_header = rows.to_csv(index=False)
    without = rows.to_csv(index=False, header=False)
    reordered = rows[COLUMNS[::-1]].to_csv(index=False)  # named columns may come in any order
    for body, content_type in [
        (with_header, "text/csv"),
        (without, "text/csv"),
        (reordered, "text/csv; charset=utf-8"),
        (without, "text/csv;header=absent"),
        (with_header, "application/csv"),
    ]:
        answer = invoke(server, body, content_type)
        assert answer.status_code == 200, (content_type, answer.text)
        assert answer.json() == {"predictions": expected["labels"]}


def test_accept_text_csv_answers_one_line_per_row(server: Served, rows: pd.DataFrame, expected: dict) -> None:
    body = rows.to_csv(index=False, header=False)
    plain = invoke(server, body, "text/csv", accept="text/csv")
    assert plain.headers["content-type"].startswith("text/csv")
    assert plain.text.splitlines() == [str(label) for label in expected["labels"]]
    framed = invoke(
        server, body, "text/csv", accept="text/csv;header=present", **{ATTRIBUTES: "probabilities=true"}
    )
    table = pd.read_csv(io.StringIO(framed.text))
    assert list(table.columns) == ["prediction", "proba_0", "proba_1", "proba_2"]
    assert table["prediction"].tolist() == expected["labels"]
    np.testing.assert_allclose(table[["proba_0", "proba_1", "proba_2"]], expected["proba"], rtol=1e-6)
    first = invoke(server, body, "text/csv", accept="application/x-npy, text/csv;q=0.5")
    assert first.headers["content-type"].startswith("text/csv")


def test_probabilities_from_custom_attributes_or_params(
    server: Served, rows: pd.DataFrame, expected: dict
) -> None:
    records = {"dataframe_records": rows.to_dict(orient="records")}
    by_params = server.http.post("/invocations", json={**records, "params": {"probabilities": True}})
    by_attribute = server.http.post(
        "/invocations", json=records, headers={ATTRIBUTES: "trace=1; probabilities=true"}
    )
    by_json_attribute = server.http.post(
        "/invocations", json=records, headers={ATTRIBUTES: '{"probabilities": true}'}
    )
    for answer in (by_params, by_attribute, by_json_attribute):
        predictions = answer.json()["predictions"]
        assert [p["prediction"] for p in predictions] == expected["labels"]
        np.testing.assert_allclose(
            [[p[f"proba_{c}"] for c in range(3)] for p in predictions], expected["proba"], rtol=1e-6
        )


def test_json_lines_in_and_out(server: Served, rows: pd.DataFrame, expected: dict) -> None:
    """Batch Transform splits a JSON lines file by line and sends mini-batches of lines, under the job's
    ContentType; with ``Accept: application/jsonlines`` each row's answer is one line."""
    lists = "\n".join(json.dumps(r) for r in rows.values.tolist())
    for content_type in ("application/jsonlines", "application/x-ndjson", "application/json"):
        answer = invoke(server, lists, content_type, accept="application/jsonlines")
        assert answer.status_code == 200, (content_type, answer.text)
        assert [json.loads(line) for line in answer.text.splitlines()] == expected["labels"]
    records = "\n".join(json.dumps(r) for r in rows.to_dict(orient="records")) + "\n\n"
    assert invoke(server, records, "application/jsonlines").json() == {"predictions": expected["labels"]}


def test_execution_parameters(server: Served, tmp_path: Path, model_files: dict[str, Path]) -> None:
    """What Batch Transform asks before the first /invocations: liveml's defaults, or the job's own."""
    answer = server.http.get("/execution-parameters")
    assert answer.json() == {
        "MaxConcurrentTransforms": os.cpu_count(),
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }
    job = Settings(
        home=tmp_path / "home",
        sagemaker_batch_strategy="SingleRecord",
        sagemaker_max_payload_mb=20,
        sagemaker_max_concurrent_transforms=3,
    )
    registry = Registry.init(job)
    registry.push("iris", model_files["logistic"])
    with serve(registry) as batch:
        said = batch.http.get("/execution-parameters").json()
        assert said == {"MaxConcurrentTransforms": 3, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 20}
    registry.close()


SAGEMAKER_BAD = [
    pytest.param(b'{"dataframe_split": ', "application/json", None, 400, "not valid JSON", id="malformed-json"),
    pytest.param(b"\x93NUMPY", "application/x-npy", None, 415, "text/csv", id="wrong-content-type"),
    pytest.param(b"[[5.1, 3.5, 1.4, 0.2]]", "application/json", "application/x-npy", 415, "Accept", id="wrong-accept"),
    pytest.param(b"5.1,3.5,1.4,0.2", "text/csv; charset=latin-1", None, 415, "UTF-8", id="wrong-charset"),
    pytest.param(b"", "application/json", None, 400, "empty", id="empty-json"),
    pytest.param(b"", "text/csv", None, 400, "empty", id="empty-csv"),
    pytest.param(b'{"messages": []}', "application/json", None, 400, "exactly one of dataframe_split", id="no-input-field"),
    pytest.param(b'{"instances": [], "inputs": []}', "application/json", None, 400, "(2 given)", id="two-input-fields"),
    pytest.param(b'{"dataframe_split": {"columns": ["a"]}}', "application/json", None, 400, '"data"', id="split-without-data"),
    pytest.param(b'{"dataframe_split": {"data": [[1, 2]]}}', "application/json", None, 400, "in this order: sepal_length", id="split-short-rows"),
    pytest.param(b'{"dataframe_records": [{"sepal_length": 5.1}]}', "application/json", None, 400, "'sepal_width'", id="missing-column"),
    pytest.param(b'{"inputs": {"sepal_length": ["long"], "sepal_width": [1], "petal_length": [1], "petal_width": [1]}}', "application/json", None, 400, "'sepal_length' expects number", id="wrong-type"),
    pytest.param(b'{"inputs": [[5.1, 3.5, 1.4, 0.2]], "params": [1]}', "application/json", None, 400, '"params"', id="bad-params"),
    pytest.param(b"5.1,3.5\n6.7,3.0\n", "text/csv", None, 400, "each CSV row has 2 value(s)", id="csv-short-rows"),
    pytest.param(b"sepal_length,petal_width\n5.1,0.2\n", "text/csv", None, 400, "'sepal_width'", id="csv-missing-column"),
    pytest.param(b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3,9\n", "text/csv", None, 400, "could not be read", id="csv-ragged"),
    pytest.param(b"5.1,wide,1.4,0.2\n", "text/csv", None, 400, "'sepal_width' expects number", id="csv-wrong-type"),
    pytest.param(b'[5.1, 3.5, 1.4, 0.2]\n{"sepal_length": ', "application/jsonlines", None, 400, "line 2 of the JSON lines body", id="jsonl-bad-line"),
    pytest.param(b"\n \n", "application/jsonlines", None, 400, "JSON lines body is empty", id="jsonl-empty"),
    pytest.param(b"[5.1, 3.5]\n[6.7, 3.0]\n", "application/jsonlines", None, 400, "JSON lines[0] has 2 value(s)", id="jsonl-short-rows"),
    pytest.param(b'[5.1, 3.5, 1.4, 0.2]\n{"oops"\n', "application/json", None, 400, "not valid JSON", id="json-lines-bad-line"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "content_type", "accept", "status", "says"), SAGEMAKER_BAD)
def test_bad_input_is_a_clear_4xx_in_mlflow_form(
    server: Served, body: bytes, content_type: str, accept: str | None, status: int, says: str
) -> None:
    answer = invoke(server, body, content_type, accept=accept)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert set(error) == {"error_code", "message"} and error["error_code"] == "BAD_REQUEST"
    assert says in error["message"]


def test_the_example_script_runs_against_a_real_server(server: Served) -> None:
    script = ROOT / "examples" / "clients" / "sagemaker_invoke.sh"
    done = subprocess.run(["bash", str(script), server.url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "ping: 200"
    assert lines[1] == '{"predictions":[0,2]}'
    assert lines[2].startswith("0,0.9") and lines[3].startswith("2,")
    assert '"error_code":"BAD_REQUEST"' in lines[4] and lines[5] == "status: 400"
