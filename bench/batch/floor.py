"""The floor: the minimal script a user would write to score a file with the model, no platform.

Reads INPUT in chunks of --chunk-rows with pyarrow (Parquet: ParquetFile.iter_batches; CSV: the streaming
pyarrow.csv reader, re-cut into chunks of exactly --chunk-rows), calls the sklearn model's predict (and
predict_proba with --proba) on the feature columns as a DataFrame (the model was fitted on one), and
writes id + prediction (+ proba_<class>) to OUTPUT with a pyarrow ParquetWriter. One process.

usage: floor.py MODEL.joblib INPUT OUTPUT.parquet [--chunk-rows N] [--proba] [--keep id]
Prints one JSON line: rows, seconds (from start of main, after interpreter start), rows_per_s.
"""

from __future__ import annotations

import argparse
import json
import time

t0 = time.perf_counter()

import joblib  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def batches(path: str, chunk_rows: int):
    if path.endswith(".parquet"):
        yield from pq.ParquetFile(path).iter_batches(batch_size=chunk_rows)
        return
    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=64 << 20))
    pending, held = [], 0
    for batch in reader:
        pending.append(batch)
        held += batch.num_rows
        while held >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield from table.slice(0, chunk_rows).combine_chunks().to_batches()
            rest = table.slice(chunk_rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield from pa.Table.from_batches(pending).combine_chunks().to_batches()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--chunk-rows", type=int, default=100_000)
    p.add_argument("--proba", action="store_true")
    p.add_argument("--keep", default="id")
    a = p.parse_args()
    model = joblib.load(a.model)
    features = list(model.feature_names_in_)
    keep = [c for c in a.keep.split(",") if c]
    writer = None
    rows = 0
    for batch in batches(a.input, a.chunk_rows):
        frame = batch.to_pandas()
        x = frame[features]
        cols = {c: frame[c].to_numpy() for c in keep}
        cols["prediction"] = model.predict(x)
        if a.proba:
            proba = model.predict_proba(x)
            for i, c in enumerate(model.classes_):
                cols[f"proba_{c}"] = proba[:, i]
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(a.output, table.schema)
        writer.write_table(table)
        rows += len(frame)
    if writer is not None:
        writer.close()
    seconds = time.perf_counter() - t0
    print(json.dumps({"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}))


if __name__ == "__main__":
    main()
