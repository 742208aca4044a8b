"""Open Inference Protocol V2 against a real uvicorn server, spoken by tritonclient and by raw HTTP.

Models: the iris logistic pipeline (``iris`` version 1, production) and the random forest (``iris``
version 2, staging), a regressor (``petal``), and a classifier over text, integer, boolean and number
columns with text labels (``plans``).
"""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as httpclient
import uvicorn
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from tritonclient.utils import InferenceServerException

import liveml
from liveml import ColumnSpec, Registry, Settings, Signature
from liveml.api import app as app_module
from liveml.serving.host import HostOptions, ModelHost

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@contextmanager
def serve(registry: Registry, *, lazy: bool = False) -> Iterator[str]:
    """A real uvicorn server on a free port, in a thread, with the V2 protocol mounted; yields host:port."""
    protocols = tuple(dict.fromkeys((*app_module.PROTOCOLS, "liveml.api.v2")))
    host = ModelHost(registry, options=HostOptions(poll_interval_s=0, lazy=lazy, warm_up=False))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app_module, "PROTOCOLS", protocols)
        app = app_module.create_app(host)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    address = f"127.0.0.1:{port}"
    probe = "live" if lazy else "ready"
    deadline = time.monotonic() + 30
    while True:
        try:
            # a lazy host is ready only once its models are loaded: wait for it to be live instead
            if httpx.get(f"http://{address}/v2/health/{probe}", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not become ready"
        time.sleep(0.05)
    try:
        yield address
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class Served:
    address: str
    logistic: Any
    forest: Any
    regressor: Any
    plans: Any
    rows: pd.DataFrame

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def client(self) -> httpclient.InferenceServerClient:
        return httpclient.InferenceServerClient(self.address)


def plans_frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame(
        {
            "plan": rng.choice(["free", "pro", "team"], n),
            "age": rng.integers(18, 80, n),
            "active": rng.random(n) > 0.5,
            "score": rng.normal(size=n),
        }
    )
    label = np.where((frame["plan"] == "free") & ~frame["active"], "churn", "stay")
    return frame, pd.Series(label)


@pytest.fixture(scope="module")
def served(
    model_files: dict[str, Path], iris_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("v2")
    registry = Registry.init(Settings(home=root / "home", user="tester"))
    registry.push("iris", model_files["logistic"], aliases=["production"], reference=model_files["reference"])
    registry.push("iris", model_files["forest"], aliases=["staging"], reference=model_files["reference"])

    features = iris_frame[FEATURES]
    regressor = LinearRegression().fit(features[FEATURES[:3]], features["petal_width"])
    joblib.dump(regressor, root / "petal.joblib")
    features[FEATURES[:3]].to_parquet(root / "petal.parquet")
    registry.push("petal", root / "petal.joblib", reference=root / "petal.parquet")

    frame, label = plans_frame()
    plans = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["plan"]), remainder="passthrough"),
        LogisticRegression(max_iter=500),
    ).fit(frame, label)
    joblib.dump(plans, root / "plans.joblib")
    frame.to_parquet(root / "plans.parquet")
    signature = Signature(
        inputs=(
            ColumnSpec(name="plan", type="string"),
            ColumnSpec(name="age", type="integer"),
            ColumnSpec(name="active", type="boolean"),
            ColumnSpec(name="score", type="number"),
        )
    )
    registry.push("plans", root / "plans.joblib", signature=signature, reference=root / "plans.parquet")
    rows = features.iloc[[0, 1, 60, 120, 149]].reset_index(drop=True)
    try:
        with serve(registry) as address:
            yield Served(
                address,
                joblib.load(model_files["logistic"]),
                joblib.load(model_files["forest"]),
                regressor,
                plans,
                rows,
            )
    finally:
        registry.close()


def column_inputs(
    frame: pd.DataFrame, *, binary: bool, datatype: str = "FP64"
) -> list[httpclient.InferInput]:
    inputs = []
    for name in frame.columns:
        values = frame[name].to_numpy()
        if datatype == "FP32":
            values = values.astype(np.float32)
        tensor = httpclient.InferInput(name, [len(frame)], datatype)
        tensor.set_data_from_numpy(np.ascontiguousarray(values), binary_data=binary)
        inputs.append(tensor)
    return inputs


