"""Batch-predictions benchmark: liveml `batch run` beside the floor (bench/batch/floor.py) and the peers.

Runs every case --repeat times (median reported) under `/usr/bin/time -v`, while a sampler thread
(psutil, every 0.1 s) sums the RSS and the PSS of the whole process tree (parent + pool/Dask/server children) and
keeps the peak sum and the largest single process. Writes bench/results/batch-<stamp>/results.json
(after every case) and report.md. Data and models come from make_data.py (DATA_DIR).

usage: .venv/bin/python bench/batch/run.py [--suites speed,memory,dask,peers] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from measure import THREAD_ENV, machine, measure  # bench/batch/measure.py

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VENV = Path(sys.executable).parent
LIVEML = str(VENV / "liveml")
PY = sys.executable
PEERS = Path(os.environ.get("PEER_VENVS", Path.home() / ".cache/peer-venvs"))


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.data = Path(args.data_dir)
        self.home = self.data / "home"
        self.out = (
            Path(args.results)
            if args.results
            else ROOT / "bench/results" / f"batch-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        self.out.mkdir(parents=True, exist_ok=True)
        self.scratch = Path(args.scratch)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.results: dict = {"machine": machine(), "repeat": args.repeat, "cases": {}}
        previous = self.out / "results.json"
        if previous.exists():  # continue a results folder: earlier cases are kept, same-named ones replaced
            old = json.loads(previous.read_text())
            self.results["cases"] = old.get("cases", {})
            self.results["earlier_machine"] = old.get("machine")
            self.results["loadavg_after"] = old.get("loadavg_after", {})
        self.env = {"LIVEML_HOME": str(self.home)}

    def save(self) -> None:
        (self.out / "results.json").write_text(json.dumps(self.results, indent=2))

    def case(
        self,
        name: str,
        rows: int,
        cmd: list[str],
        *,
        env: dict | None = None,
        repeat: int | None = None,
        before=None,
        extra_pids=None,
        meta: dict | None = None,
    ) -> dict:
        if name in self.a.skip:
            print(f"  {name}: skipped (--skip)", flush=True)
            return self.results["cases"].get(name, {})
        runs = []
        for i in range(repeat or self.a.repeat):
            if before:
                before()
            r = measure(cmd, {**self.env, **(env or {})}, extra_pids)
            r["rows_per_s"] = rows / r["wall_s"]
            runs.append(r)
            print(
                f"  {name} #{i + 1}: rc={r['rc']} {r['wall_s']:.2f}s {r['rows_per_s']:,.0f} rows/s "
                f"maxrss={r.get('time_maxrss_mib', 0):.0f}MiB tree={r['tree_peak_rss_mib']:.0f}MiB "
                f"pss={r['tree_peak_pss_mib']:.0f}MiB",
                flush=True,
            )
            if r["rc"] != 0:
                print(r.get("stderr_tail", ""), flush=True)
                break
        ok = [r for r in runs if r["rc"] == 0]
        summary = {"cmd": " ".join(cmd), "rows": rows, "runs": runs, **(meta or {})}
        if ok:
            for key in (
                "wall_s",
                "rows_per_s",
                "time_maxrss_mib",
                "tree_peak_rss_mib",
                "tree_peak_pss_mib",
                "largest_proc_rss_mib",
                "cpu_s",
            ):
                vals = [r[key] for r in ok if key in r]
                if vals:
                    summary[f"median_{key}"] = statistics.median(vals)
                    summary[f"min_{key}"] = min(vals)
                    summary[f"max_{key}"] = max(vals)
        self.results["cases"][name] = summary
        self.save()
        return summary

    def group(self, specs: list[tuple], repeat: int | None = None) -> None:
        """Run several cases interleaved (round 1 of each, then round 2 of each, ...), so a floor and the
        liveml runs it is compared with see the same background load."""
        runs: dict[str, list] = {s[0]: [] for s in specs}
        for i in range(repeat or self.a.repeat):
            for name, rows, cmd, kw in specs:
                if kw.get("before"):
                    kw["before"]()
                r = measure(
                    cmd,
                    {**self.env, **kw.get("env", {})},
                    kw.get("extra_pids"),
                    interval=getattr(self.a, "sample_interval", 0.1),
                )
                r["rows_per_s"] = rows / r["wall_s"]
                r["round"] = i + 1
                runs[name].append(r)
                print(
                    f"  {name} #{i + 1}: rc={r['rc']} {r['wall_s']:.2f}s {r['rows_per_s']:,.0f} rows/s "
                    f"cpu={r.get('cpu_s', 0):.1f}s maxrss={r.get('time_maxrss_mib', 0):.0f}MiB "
                    f"pss={r['tree_peak_pss_mib']:.0f}MiB",
                    flush=True,
                )
                if r["rc"] != 0:
                    print(r.get("stderr_tail", ""), flush=True)
                self.summarize(name, rows, cmd, runs[name], kw.get("meta"))

    def summarize(self, name: str, rows: int, cmd: list[str], runs: list[dict], meta: dict | None) -> dict:
        ok = [r for r in runs if r["rc"] == 0]
        summary = {"cmd": " ".join(cmd), "rows": rows, "runs": runs, **(meta or {})}
        for key in (
            "wall_s",
            "rows_per_s",
            "time_maxrss_mib",
            "tree_peak_rss_mib",
            "tree_peak_pss_mib",
            "largest_proc_rss_mib",
            "cpu_s",
        ):
            vals = [r[key] for r in ok if key in r]
            if vals:
                summary[f"median_{key}"] = statistics.median(vals)
                summary[f"min_{key}"] = min(vals)
                summary[f"max_{key}"] = max(vals)
        self.results["cases"][name] = summary
        self.save()
        return summary

    # -- helpers ------------------------------------------------------------------------
    def liveml(self, model: str, inp: str, out: str, *extra: str) -> list[str]:
        return [LIVEML, "batch", "run", model, "--input", inp, "--output", out, "--keep", "id", *extra]

    def floor(self, model: str, inp: str, out: str, *extra: str) -> list[str]:
        return [PY, str(HERE / "floor.py"), str(self.data / f"{model}.joblib"), inp, out, *extra]

    def sliced(self, name: str, rows: int, source: str = "rows-2m.parquet", row_group: int = 500_000) -> Path:
        """``DATA_DIR/name``: the first ``rows`` rows of ``source``, in row groups of ``row_group`` (made once)."""
        path = self.data / name
        if not path.exists():
            import pyarrow.parquet as pq

            src = pq.ParquetFile(self.data / source)
            with pq.ParquetWriter(path, src.schema_arrow) as writer:
                left = rows
                for batch in src.iter_batches(batch_size=row_group):
                    writer.write_batch(batch.slice(0, left), row_group_size=row_group)
                    left -= min(left, batch.num_rows)
                    if not left:
                        break
        return path

    def clean(self, *paths: Path):
        def run() -> None:
            for p in paths:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
            # staged parts of earlier jobs are removed by liveml on success; drop leftovers of failures
            shutil.rmtree(self.home / "jobs", ignore_errors=True)

        return run

    # -- suites -------------------------------------------------------------------------
    def speed(self) -> None:
        print("== speed: 2M rows Parquet, logreg, local engine vs floor", flush=True)
        pq2 = str(self.data / "rows-2m.parquet")
        o = self.scratch / "out.parquet"
        c = self.clean(o)
        m = "logreg"
        self.case(f"floor/{m}/parquet-2m", 2_000_000, self.floor(m, pq2, str(o)), before=c)
        for variant in (m, f"{m}-sk"):
            for w in (1, 2):
                self.case(
                    f"liveml/{variant}/parquet-2m/w{w}",
                    2_000_000,
                    self.liveml(variant, pq2, str(o), "--workers", str(w)),
                    before=c,
                    meta={"workers": w},
                )

    def speed_rf(self) -> None:
        print("== speed_rf: 1M rows Parquet, rf, local engine vs floor (interleaved rounds)", flush=True)
        pq1 = self.sliced("rows-1m.parquet", 1_000_000)
        o = self.scratch / "out.parquet"
        c = self.clean(o)
        specs = [("floor/rf/parquet-1m", 1_000_000, self.floor("rf", str(pq1), str(o)), {"before": c})]
        for variant in ("rf", "rf-sk"):
            for w in (1, 2):
                specs.append(
                    (
                        f"liveml/{variant}/parquet-1m/w{w}",
                        1_000_000,
                        self.liveml(variant, str(pq1), str(o), "--workers", str(w)),
                        {"before": c, "meta": {"workers": w}},
                    )
                )
        self.group(specs)

    def speed_log(self) -> None:
        print(
            "== speed_log: logreg 2M Parquet, prediction log on (default) vs off, interleaved with the floor",
            flush=True,
        )
        pq2 = str(self.data / "rows-2m.parquet")
        o = self.scratch / "out.parquet"
        c = self.clean(o)
        off = {"LIVEML_LOG_PREDICTIONS": "false"}
        self.group(
            [
                ("floor/logreg/parquet-2m", 2_000_000, self.floor("logreg", pq2, str(o)), {"before": c}),
                (
                    "liveml/logreg-sk/parquet-2m/w1",
                    2_000_000,
                    self.liveml("logreg-sk", pq2, str(o)),
                    {"before": c, "meta": {"workers": 1, "prediction_log": "on (default)"}},
                ),
                (
                    "nolog/logreg-sk/parquet-2m/w1",
                    2_000_000,
                    self.liveml("logreg-sk", pq2, str(o)),
                    {"before": c, "env": off, "meta": {"workers": 1, "prediction_log": "off"}},
                ),
                (
                    "nolog/logreg-sk/parquet-2m/w2",
                    2_000_000,
                    self.liveml("logreg-sk", pq2, str(o), "--workers", "2"),
                    {"before": c, "env": off, "meta": {"workers": 2, "prediction_log": "off"}},
                ),
            ]
        )

    def speed_more(self) -> None:
        print("== speed_more: --proba and CSV input (logreg, 2M rows)", flush=True)
        pq2 = str(self.data / "rows-2m.parquet")
        csv2 = str(self.data / "rows-2m.csv")
        o = self.scratch / "out.parquet"
        c = self.clean(o)
        self.case(
            "floor/logreg/parquet-2m/proba", 2_000_000, self.floor("logreg", pq2, str(o), "--proba"), before=c
        )
        self.case(
            "liveml/logreg-sk/parquet-2m/w1/proba",
            2_000_000,
            self.liveml("logreg-sk", pq2, str(o), "--proba"),
            before=c,
            meta={"workers": 1},
        )
        self.case("floor/logreg/csv-2m", 2_000_000, self.floor("logreg", csv2, str(o)), before=c)
        self.case(
            "liveml/logreg-sk/csv-2m/w1",
            2_000_000,
            self.liveml("logreg-sk", csv2, str(o)),
            before=c,
            meta={"workers": 1},
        )

    def startup(self) -> None:
        print("== startup: fixed cost, 1000 rows (one chunk)", flush=True)
        tiny = self.sliced("rows-1k.parquet", 1000)
        o = self.scratch / "out1k.parquet"
        c = self.clean(o)
        for m in ("logreg", "rf"):
            self.case(f"startup/floor/{m}/1k", 1000, self.floor(m, str(tiny), str(o)), before=c)
            for variant in (m, f"{m}-sk"):
                self.case(
                    f"startup/liveml/{variant}/1k", 1000, self.liveml(variant, str(tiny), str(o)), before=c
                )

    def memory(self) -> None:
        print("== memory: 10M rows x 20 columns, default chunk rows", flush=True)
        pq10 = str(self.data / "rows-10m.parquet")
        o = self.scratch / "out10.parquet"
        c = self.clean(o)
        for w in (1, 2):
            self.case(
                f"memory/liveml/logreg-sk/parquet-10m/w{w}",
                10_000_000,
                self.liveml("logreg-sk", pq10, str(o), "--workers", str(w)),
                before=c,
                meta={"workers": w},
            )
        self.case(
            "memory/floor/logreg/parquet-10m",
            10_000_000,
            self.floor("logreg", pq10, str(o)),
            before=c,
            repeat=1,
        )
        csv10 = self.data / "rows-10m.csv"
        if csv10.exists():
            self.case(
                "memory/liveml/logreg-sk/csv-10m/w1",
                10_000_000,
                self.liveml("logreg-sk", str(csv10), str(o)),
                before=c,
                repeat=1,
            )

    def dask(self) -> None:
        print("== dask: scaling and per-chunk overhead", flush=True)
        o = self.scratch / "outd.parquet"
        c = self.clean(o)
        pq1 = str(self.sliced("rows-1m.parquet", 1_000_000))
        for w in (1, 2):
            self.case(
                f"dask/rf-sk/parquet-1m/w{w}",
                1_000_000,
                self.liveml("rf-sk", pq1, str(o), "--engine", "dask", "--workers", str(w)),
                before=c,
                meta={"workers": w},
            )
        # per-chunk overhead: 200k rows in 1000 chunks of 200 vs 2 chunks of 100k
        small = str(self.data / "rows-200k.parquet")
        for chunk in (200, 100_000):
            for engine, w in (("local", 1), ("dask", 1)):
                self.case(
                    f"overhead/logreg-sk/200k/chunk{chunk}/{engine}-w{w}",
                    200_000,
                    self.liveml(
                        "logreg-sk",
                        small,
                        str(o),
                        "--engine",
                        engine,
                        "--workers",
                        str(w),
                        "--chunk-rows",
                        str(chunk),
                    ),
                    before=c,
                    meta={"chunks": -(-200_000 // chunk), "workers": w, "engine": engine},
                )
        # an external cluster: `dask scheduler` + 2 x `dask worker --nworkers 1 --nthreads 1`
        port = 8786
        dask_bin = str(VENV / "dask")
        env = {**os.environ, **THREAD_ENV, **self.env}
        procs = [
            subprocess.Popen(
                [
                    dask_bin,
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--dashboard-address",
                    ":0",
                    "--no-show",
                ],
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        ]
        time.sleep(4)
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        dask_bin,
                        "worker",
                        f"tcp://127.0.0.1:{port}",
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                    ],
                    env=env,
                    start_new_session=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(6)
        try:
            self.case(
                "dask/rf-sk/parquet-1m/external-2workers",
                1_000_000,
                self.liveml(
                    "rf-sk", pq1, str(o), "--engine", "dask", "--scheduler", f"tcp://127.0.0.1:{port}"
                ),
                before=c,
                extra_pids=[p.pid for p in procs],
                meta={"workers": 2, "note": "scheduler and workers started beforehand (warm after run 1)"},
            )
        finally:
            stop(procs)

    def peers(self) -> None:
        print("== peers: 1M rows CSV", flush=True)
        csv1 = str(self.data / "rows-1m.csv")
        o = self.scratch / "outp.parquet"
        c = self.clean(o)
        mlflow = PEERS / "mlflow/bin"
        mlserver = PEERS / "mlserver/bin"
        for m in ("logreg", "rf"):
            n = None if m == "logreg" else 1  # time budget: the forest once per target
            self.case(f"peers/floor/{m}/csv-1m", 1_000_000, self.floor(m, csv1, str(o)), before=c, repeat=n)
            for variant in (m, f"{m}-sk"):
                self.case(
                    f"peers/liveml/{variant}/csv-1m/w1",
                    1_000_000,
                    self.liveml(variant, csv1, str(o)),
                    before=c,
                    repeat=n,
                    meta={"workers": 1},
                )
            if (mlflow / "mlflow").exists():
                mdir = self.data / f"mlflow-{m}"
                if not mdir.exists():
                    subprocess.run(
                        [
                            str(mlflow / "python"),
                            str(HERE / "peers/save_mlflow.py"),
                            str(self.data / f"{m}.joblib"),
                            str(mdir),
                            str(self.data / "rows-200k.parquet"),
                        ],
                        check=True,
                        env={**os.environ, **THREAD_ENV},
                    )
                jo = self.scratch / "mlflow-out.json"
                self.case(
                    f"peers/mlflow/{m}/csv-1m",
                    1_000_000,
                    [
                        str(mlflow / "mlflow"),
                        "models",
                        "predict",
                        "-m",
                        str(mdir),
                        "-i",
                        csv1,
                        "-t",
                        "csv",
                        "-o",
                        str(jo),
                        "--env-manager",
                        "local",
                    ],
                    env={"PATH": f"{mlflow}:{os.environ['PATH']}"},
                    before=self.clean(jo),
                    repeat=n,
                )
            if (mlserver / "mlserver").exists():
                self.mlserver_case(m, csv1, mlserver, n)

    def mlserver_case(self, m: str, csv1: str, bindir: Path, repeat: int | None = None) -> None:
        reqs = self.data / "mlserver-1m-1000rows.jsonl"
        if not reqs.exists():
            subprocess.run([PY, str(HERE / "peers/mlserver_requests.py"), csv1, str(reqs)], check=True)
        repo = self.scratch / f"mlserver-{m}"
        shutil.rmtree(repo, ignore_errors=True)
        subprocess.run(
            [str(HERE / "peers/mlserver_repo.sh"), str(self.data / f"{m}.joblib"), m, str(repo)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        env = {**os.environ, **THREAD_ENV, "PATH": f"{bindir}:{os.environ['PATH']}"}
        log = open(self.scratch / f"mlserver-{m}.log", "w")
        t0 = time.perf_counter()
        server = subprocess.Popen(
            [str(bindir / "mlserver"), "start", str(repo)],
            env=env,
            cwd=str(repo),
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:8191/v2/models/{m}/ready", timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            else:
                raise RuntimeError("MLServer did not become ready; see " + log.name)
            ready = time.perf_counter() - t0
            jo = self.scratch / "mlserver-out.jsonl"
            self.case(
                f"peers/mlserver/{m}/csv-1m",
                1_000_000,
                [
                    str(bindir / "mlserver"),
                    "infer",
                    "-u",
                    "127.0.0.1:8191",
                    "-m",
                    m,
                    "-i",
                    str(reqs),
                    "-o",
                    str(jo),
                ],
                env={"PATH": env["PATH"]},
                before=self.clean(jo),
                extra_pids=[server.pid],
                repeat=repeat,
                meta={
                    "server_ready_s": ready,
                    "rows_per_request": 1000,
                    "note": "server started and warm before timing; wall = `mlserver infer` only; "
                    "requests pre-built from the CSV (not timed)",
                },
            )
        finally:
            stop([server])
            log.close()


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--suites", default="speed,speed_rf,speed_more,startup,memory,dask,peers")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "/tmp/liveml-batch-bench"))
    p.add_argument("--scratch", default="/tmp/liveml-batch-bench/scratch")
    p.add_argument(
        "--skip",
        default="",
        type=lambda v: set(filter(None, v.split(","))),
        help="comma-separated case names to leave out (e.g. ones already in --results)",
    )
    p.add_argument("--results", default=None, help="results folder (default bench/results/batch-<stamp>)")
    a = p.parse_args()
    b = Bench(a)
    print(f"results in {b.out}", flush=True)
    for s in a.suites.split(","):
        try:
            getattr(b, s)()
        except Exception as exc:  # one suite failing must not lose the others
            print(f"suite {s} failed: {exc!r}", flush=True)
            b.results.setdefault("suite_errors", {})[s] = repr(exc)
        b.results.setdefault("loadavg_after", {})[s] = os.getloadavg()
        b.save()
    subprocess.run([PY, str(HERE / "report.py"), str(b.out)], check=False)


if __name__ == "__main__":
    main()
