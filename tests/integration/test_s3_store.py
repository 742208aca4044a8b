"""Artifacts on S3 (a real moto S3 server over HTTP, reached through s3fs), metadata on SQLite or PostgreSQL."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from liveml import Corrupted, Registry, Settings, Unavailable, load_model

boto3 = pytest.importorskip("boto3")
pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
PREFIX = "team/models"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free port of 127.0.0.1, for this module (each test uses its own bucket)."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in AWS_ENV.items():
            mp.setenv(key, value)
        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name=AWS_ENV["AWS_DEFAULT_REGION"])


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"liveml-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


def s3_settings(tmp_path: Path, endpoint: str, bucket: str, database_url: str | None = None) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        artifact_root=f"s3://{bucket}/{PREFIX}",
        artifact_storage_options={"client_kwargs": {"endpoint_url": endpoint}},
        user="tester",
    )


def object_key(sha256: str) -> str:
    return f"{PREFIX}/sha256/{sha256[:2]}/{sha256}"


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key)
    return any(item["Key"] == key for item in listed.get("Contents", []))


@pytest.fixture
def rows(iris_frame: pd.DataFrame) -> pd.DataFrame:
    return iris_frame.drop(columns=["target"]).head(5)


def check_push_and_load(
    settings: Settings, s3: Any, bucket: str, files: dict[str, Path], rows: pd.DataFrame
) -> None:
    with Registry.init(settings) as reg:
        v = reg.push("churn", files["logistic"], aliases=["production"], reference=files["reference"])
        assert v.sha256 == hashlib.sha256(files["logistic"].read_bytes()).hexdigest()
        head = s3.head_object(Bucket=bucket, Key=object_key(v.sha256))
        assert head["ContentLength"] == v.size == files["logistic"].stat().st_size
        body = s3.get_object(Bucket=bucket, Key=object_key(v.sha256))["Body"].read()
        assert hashlib.sha256(body).hexdigest() == v.sha256
        assert not (settings.home_path / "artifacts").exists(), (
            "artifacts must not also land in the local home"
        )

        prediction = load_model("churn@production", registry=reg).predict(rows)
        assert len(prediction.predictions) == len(rows)
        cached = settings.cache_dir / "sha256" / v.sha256[:2] / v.sha256
        assert cached.read_bytes() == files["logistic"].read_bytes()


def test_push_and_load_through_s3(
    tmp_path: Path, s3_endpoint: str, s3: Any, bucket: str, model_files: dict[str, Path], rows: pd.DataFrame
) -> None:
    check_push_and_load(s3_settings(tmp_path, s3_endpoint, bucket), s3, bucket, model_files, rows)


@pytest.mark.postgres
def test_push_and_load_through_s3_with_postgres(
    tmp_path: Path,
    s3_endpoint: str,
    s3: Any,
    bucket: str,
    postgres_url: str,
    model_files: dict[str, Path],
    rows: pd.DataFrame,
) -> None:
    check_push_and_load(
        s3_settings(tmp_path, s3_endpoint, bucket, postgres_url), s3, bucket, model_files, rows
    )


def test_corrupted_cached_copy_is_refused_then_fetched_again(
    tmp_path: Path, s3_endpoint: str, s3: Any, bucket: str, model_files: dict[str, Path], rows: pd.DataFrame
) -> None:
    settings = s3_settings(tmp_path, s3_endpoint, bucket)
    with Registry.init(settings) as reg:
        v = reg.push("churn", model_files["forest"])
        load_model("churn:1", registry=reg)
        cached = settings.cache_dir / "sha256" / v.sha256[:2] / v.sha256
        assert cached.exists()
        cached.write_bytes(b"not the model any more")

        with pytest.raises(Corrupted, match=r"churn:1 was changed or damaged") as caught:
            load_model("churn:1", registry=reg)
        assert v.sha256[:12] in str(caught.value) and "push the model again" in str(caught.value)
        assert not cached.exists(), "the bad cached copy must be dropped so the next load fetches it again"

        prediction = load_model("churn:1", registry=reg).predict(rows)
        assert len(prediction.predictions) == len(rows)
        assert cached.read_bytes() == model_files["forest"].read_bytes()


def test_tampered_s3_object_is_refused(
    tmp_path: Path, s3_endpoint: str, s3: Any, bucket: str, model_files: dict[str, Path]
) -> None:
    settings = s3_settings(tmp_path, s3_endpoint, bucket)
    with Registry.init(settings) as reg:
        v = reg.push("churn", model_files["logistic"])
        s3.put_object(Bucket=bucket, Key=object_key(v.sha256), Body=b"\x80\x04 someone else's bytes")

        with pytest.raises(Corrupted) as caught:
            load_model("churn:1", registry=reg)
        message = str(caught.value)
        assert "churn:1" in message and "changed or damaged" in message and "refused" in message
        assert "\n" not in message
        cached = settings.cache_dir / "sha256" / v.sha256[:2] / v.sha256
        assert not cached.exists(), "a copy that failed verification must not stay in the cache"
        with pytest.raises(Corrupted):  # refused every time, not only the first
            reg.artifact_path(v)


def test_delete_version_removes_the_object_once_unreferenced(
    tmp_path: Path, s3_endpoint: str, s3: Any, bucket: str, model_files: dict[str, Path]
) -> None:
    settings = s3_settings(tmp_path, s3_endpoint, bucket)
    with Registry.init(settings) as reg:
        first = reg.push("churn", model_files["logistic"])
        second = reg.push("churn", model_files["logistic"])  # same content: one object, two versions
        other = reg.push("churn", model_files["forest"])
        assert first.sha256 == second.sha256 != other.sha256
        shared_key = object_key(first.sha256)

        reg.delete_version("churn", 1)
        assert object_exists(s3, bucket, shared_key), "version 2 still uses this object"
        reg.delete_version("churn", 2)
        assert not object_exists(s3, bucket, shared_key)
        assert object_exists(s3, bucket, object_key(other.sha256))
        assert [v.version for v in reg.versions("churn")] == [3]


def test_missing_bucket_fails_the_push_and_records_nothing(
    tmp_path: Path, s3_endpoint: str, s3: Any, model_files: dict[str, Path]
) -> None:
    settings = s3_settings(tmp_path, s3_endpoint, f"no-such-bucket-{uuid.uuid4().hex[:8]}")
    with Registry.init(settings) as reg:
        with pytest.raises(
            Unavailable, match=r"cannot use the artifact store s3://no-such-bucket-"
        ) as caught:
            reg.push("churn", model_files["logistic"])
        assert "LIVEML_ARTIFACT_ROOT" in str(caught.value)
        assert reg.models() == []