# -- tritonclient ------------------------------------------------------------------------------
def test_health_and_server_metadata(served: Served) -> None:
    client = served.client()
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata() == {
        "name": "liveml",
        "version": liveml.__version__,
        "extensions": ["binary_tensor_data", "model_repository"],
    }
    assert httpx.get(f"{served.url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{served.url}/v2/health/ready").json() == {"ready": True}


def test_model_readiness_and_metadata(served: Served) -> None:
    client = served.client()
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris", "2") and client.is_model_ready("iris", "staging")
    assert not client.is_model_ready("nope")
    assert not client.is_model_ready("iris", "9")
    assert httpx.get(f"{served.url}/v2/models/nope/ready").status_code == 404

    metadata = client.get_model_metadata("iris")
    assert metadata == {
        "name": "iris",
        "versions": ["1", "2"],
        "platform": "liveml-sklearn",
        "inputs": [{"name": n, "datatype": "FP64", "shape": [-1]} for n in FEATURES],
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
        ],
    }
    assert client.get_model_metadata("iris", "staging")["name"] == "iris"
    assert client.get_model_metadata("petal")["outputs"] == [
        {"name": "predict", "datatype": "FP64", "shape": [-1]}
    ]
    plans = client.get_model_metadata("plans")
    assert [(t["name"], t["datatype"]) for t in plans["inputs"]] == [
        ("plan", "BYTES"),
        ("age", "INT64"),
        ("active", "BOOL"),
        ("score", "FP64"),
    ]
    assert plans["outputs"][0]["datatype"] == "BYTES"
    with pytest.raises(InferenceServerException, match=r"\[404\] no model named 'nope'"):
        client.get_model_metadata("nope")
    assert httpx.get(f"{served.url}/v2/models").json() == {"models": ["iris", "petal", "plans"]}


@pytest.mark.parametrize(
    ("binary_in", "binary_out"), [(False, False), (True, True), (True, False), (False, True)]
)
def test_infer_one_tensor_per_column(served: Served, binary_in: bool, binary_out: bool) -> None:
    client = served.client()
    outputs = [
        httpclient.InferRequestedOutput("predict", binary_data=binary_out),
        httpclient.InferRequestedOutput("predict_proba", binary_data=binary_out),
    ]
    result = client.infer(
        "iris", column_inputs(served.rows, binary=binary_in), outputs=outputs, request_id="req-7"
    )
    np.testing.assert_array_equal(result.as_numpy("predict"), served.logistic.predict(served.rows))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), served.logistic.predict_proba(served.rows))
    response = result.get_response()
    assert response["model_name"] == "iris" and response["model_version"] == "1" and response["id"] == "req-7"
    assert len(response["parameters"]["prediction_ids"].split(",")) == len(served.rows)
    assert response["outputs"][1]["parameters"]["classes"] == "0,1,2"


@pytest.mark.parametrize("binary", [False, True])
def test_infer_one_matrix_tensor(served: Served, binary: bool) -> None:
    matrix = httpclient.InferInput("input__0", list(served.rows.shape), "FP64")
    matrix.set_data_from_numpy(served.rows.to_numpy(), binary_data=binary)
    result = served.client().infer(
        "iris", [matrix], outputs=[httpclient.InferRequestedOutput("predict_proba", binary_data=binary)]
    )
    np.testing.assert_allclose(result.as_numpy("predict_proba"), served.logistic.predict_proba(served.rows))
    assert [o["name"] for o in result.get_response()["outputs"]] == ["predict_proba"]


def test_no_outputs_asked_means_all_of_them_binary(served: Served) -> None:
    result = served.client().infer("iris", column_inputs(served.rows, binary=True))
    outputs = result.get_response()["outputs"]
    assert [o["name"] for o in outputs] == ["predict", "predict_proba"]
    assert all("binary_data_size" in o["parameters"] for o in outputs)
    np.testing.assert_array_equal(result.as_numpy("predict"), served.logistic.predict(served.rows))


