"""The prediction log: what is written reads back; durability under SIGKILL, as the docs state it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liveml import Settings
from liveml.monitoring.log import PredictionLog
from liveml.monitoring.records import PredictionBatch
from liveml.runtimes.base import Prediction


def _batch(i: int, n: int = 1, at: datetime | None = None) -> PredictionBatch:
    inputs = pd.DataFrame({"x": np.arange(i, i + n, dtype=float), "y": np.full(n, 0.5)})
    prediction = Prediction(
        np.array([k % 2 for k in range(i, i + n)]), np.tile([0.3, 0.7], (n, 1)), classes=(0, 1)
    )
    ids = [f"id{k:06d}" for k in range(i, i + n)]
    return PredictionBatch("churn", 3, at or datetime.now(UTC), ids, inputs, prediction, 2.0 * n)


def test_batches_read_back_by_window(tmp_path: Path) -> None:
    plog = PredictionLog(Settings(home=tmp_path, log_flush_s=60))
    now = datetime.now(UTC)
    for i in range(0, 50, 5):
        plog.emit_batch(_batch(i, 5, at=now))
    plog.emit_batch(_batch(100, 2, at=now - timedelta(days=2)))  # outside the window
    mixed = PredictionBatch(
        "churn",
        4,
        now,
        ["m1", "m2"],
        pd.DataFrame({"x": [1.0, 2.0], "plan": ["pro", None]}),
        pd.DataFrame({"prediction": ["yes", "no"]}),
        1.0,
        job_id="17",
    )
    plog.emit_batch(mixed)
    assert plog.flush() == 54
    window = plog.read("churn", now - timedelta(hours=1), now + timedelta(seconds=1))
    assert len(window) == 52 and list(window.meta.columns) == [
        "prediction_id",
        "version",
        "at",
        "latency_ms",
        "job_id",
    ]
    first = window.meta[window.meta["version"] == 3]
    assert first["prediction_id"].tolist() == [f"id{k:06d}" for k in range(50)]
    assert window.inputs.loc[first.index, "x"].tolist() == list(map(float, range(50)))
    assert window.outputs.loc[first.index, "proba_1"].tolist() == [0.7] * 50
    assert set(window.outputs.columns) >= {"prediction", "proba_0", "proba_1"}
    batch_rows = window.meta[window.meta["job_id"] == "17"]
    plans = window.inputs.loc[batch_rows.index, "plan"].tolist()
    assert plans[0] == "pro" and pd.isna(plans[1])
    assert len(plog.read("churn", now - timedelta(days=3), now - timedelta(days=1))) == 2
    assert len(plog.read("fraud", now - timedelta(days=1), now)) == 0
    assert plog.models() == ["churn"]


def test_sampling_and_retention(tmp_path: Path) -> None:
    plog = PredictionLog(Settings(home=tmp_path, log_sample_rate=0.25, log_retention_days=7))
    now = datetime.now(UTC)
    for i in range(400):
        plog.emit_batch(_batch(i, at=now))
    written = plog.flush()
    assert 40 < written < 200  # about a quarter
    plog.sample_rate = 1.0
    plog.emit_batch(_batch(0, at=now - timedelta(days=10)))
    plog.flush()
    assert plog.apply_retention(now) == 1
    assert len(plog.read("churn", now - timedelta(days=11), now - timedelta(days=9))) == 0
    plog.close()


CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    sys.path.insert(0, {root!r})
    from liveml import Settings
    from liveml.monitoring.log import PredictionLog
    from tests.integration.monitoring.test_prediction_log import _batch
    plog = PredictionLog(Settings(home={home!r}, log_flush_s=0.2, log_durability={mode!r}))
    i = 0
    while True:
        plog.emit_batch(_batch(i))
        print(i, time.monotonic(), flush=True)  # acknowledged
        i += 1
        time.sleep(0.002)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["buffered", "strict"])
def test_sigkill_loses_nothing_older_than_the_flush_interval_or_nothing_at_all(
    tmp_path: Path, mode: str
) -> None:
    root = str(Path(__file__).resolve().parents[3])
    code = CHILD.format(root=root, home=str(tmp_path), mode=mode)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=root)
    acked: list[tuple[int, float]] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while len(acked) < 300 and time.monotonic() < deadline:
        number, at = proc.stdout.readline().split()
        acked.append((int(number), float(at)))
    os.kill(proc.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    proc.wait(timeout=30)
    for line in proc.stdout:  # acknowledged before the kill landed
        number, at = line.split()
        acked.append((int(number), float(at)))
    plog = PredictionLog(Settings(home=tmp_path, log_durability=mode))
    plog.recover()
    now = datetime.now(UTC)
    found = set(
        plog.read("churn", now - timedelta(hours=1), now + timedelta(seconds=1)).meta["prediction_id"]
    )
    # strict: every acknowledged one; buffered: those older than the flush interval (+ slack)
    must = [n for n, at in acked if mode == "strict" or at < killed_at - 0.2 - 0.1]
    missing = [n for n in must if f"id{n:06d}" not in found]
    assert not missing, f"{len(missing)} acknowledged predictions lost ({mode}): {missing[:10]}"
    assert len(found) <= len(acked) + 1


def test_failed_requests_are_counted_for_the_error_rate(tmp_path: Path) -> None:
    plog = PredictionLog(Settings(home=tmp_path))
    for _ in range(3):
        plog.emit_error("churn", 3, "invalid")
    plog.emit_error("churn", 3, "model_error")
    plog.emit_batch(_batch(0, 4))
    plog.flush()
    now = datetime.now(UTC)
    assert plog.errors("churn", now - timedelta(hours=1), now + timedelta(seconds=1)) == 4
    assert plog.errors("fraud", now - timedelta(hours=1), now) == 0
    assert len(plog.read("churn", now - timedelta(hours=1), now + timedelta(seconds=1))) == 4
