"""Batch jobs over HTTP: POST /v1/jobs starts a real runner process; GET follows it to the end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest

from liveml import Registry
from liveml.api import create_app
from liveml.serving import ModelHost
from liveml.serving.host import HostOptions
from tests.live_server import LiveServer

pytestmark = pytest.mark.slow


@contextmanager
def _serving(registry: Registry, model_files: dict[str, Path]) -> Iterator[str]:
    registry.push("churn", model_files["forest"], aliases=["production"])
    host = ModelHost(registry, options=HostOptions(poll_interval_s=0.5))
    with LiveServer(create_app(host)) as live:
        yield live.url


@pytest.fixture
def server(registry: Registry, model_files: dict[str, Path]) -> Iterator[str]:
    with _serving(registry, model_files) as url:
        yield url


@pytest.fixture(scope="module")
def refusing(module_registry: Registry, model_files: dict[str, Path]) -> Iterator[str]:
    """One server for the requests that must be refused and record nothing (so no job is ever made)."""
    with _serving(module_registry, model_files) as url:
        yield url


def test_submit_and_follow_a_job(server: str, tmp_path: Path, iris_frame: pd.DataFrame) -> None:
    iris_frame.to_parquet(tmp_path / "in.parquet")
    with httpx.Client(base_url=server, timeout=30) as http:
        response = http.post(
            "/v1/jobs",
            json={
                "model": "churn@production",
                "input": str(tmp_path / "in.parquet"),
                "output": str(tmp_path / "out.csv"),
                "keep": ["target"],
                "chunk_rows": 40,
            },
        )
        assert response.status_code == 202, response.text
        job = response.json()
        assert response.headers["location"] == f"/v1/jobs/{job['id']}"
        assert job["status"] in ("queued", "running") and job["model"] == "churn" and job["version"] == 1
        deadline = time.monotonic() + 120
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = http.get(f"/v1/jobs/{job['id']}").json()
        assert job["status"] == "succeeded", job
        assert (job["rows_done"], job["total_rows"], job["progress"], job["chunks_done"]) == (
            150,
            150,
            1.0,
            4,
        )
        out = pd.read_csv(tmp_path / "out.csv")
        assert out["target"].tolist() == iris_frame["target"].tolist()
        assert [j["id"] for j in http.get("/v1/jobs", params={"model": "churn"}).json()["jobs"]] == [
            job["id"]
        ]
        cancel = http.post(f"/v1/jobs/{job['id']}/cancel")
        assert cancel.status_code == 409 and "only queued or running" in cancel.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ("not json", 400, "JSON"),
        ('["a list"]', 400, "must be a JSON object"),
        ('{"model": "churn", "output": "o.parquet"}', 400, "exactly one of input"),
        ('{"model": "churn", "input": "/nowhere/in.parquet", "output": "o.parquet"}', 404, "does not exist"),
        ('{"model": "nope", "input": "IN", "output": "o.parquet"}', 404, "nope"),
        ('{"model": "churn", "input": "IN", "output": "o.xlsx"}', 400, "output format"),
        ('{"model": "churn", "input": "IN", "output": "o.parquet", "chunk_rows": -5}', 400, "chunk_rows"),
    ],
)
def test_bad_submissions_get_clear_errors_and_record_nothing(
    refusing: str, tmp_path: Path, iris_frame: pd.DataFrame, body: str, status: int, says: str
) -> None:
    iris_frame.to_parquet(tmp_path / "in.parquet")
    response = httpx.post(
        f"{refusing}/v1/jobs",
        content=body.replace("IN", str(tmp_path / "in.parquet")),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert says in response.json()["error"]
    assert httpx.get(f"{refusing}/v1/jobs").json()["jobs"] == []


def test_unknown_and_malformed_job_ids(refusing: str) -> None:
    assert httpx.get(f"{refusing}/v1/jobs/42").status_code == 404
    response = httpx.get(f"{refusing}/v1/jobs/abc")
    assert response.status_code == 400 and "not a number" in response.json()["error"]
    assert httpx.get(f"{refusing}/v1/jobs", params={"limit": "0"}).status_code == 400