def test_versions_and_aliases_answer_as_themselves(served: Served) -> None:
    client = served.client()
    for version in ("2", "staging"):
        result = client.infer("iris", column_inputs(served.rows, binary=True), model_version=version)
        assert result.get_response()["model_version"] == "2"
        np.testing.assert_array_equal(result.as_numpy("predict"), served.forest.predict(served.rows))
    assert (
        client.infer(
            "iris", column_inputs(served.rows, binary=True), model_version="production"
        ).get_response()["model_version"]
        == "1"
    )


def test_regressor_with_fp32_and_gzip(served: Served) -> None:
    frame = served.rows[FEATURES[:3]]
    result = served.client().infer(
        "petal", column_inputs(frame, binary=True, datatype="FP32"), request_compression_algorithm="gzip"
    )
    assert result.get_response()["outputs"][0]["datatype"] == "FP64"
    expected = served.regressor.predict(frame.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(result.as_numpy("predict"), expected, rtol=1e-6)
    with pytest.raises(
        InferenceServerException, match=r"unknown output.*'predict_proba'.*its outputs are: predict"
    ):
        served.client().infer(
            "petal",
            column_inputs(frame, binary=False),
            outputs=[httpclient.InferRequestedOutput("predict_proba")],
        )


@pytest.mark.parametrize("binary", [False, True])
def test_text_integer_boolean_columns_and_text_labels(served: Served, binary: bool) -> None:
    frame, _ = plans_frame()
    frame = frame.head(6)
    inputs = []
    for name, datatype in (("plan", "BYTES"), ("age", "INT64"), ("active", "BOOL"), ("score", "FP64")):
        values = frame[name].to_numpy().astype(object) if datatype == "BYTES" else frame[name].to_numpy()
        tensor = httpclient.InferInput(name, [len(frame), 1], datatype)
        tensor.set_data_from_numpy(values.reshape(-1, 1), binary_data=binary)
        inputs.append(tensor)
    result = served.client().infer(
        "plans", inputs, outputs=[httpclient.InferRequestedOutput("predict", binary_data=binary)]
    )
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict").tolist()]
    assert labels == served.plans.predict(frame).tolist()
    matrix = httpclient.InferInput("x", [1, 4], "FP64")
    matrix.set_data_from_numpy(np.zeros((1, 4)), binary_data=binary)
    with pytest.raises(InferenceServerException, match="every input is numeric, but 'plan' is string"):
        served.client().infer("plans", [matrix])


def test_the_example_client(served: Served) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "clients" / "triton_client.py"),
            "--url",
            served.address,
            "--model",
            "iris",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.strip().splitlines())
    rows = pd.DataFrame([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], columns=FEATURES)
    expected = str(served.logistic.predict(rows).tolist())
    assert lines["server ready"] == "True" and lines["model ready"] == "True"
    assert lines["answered by version"] == "1"
    assert lines["per-column predict"] == expected == lines["matrix predict"]
    assert lines["per-column predict_proba"] == str(np.round(served.logistic.predict_proba(rows), 4).tolist())


# -- raw HTTP: every bad input is a 400 with a message, never a 500 ------------------------------
def iris_request(**changes: Any) -> dict[str, Any]:
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    inputs = [
        {"name": n, "shape": [2], "datatype": "FP64", "data": [r[i] for r in rows]}
        for i, n in enumerate(FEATURES)
    ]
    return {"inputs": inputs, **changes}


def with_input(index: int, **changes: Any) -> dict[str, Any]:
    request = iris_request()
    request["inputs"][index] = {**request["inputs"][index], **changes}
    return request


