"""Compaction of the prediction log: the many small segments of an hour that has ended become one.

A busy server writes a segment per flush (every ``log_flush_s``, per worker): 3,600 files an hour, and a
window read pays for each file it opens. Once an hour has ended (and settled: late flushes and recovered
write-ahead files may still add to it), its segments are read, sorted by ``at`` and written as one
``<HH>-<ms>-<pid>-compact.parquet`` whose Parquet metadata names the segments it replaces; then those
are deleted. Crash-safe: a process killed between the two steps leaves both, and readers skip the
segments a compacted file names (``live_segments``); the next compaction deletes them. One process at a
time per day folder (a lock file; a dead holder's lock is taken over). Local folders only.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from liveml.monitoring.segments import concat_segments, segment_options
from liveml.processes import alive

COMPACTED = "-compact.parquet"
SOURCES = b"liveml.sources"
LOCK = ".compact.lock"


def live_segments(fs: Any, folder: str) -> list[str]:
    """The segments of a day folder to read: every ``*.parquet`` but those a compacted file replaced."""
    files = sorted(fs.glob(f"{folder}/*.parquet"))
    replaced: set[str] = set()
    for path in files:
        if path.endswith(COMPACTED):
            replaced.update(_sources(path, fs))
    return [p for p in files if p.rsplit("/", 1)[-1] not in replaced]


def compact(root: Path, *, settle_s: float, days: int = 2, now: datetime | None = None) -> int:
    """Compact the ended hours of the last ``days`` day folders of every model; returns rows rewritten."""
    now = now or datetime.now(UTC)
    recent = {(now - timedelta(days=d)).strftime("%Y-%m-%d") for d in range(days)}
    rows = 0
    for folder in sorted(root.glob("model=*/date=*")):
        if folder.name.split("=", 1)[1] in recent:
            rows += compact_folder(folder, now.timestamp() - settle_s)
    return rows


def compact_folder(folder: Path, settled_before: float) -> int:
    """Compact the hours of one day folder that ended before ``settled_before`` (unix seconds)."""
    lock = folder / LOCK
    try:
        handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        try:
            holder = int(lock.read_text() or 0)
        except (OSError, ValueError):
            return 0
        if holder and not alive(holder):
            lock.unlink(missing_ok=True)  # its holder died: the next round takes it
        return 0
    try:
        os.write(handle, str(os.getpid()).encode())
        day = folder.name.split("=", 1)[1]
        hours: dict[str, list[Path]] = defaultdict(list)
        for path in folder.glob("*.parquet"):
            hours[path.name[:2]].append(path)
        rows = 0
        for hour, paths in sorted(hours.items()):
            ends = datetime.fromisoformat(f"{day}T{hour}:00:00+00:00").timestamp() + 3600
            if ends <= settled_before:
                rows += _compact_hour(folder, hour, paths)
        return rows
    finally:
        os.close(handle)
        lock.unlink(missing_ok=True)


def _compact_hour(folder: Path, hour: str, paths: list[Path]) -> int:
    replaced: set[str] = set()
    for path in paths:
        if path.name.endswith(COMPACTED):
            replaced.update(_sources(str(path)))
    for path in paths:  # left by a compaction that was killed before it deleted them
        if path.name in replaced:
            path.unlink(missing_ok=True)
    live = sorted(p for p in paths if p.name not in replaced)
    if len(live) <= 1:
        return 0
    table = concat_segments([pq.read_table(p) for p in live]).sort_by("at")
    metadata = dict(table.schema.metadata or {})
    metadata[SOURCES] = json.dumps([p.name for p in live]).encode()
    table = table.replace_schema_metadata(metadata)
    name = f"{hour}-{time.time_ns() // 1_000_000}-{os.getpid()}{COMPACTED}"
    tmp = folder / f".{name}.tmp"
    pq.write_table(table, tmp, **segment_options(table))
    os.replace(tmp, folder / name)
    for path in live:
        path.unlink(missing_ok=True)
    return int(table.num_rows)


def _sources(path: str, fs: Any = None) -> list[str]:
    try:
        metadata = pq.read_metadata(path, filesystem=fs).metadata or {}
    except (OSError, ValueError):  # deleted meanwhile (a newer compaction replaced it), or cut short
        return []
    names: list[str] = json.loads(metadata.get(SOURCES, b"[]"))
    return names


__all__ = ["COMPACTED", "compact", "compact_folder", "live_segments"]
