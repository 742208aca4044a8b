"""Fixed, seeded inputs and models for the batch benchmark (data goes to /tmp, never the repo).

Writes into DATA_DIR (default /tmp/liveml-batch-bench):
  rows-2m.parquet, rows-2m.csv, rows-1m.csv, rows-10m.parquet (+ rows-10m.csv with --csv-10m)
  logreg.joblib  LogisticRegression (light)
  rf.joblib      RandomForestClassifier, 100 trees, max_depth 10, n_jobs=None (single-threaded predict)
Columns: id (int64) then f0..f19 (float64). Models are fitted on a DataFrame with those names.
Labels come from a fixed non-linear rule, so both models have something real to learn.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

N_FEATURES = 20
FEATURES = [f"f{i}" for i in range(N_FEATURES)]
BLOCK = 500_000  # rows generated / written at a time (bounded memory while writing 10M rows)


def block(start: int, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, start])
    x = rng.standard_normal((n, N_FEATURES))
    frame = pd.DataFrame(x, columns=FEATURES)
    frame.insert(0, "id", np.arange(start, start + n, dtype=np.int64))
    return frame


def labels(frame: pd.DataFrame, seed: int = 7) -> np.ndarray:
    w = np.random.default_rng(seed).standard_normal(N_FEATURES)
    x = frame[FEATURES].to_numpy()
    score = x @ w + 1.5 * np.sin(x[:, 0] * 2) + x[:, 1] * x[:, 2] - 0.5 * np.abs(x[:, 3])
    noise = np.random.default_rng(seed + 1).standard_normal(len(x))
    return (score + noise > 0).astype(np.int64)


def write(path: Path, rows: int, fmt: str, seed: int = 42) -> None:
    if path.exists():
        print(f"exists: {path}")
        return
    t = time.perf_counter()
    tmp = path.with_name(path.name + ".tmp")
    writer = None
    with open(tmp, "wb") as handle:
        for start in range(0, rows, BLOCK):
            table = pa.Table.from_pandas(block(start, min(BLOCK, rows - start), seed), preserve_index=False)
            if fmt == "parquet":
                if writer is None:
                    writer = pq.ParquetWriter(handle, table.schema)
                writer.write_table(table, row_group_size=BLOCK)
            else:
                pacsv.write_csv(table, handle, write_options=pacsv.WriteOptions(include_header=start == 0))
        if writer is not None:
            writer.close()
    os.replace(tmp, path)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f}s")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "/tmp/liveml-batch-bench"))
    p.add_argument("--csv-10m", action="store_true", help="also write the 10M-row CSV (~4 GB)")
    a = p.parse_args()
    d = Path(a.data_dir)
    d.mkdir(parents=True, exist_ok=True)

    # The data files: rows [0, n) of one seeded stream, so rows-1m.csv == first 1M rows of rows-2m.*
    write(d / "rows-2m.parquet", 2_000_000, "parquet")
    write(d / "rows-2m.csv", 2_000_000, "csv")
    write(d / "rows-1m.csv", 1_000_000, "csv")
    write(d / "rows-10m.parquet", 10_000_000, "parquet")
    if a.csv_10m:
        write(d / "rows-10m.csv", 10_000_000, "csv")

    # Models: trained on a separate seeded sample (seed 1), 200k rows.
    train = block(0, 200_000, seed=1)
    y = labels(train)
    x = train[FEATURES]
    info = {}
    if not (d / "logreg.joblib").exists():
        m = LogisticRegression(max_iter=1000).fit(x, y)
        joblib.dump(m, d / "logreg.joblib")
    if not (d / "rf.joblib").exists():
        m = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0, n_jobs=2).fit(x, y)
        m.n_jobs = None  # predict single-threaded, as the peer harness's rf
        joblib.dump(m, d / "rf.joblib")
    test = block(10_000_000, 50_000, seed=3)
    for name in ("logreg", "rf"):
        m = joblib.load(d / f"{name}.joblib")
        info[name] = {
            "type": type(m).__name__,
            "holdout_accuracy": float((m.predict(test[FEATURES]) == labels(test)).mean()),
        }
    # a few rows as an example / reference for `liveml push`
    block(0, 1000, seed=42).drop(columns=["id"]).to_parquet(d / "reference.parquet", index=False)
    (d / "models.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info))


if __name__ == "__main__":
    main()
