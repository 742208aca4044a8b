"""How fast weeks of the prediction log are scanned: the monitor's window reads and a whole-log aggregate.

Writes ``--rows`` predictions (default 20 million) of one model across ``--days`` days (default 21) of
hourly segments, in the log's own layout and columns (``model=<name>/date=<day>/<HH>-….parquet``;
``prediction_id``, ``version``, ``at``, ``latency_ms``, ``job_id``, 10 float inputs, a class and two
probabilities), then times, ``--runs`` times each (median, min):

- ``PredictionLog.read`` of the last 24 hours and of the last 7 days (what ``liveml monitor run`` and
  ``liveml monitor report`` read: every column, as pandas);
- rows per hour and the hourly mean of an input and of a probability over the whole log, with
  ``pyarrow.dataset`` (hive partitions, only the columns needed) and, where it is installed, DuckDB;
- an hour's read when its rows come as many small segments (``--small-files``: one per flush of 1 s, the
  layout a busy server leaves behind), then the compaction of that hour, and the read again.

    .venv/bin/python bench/monitoring/log_scan.py [--rows 20000000] [--days 21] [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from liveml import Settings
from liveml.monitoring.log import PredictionLog

INPUTS = [f"f{i}" for i in range(10)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small-files", type=int, default=3600)
    parser.add_argument(
        "--keep", type=Path, help="write the log here and keep it (default: a temporary folder)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    home = args.keep or Path(tempfile.mkdtemp(prefix="liveml-scan-"))
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=args.days)
    results: dict[str, Any] = {"rows": args.rows, "days": args.days, "runs": args.runs}
    root = home / "predictions"
    if not (root / "model=m").exists():
        results["write_s"] = timed_once(lambda: write_log(root, "m", start, end, args.rows))
    results["files"] = sum(1 for _ in (root / "model=m").rglob("*.parquet"))
    results["bytes"] = sum(p.stat().st_size for p in (root / "model=m").rglob("*.parquet"))
    plog = PredictionLog(Settings(home=home))
    now = end
    results["read_24h"] = bench(args.runs, lambda: len(plog.read("m", now - timedelta(hours=24), now)))
    results["read_7d"] = bench(args.runs, lambda: len(plog.read("m", now - timedelta(days=7), now)))
    results["hourly_pyarrow"] = bench(args.runs, lambda: hourly_pyarrow(root, "m", start, end))
    try:
        import duckdb  # noqa: F401

        results["hourly_duckdb"] = bench(args.runs, lambda: hourly_duckdb(root, "m", start, end))
        results["read_24h_duckdb"] = bench(
            args.runs, lambda: window_duckdb(root, "m", now - timedelta(hours=24), now)
        )
    except ImportError:
        results["hourly_duckdb"] = "duckdb not installed"
    if args.small_files:
        per_hour = args.rows // (args.days * 24)
        small = home / "small" / "predictions"
        write_log(small, "s", end - timedelta(hours=1), end, per_hour, segments_per_hour=args.small_files)
        one = home / "one" / "predictions"
        write_log(one, "s", end - timedelta(hours=1), end, per_hour)
        small_log = PredictionLog(Settings(home=small.parent))
        one_log = PredictionLog(Settings(home=one.parent))
        hour = (end - timedelta(hours=1), end)
        results["small_files"] = {
            "rows": per_hour,
            "segments": args.small_files,
            "read_one_segment": bench(args.runs, lambda: len(one_log.read("s", *hour))),
            "read_small_segments": bench(args.runs, lambda: len(small_log.read("s", *hour))),
            "compact_s": timed_once(lambda: small_log.compact(now=end + timedelta(hours=1))),
            "read_after_compaction": bench(args.runs, lambda: len(small_log.read("s", *hour))),
        }
    results["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.keep is None:
        shutil.rmtree(home, ignore_errors=True)


def write_log(
    root: Path, model: str, start: datetime, end: datetime, rows: int, *, segments_per_hour: int = 1
) -> None:
    """``rows`` predictions spread evenly over the hours in ``[start, end)``, in the log's layout."""
    rng = np.random.default_rng(0)
    hours = int((end - start).total_seconds() // 3600)
    per_segment = max(rows // (hours * segments_per_hour), 1)
    hour_us = 3_600_000_000
    segment_us = hour_us // segments_per_hour
    number = 0
    for h in range(hours):
        at_hour = start + timedelta(hours=h)
        folder = root / f"model={model}" / f"date={at_hour:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        base = int(at_hour.timestamp()) * 1_000_000
        for s in range(segments_per_hour):
            micros = np.sort(rng.integers(0, segment_us, per_segment)) + base + s * segment_us
            proba = rng.random(per_segment)
            columns: dict[str, Any] = {
                "prediction_id": pa.array([f"{number:024x}{i:08x}" for i in range(per_segment)], pa.string()),
                "version": pa.array(np.full(per_segment, 1, np.int32)),
                "at": pa.array(micros).cast(pa.timestamp("us", tz="UTC")),
                "latency_ms": pa.array(rng.random(per_segment).astype(np.float32)),
                "job_id": pa.nulls(per_segment, pa.string()),
            }
            for name in INPUTS:
                columns[f"in.{name}"] = rng.normal(size=per_segment)
            columns["out.prediction"] = (proba > 0.5).astype(np.int64)
            columns["out.proba_0"] = 1 - proba
            columns["out.proba_1"] = proba
            pq.write_table(pa.table(columns), folder / f"{at_hour:%H}-{base // 1000}-1-{number}.parquet")
            number += 1


def hourly_pyarrow(root: Path, model: str, start: datetime, end: datetime) -> int:
    """Rows, mean ``in.f0`` and mean ``out.proba_1`` per hour over ``[start, end)``."""
    dataset = ds.dataset(root / f"model={model}", format="parquet", partitioning="hive")
    at = ds.field("at")
    table = dataset.to_table(
        columns=["at", "in.f0", "out.proba_1"],
        filter=(at >= pa.scalar(start, pa.timestamp("us", tz="UTC")))
        & (at < pa.scalar(end, pa.timestamp("us", tz="UTC"))),
    )
    hour = pc.floor_temporal(table.column("at"), unit="hour")
    grouped = (
        pa.table({"hour": hour, "x": table.column("in.f0"), "p": table.column("out.proba_1")})
        .group_by("hour")
        .aggregate([("x", "count"), ("x", "mean"), ("p", "mean")])
    )
    return int(grouped.num_rows)


def hourly_duckdb(root: Path, model: str, start: datetime, end: datetime) -> int:
    import duckdb

    query = f"""
        SELECT date_trunc('hour', "at") AS hour, count(*), avg("in.f0"), avg("out.proba_1")
        FROM read_parquet('{root}/model={model}/*/*.parquet', hive_partitioning = true)
        WHERE "at" >= {_sql_time(start)} AND "at" < {_sql_time(end)} GROUP BY 1
    """
    con = duckdb.connect()
    con.execute("SET threads = 2")  # the machine's cores, as pyarrow's default
    return len(con.execute(query).fetchall())


def window_duckdb(root: Path, model: str, start: datetime, end: datetime) -> int:
    import duckdb

    days = ",".join(f"'{(start + timedelta(days=d)):%Y-%m-%d}'" for d in range((end - start).days + 2))
    query = f"""
        SELECT * FROM read_parquet('{root}/model={model}/*/*.parquet', hive_partitioning = true)
        WHERE CAST(date AS VARCHAR) IN ({days}) AND "at" >= {_sql_time(start)} AND "at" < {_sql_time(end)}
        ORDER BY "at"
    """
    con = duckdb.connect()
    con.execute("SET threads = 2")
    return len(con.sql(query).to_arrow_table().to_pandas())  # the same pandas frame as read()


def _sql_time(at: datetime) -> str:
    return f"TIMESTAMPTZ '{at.astimezone(UTC).isoformat(sep=' ')}'"


def bench(runs: int, call: Callable[[], int]) -> dict[str, float]:
    times, out = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - started)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "result": out}


def timed_once(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
