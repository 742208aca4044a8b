"""A/B rounds for the batch speed work: the floor, liveml as committed (BASE, another checkout) and liveml
as in this working tree, interleaved (round 1 of each, then round 2 ...) so that they see the same load.

usage: flock /tmp/liveml-bench.lock .venv/bin/python bench/batch/ab.py --base /tmp/liveml-base/src
           [--suites startup,logreg,rf,workers,cluster,large,decode,memory] [--logs default,0.1,0] [--repeat 3]
           [--large-codes base,new] [--large-engines local,dask]
           [--results bench/results/batch-ab-<stamp>]

BASE is a ``src`` folder (e.g. of ``git worktree add /tmp/liveml-base HEAD``), put first on PYTHONPATH for
the ``base/`` cases; ``new/`` cases run this checkout, or the ``src`` folder ``--new`` names. Both are
compiled to bytecode first, as installing a wheel does (this machine sets PYTHONDONTWRITEBYTECODE=1, which
otherwise makes every run compile liveml's modules again). Cases named ``.../log0.1`` and ``.../log0``
pass ``--log-sample`` (to base as well: BASE must have it, 8abd63a or later). The prediction log is emptied
before every run. Suites:

- ``startup``: 1,000 rows (one chunk), logreg-sk: the fixed cost of a command;
- ``logreg`` (2M rows, or ``--logreg-input``) and ``rf`` (1M rows), one worker, beside the floor, for each
  ``--logs`` rate;
- ``workers``: rf-sk 1M, local pool and Dask LocalCluster, 1 and 2 workers;
- ``cluster``: the same on Dask clusters started beforehand (``--scheduler``; one of 1 and one of 2
  single-threaded workers per code, kept for all rounds; the input as a ``file://`` URL, which the workers
  read themselves);
- ``large``: ``workers`` on 4M rows (``--large-rows``), for this checkout only (``--large-codes``), on
  ``--large-engines``;
- ``decode``: ``workers`` with logreg-sk on 10M rows, where reading the input is most of the work;
- ``memory``: 10M rows, logreg-sk, pool of 2 workers, every row logged (the most a job holds), once.

Besides results.json and report.md, ratios.md gives per-round ratios of rows/s (liveml ÷ the floor, 2 ÷ 1
workers): the two cases of a ratio ran back to back, so they saw the same load. Its CPU ratios use the
process tree's CPU as sampled (``tree_cpu_s``), not ``/usr/bin/time``'s, which leaves out processes the
command does not wait for (the workers a Dask fork server starts).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from run import HERE, PY, ROOT, THREAD_ENV, VENV, Bench  # bench/batch/run.py


class AB(Bench):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        previous = self.out / "results.json"  # a continued folder keeps its earlier pairs and loads
        old = json.loads(previous.read_text()) if previous.exists() else {}
        self.pairs: list[tuple[str, str]] = [tuple(p) for p in old.get("pairs", [])]  # rows/s x ÷ rows/s y
        self.results["loadavg_before_suite"] = old.get("loadavg_before_suite", {})
        self.codes = {"base": {"PYTHONPATH": self.a.base}, "new": self.new_env}
        for src in (self.a.base, self.a.new or str(ROOT / "src")):
            compileall.compile_dir(src, quiet=1)
        self.results["machine"]["bytecode"] = "compiled beforehand (compileall), as a wheel install does"
        self.results["machine"]["commits"] = {code: _commit(src) for code, src in self._srcs().items()}

    def _srcs(self) -> dict[str, str]:
        return {"base": self.a.base, "new": self.a.new or str(ROOT / "src")}

    @property
    def new_env(self) -> dict[str, str]:
        return {"PYTHONPATH": self.a.new} if self.a.new else {}

    def before(self, out: Path) -> Callable[[], None]:
        clean = self.clean(out)

        def run() -> None:
            clean()
            shutil.rmtree(self.home / "predictions", ignore_errors=True)

        return run

    @staticmethod
    def _log(rate: str) -> tuple[tuple[str, ...], str]:
        return ((), "") if rate == "default" else (("--log-sample", rate), f"/log{rate}")

    def specs(
        self,
        model: str,
        data: Path,
        rows: int,
        *,
        logs: tuple[str, ...],
        codes: tuple[str, ...] = ("base", "new"),
    ) -> list:
        o = self.scratch / "ab.parquet"
        c: Any = self.before(o)
        floor_model = model.removesuffix("-sk")
        floor = f"floor/{floor_model}/{data.stem}"
        out = [(floor, rows, self.floor(floor_model, str(data), str(o)), {"before": c})]
        for rate in logs:
            extra, suffix = self._log(rate)
            for code in codes:
                name = f"{code}/{model}/{data.stem}/w1{suffix}"
                env = self.codes[code]
                out.append(
                    (name, rows, self.liveml(model, str(data), str(o), *extra), {"before": c, "env": env})
                )
                self.pair(name, floor)
        return out

    def startup(self) -> None:
        print("== startup: 1,000 rows, logreg-sk, --log-sample 0: floor, base, new", flush=True)
        self.group(self.specs("logreg-sk", self.sliced("rows-1k.parquet", 1000), 1000, logs=("0",)))
        self.ratios()

    def logreg(self) -> None:
        data = self.data / self.a.logreg_input
        rows = pq.read_metadata(data).num_rows
        print(f"== logreg-sk {data.name}: floor, base, new (logs {self.a.logs})", flush=True)
        self.group(self.specs("logreg-sk", data, rows, logs=self.logs))
        self.ratios()

    def rf(self) -> None:
        print(f"== rf-sk 1M Parquet: floor, base, new (logs {self.a.logs})", flush=True)
        self.group(self.specs("rf-sk", self.sliced("rows-1m.parquet", 1_000_000), 1_000_000, logs=self.logs))
        self.ratios()

    @property
    def logs(self) -> tuple[str, ...]:
        return tuple(self.a.logs.split(","))

    def scaling(
        self,
        data: str,
        rows: int,
        label: str,
        engines: dict[str, Callable[[str, int], tuple[str, ...]]],
        codes: tuple[str, ...] = ("base", "new"),
        model: str = "rf-sk",
    ) -> None:
        """1 vs 2 workers, for each engine (its options for a code and a worker count) and code."""
        o = self.scratch / "abw.parquet"
        c: Any = self.before(o)
        specs = []
        for engine, options in engines.items():
            for code in codes:
                for rate in self.logs:
                    extra, suffix = self._log(rate)
                    names = [f"{code}/{engine}/{model}/{label}/w{w}{suffix}" for w in (1, 2)]
                    for w, name in zip((1, 2), names, strict=True):
                        cmd = self.liveml(model, data, str(o), *options(code, w), *extra)
                        kw = {"before": c, "env": self.codes[code], "meta": {"workers": w}}
                        specs.append((name, rows, cmd, kw))
                    self.pair(names[1], names[0])
        self.group(specs)
        self.ratios()

    LOCAL: dict[str, Callable[[str, int], tuple[str, ...]]] = {
        "local": lambda code, w: ("--workers", str(w)),
        "dask": lambda code, w: ("--engine", "dask", "--workers", str(w)),
    }

    def workers(self) -> None:
        print(f"== rf-sk 1M Parquet, 1 vs 2 workers: local pool and Dask LocalCluster (logs {self.a.logs})")
        data = str(self.sliced("rows-1m.parquet", 1_000_000))
        self.scaling(data, 1_000_000, "rows-1m", self.LOCAL)

    def cluster(self) -> None:
        print(f"== rf-sk 1M Parquet (file:// URL), Dask clusters started beforehand (logs {self.a.logs})")
        url = "file://" + str(self.sliced("rows-1m.parquet", 1_000_000))
        with self.clusters() as at:
            self.scaling(
                url,
                1_000_000,
                "rows-1m-url",
                {"scheduler": lambda code, w: ("--engine", "dask", "--scheduler", at[code][w])},
            )

    @contextmanager
    def clusters(self) -> Iterator[dict[str, dict[int, str]]]:
        """A `dask scheduler` with 1 and one with 2 `dask worker` processes (one thread each) per code, with
        that code first on PYTHONPATH (the workers run the code the client sends by reference)."""
        procs: list[subprocess.Popen] = []
        addresses: dict[str, dict[int, str]] = {}
        try:
            for code, env in self.codes.items():
                addresses[code] = {}
                for w in (1, 2):
                    file = self.scratch / f"scheduler-{code}-{w}.json"
                    file.unlink(missing_ok=True)
                    full = {**os.environ, **THREAD_ENV, **env}
                    dask = str(VENV / "dask")
                    common = {"env": full, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
                    procs.append(
                        subprocess.Popen(
                            [
                                dask,
                                "scheduler",
                                "--host",
                                "127.0.0.1",
                                "--port",
                                "0",
                                "--no-dashboard",
                                "--scheduler-file",
                                str(file),
                            ],
                            start_new_session=True,
                            **common,
                        )
                    )
                    for _ in range(w):
                        procs.append(
                            subprocess.Popen(
                                [
                                    dask,
                                    "worker",
                                    "--scheduler-file",
                                    str(file),
                                    "--nthreads",
                                    "1",
                                    "--no-dashboard",
                                    "--host",
                                    "127.0.0.1",
                                ],
                                start_new_session=True,
                                **common,
                            )
                        )
                    addresses[code][w] = _wait_for(file, w)
            yield addresses
        finally:
            for proc in reversed(procs):  # only the processes started here, each in its own session
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    def large(self) -> None:
        rows = self.a.large_rows
        print(
            f"== rf-sk {rows:,} rows, 1 vs 2 workers, {self.a.large_codes} (logs {self.a.logs})", flush=True
        )
        name = f"rows-{rows // 1_000_000}m.parquet"
        data = str(self.sliced(name, rows, source="rows-10m.parquet"))
        engines = {e: self.LOCAL[e] for e in self.a.large_engines.split(",")}
        self.scaling(data, rows, Path(name).stem, engines, codes=tuple(self.a.large_codes.split(",")))

    def decode(self) -> None:
        print(f"== logreg-sk 10M rows, 1 vs 2 workers: reading is most of the work (logs {self.a.logs})")
        data = str(self.data / "rows-10m.parquet")
        self.scaling(data, 10_000_000, "rows-10m", self.LOCAL, model="logreg-sk")

    def memory(self) -> None:
        print(
            "== memory: 10M rows, logreg-sk, pool of 2 workers, every row logged: base, new (once)",
            flush=True,
        )
        o = self.scratch / "abm.parquet"
        c: Any = self.before(o)
        data = str(self.data / "rows-10m.parquet")
        self.group(
            [
                (
                    f"{code}/memory/logreg-sk/rows-10m/w2",
                    10_000_000,
                    self.liveml("logreg-sk", data, str(o), "--workers", "2"),
                    {"before": c, "env": env, "meta": {"workers": 2}},
                )
                for code, env in self.codes.items()
            ],
            repeat=1,
        )

    def pair(self, x: str, y: str) -> None:
        if (x, y) not in self.pairs:
            self.pairs.append((x, y))
        self.results["pairs"] = self.pairs

    def ratios(self) -> None:
        """Per round (the cases of a pair ran back to back): rows/s of x ÷ rows/s of y, by wall and by CPU."""
        lines = [
            "| rows/s of ÷ rows/s of | per round (wall) | median | per round (CPU of the process tree, sampled) |",
            "|---|---|---:|---|",
        ]
        cases = self.results["cases"]
        for x, y in self.pairs:
            if x not in cases or y not in cases:
                continue
            rx = {r["round"]: r for r in cases[x]["runs"] if r["rc"] == 0}
            ry = {r["round"]: r for r in cases[y]["runs"] if r["rc"] == 0}
            both = sorted(rx.keys() & ry.keys())
            wall = [ry[i]["wall_s"] / rx[i]["wall_s"] for i in both]
            key = "tree_cpu_s" if all("tree_cpu_s" in r[i] for r in (rx, ry) for i in both) else "cpu_s"
            cpu = [ry[i][key] / rx[i][key] for i in both if key in rx[i] and key in ry[i]]
            if wall:
                lines.append(
                    f"| {x} ÷ {y} | {', '.join(f'{v:.2f}' for v in wall)} | {statistics.median(wall):.2f} "
                    f"| {', '.join(f'{v:.2f}' for v in cpu)} |"
                )
        self.results["ratios"] = lines
        (self.out / "ratios.md").write_text("\n".join(lines) + "\n")


def _wait_for(file: Path, workers: int, timeout: float = 120) -> str:
    """The scheduler's address once ``workers`` workers joined it."""
    from distributed import Client

    deadline = time.monotonic() + timeout
    while not file.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no scheduler file {file}")
        time.sleep(0.2)
    with Client(scheduler_file=str(file), timeout="30s") as client:
        client.wait_for_workers(workers, timeout=timeout)
        return str(client.scheduler.address)


