"""The model image's server started the way each managed cloud starts it: ``python -m
liveml.deploy.entrypoint serve`` (the image's ENTRYPOINT and SageMaker's ``serve`` argument), with the
image's environment (``LIVEML_PLATFORM_AUTH=true``, every interface, port 8080) plus what the platform
adds, probed and called on the platform's routes with the platform's payloads."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest

from liveml import Registry, Settings
from liveml.deploy.clouds import azure_model_folder, model_folder, platform_settings, vertex_model_folder
from liveml.deploy.sagemaker import export_model_tar
from liveml.errors import Invalid, NotFound
from liveml.registry.bundle import read_bundle, write_bundle
from tests.e2e.test_serve_cli import _env
from tests.integration.cloud_server import COLUMNS
from tests.live_server import free_port

ENTRYPOINT = [sys.executable, "-m", "liveml.deploy.entrypoint", "serve"]
#: what liveml's model images set (liveml.deploy.dockerfile); the platform's variables come on top
IMAGE_ENV = {"LIVEML_SERVER_HOST": "0.0.0.0", "LIVEML_SERVER_PORT": "8080", "LIVEML_PLATFORM_AUTH": "true"}
AIP_PREDICT = "/v1/endpoints/7360/deployedModels/1234:predict"
AIP_HEALTH = "/v1/endpoints/7360/deployedModels/1234"


@contextmanager
def started_as_the_cloud_does(
    env: dict[str, str], home: Path, port: int, probe: str
) -> Iterator[httpx.Client]:
    """The image's entrypoint with ``env`` on top of the image's, until ``probe`` answers 200 on
    ``port``; stopped with SIGTERM as every platform stops a container."""
    environment = {k: v for k, v in _env(home).items() if not k.startswith("AZUREML_")}
    proc = subprocess.Popen(
        ENTRYPOINT,
        cwd=home.parent,
        env={**environment, **IMAGE_ENV, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    log = proc.stdout.read() if proc.stdout else ""
                    raise AssertionError(f"the server exited early:\n{log}")
                try:
                    if http.get(probe).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the server did not become ready"
                time.sleep(0.2)
            yield http
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        finally:
            if proc.poll() is None:
                proc.kill()
    log = proc.stdout.read() if proc.stdout else ""
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]) -> Iterator[Registry]:
    """Where the versions come from: ``iris`` (logistic) and ``forest`` (a random forest)."""
    registry = Registry.init(Settings(home=tmp_path_factory.mktemp("source") / "home", user="tester"))
    registry.push("iris", model_files["logistic"], aliases=["production"])
    registry.push("forest", model_files["forest"], aliases=["production"])
    yield registry
    registry.close()


@pytest.fixture(scope="module")
def iris(iris_frame: pd.DataFrame, model_files: dict[str, Path]) -> tuple[pd.DataFrame, list[int]]:
    """Every iris row, twice over, and what the logistic model says about each."""
    rows = pd.concat([iris_frame[COLUMNS]] * 2, ignore_index=True)
    return rows, joblib.load(model_files["logistic"]).predict(rows).tolist()


def sagemaker_model_dir(registry: Registry, tmp: Path) -> Path:
    """``liveml export sagemaker``'s archive, unpacked as SageMaker unpacks ModelDataUrl."""
    export_model_tar(registry, "iris@production", tmp / "model.tar.gz")
    with tarfile.open(tmp / "model.tar.gz", "r:gz") as tar:
        tar.extractall(tmp / "opt" / "ml" / "model", filter="data")
    return tmp / "opt" / "ml" / "model"


