"""Bad or hostile input gets a 4xx, never a 500 and never a hang: huge JSON numbers, deep nesting, invalid
UTF-8, path traversal in model names, oversized and duplicated headers, lying lengths. Every protocol's
body-reading route gets every payload (with a valid admin key: the guard must not be what answers)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from liveml import Registry
from tests.integration.security.conftest import Keys, Served, bearer, guarded, iris_models, make_keys

POSTS = (
    "/v1/models/iris/predict",
    "/v1/models/iris/feedback",
    "/v1/models/iris:predict",
    "/v2/models/iris/infer",
    "/v2/repository/index",
    "/v2/repository/models/iris/load",
    "/invocations",
    "/vertex/predict",
    "/v1/jobs",
)
#: routes whose body is optional: an empty or odd one may be ignored (2xx), but never a 5xx
OPTIONAL_BODY = ("/v2/repository/index", "/v2/repository/models/iris/load")
DEEP = b"[" * 10_000 + b"]" * 10_000
PAYLOADS: dict[str, tuple[bytes, str]] = {
    "1e400": (b'{"inputs": [{"sepal_length": 1e400}], "instances": [[1e400, 1, 1, 1]]}', "application/json"),
    "10**1000": (b'{"inputs": [{"sepal_length": 1' + b"0" * 1000 + b"}]}", "application/json"),
    "bare huge int": (b"1" + b"0" * 1000, "application/json"),
    "deep nesting": (DEEP, "application/json"),
    "deep object": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json"),
    "invalid utf-8": (b'{"inputs": [{"sepal_length": "\xff\xfe\xc3"}]}', "application/json"),
    "invalid utf-8 csv": (b"sepal_length,sepal_width\n\xff\xfe,\xc3\n", "text/csv"),
    "nul bytes": (b"\x00" * 1000, "application/json"),
    "not json": (b"{'inputs': nope", "application/json"),
    "unknown type": (b"<xml/>", "application/xml"),
    "empty": (b"", "application/json"),
    "NaN": (b'{"inputs": [{"sepal_length": NaN}]}', "application/json"),
    "wrong shapes": (
        b'{"inputs": 5, "instances": {"a": [1]}, "labels": "x", "model": 3}',
        "application/json",
    ),
}


@pytest.fixture(scope="module")
def served(module_registry: Registry, model_files: dict[str, Path]) -> Iterator[Served]:
    """One server for the module: hostile requests are refused, so none changes what the next one meets."""
    iris_models(module_registry, model_files)
    with guarded(module_registry) as server:
        yield server


@pytest.fixture(scope="module")
def keys(served: Served) -> Keys:
    return make_keys(served.keys)


@pytest.fixture(scope="module")
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        yield client


def _raw(served: Served, request: bytes, timeout: float = 15) -> int:
    """Send bytes as they are (no client normalizing them) and read the status line."""
    parts = urlsplit(served.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request)
        head = sock.recv(65536).split(b"\r\n", 1)[0]
    return int(head.split()[1])


def test_hostile_bodies_get_4xx(served: Served, keys: Keys, http: httpx.Client) -> None:
    problems = []
    for path in POSTS:
        for name, (body, kind) in PAYLOADS.items():
            headers = {**bearer(keys.admin), "content-type": kind}
            status = http.post(path, content=body, headers=headers, timeout=20).status_code
            if status >= 500 or (status < 400 and path not in OPTIONAL_BODY):
                problems.append(f"{name} → POST {path}: {status}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/../../etc/passwd/predict",
        "/v1/models/%2e%2e/predict",
        "/v1/models/%2e%2e%2f%2e%2e%2fetc%2fpasswd/predict",
        "/v1/models/..%5c..%5cwindows/predict",
        "/v2/models/%2e%2e/infer",
        "/v1/models/%2e%2e:predict",
        "/v1/models/iris%00/predict",
    ],
)
def test_path_traversal_in_model_names(served: Served, keys: Keys, path: str) -> None:
    body = b'{"inputs": [{"sepal_length": 1}], "instances": [[1, 2, 3, 4]]}'
    request = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {keys.admin}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    assert 400 <= _raw(served, request) < 500


def test_header_abuse(served: Served, keys: Keys, http: httpx.Client) -> None:
    key = bearer(keys.admin)
    huge = http.get("/v1/models", headers={**key, "X-Junk": "a" * 100_000})
    assert huge.status_code in (400, 431)
    many = http.get("/v1/models", headers=[*key.items(), *((f"X-H{i}", "v") for i in range(300))])
    assert many.status_code in (400, 431)
    duplicated = [("Authorization", f"Bearer {keys.admin}"), ("Authorization", f"Bearer {keys.viewer}")]
    assert http.get("/v1/models", headers=duplicated).status_code == 400
    assert http.get("/v1/models", headers={"Authorization": "Bearer " + "x" * 10_000}).status_code == 401
    for value in (b"Bearer \xff\xfe\xc3", b"Bearer a\x00b", b"\xff" * 5000):
        request = (
            b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + value
            + b"\r\nConnection: close\r\n\r\n"
        )
        assert _raw(served, request) in (400, 401)
    lying = {**key, "content-type": "application/json", "content-length": str(10**15)}
    status = _raw(
        served,
        b"POST /v1/models/iris/predict HTTP/1.1\r\nHost: x\r\n"
        + b"".join(f"{k}: {v}\r\n".encode() for k, v in lying.items())
        + b"Connection: close\r\n\r\n{}",
    )
    assert status == 413


def test_nothing_hostile_reaches_a_500_without_a_key(served: Served, http: httpx.Client) -> None:
    for path in POSTS:
        for body, kind in PAYLOADS.values():
            answer = http.post(path, content=body, headers={"content-type": kind})
            assert answer.status_code == 401
