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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from liveml.monitoring.compaction import compact, live_segments
from liveml.monitoring.records import PredictionBatch, PredictionRecord
from liveml.monitoring.segments import (
    ServedColumns,
    ServedKey,
    ServedParts,
    batches_table,
    concat_segments,
    segment_options,
    served_parts,
)
from liveml.processes import alive
from liveml.settings import Settings

log = logging.getLogger("liveml.monitoring")
META = ("prediction_id", "version", "at", "latency_ms", "job_id")
#: rows held before the emitting thread writes them itself
MAX_BUFFER_ROWS = 100_000
#: how often the writer compacts ended hours (many small segments become one per hour)
COMPACT_EVERY_S = 600.0
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
        #: served requests, already as arrays (see segments.py)
        self._columns: dict[ServedKey, ServedColumns] = {}
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
        self._last_retention = float("-inf")  # the first flush applies retention, then hourly
        self._last_compaction = float("-inf")
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
        parts = served_parts(batch)  # a served request's arrays; the frame is not kept
        with self._lock:
            if self.strict and self._wal is not None:
                payload = pickle.dumps(batch if parts is None else parts, protocol=pickle.HIGHEST_PROTOCOL)
                os.write(self._wal, _LENGTH.pack(len(payload)) + payload)
            if parts is None:
                self._buffer.append(batch)
            else:
                gathered = self._columns.get(parts[0])
                if gathered is None:
                    gathered = self._columns[parts[0]] = ServedColumns(parts[0])
                gathered.add(parts)
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
            self._columns = {}
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
            try:
                self.flush()
            except Exception:  # the writer must outlive any one failure (retention, compaction, a bug)
                self.failures += 1
                log.exception("the prediction log's writer failed; it goes on at the next flush")

    def flush(self) -> int:
        """Write what is buffered as segments; returns the rows written."""
        with self._lock:
            batches, self._buffer = self._buffer, []
            columns, self._columns = self._columns, {}
            self._buffered_rows = 0
            errors, self._errors = self._errors, defaultdict(int)
            wal, wal_path = self._wal, self._wal_path
            if self.strict and (batches or columns) and wal is not None:
                self._seq += 1
                self._open_wal()  # new predictions go to a new file while this one is turned into segments
        if errors:
            self._write_errors(errors)
        if not batches and not columns:
            return 0
        try:
            rows = self._write(batches, list(columns.values()))
        except Exception:
            self.failures += 1
            pending = sum(len(b) for b in batches) + sum(len(c) for c in columns.values())
            log.exception("could not write %d predictions to the log at %s", pending, self.url)
            with self._lock:  # try again at the next flush, oldest first
                self._buffer[:0] = batches
                for key, older in columns.items():
                    newer = self._columns.get(key)
                    if newer is not None:
                        older.merge(newer)
                    self._columns[key] = older
                self._buffered_rows += pending
            return 0
        if wal is not None and wal_path is not None:
            os.close(wal)
            wal_path.unlink(missing_ok=True)
        self.written_rows += rows
        if time.monotonic() - self._last_retention > 3600:
            self._last_retention = time.monotonic()
            self.apply_retention()
        if self.local and time.monotonic() - self._last_compaction > COMPACT_EVERY_S:
            self._last_compaction = time.monotonic()
            self.compact()
        return rows

    def compact(self, now: datetime | None = None) -> int:
        """Join each ended hour's segments of the last two days into one (see compaction.py); returns the
        rows rewritten. Runs from the writer every ``COMPACT_EVERY_S``; local folders only."""
        if not self.local:
            return 0
        try:
            return compact(Path(self.root), settle_s=max(60.0, 5 * self.flush_s), now=now)
        except Exception:  # a failed compaction leaves the segments as they were: readable
            log.exception("could not compact the prediction log at %s", self.url)
            return 0

    def _write(self, batches: list[PredictionBatch], columns: Sequence[ServedColumns] = ()) -> int:
        """One segment per model and UTC hour (an integer: no date formatting per request)."""
        groups: dict[tuple[str, int], list[PredictionBatch]] = defaultdict(list)
        for batch in batches:
            groups[(batch.model, int(batch.at.timestamp()) // 3600)].append(batch)
        served: dict[tuple[str, int], list[ServedColumns]] = defaultdict(list)
        for gathered in columns:
            served[(gathered.model, gathered.hour)].append(gathered)
        rows = 0
        for model, hour_number in {**served, **groups}:
            day, hour = datetime.fromtimestamp(hour_number * 3600, UTC).strftime("%Y-%m-%d/%H").split("/")
            parts = [c.table() for c in served.get((model, hour_number), [])]
            if (model, hour_number) in groups:
                parts.append(batches_table(groups[(model, hour_number)]))
            try:
                table = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. versions whose outputs differ in type
                group = groups.get((model, hour_number), [])
                table = batches_table([b for c in served[(model, hour_number)] for b in c.batches()] + group)
            folder = f"{self.root}/model={model}/date={day}"
            self.fs.makedirs(folder, exist_ok=True)
            name = f"{hour}-{time.time_ns() // 1_000_000}-{os.getpid()}-{next(self._names)}.parquet"
            if self.local:
                tmp = Path(folder) / f".{name}.tmp"
                pq.write_table(table, tmp, **segment_options(table))
                os.replace(tmp, Path(folder) / name)
            else:
                with self.fs.open(f"{folder}/{name}", "wb") as handle:
                    pq.write_table(table, handle, **segment_options(table))
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
            batches, columns = _read_wal(path)
            if batches or columns:
                recovered += self._write(batches, columns)
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
        now = datetime.now(UTC)
        found: set[str] = set()
        for table in self._segments(
            model, (now - timedelta(days=days)).date(), now.date(), ["prediction_id"]
        ):
            found.update(table.column(0).to_pylist())
        return found

    def read(self, model: str, start: datetime, end: datetime) -> Window:
        """Every logged prediction of ``model`` with ``start <= at < end``, oldest first."""
        tables = self._segments(model, start.astimezone(UTC).date(), end.astimezone(UTC).date())
        if not tables:
            empty = pd.DataFrame({c: pd.Series(dtype=object) for c in META})
            return Window(empty, pd.DataFrame(), pd.DataFrame())
        table = concat_segments(tables)
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

    def _segments(
        self, model: str, first: date, last: date, columns: list[str] | None = None
    ) -> list[pa.Table]:
        """The segments of ``model``'s day folders ``first``..``last``; listed and read again when a
        compaction replaced one between the listing and the reading."""
        for attempt in range(3):
            files, day = [], first
            while day <= last:
                files += live_segments(self.fs, f"{self.root}/model={model}/date={day.isoformat()}")
                day += timedelta(days=1)
            try:
                return [pq.read_table(f, columns=columns, filesystem=self.fs) for f in files]
            except FileNotFoundError:
                if attempt == 2:
                    raise
        return []


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


def _read_wal(path: Path) -> tuple[list[PredictionBatch], list[ServedColumns]]:
    """The whole records of a write-ahead file; a record cut short by the kill is left out. A record is a
    pickled ``PredictionBatch``, or a served request's arrays (``ServedParts``)."""
    data = path.read_bytes()
    batches: list[PredictionBatch] = []
    columns: dict[ServedKey, ServedColumns] = {}
    offset = 0
    while offset + _LENGTH.size <= len(data):
        (size,) = _LENGTH.unpack_from(data, offset)
        end = offset + _LENGTH.size + size
        if end > len(data):
            break
        try:
            record = pickle.loads(data[offset + _LENGTH.size : end])
        except Exception:
            break
        if isinstance(record, PredictionBatch):
            batches.append(record)
        else:
            parts: ServedParts = record
            columns.setdefault(parts[0], ServedColumns(parts[0])).add(parts)
        offset = end
    return batches, list(columns.values())


def sink_for(settings: Settings) -> PredictionLog | None:
    """The prediction log the settings ask for, or None when logging is off."""
    return PredictionLog(settings) if settings.log_predictions else None


__all__ = ["META", "PredictionLog", "Window", "sink_for"]