BAD_JSON = [
    (b"", "the request body is empty"),
    (b"{nope", "not valid JSON"),
    (orjson.dumps({"inputs": []}), "needs 'inputs'"),
    (
        orjson.dumps(with_input(0, data=["5.1", "6.7"])),
        "input 'sepal_length' is FP64 but element 0 is '5.1' (str)",
    ),
    (orjson.dumps(with_input(0, shape=[3])), "input 'sepal_length' has 2 value(s) but its shape holds 3"),
    (orjson.dumps(iris_request(inputs=iris_request()["inputs"][:3])), "missing input(s) 'petal_width'"),
    (orjson.dumps(with_input(3, name="petal_widht")), "unknown input(s) 'petal_widht'"),
    (
        orjson.dumps(iris_request(inputs=iris_request()["inputs"] + iris_request()["inputs"][:1])),
        "appear more than once",
    ),
    (orjson.dumps(with_input(0, datatype="FLOAT64")), "datatype 'FLOAT64'"),
    (
        orjson.dumps(with_input(0, datatype="BYTES", data=["5.1", "6.7"])),
        "'sepal_length' is the model's number column; send it as FP64",
    ),
    (orjson.dumps(with_input(0, datatype="INT64", data=[5.1, 6.7])), "INT64 data must be whole numbers"),
    (
        orjson.dumps(with_input(0, shape=[1], data=[5.1])),
        "'sepal_width' has 2 row(s) but the inputs before it have 1",
    ),
    (
        orjson.dumps(iris_request(outputs=[{"name": "probabilities"}])),
        "unknown output(s) 'probabilities' for model iris; its outputs are: predict, predict_proba",
    ),
    (
        orjson.dumps({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}),
        "has shape [1, 3], 3 column(s), but the model takes 4",
    ),
    (
        orjson.dumps(
            {"inputs": [{"name": "x", "shape": [1, 1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}
        ),
        "unknown input(s) 'x'",
    ),
    (orjson.dumps(iris_request(id=5)), "'id' must be a string"),
]


@pytest.mark.parametrize(("body", "message"), BAD_JSON)
def test_bad_json_requests(served: Served, body: bytes, message: str) -> None:
    response = httpx.post(
        f"{served.url}/v2/models/iris/infer", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert list(response.json()) == ["error"] and message in response.json()["error"]


def binary_request(
    sizes: list[int], payload: bytes, header_length: int | None = None
) -> tuple[bytes, dict[str, str]]:
    request = iris_request()
    for tensor, size in zip(request["inputs"], sizes, strict=True):
        del tensor["data"]
        tensor["parameters"] = {"binary_data_size": size}
    header = orjson.dumps(request)
    length = len(header) if header_length is None else header_length
    return header + payload, {
        "Inference-Header-Content-Length": str(length),
        "content-type": "application/octet-stream",
    }


def test_binary_framing(served: Served) -> None:
    columns = [np.array([5.1, 6.7]), np.array([3.5, 3.0]), np.array([1.4, 5.2]), np.array([0.2, 2.3])]
    payload = b"".join(c.astype("<f8").tobytes() for c in columns)
    body, headers = binary_request([16] * 4, payload)
    ok = httpx.post(f"{served.url}/v2/models/iris/infer", content=body, headers=headers)
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert orjson.loads(ok.content)["outputs"][0]["data"] == [0, 2]

    answer = httpx.post(
        f"{served.url}/v2/models/iris/infer",
        content=orjson.dumps(
            iris_request(parameters={"binary_data_output": True}, outputs=[{"name": "predict"}])
        ),
    )
    length = int(answer.headers["Inference-Header-Content-Length"])
    assert answer.headers["content-type"] == "application/octet-stream"
    header = orjson.loads(answer.content[:length])
    assert header["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [2], "parameters": {"binary_data_size": 16}}
    ]
    assert np.frombuffer(answer.content[length:], dtype="<i8").tolist() == [0, 2]

    bad = [
        (
            binary_request([16] * 4, payload, header_length=len(body) + 1),
            "Inference-Header-Content-Length says",
        ),
        (binary_request([16] * 4, payload + b"!"), "add up to 64"),
        (binary_request([16, 16, 16, 24], payload), "only 16 bytes of binary data are left"),
        (
            binary_request([16, 16, 8, 24], payload),
            "'petal_length' has 8 bytes of binary data but 2 FP64 values take 16",
        ),
        ((b"{}", {"Inference-Header-Content-Length": "two"}), "must be the JSON header's size"),
    ]
    for (content, headers), message in bad:
        response = httpx.post(f"{served.url}/v2/models/iris/infer", content=content, headers=headers)
        assert response.status_code == 400, response.text
        assert message in response.json()["error"]


def test_nested_data_gzip_and_other_statuses(served: Served) -> None:
    nested = iris_request()
    for tensor in nested["inputs"]:
        tensor["shape"] = [2, 1]
        tensor["data"] = [[v] for v in tensor["data"]]
    assert httpx.post(f"{served.url}/v2/models/iris/infer", content=orjson.dumps(nested)).status_code == 200
    squeezed = httpx.post(
        f"{served.url}/v2/models/iris/infer",
        content=gzip.compress(orjson.dumps(iris_request())),
        headers={"content-encoding": "gzip"},
    )
    assert squeezed.status_code == 200 and squeezed.json()["outputs"][0]["data"] == [0, 2]
    assert (
        httpx.post(
            f"{served.url}/v2/models/iris/infer", content=b"xx", headers={"content-encoding": "br"}
        ).status_code
        == 415
    )
    assert (
        httpx.post(
            f"{served.url}/v2/models/iris/infer", content=b"xx", headers={"content-encoding": "gzip"}
        ).status_code
        == 400
    )
    missing = httpx.post(f"{served.url}/v2/models/nope/infer", content=orjson.dumps(iris_request()))
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    assert (
        httpx.post(
            f"{served.url}/v2/models/iris/versions/9/infer", content=orjson.dumps(iris_request())
        ).status_code
        == 404
    )
    assert (
        httpx.post(
            f"{served.url}/v2/models/iris/versions/x y/infer", content=orjson.dumps(iris_request())
        ).status_code
        == 400
    )
    assert httpx.get(f"{served.url}/v2/models/iris/versions/2").json()["name"] == "iris"


def test_repository_index_load_unload(served: Served) -> None:
    client = served.client()
    index = client.get_model_repository_index()
    assert {(e["name"], e["version"], e["state"]) for e in index} >= {
        ("iris", "1", "READY"),
        ("petal", "1", "READY"),
    }
    assert all(set(e) == {"name", "version", "state", "reason"} for e in index)
    client.load_model("petal")
    with pytest.raises(InferenceServerException, match=r"\[404\] no model named 'nope'"):
        client.load_model("nope")
    refused = httpx.post(
        f"{served.url}/v2/repository/models/petal/load", json={"parameters": {"config": "{}"}}
    )
    assert refused.status_code == 400 and "liveml push" in refused.json()["error"]
    client.unload_model("petal")
    assert not client.is_model_ready("petal")
    index = {(e["name"], e["state"]) for e in client.get_model_repository_index()}
    assert ("petal", "READY") not in index and ("iris", "READY") in index
    tensor = {"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}
    parked = httpx.post(f"{served.url}/v2/models/petal/infer", json={"inputs": [tensor]})
    assert parked.status_code == 503 and "/v2/repository/models/petal/load" in parked.json()["error"]
    assert httpx.get(f"{served.url}/v2/health/ready").status_code == 200  # the rest still serves
    client.load_model("petal")
    assert client.is_model_ready("petal")
    assert httpx.post(f"{served.url}/v2/repository/models/nope/unload").status_code == 404


# -- one registry per metadata backend, models loaded on demand -----------------------------------
def test_lazy_server_on_each_backend(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("iris", model_files["logistic"], aliases=["production"], reference=model_files["reference"])
    with serve(registry, lazy=True) as address:
        client = httpclient.InferenceServerClient(address)
        assert client.get_model_repository_index() == [
            {
                "name": "iris",
                "version": "1",
                "state": "UNAVAILABLE",
                "reason": "not loaded; POST /v2/repository/models/iris/load",
            }
        ]
        assert httpx.post(f"http://{address}/v2/repository/index", json={"ready": True}).json() == []
        client.load_model("iris")
        assert client.get_model_repository_index() == [
            {"name": "iris", "version": "1", "state": "READY", "reason": ""}
        ]
        rows = pd.read_parquet(model_files["reference"]).head(3)
        result = client.infer("iris", column_inputs(rows, binary=True))
        np.testing.assert_array_equal(
            result.as_numpy("predict"), joblib.load(model_files["logistic"]).predict(rows)
        )