# -- SageMaker ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sagemaker_real_time(
    registry: Registry, tmp_path: Path, iris: tuple[pd.DataFrame, list[int]]
) -> None:
    rows, labels = iris
    port = free_port()
    env = {
        "LIVEML_MODEL_DIR": str(sagemaker_model_dir(registry, tmp_path)),
        "SAGEMAKER_BIND_TO_PORT": str(port),
    }
    with started_as_the_cloud_does(env, tmp_path / "home", port, "/ping") as http:
        ping = http.get("/ping")
        assert ping.status_code == 200 and ping.content == b""
        few = rows.head(5)
        csv_lines = few.to_csv(index=False, header=False)  # invoke_endpoint(ContentType="text/csv")
        answer = http.post(
            "/invocations", content=csv_lines, headers={"Content-Type": "text/csv", "Accept": "text/csv"}
        )
        assert answer.status_code == 200 and answer.text.splitlines() == [str(v) for v in labels[:5]]
        records = {"dataframe_records": few.to_dict(orient="records")}
        assert http.post("/invocations", json=records).json() == {"predictions": labels[:5]}
        # over the 10,000-row limit of a real-time request: refused, naming the limit
        many = pd.concat([rows] * 40, ignore_index=True).to_csv(index=False)
        too_many = http.post("/invocations", content=many, headers={"Content-Type": "text/csv"})
        assert too_many.status_code == 400 and "10000" in too_many.json()["message"]


@pytest.mark.slow
def test_sagemaker_batch_transform(
    registry: Registry, tmp_path: Path, iris: tuple[pd.DataFrame, list[int]]
) -> None:
    rows, labels = iris
    many = pd.concat([rows] * 40, ignore_index=True)  # 12,000 rows: one MULTI_RECORD mini-batch
    expected = labels * 40
    port = free_port()
    env = {
        "LIVEML_MODEL_DIR": str(sagemaker_model_dir(registry, tmp_path)),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_BATCH": "true",
    }
    with started_as_the_cloud_does(env, tmp_path / "home", port, "/ping") as http:
        parameters = http.get("/execution-parameters")
        assert parameters.status_code == 200
        assert parameters.json() == {
            "MaxConcurrentTransforms": os.cpu_count(),
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": 6,
        }
        # SplitType=Line on a CSV file: lines in, one answer line per input line out, in order
        body = many.to_csv(index=False, header=False)
        assert len(body.encode()) < 6 * 1024 * 1024
        answer = http.post(
            "/invocations", content=body, headers={"Content-Type": "text/csv", "Accept": "text/csv"}
        )
        assert answer.status_code == 200, answer.text[:500]
        assert answer.text.splitlines() == [str(v) for v in expected]
        # a JSON lines file, one row per line (lists or objects), as application/jsonlines or plain JSON
        few = rows.iloc[::25]
        lines = "\n".join(json.dumps(r) for r in few.values.tolist()) + "\n"
        lines += "\n".join(json.dumps(r) for r in few.to_dict(orient="records")) + "\n"
        wanted = labels[::25] * 2
        for content_type in ("application/jsonlines", "application/json"):
            out = http.post(
                "/invocations",
                content=lines,
                headers={"Content-Type": content_type, "Accept": "application/jsonlines"},
            )
            assert out.status_code == 200, out.text
            assert out.headers["content-type"].startswith("application/jsonlines")
            assert [json.loads(line) for line in out.text.splitlines()] == wanted
        probabilities = http.post(
            "/invocations",
            content=lines,
            headers={
                "Content-Type": "application/jsonlines",
                "Accept": "application/jsonlines",
                "X-Amzn-SageMaker-Custom-Attributes": "probabilities=true",
            },
        )
        first = json.loads(probabilities.text.splitlines()[0])
        assert set(first) == {"prediction", "proba_0", "proba_1", "proba_2"}
        bad = http.post(
            "/invocations",
            content='[5.1, 3.5, 1.4, 0.2]\n{"sepal_length": ',
            headers={"Content-Type": "application/jsonlines"},
        )
        assert bad.status_code == 400 and "line 2" in bad.json()["message"]


