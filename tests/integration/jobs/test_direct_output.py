# ruff: noqa: F811  (the fixtures imported from test_batch_jobs are parameters here)
"""The output of a single-file job is written directly (segments, no per-chunk parts), and stays exactly
resumable; batch jobs can log a sample of their rows to the prediction log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from liveml import Registry
from liveml.jobs import outputs
from liveml.jobs.launch import job_dir
from liveml.jobs.runner import run_job
from liveml.jobs.store import JobStore
from liveml.monitoring.records import MemorySink
from tests.integration.jobs.test_batch_jobs import _job, churn, customers  # noqa: F401  (the fixtures)


def _crash_on(index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = outputs.Staging.write

    def crashing(self: outputs.Staging, i: int, output: pd.DataFrame, errors: pd.DataFrame) -> None:
        if i == index:
            raise KeyboardInterrupt  # as if the process died here
        real_write(self, i, output, errors)

    monkeypatch.setattr(outputs.Staging, "write", crashing)


def _same(a: Path, b: Path, uid: str, rows: int) -> None:
    whole, resumed = pd.read_parquet(a), pd.read_parquet(b)
    pd.testing.assert_frame_equal(whole.drop(columns="prediction_id"), resumed.drop(columns="prediction_id"))
    assert resumed["prediction_id"].tolist() == [f"{uid}{i:016x}" for i in range(rows)]


def test_a_short_job_writes_one_file_with_a_row_group_per_chunk(
    churn: Registry,
    customers: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "scores.parquet"
    job = run_job(churn, _job(churn, input=str(customers), output=str(out), chunk_rows=400))
    file = pq.ParquetFile(out)
    assert [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)] == [400, 400, 400, 300]
    assert file.schema_arrow.metadata is None  # no pandas metadata: the same columns as the merged output
    assert pd.read_parquet(out)["prediction_id"].tolist() == [f"{job.uid}{i:016x}" for i in range(1500)]
    assert not (job_dir(churn.settings, job.id) / "parts").exists()


def test_resume_continues_after_the_last_closed_segment(
    churn: Registry,
    customers: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole = run_job(
        churn, _job(churn, input=str(customers), output=str(tmp_path / "a.parquet"), chunk_rows=100)
    )
    monkeypatch.setattr(outputs, "SEGMENT_S", 0.0)  # every chunk closes its segment
    job_id = _job(churn, input=str(customers), output=str(tmp_path / "b.parquet"), chunk_rows=100)
    _crash_on(6, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_job(churn, job_id)
    folder = job_dir(churn.settings, job_id) / "parts"
    assert len(list(folder.glob("seg-*.parquet"))) == 6
    (folder / "seg-000006.parquet.tmp").write_bytes(b"PAR1 half a row group")  # what a kill leaves
    monkeypatch.undo()
    written = _count_writes(monkeypatch)
    done = run_job(churn, job_id)
    assert written == list(range(6, 15))  # the six durable chunks are not scored again
    assert done.status == "succeeded" and done.rows_done == 1500 and done.rows_out == 1500
    _same(tmp_path / "a.parquet", tmp_path / "b.parquet", done.uid, 1500)
    assert whole.uid != done.uid


def test_a_pool_job_resumed_inside_a_run_of_chunks_gives_the_uninterrupted_output(
    churn: Registry,
    customers: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pool workers get the chunks that start in one row group as one task (row groups of 200, chunks of
    150: runs of one and two chunks, most ending inside the next row group); a resume starts mid-run."""
    run_job(churn, _job(churn, input=str(customers), output=str(tmp_path / "a.parquet"), chunk_rows=150))
    monkeypatch.setattr(outputs, "SEGMENT_S", 0.0)
    job_id = _job(churn, input=str(customers), output=str(tmp_path / "b.parquet"), chunk_rows=150, workers=2)
    _crash_on(5, monkeypatch)  # chunk 5 (rows 750-899) is the second of the run of row group 3
    with pytest.raises(KeyboardInterrupt):
        run_job(churn, job_id)
    monkeypatch.undo()
    written = _count_writes(monkeypatch)
    done = run_job(churn, job_id)
    assert written == list(range(5, 10))
    assert done.status == "succeeded" and done.rows_done == 1500 and done.rows_out == 1500
    _same(tmp_path / "a.parquet", tmp_path / "b.parquet", done.uid, 1500)


