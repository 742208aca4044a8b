"""Compaction of the prediction log: an ended hour's many segments become one, nothing is lost or
counted twice, also when a compaction was killed half-way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from liveml import Settings
from liveml.monitoring.compaction import COMPACTED, compact_folder
from liveml.monitoring.log import PredictionLog
from liveml.monitoring.records import PredictionBatch
from liveml.runtimes.base import Prediction


def _emit(plog: PredictionLog, first: int, count: int, at: datetime) -> None:
    for i in range(first, first + count):
        frame = pd.DataFrame(np.array([[float(i), 0.5]]), columns=["x", "y"])
        when = at + timedelta(seconds=i)
        plog.emit_batch(
            PredictionBatch("churn", 1, when, (f"p{i:05d}",), frame, Prediction(np.array([i])), 1.0)
        )
    plog._write(plog._buffer, list(plog._columns.values()))  # one segment per call, as a flush writes
    plog._buffer, plog._columns, plog._buffered_rows = [], {}, 0


def _segments(home: Path) -> list[Path]:
    return sorted((home / "predictions" / "model=churn").rglob("*.parquet"))


def _ids(plog: PredictionLog, start: datetime, end: datetime) -> list[str]:
    return list(plog.read("churn", start, end).meta["prediction_id"])


def test_an_ended_hour_becomes_one_segment_and_reads_the_same(tmp_path: Path) -> None:
    plog = PredictionLog(Settings(home=tmp_path, log_flush_s=1))
    now = datetime.now(UTC)
    ended = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    for first in range(0, 200, 20):  # ten flushes in an hour that has ended
        _emit(plog, first, 20, ended)
    _emit(plog, 1000, 5, now - timedelta(seconds=1010))  # 10 s ago: not settled, left alone
    window = (ended, now + timedelta(seconds=1))
    before = _ids(plog, *window)
    assert len(_segments(tmp_path)) == 11
    assert plog.compact(now=now) == 200
    after = _segments(tmp_path)
    assert len(after) == 2 and sum(p.name.endswith(COMPACTED) for p in after) == 1
    assert _ids(plog, *window) == before == [f"p{i:05d}" for i in [*range(200), *range(1000, 1005)]]
    assert plog.compact(now=now) == 0  # nothing more to do


def test_a_compaction_killed_half_way_counts_nothing_twice(tmp_path: Path) -> None:
    plog = PredictionLog(Settings(home=tmp_path))
    now = datetime.now(UTC)
    ended = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    for first in range(0, 30, 10):
        _emit(plog, first, 10, ended)
    kept = tmp_path / "kept"
    shutil.copytree(tmp_path / "predictions", kept)
    assert plog.compact(now=now) == 30
    # as if killed after writing the compacted segment, before deleting what it replaces
    for path in kept.rglob("*.parquet"):
        shutil.copy(path, tmp_path / "predictions" / path.relative_to(kept))
    assert len(_segments(tmp_path)) == 4
    window = (ended, now)
    assert _ids(plog, *window) == [f"p{i:05d}" for i in range(30)]
    plog.compact(now=now)  # the leftovers go
    assert len(_segments(tmp_path)) == 1
    assert _ids(plog, *window) == [f"p{i:05d}" for i in range(30)]


def test_a_folder_locked_by_a_live_process_is_left_alone_and_a_dead_ones_lock_is_taken_over(
    tmp_path: Path,
) -> None:
    plog = PredictionLog(Settings(home=tmp_path))
    now = datetime.now(UTC)
    ended = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    _emit(plog, 0, 5, ended)
    _emit(plog, 5, 5, ended)
    folder = _segments(tmp_path)[0].parent
    (folder / ".compact.lock").write_text(str(os.getpid()))  # another compaction is running
    assert compact_folder(folder, now.timestamp()) == 0 and len(_segments(tmp_path)) == 2
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (folder / ".compact.lock").write_text(dead.stdout.strip())
    assert compact_folder(folder, now.timestamp()) == 0  # the stale lock is removed
    assert compact_folder(folder, now.timestamp()) == 10
    assert len(_segments(tmp_path)) == 1 and not (folder / ".compact.lock").exists()
