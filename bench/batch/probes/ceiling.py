"""This machine's ceiling for 2 workers, without liveml: the same rf ``predict_proba`` work (10 times 100k
rows of rows-1m.parquet) in one process, then split over two processes started together; no I/O is timed.
wall(1) ÷ wall(2) is the most any 2-worker engine can give here.

usage: OMP_NUM_THREADS=1 flock /tmp/liveml-bench.lock .venv/bin/python bench/batch/probes/ceiling.py [DATA_DIR]
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from typing import Any

import joblib
import pyarrow.parquet as pq

DATA = sys.argv[1] if len(sys.argv) > 1 else "/tmp/liveml-batch-bench"


def work(chunks: int, ready: Any, go: Any, done: Any) -> None:
    model = joblib.load(f"{DATA}/rf.joblib")
    rows = pq.read_table(f"{DATA}/rows-1m.parquet").slice(0, 100_000).to_pandas()
    x = rows[list(model.feature_names_in_)]
    ready.put(1)
    go.wait()
    started = time.perf_counter()
    for _ in range(chunks):
        model.predict_proba(x)
    done.put(time.perf_counter() - started)


def main() -> None:
    ctx = mp.get_context("fork")
    for round_ in range(1, 4):
        walls = {}
        for procs in (1, 2):
            ready, done, go = ctx.Queue(), ctx.Queue(), ctx.Event()
            workers = [ctx.Process(target=work, args=(10 // procs, ready, go, done)) for _ in range(procs)]
            for w in workers:
                w.start()
            for _ in workers:
                ready.get()
            go.set()
            walls[procs] = max(done.get() for _ in workers)
            for w in workers:
                w.join()
        print(
            f"round {round_}: 1 process {walls[1]:.2f} s, 2 processes {walls[2]:.2f} s, {walls[1] / walls[2]:.2f}x"
        )


if __name__ == "__main__":
    main()