def test_a_lost_open_segment_is_redone_and_counters_go_back(
    churn: Registry,
    customers: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGKILL leaves the open segment without its footer: the database counted its chunks, but they are
    not durable, so the resumed job starts again before them and the counters follow."""
    run_job(churn, _job(churn, input=str(customers), output=str(tmp_path / "a.csv"), chunk_rows=100))
    job_id = _job(churn, input=str(customers), output=str(tmp_path / "b.csv"), chunk_rows=100)
    _crash_on(9, monkeypatch)
    monkeypatch.setattr(outputs.Staging, "close_segment", lambda self: None)  # killed: nothing is closed
    with pytest.raises(KeyboardInterrupt):
        run_job(churn, job_id)
    assert JobStore(churn).get(job_id).chunks_done == 9
    monkeypatch.undo()
    done = run_job(churn, job_id)
    assert done.status == "succeeded" and done.rows_done == 1500 and done.rows_out == 1500
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a.csv").drop(columns="prediction_id"),
        pd.read_csv(tmp_path / "b.csv").drop(columns="prediction_id"),
    )


def test_a_job_logs_a_sample_of_its_rows_the_same_on_every_run(
    churn: Registry,
    customers: Path,
    tmp_path: Path,
) -> None:
    job_id = _job(
        churn, input=str(customers), output=str(tmp_path / "o.parquet"), chunk_rows=300, log_sample=0.2
    )
    sink = MemorySink()
    job = run_job(churn, job_id, sink=sink)
    ids = [r.prediction_id for r in sink.records]
    assert 150 < len(ids) < 450  # 20% of 1,500, give or take
    output = pd.read_parquet(tmp_path / "o.parquet").set_index("prediction_id")
    assert ids == sorted(ids) and set(ids) <= set(output.index)
    for record in sink.records[:20]:  # each logged row carries its own input and prediction
        assert record.job_id == str(job.id)
        assert record.outputs["prediction"] == output.loc[record.prediction_id, "prediction"]
    inputs = pd.read_parquet(customers).set_index("customer_id")
    first = sink.records[0]
    row = int(first.prediction_id[16:], 16)
    assert first.inputs == pytest.approx(inputs.iloc[row].to_dict())

    nothing = MemorySink()
    run_job(
        churn,
        _job(churn, input=str(customers), output=str(tmp_path / "q.parquet"), log_sample=0),
        sink=nothing,
    )
    assert nothing.records == []


def test_a_redone_chunk_logs_the_same_sample(
    churn: Registry,
    customers: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = _job(
        churn, input=str(customers), output=str(tmp_path / "o.parquet"), chunk_rows=300, log_sample=0.3
    )
    _crash_on(3, monkeypatch)
    monkeypatch.setattr(outputs.Staging, "close_segment", lambda self: None)  # killed: chunks 0-2 are lost
    first = MemorySink()
    with pytest.raises(KeyboardInterrupt):
        run_job(churn, job_id, sink=first)
    monkeypatch.undo()
    second = MemorySink()
    run_job(churn, job_id, sink=second)
    before = [r.prediction_id for r in first.records]
    redone = [r.prediction_id for r in second.records if int(r.prediction_id[16:], 16) < 900]
    assert before and before == redone  # seeded by the job and the chunk, not by the run


def test_the_log_sample_rate_setting_is_the_default(
    churn: Registry,
    customers: Path,
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime, timedelta

    from liveml.monitoring.log import PredictionLog

    churn.settings.log_sample_rate = 0.5
    job = run_job(
        churn, _job(churn, input=str(customers), output=str(tmp_path / "o.parquet"), chunk_rows=500)
    )
    now = datetime.now(UTC)
    window = PredictionLog(churn.settings).read("churn", now - timedelta(hours=1), now + timedelta(minutes=1))
    assert 500 < len(window) < 1000 and set(window.meta["job_id"]) == {str(job.id)}
    assert list(window.inputs.columns) == ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def test_pool_workers_read_their_chunks_and_log_the_same_sample(
    churn: Registry,
    customers: Path,
    tmp_path: Path,
) -> None:
    from liveml.jobs.scoring import log_mask

    sink = MemorySink()
    one = run_job(
        churn, _job(churn, input=str(customers), output=str(tmp_path / "a.parquet"), chunk_rows=350)
    )
    job = run_job(
        churn,
        _job(
            churn,
            input=str(customers),
            output=str(tmp_path / "b.parquet"),
            chunk_rows=350,
            workers=2,
            log_sample=0.5,
        ),
        sink=sink,
    )
    _same(tmp_path / "a.parquet", tmp_path / "b.parquet", job.uid, 1500)
    assert one.uid != job.uid
    expected = []
    for index, first in enumerate(range(0, 1500, 350)):
        rows = np.arange(first, min(first + 350, 1500))
        expected += [f"{job.uid}{r:016x}" for r in rows[log_mask(job.uid, index, len(rows), 0.5)]]
    assert [r.prediction_id for r in sink.records] == expected
    inputs = pd.read_parquet(customers).drop(columns="customer_id")
    for record in sink.records[::50]:
        assert record.inputs == pytest.approx(inputs.iloc[int(record.prediction_id[16:], 16)].to_dict())


def _count_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The numbers of the chunks written from now on, in order (the staging's writes, still made)."""
    written: list[int] = []
    real_write = outputs.Staging.write

    def counting(self: outputs.Staging, i: int, output: pd.DataFrame, errors: pd.DataFrame) -> None:
        written.append(i)
        real_write(self, i, output, errors)

    monkeypatch.setattr(outputs.Staging, "write", counting)
    return written