# -- Vertex AI ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_vertex_ai(registry: Registry, tmp_path: Path, iris: tuple[pd.DataFrame, list[int]]) -> None:
    rows, labels = iris
    write_bundle(registry, "iris@production", tmp_path / "artifacts")
    write_bundle(registry, "forest@production", tmp_path / "baked")  # the image's own model, overridden
    port = free_port()
    env = {
        "LIVEML_MODEL_DIR": str(tmp_path / "baked"),
        "AIP_HTTP_PORT": str(port),
        "AIP_HEALTH_ROUTE": AIP_HEALTH,
        "AIP_PREDICT_ROUTE": AIP_PREDICT,
        "AIP_STORAGE_URI": (tmp_path / "artifacts").as_uri(),
        "AIP_MODE": "PREDICTION",
    }
    with started_as_the_cloud_does(env, tmp_path / "home", port, AIP_HEALTH) as http:
        assert http.get(AIP_HEALTH).json() == {"ready": True}
        few = rows.head(3)
        answer = http.post(AIP_PREDICT, json={"instances": few.values.tolist(), "parameters": {}})
        assert answer.status_code == 200 and answer.json() == {"predictions": labels[:3]}
        scored = http.post(
            AIP_PREDICT,
            json={"instances": few.to_dict(orient="records"), "parameters": {"probabilities": True}},
        )
        predictions = scored.json()["predictions"]
        assert [p["label"] for p in predictions] == labels[:3] and predictions[0]["classes"] == [0, 1, 2]
        assert [m["name"] for m in http.get("/v1/models").json()["models"]] == ["iris"]
        bad = http.post(AIP_PREDICT, json={"instances": [[5.1, 3.5]]})
        assert (
            bad.status_code == 400
            and "sepal_length, sepal_width, petal_length, petal_width" in bad.json()["error"]
        )


# -- Azure ML -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_azure_ml(registry: Registry, tmp_path: Path, iris: tuple[pd.DataFrame, list[int]]) -> None:
    """A registered folder keeps its name under AZUREML_MODEL_DIR; the routes and port are those of the
    deployment's inference_config in docs/azure-ml.md (liveness /health/live, readiness /health/ready,
    scoring /invocations, port 8080: here a free port, as the image's LIVEML_SERVER_PORT)."""
    rows, labels = iris
    mounted = tmp_path / "azureml-models" / "iris" / "1"
    write_bundle(registry, "iris@production", mounted / "iris-bundle")
    port = free_port()
    env = {"AZUREML_MODEL_DIR": str(mounted), "LIVEML_SERVER_PORT": str(port)}
    with started_as_the_cloud_does(env, tmp_path / "home", port, "/health/ready") as http:
        assert http.get("/health/live").status_code == 200
        few = rows.head(4)
        split = {"dataframe_split": {"columns": COLUMNS, "data": few.values.tolist()}}
        answer = http.post("/invocations", json=split)
        assert answer.status_code == 200 and answer.json() == {"predictions": labels[:4]}
        table = pd.read_csv(
            io.StringIO(http.post("/invocations", json=split, headers={"Accept": "text/csv"}).text),
            header=None,
        )
        np.testing.assert_array_equal(table[0].to_numpy(), labels[:4])
        missing = http.post("/invocations", json={"dataframe_records": [{"sepal_length": 5.1}]})
        assert missing.status_code == 400 and "'sepal_width'" in missing.json()["message"]


