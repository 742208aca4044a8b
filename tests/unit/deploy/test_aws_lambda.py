"""The Lambda handler invoked in-process as the Lambda runtime invokes it: API Gateway REST (payload 1.0)
and HTTP API (payload 2.0) events, in the shape AWS documents them (tests/data/lambda), with a real
``LambdaContext``, over a model bundle exported from a registry."""

from __future__ import annotations

import base64
import copy
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from awslambdaric.lambda_context import LambdaContext

from liveml import Registry, Settings
from liveml.deploy import aws_lambda
from liveml.registry.bundle import write_bundle

DATA = Path(__file__).resolve().parents[2] / "data" / "lambda"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
RECORD = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def rest_event(
    path: str, body: bytes | str | None, content_type: str = "application/json", **extra: Any
) -> Any:
    """API Gateway REST API's proxy event (``ANY /{proxy+}``, stage ``prod``) for one request."""
    event = copy.deepcopy(json.loads((DATA / "rest_api_v1.json").read_text()))
    event["path"] = path
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["requestContext"]["path"] = f"/prod{path}"
    event["httpMethod"] = event["requestContext"]["httpMethod"] = extra.pop("method", "POST")
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers["Content-Type"] = content_type if headers is event["headers"] else [content_type]
    return _with_body(event, body, **extra)


def http_event(
    path: str, body: bytes | str | None, content_type: str = "application/json", **extra: Any
) -> Any:
    """API Gateway HTTP API's event, payload format 2.0, for one request."""
    event = copy.deepcopy(json.loads((DATA / "http_api_v2.json").read_text()))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = extra.pop("method", "POST")
    event["headers"]["content-type"] = content_type
    event["headers"].pop("content-length")
    return _with_body(event, body, **extra)


def _with_body(event: dict[str, Any], body: bytes | str | None, *, base64_body: bool = False) -> Any:
    if base64_body:
        raw = body.encode() if isinstance(body, str) else body or b""
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = body, False
    return event


def context() -> LambdaContext:
    deadline = int(time.time() * 1000) + 30_000
    arn = "arn:aws:lambda:us-east-1:123456789012:function:iris"
    return LambdaContext("c6af9ac6-7b61-11e6-9a41-93e812345678", None, None, deadline, arn)


def answer(response: dict[str, Any]) -> tuple[int, Any]:
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], json.loads(body) if body else None


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]) -> Path:
    """``iris:1`` (logistic regression) exported as the folder a model image bakes in at /opt/ml/model."""
    root = tmp_path_factory.mktemp("lambda")
    registry = Registry.init(Settings(home=root / "home", user="tester"))
    registry.push("iris", model_files["logistic"], aliases=["production"])
    write_bundle(registry, "iris@production", root / "model")
    registry.close()
    return root / "model"


@pytest.fixture
def lambda_env(bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh execution environment: the image's variables, /tmp here, nothing built yet."""
    for name in ("LIVEML_HOME", "LIVEML_DATABASE_URL", "LIVEML_LOG_URL", "LIVEML_LOG_PREDICTIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIVEML_MODEL_DIR", str(bundle))
    monkeypatch.setenv("LIVEML_PLATFORM_AUTH", "true")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(aws_lambda, "_adapter", None)
    yield
    adapter = aws_lambda._adapter
    if adapter is not None:  # stop the host the warm environment kept
        adapter.app.state.ctx.host.stop()


@pytest.mark.usefixtures("lambda_env")
def test_rest_api_invocations_and_warm_reuse() -> None:
    body = json.dumps({"dataframe_split": {"data": ROWS}})
    status, payload = answer(aws_lambda.handler(rest_event("/invocations", body), context()))
    assert (status, payload) == (200, {"predictions": [0, 2]})
    warm = aws_lambda._adapter
    assert warm is not None
    status, _ = answer(aws_lambda.handler(rest_event("/ping", None, method="GET"), context()))
    assert status == 200 and aws_lambda._adapter is warm  # built once, kept across invocations
    served = warm.app.state.ctx.host.served_models()
    assert [m.version.ref for m in served] == ["iris:1"]
    assert served[0].version.tags["bundle.source"] == "iris:1"


@pytest.mark.usefixtures("lambda_env")
def test_http_api_native_predict() -> None:
    event = http_event("/v1/models/iris/predict", json.dumps({"inputs": [RECORD]}))
    response = aws_lambda.handler(event, context())
    status, payload = answer(response)
    assert status == 200, payload
    assert payload["model"] == "iris" and payload["predictions"] == [0]
    assert response["headers"]["content-type"] == "application/json"


@pytest.mark.usefixtures("lambda_env")
@pytest.mark.parametrize("make", [rest_event, http_event], ids=["rest-v1", "http-v2"])
def test_base64_bodies(make: Any) -> None:
    csv_body = "".join(",".join(map(str, row)) + "\n" for row in ROWS)
    event = make("/invocations", csv_body, "text/csv", base64_body=True)
    status, payload = answer(aws_lambda.handler(event, context()))
    assert (status, payload) == (200, {"predictions": [0, 2]})


@pytest.mark.usefixtures("lambda_env")
def test_bad_requests_are_a_clear_4xx() -> None:
    missing = http_event("/v1/models/iris/predict", json.dumps({"inputs": [{"sepal_length": 5.1}]}))
    status, payload = answer(aws_lambda.handler(missing, context()))
    assert status == 400 and "'sepal_width'" in payload["error"]
    malformed = rest_event("/invocations", '{"dataframe_split": ')
    status, payload = answer(aws_lambda.handler(malformed, context()))
    assert status == 400 and payload["error_code"] == "BAD_REQUEST"
    assert "not valid JSON" in payload["message"]
    unknown = http_event("/v1/models/nope/predict", json.dumps({"inputs": [RECORD]}))
    assert answer(aws_lambda.handler(unknown, context()))[0] == 404


@pytest.mark.usefixtures("lambda_env")
def test_no_model_yet_is_a_503_saying_why_then_served_once_it_is_there(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = tmp_path / "model"
    monkeypatch.setenv("LIVEML_MODEL_DIR", str(later))
    body = json.dumps({"instances": ROWS})
    status, payload = answer(aws_lambda.handler(rest_event("/invocations", body), context()))
    assert status == 503 and str(later) in payload["error"] and "does not exist" in payload["error"]
    assert aws_lambda._adapter is None  # the next invocation tries again
    later.mkdir()
    for path in bundle.iterdir():
        (later / path.name).write_bytes(path.read_bytes())
    status, payload = answer(aws_lambda.handler(rest_event("/invocations", body), context()))
    assert (status, payload) == (200, {"predictions": [0, 2]})


@pytest.mark.usefixtures("lambda_env")
def test_refuses_to_serve_without_platform_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIVEML_PLATFORM_AUTH")
    status, payload = answer(aws_lambda.handler(http_event("/ping", None, method="GET"), context()))
    assert status == 503 and "LIVEML_PLATFORM_AUTH=true" in payload["error"]


def test_lambda_settings_use_a_fresh_home_under_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    given = Settings(home=Path("/var/lib/liveml"), platform_auth=True, log_predictions=True)
    settings = aws_lambda.lambda_settings(given)
    assert settings.home.parent == tmp_path and settings.home.is_dir()
    assert settings.model_dir == Path("/opt/ml/model") and settings.alias_poll_s == 0
    assert settings.log_predictions  # asked for: kept
    assert not aws_lambda.lambda_settings(Settings(platform_auth=True)).log_predictions
    assert settings.rate_limit_per_s == 0  # every caller arrives through API Gateway
