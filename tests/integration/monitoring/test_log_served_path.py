"""The prediction log's columnar path for served requests: what a request hands over is read back exactly,
the request's frame is not kept, a failed flush loses nothing, and a forked worker logs its own rows."""

from __future__ import annotations

import gc
import os
import time
import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liveml import Settings
from liveml.monitoring.log import PredictionLog
from liveml.monitoring.records import PredictionBatch
from liveml.runtimes.base import Prediction
from liveml.signature import Signature


def _request(i: int, at: datetime, version: int = 1) -> PredictionBatch:
    """One served request as the host builds it: a conformed one-row frame, the runtime's Prediction."""
    signature = Signature.from_names(["x", "y"], source="user")
    frame = signature.frame_from_records([{"x": float(i), "y": i / 10}])
    proba = np.array([[1 - i / 1000, i / 1000]])
    prediction = Prediction(np.array([i % 2]), proba, classes=("no", "yes"))
    return PredictionBatch("churn", version, at, (f"req{i:06d}",), frame, prediction, float(i))


def test_served_requests_read_back_exactly(tmp_path: Path) -> None:
    plog = PredictionLog(Settings(home=tmp_path, log_flush_s=3600))
    now = datetime.now(UTC).replace(microsecond=123456)
    start = now - timedelta(hours=3)
    times = [start + timedelta(minutes=i) for i in range(150)]  # spans three hours: three segments
    for i, at in enumerate(times):
        plog.emit_batch(_request(i, at, version=1 + i % 2))
    # a batch-job chunk of the same model and hour, with string outputs: mixed into one segment
    plog.emit_batch(
        PredictionBatch(
            "churn",
            7,
            times[-1],
            ["job0", "job1"],
            pd.DataFrame({"x": [1.5, 2.5], "plan": ["a", "b"]}),
            pd.DataFrame({"prediction": ["yes", "no"]}),
            4.0,
            job_id="j1",
        )
    )
    assert plog.flush() == 152
    window = plog.read("churn", start, now + timedelta(seconds=1))
    served = window.meta[window.meta["job_id"].isna()]
    assert served["prediction_id"].tolist() == [f"req{i:06d}" for i in range(150)]
    assert [t.to_pydatetime() for t in served["at"]] == times
    assert served["version"].tolist() == [1 + i % 2 for i in range(150)]
    assert served["latency_ms"].tolist() == [float(i) for i in range(150)]
    assert window.inputs.loc[served.index, "x"].tolist() == [float(i) for i in range(150)]
    assert window.inputs.loc[served.index, "y"].tolist() == [i / 10 for i in range(150)]
    assert window.outputs.loc[served.index, "proba_yes"].tolist() == [i / 1000 for i in range(150)]
    assert [str(p) for p in window.outputs.loc[served.index, "prediction"]] == [
        str(i % 2) for i in range(150)
    ]
    job = window.meta[window.meta["job_id"] == "j1"]
    assert job["prediction_id"].tolist() == ["job0", "job1"]
    assert window.inputs.loc[job.index, "plan"].tolist() == ["a", "b"]
    assert len(list((tmp_path / "predictions" / "model=churn").rglob("*.parquet"))) <= 4  # hours (+ a day)


def test_the_request_frame_is_not_kept(tmp_path: Path) -> None:
    plog = PredictionLog(Settings(home=tmp_path, log_flush_s=3600))
    batch = _request(1, datetime.now(UTC))
    frame = weakref.ref(batch.inputs)
    plog.emit_batch(batch)
    del batch
    gc.collect()
    assert frame() is None, "the log holds the request's DataFrame until the flush"
    assert plog.flush() == 1


