"""Batch jobs end to end in this process, on SQLite and PostgreSQL: output, order, ids, errors, resume."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from liveml import Registry
from liveml.errors import Conflict, Invalid, NotFound
from liveml.jobs.runner import TooManyErrors, check_spec, run_job
from liveml.jobs.spec import JobSpec
from liveml.jobs.store import JobStore
from liveml.monitoring.records import MemorySink

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture
def customers(tmp_path: Path, iris_frame: pd.DataFrame) -> Path:
    """1,500 rows: iris repeated with noise, and an id column."""
    rng = np.random.default_rng(3)
    frame = pd.concat([iris_frame.drop(columns=["target"])] * 10, ignore_index=True)
    frame[FEATURES] += rng.normal(scale=0.1, size=(len(frame), 4))
    frame.insert(0, "customer_id", [f"c{i:05d}" for i in range(len(frame))])
    path = tmp_path / "customers.parquet"
    frame.to_parquet(path, row_group_size=200)
    return path


@pytest.fixture
def churn(registry: Registry, model_files: dict[str, Path]) -> Registry:
    registry.push("churn", model_files["forest"], aliases=["production"])
    return registry


def _job(registry: Registry, **fields: object) -> int:
    spec = JobSpec.parse({"model": "churn@production", **fields})
    check_spec(spec)
    return JobStore(registry).create(spec).id


def test_output_matches_the_model_in_input_order_with_ids_and_version(
    churn: Registry, customers: Path, tmp_path: Path, model_files: dict[str, Path]
) -> None:
    out = tmp_path / "scores.parquet"
    sink = MemorySink(capacity=10_000)
    job_id = _job(
        churn, input=str(customers), output=str(out), keep=["customer_id"], proba=True, chunk_rows=400
    )
    job = run_job(churn, job_id, sink=sink)
    assert job.status == "succeeded" and job.rows_done == job.rows_out == job.total_rows == 1500
    assert job.chunks_done == 4 and job.errors == 0 and job.version == 1 and job.attempts == 1
    scores = pd.read_parquet(out)
    frame = pd.read_parquet(customers)
    model = joblib.load(model_files["forest"])
    assert list(scores.columns) == [
        "customer_id",
        "prediction",
        "proba_0",
        "proba_1",
        "proba_2",
        "model_version",
        "prediction_id",
    ]
    assert scores["customer_id"].tolist() == frame["customer_id"].tolist()
    np.testing.assert_array_equal(scores["prediction"], model.predict(frame[FEATURES]))
    np.testing.assert_allclose(
        scores[["proba_0", "proba_1", "proba_2"]], model.predict_proba(frame[FEATURES])
    )
    assert set(scores["model_version"]) == {1}
    assert scores["prediction_id"].tolist() == [f"{job.uid}{i:016x}" for i in range(1500)]
    # every prediction also went to the prediction-record sink, with the job id
    assert len(sink.records) == 1500 and {r.job_id for r in sink.records} == {str(job_id)}
    assert [r.prediction_id for r in sink.records] == scores["prediction_id"].tolist()
    assert sink.records[0].inputs == frame.loc[0, FEATURES].to_dict()
    assert not (churn.settings.home_path / "jobs" / str(job_id) / "parts").exists()  # staging cleaned up


def test_version_is_pinned_at_submission(
    churn: Registry, customers: Path, tmp_path: Path, model_files: dict[str, Path]
) -> None:
    job_id = _job(churn, input=str(customers), output=str(tmp_path / "o.parquet"))
    churn.push("churn", model_files["logistic"], aliases=["production"])  # alias moves before the job runs
    assert run_job(churn, job_id).version == 1
    assert set(pd.read_parquet(tmp_path / "o.parquet")["model_version"]) == {1}


def test_bad_rows_go_to_the_errors_file_and_the_job_goes_on(
    churn: Registry, tmp_path: Path, iris_frame: pd.DataFrame
) -> None:
    frame = iris_frame.drop(columns=["target"]).head(50).astype({"petal_width": object})
    frame.insert(0, "id", range(50))
    frame.loc[[7, 31], "petal_width"] = ["wide", "n/a?"]
    frame.to_csv(tmp_path / "in.csv", index=False)
    job = run_job(
        churn,
        _job(
            churn, input=str(tmp_path / "in.csv"), output=str(tmp_path / "o.csv"), keep=["id"], chunk_rows=20
        ),
    )
    assert (job.status, job.rows_done, job.rows_out, job.errors) == ("succeeded", 50, 48, 2)
    errors = pd.read_csv(tmp_path / "o.errors.csv")
    assert errors.to_dict("records") == [
        {"row": 7, "id": 7, "error": "column 'petal_width' expects number values, got 'wide'"},
        {"row": 31, "id": 31, "error": "column 'petal_width' expects number values, got 'n/a?'"},
    ]
    out = pd.read_csv(tmp_path / "o.csv")
    assert out["id"].tolist() == [i for i in range(50) if i not in (7, 31)]


def test_max_errors_fails_the_job_and_resume_with_a_new_limit_finishes_it(
    churn: Registry, tmp_path: Path, iris_frame: pd.DataFrame
) -> None:
    frame = iris_frame.drop(columns=["target"]).head(60).astype({"sepal_length": object})
    frame.loc[[1, 2, 40], "sepal_length"] = "x"
    frame.to_csv(tmp_path / "in.csv", index=False)
    store = JobStore(churn)
    job_id = _job(
        churn, input=str(tmp_path / "in.csv"), output=str(tmp_path / "o.parquet"), max_errors=1, chunk_rows=20
    )
    with pytest.raises(TooManyErrors, match="more than --max-errors 1"):
        run_job(churn, job_id)
    failed = store.get(job_id)
    assert failed.status == "failed" and "max-errors" in (failed.message or "") and failed.chunks_done == 1
    assert not (tmp_path / "o.parquet").exists()
    store.change(job_id, max_errors=10)
    done = run_job(churn, job_id)
    assert (done.status, done.rows_out, done.errors, done.attempts) == ("succeeded", 57, 3, 2)
    assert len(pd.read_csv(tmp_path / "o.errors.csv")) == 3


def test_a_schema_mismatch_fails_fast_with_the_missing_columns(
    churn: Registry, tmp_path: Path, iris_frame: pd.DataFrame
) -> None:
    iris_frame.drop(columns=["target", "petal_width"]).to_parquet(tmp_path / "in.parquet")
    job_id = _job(churn, input=str(tmp_path / "in.parquet"), output=str(tmp_path / "o.parquet"))
    with pytest.raises(Invalid, match="lacks column\\(s\\) petal_width that churn:1 needs"):
        run_job(churn, job_id)
    job = JobStore(churn).get(job_id)
    assert job.status == "failed" and job.rows_done == 0 and "petal_width" in (job.message or "")
    assert not (tmp_path / "o.parquet").exists()
    iris_frame.to_parquet(tmp_path / "full.parquet")
    job_id = _job(
        churn, input=str(tmp_path / "full.parquet"), output=str(tmp_path / "o.parquet"), keep=["nope"]
    )
    with pytest.raises(Invalid, match="--keep names column\\(s\\) nope"):
        run_job(churn, job_id)


def test_resume_after_a_crash_midway_gives_the_uninterrupted_output(
    churn: Registry, customers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-process version of the kill test (the e2e test kills a real process with SIGKILL)."""
    import liveml.jobs.outputs as outputs

    whole = run_job(
        churn, _job(churn, input=str(customers), output=str(tmp_path / "whole.parquet"), chunk_rows=300)
    )
    job_id = _job(churn, input=str(customers), output=str(tmp_path / "resumed.parquet"), chunk_rows=300)
    real_write = outputs.Staging.write

    def crash_on_chunk_3(
        self: outputs.Staging, index: int, output: pd.DataFrame, errors: pd.DataFrame
    ) -> None:
        if index == 3:
            raise KeyboardInterrupt  # as if the process died here
        real_write(self, index, output, errors)

    monkeypatch.setattr(outputs.Staging, "write", crash_on_chunk_3)
    with pytest.raises(KeyboardInterrupt):
        run_job(churn, job_id)
    stopped = JobStore(churn).get(job_id)
    assert (
        stopped.status == "failed" and stopped.chunks_done == 3 and "jobs resume" in (stopped.message or "")
    )
    monkeypatch.setattr(outputs.Staging, "write", real_write)
    done = run_job(churn, job_id)
    assert done.status == "succeeded" and done.rows_done == 1500 and done.attempts == 2
    a, b = pd.read_parquet(tmp_path / "whole.parquet"), pd.read_parquet(tmp_path / "resumed.parquet")
    pd.testing.assert_frame_equal(a.drop(columns="prediction_id"), b.drop(columns="prediction_id"))
    assert b["prediction_id"].tolist() == [f"{done.uid}{i:016x}" for i in range(1500)]
    assert whole.uid != done.uid


