"""Several replicas behave as one: two real `liveml serve` processes (as two pods of the server-shape
Deployment run them) share PostgreSQL and an S3-compatible store (moto's server), follow one alias move
with no failed request, and both report it on /metrics. Also: every metric the shipped Grafana dashboard
and Prometheus rules name is one a real server exports."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from liveml import Registry, Settings
from liveml.api import create_app
from liveml.deploy import k8s_observability as obs
from liveml.serving import ModelHost
from liveml.serving.host import HostOptions
from tests.e2e.test_serve_cli import serving
from tests.integration.test_s3_store import AWS_ENV, bucket, s3, s3_endpoint  # noqa: F401 (fixtures)
from tests.live_server import LiveServer

#: how long the replicas get to pick up an alias move (they poll every 0.5 s): a bound, not a measurement
SWITCH_BOUND_S = 60


def used_metric_names() -> set[str]:
    """Every liveml metric the dashboard and the rules mention (queries, descriptions and all)."""
    return set(re.findall(r"\bliveml_[a-z0-9_]+", obs.dashboard_text() + obs.rules_text()))


def exported_metric_names(text: str) -> set[str]:
    """Every series name a /metrics text can carry: announced families (with or without samples yet)."""
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_sum", "_count"],
        "gauge": [""],
        "summary": ["_sum", "_count", ""],
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name, *(family.name + s for s in suffixes.get(family.type, [""]))}
        names |= {sample.name for sample in family.samples}
    return names


def check_names(text: str) -> None:
    missing = used_metric_names() - exported_metric_names(text)
    assert not missing, f"the dashboard or rules use metrics no liveml server exports: {sorted(missing)}"


def series(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_dashboard_and_rules_use_metrics_a_server_exports(
    tmp_path: Path, model_files: dict[str, Path], iris_frame: pd.DataFrame
) -> None:
    assert {
        "liveml_http_request_seconds_bucket",
        "liveml_http_requests_total",
        "liveml_alert_value",
    } <= used_metric_names()
    with Registry.init(Settings(home=tmp_path / "home", user="tester")) as registry:
        registry.push("iris", model_files["logistic"], aliases=["production"])
        host = ModelHost(registry, options=HostOptions(poll_interval_s=0))
        with LiveServer(create_app(host)) as server:
            rows = iris_frame.drop(columns=["target"]).head(3).to_dict(orient="records")
            assert (
                httpx.post(f"{server.url}/v1/models/iris/predict", json={"inputs": rows}).status_code == 200
            )
            text = httpx.get(f"{server.url}/metrics").text
    check_names(text)
    assert series(text, "liveml_predict_requests_total", model="iris") == 1
    # the check can fail: a misspelt name is caught
    assert "liveml_http_request_second_bucket" not in exported_metric_names(text)


class Poller:
    """Predicts on one server in a loop and keeps (status, version) of every answer."""

    def __init__(self, url: str, rows: list[dict[str, Any]]) -> None:
        self.url = url
        self.rows = rows
        self.answers: list[tuple[int, int | None]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"poll {url}", daemon=True)

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                try:
                    response = client.post(f"{self.url}/v1/models/iris/predict", json={"inputs": self.rows})
                    version = response.json().get("version") if response.status_code == 200 else None
                    self.answers.append((response.status_code, version))
                except httpx.HTTPError as exc:  # a refused or dropped connection is a failed request too
                    self.answers.append((-1, None))
                    print(f"{self.url}: {exc!r}")

    def versions(self) -> list[int | None]:
        return [version for _, version in list(self.answers)]

    def served(self, version: int) -> Callable[[], bool]:
        """True once the last five answers came from ``version``."""
        return lambda: self.versions()[-5:] == [version] * 5


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SWITCH_BOUND_S
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {SWITCH_BOUND_S} s"
        time.sleep(0.1)


@pytest.mark.postgres
@pytest.mark.slow
def test_two_replicas_follow_one_alias_move(
    tmp_path: Path,
    postgres_url: str,
    s3_endpoint: str,  # noqa: F811
    bucket: str,  # noqa: F811
    model_files: dict[str, Path],
    iris_frame: pd.DataFrame,
) -> None:
    storage = {"client_kwargs": {"endpoint_url": s3_endpoint}}
    artifacts = f"s3://{bucket}/models"
    env = {
        **AWS_ENV,
        "LIVEML_DATABASE_URL": postgres_url,
        "LIVEML_ARTIFACT_ROOT": artifacts,
        "LIVEML_ARTIFACT_STORAGE_OPTIONS": json.dumps(storage),
    }
    settings = Settings(
        home=tmp_path / "pusher",
        database_url=postgres_url,
        artifact_root=artifacts,
        artifact_storage_options=storage,
        user="tester",
    )
    rows: list[dict[str, Any]] = json.loads(
        iris_frame.drop(columns=["target"]).iloc[[0, 60, 120]].to_json(orient="records")
    )
    with Registry.init(settings) as registry:
        registry.push("iris", model_files["logistic"], aliases=["production"])
    with (
        Registry(settings) as registry,
        serving(["--poll", "0.5"], tmp_path / "pod-a", tmp_path, env) as (url_a, _),
        serving(["--poll", "0.5"], tmp_path / "pod-b", tmp_path, env) as (url_b, _),
    ):
        pollers = [Poller(url, rows) for url in (url_a, url_b)]
        for poller in pollers:
            poller.thread.start()
        try:
            for poller in pollers:
                wait_for(poller.served(1), f"{poller.url} serving iris:1")
            registry.push("iris", model_files["forest"])  # version 2, no alias yet: nothing moves
            registry.set_alias("iris", "production", 2)
            for poller in pollers:
                wait_for(poller.served(2), f"{poller.url} moving to iris:2")
        finally:
            for poller in pollers:
                poller.stop.set()
            for poller in pollers:
                poller.thread.join(timeout=60)
        for poller in pollers:
            failed = [status for status, _ in poller.answers if status != 200]
            assert not failed, (
                f"{poller.url}: {len(failed)} of {len(poller.answers)} requests failed: {failed[:5]}"
            )
            versions = poller.versions()
            switch = versions.index(2)
            assert set(versions[:switch]) == {1} and set(versions[switch:]) == {2}, (
                "a replica went back to v1"
            )
            text = httpx.get(f"{poller.url}/metrics", timeout=10).text
            assert series(text, "liveml_model_swaps_total", model="iris") == 1
            assert series(text, "liveml_predict_requests_total", model="iris", version="1") >= 5
            assert series(text, "liveml_predict_requests_total", model="iris", version="2") >= 5
            check_names(text)
