"""The prediction log: every prediction from serving and batch jobs, as Parquet segments.

Layout: ``<log_url>/model=<name>/date=<YYYY-MM-DD>/<HH>-<unix ms>-<pid>-<seq>.parquet``, so a window of
days reads only those days' folders. Columns: ``prediction_id``, ``version``, ``at`` (UTC), ``latency_ms``,
``job_id``, the inputs as ``in.<column>`` and the outputs as ``out.<column>`` (``out.prediction``,
``out.proba_<class>``).

Writing never slows a prediction: ``emit_batch`` appends the request's columns to a buffer (no copy), and
a background thread writes them out every ``log_flush_s``. Durability, stated and tested:

- ``buffered`` (default): a process killed with SIGKILL loses at most the predictions of the last
  ``log_flush_s`` seconds; everything older is in a segment.
- ``strict``: each prediction is appended to a write-ahead file (a kernel write, which outlives the
  process) before the answer goes out; a killed process loses nothing. The next process to open the log
  turns the write-ahead files of dead processes into segments.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import random
import struct
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from liveml.monitoring.records import PredictionBatch, PredictionRecord
from liveml.processes import alive
from liveml.runtimes.base import Prediction
from liveml.settings import Settings

log = logging.getLogger("liveml.monitoring")
META = ("prediction_id", "version", "at", "latency_ms", "job_id")
#: rows held before the emitting thread writes them itself
MAX_BUFFER_ROWS = 100_000
_LENGTH = struct.Struct("<Q")


@dataclass(frozen=True)
class Window:
    """A window of the log for one model: ``meta`` (the META columns), ``inputs`` and ``outputs``, row-aligned."""

    meta: pd.DataFrame
    inputs: pd.DataFrame
    outputs: pd.DataFrame

    def __len__(self) -> int:
        return len(self.meta)


class PredictionLog:
    """A sink (``emit``/``emit_batch``) that persists predictions, and the reader of what it wrote."""

    def __init__(self, settings: Settings) -> None:
        import fsspec

        self.url = settings.resolved_log_url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.flush_s = settings.log_flush_s
        self.strict = settings.log_durability == "strict"
        self.sample_rate = settings.log_sample_rate
        self.retention = timedelta(days=settings.log_retention_days)
        self.local = "://" not in self.url or self.url.startswith("file://")
        self._lock = threading.Lock()
        self._buffer: list[PredictionBatch] = []
        self._buffered_rows = 0
        self._names = itertools.count()  # segment names stay unique when two threads flush at once
        #: requests that got no prediction, per (model, version, kind, day, hour)
        self._errors: dict[tuple[str, int, str, str], int] = defaultdict(int)
        self._pid = -1
        self._seq = 0
        self._wal: int | None = None
        self._wal_path: Path | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_retention = 0.0
        self.written_rows = 0
        self.failures = 0

    # -- the sink -------------------------------------------------------------------------
    def emit(self, records: list[PredictionRecord]) -> None:
        for record in records:
            self.emit_batch(
                PredictionBatch(
                    record.model,
                    record.version,
                    record.at,
                    [record.prediction_id],
                    pd.DataFrame([record.inputs]),
                    pd.DataFrame([record.outputs]),
                    record.latency_ms,
                    record.job_id,
                )
            )

    def emit_batch(self, batch: PredictionBatch) -> None:
        if self.sample_rate < 1.0:
            batch = _sample(batch, self.sample_rate)
            if not len(batch):
                return
        if self._pid != os.getpid():
            self._start()
        with self._lock:
            if self.strict and self._wal is not None:
                payload = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
                os.write(self._wal, _LENGTH.pack(len(payload)) + payload)
            self._buffer.append(batch)
            self._buffered_rows += len(batch)
            full = self._buffered_rows >= MAX_BUFFER_ROWS
        if full:
            # a batch job outruns the writer: it writes itself (backpressure, bounded memory); serving
            # requests never get here (a second of single rows is far below the bound)
            self.flush()

    def emit_error(self, model: str, version: int, kind: str) -> None:
        if self._pid != os.getpid():
            self._start()
        with self._lock:
            self._errors[(model, version, kind, datetime.now(UTC).strftime("%Y-%m-%d/%H"))] += 1

    # -- writing --------------------------------------------------------------------------
    def _start(self) -> None:
        """In a new process (first use, or a forked worker): recover, then start this process's writer."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._buffer = []  # a forked child must not write its parent's buffer again
            self._seq = 0
            self._stop = threading.Event()
            if self.local:
                self.fs.makedirs(self.root, exist_ok=True)
                self.recover()
                if self.strict:
                    self._open_wal()
            self._thread = threading.Thread(target=self._loop, name="liveml-prediction-log", daemon=True)
            self._thread.start()

    def _wal_dir(self) -> Path:
        return Path(self.root) / "_wal"

    def _open_wal(self) -> None:
        self._wal_dir().mkdir(parents=True, exist_ok=True)
        self._wal_path = self._wal_dir() / f"{self._pid}-{self._seq:08d}-{time.time_ns()}.wal"
        self._wal = os.open(self._wal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()

    def flush(self) -> int:
        """Write what is buffered as segments; returns the rows written."""
        with self._lock:
            batches, self._buffer = self._buffer, []
            self._buffered_rows = 0
            errors, self._errors = self._errors, defaultdict(int)
            wal, wal_path = self._wal, self._wal_path
            if self.strict and batches and wal is not None:
                self._seq += 1
                self._open_wal()  # new predictions go to a new file while this one is turned into segments
        if errors:
            self._write_errors(errors)
        if not batches:
            return 0
        try:
            rows = self._write(batches)
        except Exception:
            self.failures += 1
            log.exception(
                "could not write %d predictions to the log at %s", sum(len(b) for b in batches), self.url
            )
            with self._lock:
                self._buffer[:0] = batches  # try again at the next flush
                self._buffered_rows += sum(len(b) for b in batches)
            return 0
        if wal is not None and wal_path is not None:
            os.close(wal)
            wal_path.unlink(missing_ok=True)
        self.written_rows += rows
        if time.monotonic() - self._last_retention > 3600:
            self._last_retention = time.monotonic()
            self.apply_retention()
        return rows

    def _write(self, batches: list[PredictionBatch]) -> int:
        groups: dict[tuple[str, int], list[PredictionBatch]] = defaultdict(list)
        for batch in batches:  # by model and UTC hour (an integer: no date formatting per request)
            groups[(batch.model, int(batch.at.timestamp()) // 3600)].append(batch)
        rows = 0
        for (model, hour_number), group in groups.items():
            day, hour = datetime.fromtimestamp(hour_number * 3600, UTC).strftime("%Y-%m-%d/%H").split("/")
            table = _table(group)
            folder = f"{self.root}/model={model}/date={day}"
            self.fs.makedirs(folder, exist_ok=True)
            name = f"{hour}-{time.time_ns() // 1_000_000}-{os.getpid()}-{next(self._names)}.parquet"
            if self.local:
                tmp = Path(folder) / f".{name}.tmp"
                pq.write_table(table, tmp)
                os.replace(tmp, Path(folder) / name)
            else:
                with self.fs.open(f"{folder}/{name}", "wb") as handle:
                    pq.write_table(table, handle)
            rows += table.num_rows
        return rows

    def _write_errors(self, errors: dict[tuple[str, int, str, str], int]) -> None:
        """Counts of failed requests, in ``_errors/model=<name>/date=<day>/`` (best effort: a count lost
        with a killed process only lowers the error rate)."""
        rows: dict[tuple[str, str], list[tuple[int, str, str, int]]] = defaultdict(list)
        for (model, version, kind, when), count in errors.items():
            day, hour = when.split("/")
            rows[(model, day)].append((version, kind, hour, count))
        try:
            for (model, day), entries in rows.items():
                folder = f"{self.root}/_errors/model={model}/date={day}"
                self.fs.makedirs(folder, exist_ok=True)
                at = [datetime.fromisoformat(f"{day}T{hour}:00:00+00:00") for _, _, hour, _ in entries]
                table = pa.table(
                    {
                        "at": pa.array(at, pa.timestamp("us", tz="UTC")),
                        "version": pa.array([e[0] for e in entries], pa.int32()),
                        "kind": pa.array([e[1] for e in entries], pa.string()),
                        "count": pa.array([e[3] for e in entries], pa.int64()),
                    }
                )
                with self.fs.open(f"{folder}/{time.time_ns()}-{os.getpid()}.parquet", "wb") as handle:
                    pq.write_table(table, handle)
        except Exception:
            log.exception("could not write error counts to the log at %s", self.url)

    def errors(self, model: str, start: datetime, end: datetime) -> int:
        """Failed requests of ``model`` counted in the hours that overlap ``[start, end)``."""
        total = 0
        day = start.astimezone(UTC).date()
        while day <= end.astimezone(UTC).date():
            for path in self.fs.glob(f"{self.root}/_errors/model={model}/date={day.isoformat()}/*.parquet"):
                frame = pq.read_table(path, filesystem=self.fs).to_pandas()
                hour_start = pd.to_datetime(frame["at"], utc=True)
                keep = (hour_start + pd.Timedelta(hours=1) > start) & (hour_start < end)
                total += int(frame.loc[keep, "count"].sum())
            day += timedelta(days=1)
        return total

    def recover(self) -> int:
        """Turn the write-ahead files of processes that are gone into segments; returns rows recovered."""
        folder = self._wal_dir()
        if not folder.exists():
            return 0
        recovered = 0
        for path in sorted(folder.glob("*.wal")):
            pid = int(path.name.split("-", 1)[0])
            if pid == os.getpid() or alive(pid):
                continue
            batches = _read_wal(path)
            if batches:
                recovered += self._write(batches)
            path.unlink(missing_ok=True)
        if recovered:
            log.warning("recovered %d predictions from the write-ahead files of stopped processes", recovered)
        return recovered

    def apply_retention(self, now: datetime | None = None) -> int:
        """Delete day folders older than the retention; returns how many."""
        cutoff = ((now or datetime.now(UTC)) - self.retention).strftime("%Y-%m-%d")
        removed = 0
        folders = self.fs.glob(f"{self.root}/model=*/date=*") + self.fs.glob(
            f"{self.root}/_errors/model=*/date=*"
        )
        for folder in folders:
            if folder.rsplit("date=", 1)[1] < cutoff:
                self.fs.rm(folder, recursive=True)
                removed += 1
        return removed

    def close(self) -> None:
        """Flush and stop the writer (a server's shutdown)."""
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=10)
        self.flush()

    # -- reading --------------------------------------------------------------------------
    def models(self) -> list[str]:
        return sorted(p.rsplit("model=", 1)[1] for p in self.fs.glob(f"{self.root}/model=*"))

    def ids(self, model: str, days: float) -> set[str]:
        """The prediction ids logged for ``model`` in the last ``days`` (only that column is read)."""
        start = datetime.now(UTC) - timedelta(days=days)
        found: set[str] = set()
        day = start.date()
        while day <= datetime.now(UTC).date():
            for path in self.fs.glob(f"{self.root}/model={model}/date={day.isoformat()}/*.parquet"):
                found.update(
                    pq.read_table(path, columns=["prediction_id"], filesystem=self.fs).column(0).to_pylist()
                )
            day += timedelta(days=1)
        return found

    def read(self, model: str, start: datetime, end: datetime) -> Window:
        """Every logged prediction of ``model`` with ``start <= at < end``, oldest first."""
        files = []
        day = start.astimezone(UTC).date()
        while day <= end.astimezone(UTC).date():
            folder = f"{self.root}/model={model}/date={day.isoformat()}"
            files += sorted(p for p in self.fs.glob(f"{folder}/*.parquet"))
            day += timedelta(days=1)
        if not files:
            empty = pd.DataFrame({c: pd.Series(dtype=object) for c in META})
            return Window(empty, pd.DataFrame(), pd.DataFrame())
        tables = [pq.read_table(f, filesystem=self.fs) for f in files]
        table = pa.concat_tables(tables, promote_options="permissive")
        at = table.column("at")
        import pyarrow.compute as pc

        keep = pc.and_(
            pc.greater_equal(at, pa.scalar(start.astimezone(UTC), at.type)),
            pc.less(at, pa.scalar(end.astimezone(UTC), at.type)),
        )
        frame = table.filter(keep).to_pandas().sort_values("at", kind="stable").reset_index(drop=True)
        inputs = frame[[c for c in frame.columns if c.startswith("in.")]].rename(columns=lambda c: c[3:])
        outputs = frame[[c for c in frame.columns if c.startswith("out.")]].rename(columns=lambda c: c[4:])
        return Window(frame[list(META)], inputs, outputs)


def _sample(batch: PredictionBatch, rate: float) -> PredictionBatch:
    keep = np.random.default_rng(random.getrandbits(32)).random(len(batch)) < rate
    if keep.all():
        return batch
    outputs = batch.outputs_frame()[keep]
    return PredictionBatch(
        batch.model,
        batch.version,
        batch.at,
        [p for p, k in zip(batch.prediction_ids, keep, strict=True) if k],
        batch.inputs[keep],
        outputs,
        batch.latency_ms,
        batch.job_id,
    )


def _table(batches: list[PredictionBatch]) -> pa.Table:
    """One Arrow table from many batches: numeric inputs and model outputs are concatenated as arrays
    (cheap for thousands of one-row requests); anything else through pandas."""
    n = [len(b) for b in batches]
    # per-batch values repeated per row, as plain integers (never per-row Python objects)
    micros = np.repeat(np.array([int(b.at.timestamp() * 1_000_000) for b in batches], dtype=np.int64), n)
    jobs = [b.job_id for b in batches]
    job_values = sorted({j for j in jobs if j is not None})
    job_codes = np.repeat(np.array([job_values.index(j) if j is not None else -1 for j in jobs], np.int32), n)
    job_ids = pa.DictionaryArray.from_arrays(
        pa.array(job_codes, mask=job_codes < 0), pa.array(job_values, pa.string())
    ).cast(pa.string())
    columns: dict[str, Any] = {
        "prediction_id": _ids(batches),
        "version": pa.array(np.repeat([b.version for b in batches], n), pa.int32()),
        "at": pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "latency_ms": pa.array(np.repeat([b.latency_ms / max(len(b), 1) for b in batches], n), pa.float32()),
        "job_id": job_ids,
    }
    first_columns = batches[0].inputs.columns
    names = list(first_columns)
    same_columns = all(
        b.inputs.columns is first_columns or b.inputs.columns.equals(first_columns) for b in batches
    )
    blocks = [_float_block(b.inputs) for b in batches] if same_columns else [None]
    if all(block is not None for block in blocks):
        # one (columns x rows) float64 block per request: joined along the rows, each column contiguous
        by_column: np.ndarray = np.concatenate(blocks, axis=1)  # type: ignore[arg-type]
        for i, name in enumerate(names):
            columns[f"in.{name}"] = by_column[i]
    else:
        frame = pd.concat([b.inputs for b in batches], ignore_index=True)
        for name in frame.columns:
            columns[f"in.{name}"] = _arrow(frame[name])
    if all(isinstance(b.outputs, Prediction) for b in batches):
        first = batches[0].outputs
        assert isinstance(first, Prediction)
        predictions = np.concatenate([b.outputs.predictions for b in batches])
        if predictions.ndim == 1:
            columns["out.prediction"] = _arrow(pd.Series(predictions))
        else:
            for i in range(predictions.shape[1]):
                columns[f"out.prediction_{i}"] = predictions[:, i]
        probas = [b.outputs.probabilities for b in batches]
        if all(p is not None for p in probas):
            matrix: np.ndarray = np.concatenate(probas)  # type: ignore[arg-type]
            classes = first.classes or tuple(range(matrix.shape[1]))
            for i, cls in enumerate(classes):
                columns[f"out.proba_{cls}"] = matrix[:, i]
    else:
        outputs = pd.concat([b.outputs_frame() for b in batches], ignore_index=True)
        for name in outputs.columns:
            columns[f"out.{name}"] = _arrow(outputs[name])
    return pa.table(columns)


def _ids(batches: list[PredictionBatch]) -> pa.ChunkedArray:
    """The prediction ids of many batches: Arrow arrays as they are, Python strings in one conversion."""
    chunks: list[pa.Array] = []
    pending: list[str] = []
    for batch in batches:
        if isinstance(batch.prediction_ids, pa.Array):
            if pending:
                chunks.append(pa.array(pending, pa.string()))
                pending = []
            chunks.append(batch.prediction_ids)
        else:
            pending.extend(batch.prediction_ids)
    if pending:
        chunks.append(pa.array(pending, pa.string()))
    return pa.chunked_array(chunks, pa.string())


def _float_block(frame: pd.DataFrame) -> np.ndarray | None:
    """The frame's values as one (columns x rows) float64 array, when pandas holds them so (requests of
    numeric models): read from the block itself, without a per-frame dtype check or copy. Else None."""
    blocks = getattr(getattr(frame, "_mgr", None), "blocks", None)  # pandas internals, a fast path only
    if blocks is not None and len(blocks) == 1 and blocks[0].dtype == np.float64 and len(frame.columns):
        values = np.asarray(blocks[0].values)
        if values.ndim == 2 and values.shape[0] == len(frame.columns):
            placement = blocks[0].mgr_locs.as_array
            return (
                values
                if np.array_equal(placement, np.arange(len(placement)))
                else values[np.argsort(placement)]
            )
    if len(frame.columns) and all(dtype == np.float64 for dtype in frame.dtypes):
        return np.ascontiguousarray(frame.to_numpy().T)
    return None


def _arrow(series: pd.Series) -> pa.Array:
    try:
        return pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(series.map(lambda v: None if v is None else str(v)), pa.string())


def _read_wal(path: Path) -> list[PredictionBatch]:
    """The whole records of a write-ahead file; a record cut short by the kill is left out."""
    data = path.read_bytes()
    batches, offset = [], 0
    while offset + _LENGTH.size <= len(data):
        (size,) = _LENGTH.unpack_from(data, offset)
        end = offset + _LENGTH.size + size
        if end > len(data):
            break
        try:
            batches.append(pickle.loads(data[offset + _LENGTH.size : end]))
        except Exception:
            break
        offset = end
    return batches


def sink_for(settings: Settings) -> PredictionLog | None:
    """The prediction log the settings ask for, or None when logging is off."""
    return PredictionLog(settings) if settings.log_predictions else None


__all__ = ["META", "PredictionLog", "Window", "sink_for"]
