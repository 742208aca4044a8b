"""Every route of every protocol, by every role, by no key / wrong / revoked / expired key, against a table of
what is allowed (written here, apart from the server's own table); health and readiness stay open. The
routes come from the app's routing table, so a route added later without a permission fails here."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route

from liveml.api.auth import missing_rules
from liveml.cli.main import main
from liveml.registry.schema import utcnow
from tests.integration.security.conftest import Keys, Served, bearer

ADMIN_ONLY = frozenset({"admin"})
DEPLOY = ADMIN_ONLY | {"deployer"}
READ = DEPLOY | {"viewer"}
PREDICT = DEPLOY | {"predictor"}
DESCRIBE = READ | {"predictor"}
OPEN = None
#: (method, path) → (roles allowed, or OPEN for no key at all; whether the route acts on one model)
ALLOWED: dict[tuple[str, str], tuple[frozenset[str] | None, bool]] = {
    ("GET", "/health/live"): (OPEN, False),
    ("GET", "/health/ready"): (OPEN, False),
    ("GET", "/v2/health/live"): (OPEN, False),
    ("GET", "/v2/health/ready"): (OPEN, False),
    ("GET", "/ping"): (OPEN, False),
    ("GET", "/health"): (OPEN, False),
    ("GET", "/vertex/health"): (OPEN, False),
    ("GET", "/docs"): (OPEN, False),
    ("*", "/docs/assets"): (OPEN, False),
    ("GET", "/metrics"): (READ, False),
    ("GET", "/v1/models"): (READ, False),
    ("GET", "/v2/models"): (READ, False),
    ("POST", "/v2/repository/index"): (READ, False),
    ("GET", "/openapi.json"): (READ, False),
    ("GET", "/v1/jobs"): (READ, False),
    ("GET", "/v1/jobs/{job_id}"): (READ, False),
    ("POST", "/v1/jobs"): (DEPLOY, False),
    ("POST", "/v1/jobs/{job_id}/cancel"): (DEPLOY, False),
    ("POST", "/v2/repository/models/{model}/load"): (DEPLOY, False),
    ("POST", "/v2/repository/models/{model}/unload"): (DEPLOY, False),
    ("GET", "/v1/audit"): (ADMIN_ONLY, False),
    ("GET", "/v2"): (DESCRIBE, False),
    ("GET", "/version"): (DESCRIBE, False),
    ("GET", "/v1/models/{ref}"): (DESCRIBE, True),
    ("GET", "/v2/models/{model}"): (DESCRIBE, True),
    ("GET", "/v2/models/{model}/versions/{version}"): (DESCRIBE, True),
    ("GET", "/v2/models/{model}/ready"): (DESCRIBE, True),
    ("GET", "/v2/models/{model}/versions/{version}/ready"): (DESCRIBE, True),
    ("POST", "/v1/models/{ref}/predict"): (PREDICT, True),
    ("POST", "/v1/models/{ref}/feedback"): (PREDICT, True),
    ("POST", "/v1/models/{ref}/explain"): (PREDICT, True),
    ("GET", "/v1/models/{ref}/explanations/{prediction_id}"): (PREDICT, True),
    ("POST", "/v1/models/{m}:predict"): (PREDICT, True),
    ("POST", "/v2/models/{model}/infer"): (PREDICT, True),
    ("POST", "/v2/models/{model}/versions/{version}/infer"): (PREDICT, True),
    ("POST", "/invocations"): (PREDICT, True),  # the server's single model: iris
    ("GET", "/execution-parameters"): (DESCRIBE, False),
    ("POST", "/vertex/predict"): (PREDICT, True),
}
ROW = [5.1, 3.5, 1.4, 0.2]
INSTANCES = {"instances": [ROW]}
BODIES: dict[str, Any] = {
    "/v1/models/{ref}/predict": {
        "inputs": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]
    },
    "/v1/models/{ref}/explain": {
        "inputs": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]
    },
    "/v1/models/{ref}/feedback": {"labels": [{"prediction_id": "0" * 32, "label": 0}]},
    "/v1/jobs": {"model": "iris"},  # no input or output: a 400 for whoever may submit
    "/v2/models/{model}/infer": {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]},
    "/v1/models/{m}:predict": INSTANCES,
    "/invocations": INSTANCES,
    "/vertex/predict": INSTANCES,
    "/v2/repository/index": {},
}
BODIES["/v2/models/{model}/versions/{version}/infer"] = BODIES["/v2/models/{model}/infer"]
PARAMS = {
    "ref": "iris",
    "m": "iris",
    "model": "iris",
    "version": "1",
    "job_id": "424242",
    "prediction_id": "0" * 32,
}


def routes_of(served: Served) -> list[tuple[str, str]]:
    found = []
    for route in served.app.routes:
        if isinstance(route, Route):
            found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
        elif isinstance(route, Mount):
            found.append(("*", route.path))
    return found


def call(http: httpx.Client, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    if method == "*":  # the Swagger UI assets
        return http.get(f"{path}/swagger-ui.css", headers=headers)
    url = re.sub(r"{(\w+)}", lambda m: PARAMS[m[1]], path)
    if "repository/models" in path:
        url = url.replace("/iris/", "/no-such-model/")  # never unload what the other requests use
    body = BODIES.get(path)
    if method == "POST":
        return http.post(url, json=body if body is not None else {}, headers=headers)
    return http.get(url, headers=headers)


@pytest.mark.slow
def test_every_route_every_role_every_bad_key(served: Served, keys: Keys, http: httpx.Client) -> None:
    routes = routes_of(served)
    assert missing_rules(served.ctx, served.app.routes) == [], "routes without a permission in auth.RULES"
    untabled = [r for r in routes if r not in ALLOWED]
    assert not untabled, f"routes this test's table does not cover (say who may call them): {untabled}"
    assert len(routes) >= 30
    bad = {
        "no key": {},
        "unknown key": bearer(keys.unknown),
        "wrong secret": bearer(keys.wrong_secret),
        "revoked key": bearer(keys.revoked),
        "expired key": {"X-API-Key": keys.expired},
        "malformed key": bearer("not-a-liveml-key"),
        "basic auth": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    }
    problems: list[str] = []
    for method, path in routes:
        roles, one_model = ALLOWED[(method, path)]
        for name, key in keys.valid().items():
            role = name.split()[0]
            allowed = roles is None or (role in roles and not (one_model and "forest only" in name))
            answer = call(http, method, path, bearer(key))
            status = answer.status_code
            if allowed and (status in (401, 403) or status == 500):
                problems.append(f"{name}: {method} {path} → {status} (should be allowed) {answer.text[:200]}")
            if not allowed and status != 403:
                problems.append(f"{name}: {method} {path} → {status} (should be 403) {answer.text[:200]}")
        for name, headers in bad.items():
            answer = call(http, method, path, headers)
            status = answer.status_code
            if roles is None and (status in (401, 403) or status >= 500):
                problems.append(f"{name}: open {method} {path} → {status}")
            if roles is not None:
                challenge = answer.headers.get("www-authenticate", "")
                if status != 401 or not challenge.startswith("Bearer"):
                    problems.append(f"{name}: {method} {path} → {status} {challenge!r} (should be 401)")
    assert not problems, "\n".join(problems)


def test_refusals_say_what_is_wrong_and_how_to_fix_it(served: Served, keys: Keys, http: httpx.Client) -> None:
    predict = "/v1/models/iris/predict"
    body = BODIES["/v1/models/{ref}/predict"]
    none = http.post(predict, json=body).json()
    assert none["kind"] == "unauthorized" and "Authorization: Bearer" in none["error"]
    # a wrong key and a revoked one get the same answer: nothing tells them apart
    answers = {
        http.post(predict, json=body, headers=bearer(k)).json()["error"]
        for k in (keys.unknown, keys.wrong_secret, keys.revoked)
    }
    assert len(answers) == 1 and "not valid" in answers.pop()
    expired = http.post(predict, json=body, headers=bearer(keys.expired)).json()["error"]
    assert "expired" in expired and "liveml keys create" in expired
    viewer = http.post(predict, json=body, headers=bearer(keys.viewer))
    assert viewer.status_code == 403 and "role viewer" in viewer.json()["error"]
    other = http.post(predict, json=body, headers=bearer(keys.predictor_other_model)).json()["error"]
    assert "limited to model(s) forest" in other and "iris" in other
    assert http.post(
        "/v1/models/forest/predict", json=body, headers=bearer(keys.predictor_other_model)
    ).is_success
    # MLflow's error body on SageMaker's route
    mlflow = http.post("/invocations", json=INSTANCES).json()
    assert mlflow["error_code"] == "UNAUTHENTICATED"
    # a path no route has: no key → 401 (the API cannot be mapped without one); a key → 404
    assert http.get("/no/such/route").status_code == 401
    assert http.get("/no/such/route", headers=bearer(keys.viewer)).status_code == 404
    # two different keys in one request: refused, not guessed between
    both = {"Authorization": f"Bearer {keys.admin}", "X-API-Key": keys.viewer}
    assert http.get("/v1/models", headers=both).status_code == 400
    assert http.get("/v1/models", headers={"Authorization": f"Bearer {keys.admin}", "X-API-Key": keys.admin})


def test_revocation_through_the_cli_reaches_a_running_server(
    served: Served, keys: Keys, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = served.keys.create("predictor", created_by="test")
    body = BODIES["/v1/models/{ref}/predict"]
    assert http.post("/v1/models/iris/predict", json=body, headers=bearer(new.secret)).status_code == 200
    settings = served.registry.settings
    monkeypatch.setenv("LIVEML_HOME", str(settings.home))
    if settings.database_url:
        monkeypatch.setenv("LIVEML_DATABASE_URL", settings.database_url)
    with pytest.raises(SystemExit) as done:
        main(["keys", "revoke", new.key.id])
    assert done.value.code == 0
    status, deadline = 200, time.monotonic() + 15
    while status == 200 and time.monotonic() < deadline:
        status = http.post("/v1/models/iris/predict", json=body, headers=bearer(new.secret)).status_code
        time.sleep(0.1)
    assert status == 401, "the revoked key still works on the running server"
    assert served.keys.get(new.key.id).last_used_at is not None


def test_a_key_stops_working_when_it_expires(served: Served, keys: Keys, http: httpx.Client) -> None:
    from datetime import timedelta

    soon = served.keys.create("viewer", created_by="test", expires_at=utcnow() + timedelta(seconds=2))
    assert http.get("/v1/models", headers=bearer(soon.secret)).status_code == 200
    status, deadline = 200, time.monotonic() + 15
    while status == 200 and time.monotonic() < deadline:
        status = http.get("/v1/models", headers=bearer(soon.secret)).status_code
        time.sleep(0.1)
    assert status == 401


def test_without_auth_config_the_app_is_open(served: Served, tmp_path: Path) -> None:
    from liveml.api import create_app
    from liveml.serving.host import HostOptions, ModelHost
    from tests.live_server import LiveServer

    host = ModelHost(served.registry, refs=["iris"], options=HostOptions(poll_interval_s=0))
    with LiveServer(create_app(host)) as server:
        assert httpx.get(f"{server.url}/v1/models").status_code == 200