def _commit(src: str) -> str:
    folder = Path(src).parent
    head = subprocess.run(
        ["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(folder), "status", "--porcelain", "--", "src"], capture_output=True, text=True
    )
    return head.stdout.strip() + (" + uncommitted changes in src" if dirty.stdout.strip() else "")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True, help="src folder of the code to compare with")
    p.add_argument("--new", default="", help="src folder for the new/ cases (default: this checkout)")
    p.add_argument("--suites", default="logreg,rf")
    p.add_argument(
        "--logs", default="default,0.1,0", help="prediction-log rates: default (the setting), or 0..1"
    )
    p.add_argument("--logreg-input", default="rows-2m.parquet", help="the logreg suite's input in DATA_DIR")
    p.add_argument("--large-rows", type=int, default=4_000_000)
    p.add_argument("--large-codes", default="new", help="base,new or new: who runs the large suite")
    p.add_argument("--large-engines", default="local,dask", help="the engines the large suite runs")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--sample-interval", type=float, default=0.1, help="seconds between samples of the process tree"
    )
    p.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "/tmp/liveml-batch-bench"))
    p.add_argument("--scratch", default="/tmp/liveml-batch-bench/scratch")
    p.add_argument("--skip", default="", type=lambda v: set(filter(None, v.split(","))))
    p.add_argument(
        "--results", default=str(ROOT / "bench/results" / f"batch-ab-{time.strftime('%Y%m%d-%H%M%S')}")
    )
    a = p.parse_args()
    b = AB(a)
    print(f"results in {b.out}", flush=True)
    b.results["loadavg_before"] = os.getloadavg()
    for s in a.suites.split(","):
        b.results.setdefault("loadavg_before_suite", {})[s] = os.getloadavg()
        getattr(b, s)()
        b.results.setdefault("loadavg_after", {})[s] = os.getloadavg()
        b.save()
    subprocess.run([PY, str(HERE / "report.py"), str(b.out)], check=False)


if __name__ == "__main__":
    main()