def test_a_failed_flush_keeps_the_rows_and_writes_them_later_in_order(tmp_path: Path) -> None:
    plog = PredictionLog(Settings(home=tmp_path, log_flush_s=3600))
    now = datetime.now(UTC)
    for i in range(10):
        plog.emit_batch(_request(i, now + timedelta(microseconds=i)))
    blocker = tmp_path / "predictions" / "model=churn"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")  # the segment's folder cannot be made
    assert plog.flush() == 0 and plog.failures == 1
    for i in range(10, 15):  # arrive while the first rows wait for the next flush
        plog.emit_batch(_request(i, now + timedelta(microseconds=i)))
    blocker.unlink()
    assert plog.flush() == 15
    window = plog.read("churn", now - timedelta(seconds=1), now + timedelta(seconds=1))
    assert window.meta["prediction_id"].tolist() == [f"req{i:06d}" for i in range(15)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_logs_its_own_rows_once(tmp_path: Path) -> None:
    plog = PredictionLog(Settings(home=tmp_path, log_flush_s=3600))
    now = datetime.now(UTC)
    plog.emit_batch(_request(0, now))  # the parent's, buffered when the worker forks
    pid = os.fork()
    if pid == 0:  # the worker: logs its own requests, then shuts down as a server does
        code = 1
        try:
            for i in range(1, 6):
                plog.emit_batch(_request(i, now))
            plog.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    plog.close()
    ids = plog.read("churn", now - timedelta(seconds=1), now + timedelta(seconds=1)).meta["prediction_id"]
    assert sorted(ids) == [f"req{i:06d}" for i in range(6)]  # the parent's row once, the worker's rows


def _frames() -> list[pd.DataFrame]:
    """One-row frames of columns a=1, b=2, c=3 built the ways pandas can hold them."""
    one_block = pd.DataFrame(np.array([[1.0, 2.0, 3.0]]), columns=["a", "b", "c"])
    added = pd.DataFrame({"a": [1.0]})
    added["b"] = [2.0]
    added["c"] = [3.0]  # three blocks
    permuted = pd.DataFrame(np.array([[3.0, 1.0, 2.0]]), columns=["c", "a", "b"])[["a", "b", "c"]]
    mixed = pd.DataFrame({"a": [1.0], "b": [2], "c": [3.0]})  # an integer column
    retyped = mixed.copy()
    retyped["b"] = retyped["b"].astype(float)  # a float block holding a and c, another holding b
    return [one_block, added, permuted, retyped, retyped.copy(), mixed]


@pytest.mark.parametrize("shape", range(6))
def test_inputs_read_back_by_name_however_pandas_holds_them(tmp_path: Path, shape: int) -> None:
    plog = PredictionLog(Settings(home=tmp_path, log_flush_s=3600))
    now = datetime.now(UTC)
    frame = _frames()[shape]
    plog.emit_batch(PredictionBatch("m", 1, now, ("p1",), frame, Prediction(np.array([1])), 1.0))
    assert plog.flush() == 1
    inputs = plog.read("m", now - timedelta(seconds=1), now + timedelta(seconds=1)).inputs
    assert {name: float(inputs[name].iloc[0]) for name in "abc"} == {"a": 1.0, "b": 2.0, "c": 3.0}


def test_the_writer_thread_outlives_a_failure(tmp_path: Path) -> None:
    plog = PredictionLog(Settings(home=tmp_path, log_flush_s=0.05))
    calls = []

    def broken_retention(now: datetime | None = None) -> int:
        calls.append(now)
        raise OSError("retention failed")

    plog.apply_retention = broken_retention  # type: ignore[method-assign]
    now = datetime.now(UTC)
    plog.emit_batch(_request(1, now))
    deadline = now + timedelta(seconds=20)
    while plog.failures == 0 and datetime.now(UTC) < deadline:
        time.sleep(0.02)
    assert calls and plog.failures >= 1
    plog.emit_batch(_request(2, now))  # written by the same thread at a later flush
    while plog.written_rows < 2 and datetime.now(UTC) < deadline:
        time.sleep(0.02)
    assert plog.written_rows == 2 and plog._thread is not None and plog._thread.is_alive()
    plog.close()
