"""Why a 100k-row rf chunk scores slower in a Dask worker than in one process: the same ``predict_proba``
(rows 0-100k of rows-1m.parquet, rf.joblib) timed per call in each context, interleaved over rounds.

Contexts: ``main`` (this process's main thread), ``thread`` (a worker thread, as a Dask worker runs its
tasks), ``trim`` (a child process with ``MALLOC_TRIM_THRESHOLD_=65536``, what Dask's nanny sets for its
workers: setting it turns off glibc's adaptive mmap threshold, so every large array is a fresh mmap),
``dask`` (a task on a one-worker LocalCluster, timed inside the task), ``dask-notrim`` (the same with
the nanny's ``MALLOC_TRIM_THRESHOLD_`` left unset), ``nommap`` / ``dask-nommap`` (mmap threshold fixed at
32 MiB and trim threshold 256 MiB: no fresh pages per call), ``dask-nommap-noprofile`` (and Dask's
statistical profiler off), ``child-thread`` (a child process, scoring in a worker thread).

usage: OMP_NUM_THREADS=1 flock /tmp/liveml-bench.lock .venv/bin/python bench/batch/probes/dask_chunk.py
           [--data-dir /tmp/liveml-batch-bench] [--rounds 3] [--calls 5] [--contexts main,thread,trim,dask]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def _load(data: str) -> tuple[Any, Any]:
    import joblib
    import pyarrow.parquet as pq

    model = joblib.load(f"{data}/rf.joblib")
    frame = pq.read_table(f"{data}/rows-1m.parquet").slice(0, 100_000).to_pandas()
    return model, frame[list(model.feature_names_in_)]


def timed_calls(data: str, calls: int, mallopt: bool = False) -> list[tuple[float, float, int]]:
    """(wall, this thread's CPU, its minor page faults) per ``predict_proba`` call, after one warm-up call;
    the model and rows loaded once. CPU time leaves out the time the thread waited for a core or the GIL.
    ``mallopt``: fix glibc's mmap threshold at 32 MiB and its trim threshold (``PROBE_TRIM_MIB``, 64 MiB)
    first, here."""
    import resource

    if mallopt:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        trim = int(os.environ.get("PROBE_TRIM_MIB", "64")) << 20
        assert libc.mallopt(-3, 1 << 25) == 1 and libc.mallopt(-1, trim) == 1  # M_MMAP_/M_TRIM_THRESHOLD

    model, x = _load(data)
    model.predict_proba(x)
    out = []
    for _ in range(calls):
        faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        started, cpu = time.perf_counter(), time.thread_time()
        model.predict_proba(x)
        wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
        out.append((wall, cpu, resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - faults))
    return out


def _child(data: str, calls: int, env: dict[str, str]) -> list[tuple[float, float, int]]:
    code = (
        "import json,os,sys; sys.path.insert(0, sys.argv[1]); import dask_chunk as d; "
        "from concurrent.futures import ThreadPoolExecutor as T; a = (sys.argv[2], int(sys.argv[3])); "
        "print(json.dumps(T(1).submit(d.timed_calls, *a).result() if os.environ.get('PROBE_THREAD') "
        "else d.timed_calls(*a)))"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        [sys.executable, "-c", code, here, data, str(calls)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _dask(
    data: str, calls: int, trim: bool, nommap: bool = False, profile: bool = True, mallopt: bool = False
) -> list[tuple[float, float, int]]:
    environ: dict[str, Any] = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
    if trim:
        environ["MALLOC_TRIM_THRESHOLD_"] = 65536
    if nommap:
        environ.update(MALLOC_MMAP_THRESHOLD_=1 << 25, MALLOC_TRIM_THRESHOLD_=1 << 28)
    here = os.path.dirname(os.path.abspath(__file__))
    config = {"distributed.nanny.pre-spawn-environ": environ, "distributed.worker.profile.enabled": profile}
    saved = dict(os.environ)  # the nanny writes its pre-spawn variables into this process's environment,
    for name in environ:  # and they would take precedence over the next context's configuration
        os.environ.pop(name, None)
    try:
        return _dask_task(data, calls, config, mallopt, here)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _dask_task(
    data: str, calls: int, config: dict[str, Any], mallopt: bool, here: str
) -> list[tuple[float, float, int]]:
    import dask
    from distributed import Client, LocalCluster

    with (
        dask.config.set(config),
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):

        def task(data: str, calls: int) -> list[tuple[float, float, int]]:
            sys.path.insert(0, here)
            import dask_chunk as d

            return d.timed_calls(data, calls, mallopt)

        return client.submit(task, data, calls, pure=False).result()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default="/tmp/liveml-batch-bench")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--contexts", default="main,thread,trim,dask,dask-notrim")
    a = p.parse_args()
    runs: dict[str, Any] = {
        "main": lambda: _child(a.data_dir, a.calls, {}),
        "thread": lambda: ThreadPoolExecutor(1).submit(timed_calls, a.data_dir, a.calls).result(),
        "trim": lambda: _child(a.data_dir, a.calls, {"MALLOC_TRIM_THRESHOLD_": "65536"}),
        "child-thread": lambda: _child(a.data_dir, a.calls, {"PROBE_THREAD": "1"}),
        "nommap": lambda: _child(
            a.data_dir,
            a.calls,
            {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 31)},
        ),
        "dask": lambda: _dask(a.data_dir, a.calls, trim=True),
        "dask-notrim": lambda: _dask(a.data_dir, a.calls, trim=False),
        "dask-nommap": lambda: _dask(a.data_dir, a.calls, trim=False, nommap=True),
        "dask-nommap-noprofile": lambda: _dask(a.data_dir, a.calls, trim=False, nommap=True, profile=False),
        "dask-mallopt": lambda: _dask(a.data_dir, a.calls, trim=True, mallopt=True),
        "thread-mallopt": lambda: (
            ThreadPoolExecutor(1).submit(timed_calls, a.data_dir, a.calls, True).result()
        ),
    }
    contexts = a.contexts.split(",")
    seen: dict[str, list[tuple[float, float, int]]] = {c: [] for c in contexts}
    for round_ in range(1, a.rounds + 1):
        for c in contexts:
            calls = [tuple(v) for v in runs[c]()]
            seen[c] += calls
            shown = " ".join(f"{w:.3f}/{t:.3f}/{f}" for w, t, f in calls)
            print(f"round {round_} {c:22s} wall/cpu/faults {shown}", flush=True)
    print("median per 100k-row predict_proba: wall s / thread CPU s / minor page faults")
    for c, v in seen.items():
        w, t, f = (statistics.median(x[i] for x in v) for i in range(3))
        print(f"  {c:22s} {w:.3f} / {t:.3f} / {f:.0f}")


if __name__ == "__main__":
    main()