@pytest.mark.slow
def test_azure_ml_without_a_model_says_where_it_looked(tmp_path: Path) -> None:
    mounted = tmp_path / "azureml-models" / "iris" / "1"
    (mounted / "one").mkdir(parents=True)
    (mounted / "two").mkdir()
    env = {
        **_env(tmp_path / "home"),
        **IMAGE_ENV,
        "AZUREML_MODEL_DIR": str(mounted),
        "LIVEML_SERVER_PORT": str(free_port()),
    }
    done = subprocess.run(ENTRYPOINT, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"AZUREML_MODEL_DIR ({mounted})" in done.stderr and "Traceback" not in done.stderr


# -- the platforms' variables, in-process -----------------------------------------------------------
def test_platform_settings_follow_each_contract() -> None:
    plain = Settings()
    assert platform_settings(plain) is plain  # no platform: nothing changes
    batch = platform_settings(Settings(sagemaker_batch=True, sagemaker_max_payload_mb=50))
    assert (batch.server_host, batch.server_port) == ("0.0.0.0", 8080)
    assert batch.max_request_rows > 10**8 and batch.max_body_bytes == 50 * 1024 * 1024
    vertex = platform_settings(Settings(vertex_predict_route="/p", server_port=9000, platform_auth=True))
    assert (vertex.server_host, vertex.server_port) == ("0.0.0.0", 9000)
    assert vertex.rate_limit_per_s == 0 and vertex.max_concurrent_per_key >= 10_000
    kept = platform_settings(
        Settings(azureml_model_dir=Path("/m"), server_host="127.0.0.1", max_request_rows=5)
    )
    assert (kept.server_host, kept.server_port, kept.max_request_rows) == ("127.0.0.1", 8080, 5)


def test_the_platforms_model_location_wins_over_the_images(registry: Registry, tmp_path: Path) -> None:
    baked, mounted, given = tmp_path / "baked", tmp_path / "mounted", tmp_path / "given"
    write_bundle(registry, "iris@production", mounted)
    settings = Settings(model_dir=baked, azureml_model_dir=mounted, vertex_storage_uri=str(tmp_path / "x"))
    assert model_folder(settings) == mounted
    assert model_folder(settings, given=given) == given
    assert model_folder(Settings(model_dir=baked, vertex_storage_uri=mounted.as_uri())) == mounted
    assert model_folder(Settings(model_dir=baked)) == baked
    shared = Settings(model_dir=baked, azureml_model_dir=mounted, database_url="sqlite:///x.db")
    assert model_folder(shared) == baked  # a registry database is configured: no platform folder


def test_azure_finds_the_model_a_folder_or_two_down(registry: Registry, tmp_path: Path) -> None:
    root = tmp_path / "azureml-models" / "iris" / "3"
    write_bundle(registry, "iris@production", root / "outputs" / "iris-bundle")
    (root / ".amlignore").write_text("*.tmp\n")
    assert azure_model_folder(root) == root / "outputs" / "iris-bundle"
    flat = tmp_path / "flat"
    write_bundle(registry, "iris@production", flat)
    (flat / "notes").mkdir()
    assert azure_model_folder(flat) == flat
    with pytest.raises(NotFound, match="does not exist"):
        azure_model_folder(tmp_path / "nowhere")


def test_vertex_downloads_aip_storage_uri_with_fsspec(registry: Registry, tmp_path: Path) -> None:
    """AIP_STORAGE_URI is a gs:// folder on Vertex; any fsspec URL is read the same way (here the
    in-memory filesystem, as gcsfs would read Cloud Storage)."""
    import fsspec

    write_bundle(registry, "iris@production", tmp_path / "bundle")
    memory = fsspec.filesystem("memory")
    for path in (tmp_path / "bundle").iterdir():
        memory.pipe(f"/vertex-bucket/models/iris/{path.name}", path.read_bytes())
    local = vertex_model_folder("memory://vertex-bucket/models/iris/", tmp_path / "home" / "vertex-model")
    manifest = read_bundle(local)
    assert manifest is not None and manifest.ref == "iris:1"
    with pytest.raises(NotFound, match="holds no files"):
        memory.mkdir("/vertex-bucket/empty")
        vertex_model_folder("memory://vertex-bucket/empty", tmp_path / "empty")
    with pytest.raises(Invalid, match="install the fsspec filesystem for nosuch://"):
        vertex_model_folder("nosuch://bucket/model", tmp_path / "other")