@pytest.mark.parametrize("output", ["scores.csv", "parts/"])
def test_csv_and_folder_outputs(churn: Registry, customers: Path, tmp_path: Path, output: str) -> None:
    target = f"{tmp_path}/{output}"
    run_job(churn, _job(churn, input=str(customers), output=target, keep=["customer_id"], chunk_rows=700))
    if output.endswith("/"):
        parts = sorted((tmp_path / "parts").iterdir())
        assert [p.name for p in parts] == [
            "part-000000.parquet",
            "part-000001.parquet",
            "part-000002.parquet",
        ]
        scores = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    else:
        scores = pd.read_csv(target)
    assert scores["customer_id"].tolist() == pd.read_parquet(customers)["customer_id"].tolist()


def test_sql_input_and_fsspec_urls(churn: Registry, customers: Path, tmp_path: Path) -> None:
    frame = pd.read_parquet(customers)
    db = tmp_path / "warehouse.db"
    with sqlite3.connect(db) as conn:
        frame.to_sql("customers", conn, index=False)
    run_job(
        churn,
        _job(
            churn,
            input_sql="select * from customers order by customer_id",
            db=f"sqlite:///{db}",
            output="memory://out/scores.parquet",
            keep=["customer_id"],
            chunk_rows=500,
        ),
    )
    import fsspec

    with fsspec.open("memory://out/scores.parquet", "rb") as handle:
        scores = pd.read_parquet(handle)
    assert scores["customer_id"].tolist() == frame["customer_id"].tolist()


