"""Per-key limits on a real server: a burst over the token bucket gets 429 with Retry-After, a key over its
cap on requests in progress gets 429, and a request past the deadline gets 503 while the model still
works. A custom model that waits on a gate file makes "in progress" and "too slow" exact, not timed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from liveml import Registry, Settings
from liveml.api.auth import AuthConfig
from tests.integration.security.conftest import Served, bearer, guarded

GATE_PY = '''
"""Answers x at once, or (x >= 100) only once the gate file exists, leaving a mark that it waits."""
import time
import uuid
from pathlib import Path

GATE = Path({gate!r})


class Gate:
    task = "regression"
    input_names = ("x",)

    def load(self, path):
        pass

    def predict(self, frame):
        if (frame["x"] >= 100).any():
            (GATE.parent / f"waiting-{{uuid.uuid4().hex}}").touch()
            deadline = time.monotonic() + 60
            while not GATE.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        return frame["x"].to_numpy(dtype=float)
'''
FAST = {"inputs": [{"x": 1.0}]}
SLOW = {"inputs": [{"x": 100.0}]}


@pytest.fixture
def gate_registry(tmp_path: Path) -> Iterator[tuple[Registry, Path]]:
    gate = tmp_path / "gate-open"
    source = tmp_path / "gate.py"
    source.write_text(GATE_PY.format(gate=str(gate)))
    registry = Registry.init(Settings(home=tmp_path / "home", user="tester"))
    registry.push("gate", source, aliases=["production"], compile=False)
    yield registry, gate
    gate.touch()
    registry.close()


def _key(served: Served, role: str = "predictor") -> dict[str, str]:
    return bearer(served.keys.create(role, created_by="test").secret)


def test_a_burst_over_the_bucket_gets_429_with_retry_after(gate_registry: tuple[Registry, Path]) -> None:
    registry, _ = gate_registry
    auth = AuthConfig(rate_limit_per_s=0.5, rate_limit_burst=3, max_concurrent_per_key=100)
    with guarded(registry, auth, default_model=None) as served, httpx.Client(base_url=served.url) as http:
        first, second = _key(served), _key(served)
        answers = [http.post("/v1/models/gate/predict", json=FAST, headers=first) for _ in range(8)]
        statuses = [a.status_code for a in answers]
        assert statuses[:3] == [200, 200, 200] and 429 in statuses
        limited = next(a for a in answers if a.status_code == 429)
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["kind"] == "too_many_requests" and "rate limit" in limited.json()["error"]
        # the bucket is the key's: another key is not slowed down by the first one's burst
        assert http.post("/v1/models/gate/predict", json=FAST, headers=second).status_code == 200
        # guessing keys from one address runs into that address's bucket; valid keys are not slowed
        wrong = bearer("lml_" + "0" * 16 + "_" + "A" * 43)
        guesses = [http.get("/v1/models/gate", headers=wrong).status_code for _ in range(6)]
        assert guesses[:3] == [401, 401, 401] and guesses[-1] == 429
        assert http.get("/v1/models/gate", headers=_key(served)).status_code == 200
        # health stays open and unlimited
        assert all(http.get("/health/ready").status_code == 200 for _ in range(10))


def test_a_key_over_its_concurrency_cap_gets_429(gate_registry: tuple[Registry, Path]) -> None:
    registry, gate = gate_registry
    auth = AuthConfig(rate_limit_per_s=0, max_concurrent_per_key=2, request_timeout_s=60)
    # the gate model is cheap until it blocks: keep it off the event loop, as a slow model would be
    with guarded(registry, auth, default_model=None, batching=False, inline=False) as served:
        key, other = _key(served), _key(served)
        results: list[int] = []

        def slow() -> None:
            with httpx.Client(base_url=served.url, timeout=90) as http:
                results.append(http.post("/v1/models/gate/predict", json=SLOW, headers=key).status_code)

        threads = [threading.Thread(target=slow) for _ in range(2)]
        for thread in threads:
            thread.start()
        with httpx.Client(base_url=served.url, timeout=30) as http:
            deadline = time.monotonic() + 60
            while len(list(gate.parent.glob("waiting-*"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)  # until both slow requests are inside the model
            refused = http.get("/v1/models/gate", headers=key)
            assert refused.status_code == 429 and "in progress" in refused.json()["error"]
            assert http.get("/v1/models/gate", headers=other).status_code == 200  # per key
            gate.touch()
            for thread in threads:
                thread.join(timeout=60)
            assert results == [200, 200]
            assert http.get("/v1/models/gate", headers=key).status_code == 200  # the slots came back


def test_a_request_past_the_deadline_gets_503_while_the_model_works(
    gate_registry: tuple[Registry, Path],
) -> None:
    registry, gate = gate_registry
    auth = AuthConfig(rate_limit_per_s=0, max_concurrent_per_key=5, request_timeout_s=0.5)
    with (
        guarded(registry, auth, default_model=None, inline=False) as served,
        httpx.Client(base_url=served.url) as http,
    ):
        key = _key(served)
        answer = http.post("/v1/models/gate/predict", json=SLOW, headers=key, timeout=30)
        assert not gate.exists()  # answered while the model was still waiting at its gate
        assert answer.status_code == 503 and answer.json()["kind"] == "timeout"
        assert "LIVEML_REQUEST_TIMEOUT_S" in answer.json()["error"]
        # a body announced but never sent in full (slow loris): the deadline answers, nothing hangs
        parts = urlsplit(served.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall(
                f"POST /v1/models/gate/predict HTTP/1.1\r\nHost: x\r\n{key_line(key)}\r\n"
                'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"inputs"'.encode()
            )
            assert sock.recv(4096).split()[1] == b"503"
        gate.touch()
        assert http.post("/v1/models/gate/predict", json=FAST, headers=key).status_code == 200


def key_line(headers: dict[str, str]) -> str:
    return "".join(f"{k}: {v}" for k, v in headers.items())