def test_process_pool_gives_the_same_output(churn: Registry, customers: Path, tmp_path: Path) -> None:
    one = run_job(
        churn, _job(churn, input=str(customers), output=str(tmp_path / "one.parquet"), chunk_rows=250)
    )
    two = run_job(
        churn,
        _job(churn, input=str(customers), output=str(tmp_path / "two.parquet"), chunk_rows=250, workers=2),
    )
    assert one.status == two.status == "succeeded"
    a, b = pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "two.parquet")
    pd.testing.assert_frame_equal(a.drop(columns="prediction_id"), b.drop(columns="prediction_id"))


def test_pool_workers_send_arrow_tables_and_log_every_row(
    churn: Registry, customers: Path, tmp_path: Path
) -> None:
    """With 2 workers reading their own row groups, the output (a file and a folder of parts) and the
    prediction log are what one process gives; a pool worker's results are Arrow tables."""
    from liveml.jobs import engines
    from liveml.jobs.scoring import ChunkOptions
    from liveml.registry.loading import load_version

    fields = {"keep": ["customer_id"], "proba": True, "chunk_rows": 150, "log_sample": 1.0}
    logs, outputs = {}, {}
    for workers in (1, 2):
        sink = MemorySink(capacity=10_000)
        for out in (f"{tmp_path}/w{workers}.parquet", f"{tmp_path}/w{workers}-parts/"):
            job = _job(churn, input=str(customers), output=out, workers=workers, **fields)
            assert run_job(churn, job, sink=sink).status == "succeeded"
            outputs[out] = pd.read_parquet(out).drop(columns="prediction_id")
        logs[workers] = sorted(
            (r.inputs["sepal_length"], r.outputs["prediction"], r.job_id is not None) for r in sink.records
        )
    assert logs[1] == logs[2] and len(logs[2]) == 3000
    one = outputs[f"{tmp_path}/w1.parquet"]
    for name, frame in outputs.items():
        pd.testing.assert_frame_equal(frame, one, obj=name)
    # what a forked worker runs, called here: the chunks come back with Arrow outputs
    model = load_version(churn, churn.get("churn@production"))
    options = ChunkOptions(uid="0123456789abcdef", keep=("customer_id",), proba=False)
    engines._FORKED = (model, options, None)
    try:
        run = [engines.Chunk(0, 0, pd.read_parquet(customers).head(10), 10)]
        (chunk,) = engines._score_forked(run)
    finally:
        engines._FORKED = None
    assert isinstance(chunk.output, pa.Table) and chunk.output.num_rows == 10


def test_claims_cancel_and_bad_requests(churn: Registry, customers: Path, tmp_path: Path) -> None:
    store = JobStore(churn)
    job_id = _job(churn, input=str(customers), output=str(tmp_path / "o.parquet"))
    job, _owner = store.claim(job_id)
    assert job.status == "running" and job.runner and str(os.getpid()) in job.runner
    with pytest.raises(Conflict, match=f"job {job_id} is running"):
        store.claim(job_id)  # one runner at a time
    assert store.cancel(job_id).status == "cancelled"
    with pytest.raises(Conflict, match="only queued or running"):
        store.cancel(job_id)
    done = run_job(churn, job_id)  # a cancelled job can be resumed
    assert done.status == "succeeded"
    with pytest.raises(Conflict, match="already succeeded"):
        run_job(churn, job_id)
    with pytest.raises(NotFound, match="no job 999"):
        store.get(999)
    with pytest.raises(NotFound, match="no model"):
        JobStore(churn).create(
            JobSpec.parse({"model": "nope", "input": str(customers), "output": "o.parquet"})
        )
    with pytest.raises(Invalid, match="output format"):
        check_spec(JobSpec.parse({"model": "churn", "input": str(customers), "output": "o.xlsx"}))
    assert [j.id for j in store.list(model="churn")] == [job_id]


def test_batch_predictions_reach_the_prediction_log_with_the_job_id(
    churn: Registry, customers: Path, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from liveml.monitoring.log import PredictionLog

    job = run_job(
        churn, _job(churn, input=str(customers), output=str(tmp_path / "o.parquet"), chunk_rows=600)
    )
    now = datetime.now(UTC)
    window = PredictionLog(churn.settings).read("churn", now - timedelta(hours=1), now + timedelta(minutes=1))
    assert len(window) == 1500 and set(window.meta["job_id"]) == {str(job.id)}
    assert (
        window.meta["prediction_id"].tolist()
        == pd.read_parquet(tmp_path / "o.parquet")["prediction_id"].tolist()
    )
    assert list(window.inputs.columns) == FEATURES and "prediction" in window.outputs.columns
