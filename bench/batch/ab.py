"""A/B rounds for the batch speed work: the floor, liveml as committed (BASE, another checkout) and liveml
as in this working tree, interleaved (round 1 of each, then round 2 ...) so that they see the same load.

usage: flock /tmp/liveml-bench.lock .venv/bin/python bench/batch/ab.py --base /tmp/liveml-base/src
           [--suites logreg,rf,workers] [--repeat 3] [--results bench/results/batch-ab-<stamp>]

BASE is a ``src`` folder (e.g. of ``git worktree add /tmp/liveml-base HEAD``), put first on PYTHONPATH for
the ``base/`` cases; ``new/`` cases run this checkout, or the ``src`` folder ``--new`` names. Cases named ``.../log0.1`` and ``.../log0`` pass
``--log-sample`` (this checkout only). The prediction log is emptied before every run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from run import HERE, PY, ROOT, Bench  # bench/batch/run.py


class AB(Bench):
    @property
    def new_env(self) -> dict[str, str]:
        return {"PYTHONPATH": self.a.new} if self.a.new else {}

    def before(self, out: Path) -> Callable[[], None]:
        clean = self.clean(out)

        def run() -> None:
            clean()
            shutil.rmtree(self.home / "predictions", ignore_errors=True)

        return run

    def specs(self, model: str, data: str, rows: int, *, logs: tuple[str, ...], base: bool = True) -> list:
        o = self.scratch / "ab.parquet"
        c: Any = self.before(o)
        floor_model = model.removesuffix("-sk")
        out = [
            (
                f"floor/{floor_model}/{Path(data).stem}",
                rows,
                self.floor(floor_model, data, str(o)),
                {"before": c},
            )
        ]
        if base:
            out.append(
                (
                    f"base/{model}/{Path(data).stem}/w1",
                    rows,
                    self.liveml(model, data, str(o)),
                    {"before": c, "env": {"PYTHONPATH": self.a.base}, "meta": {"code": "base"}},
                )
            )
        for rate in logs:
            extra = () if rate == "default" else ("--log-sample", rate)
            name = f"new/{model}/{Path(data).stem}/w1" + ("" if rate == "default" else f"/log{rate}")
            out.append(
                (
                    name,
                    rows,
                    self.liveml(model, data, str(o), *extra),
                    {"before": c, "env": self.new_env, "meta": {"code": "new"}},
                )
            )
        return out

    def logreg(self) -> None:
        print("== logreg-sk 2M Parquet: floor, base, new (log all / 0.1 / 0)", flush=True)
        self.group(
            self.specs(
                "logreg-sk", str(self.data / "rows-2m.parquet"), 2_000_000, logs=("default", "0.1", "0")
            )
        )

    def rf(self) -> None:
        print("== rf-sk 1M Parquet: floor, base, new (log all / 0.1)", flush=True)
        self.group(
            self.specs("rf-sk", str(self.data / "rows-1m.parquet"), 1_000_000, logs=("default", "0.1"))
        )

    def workers(self) -> None:
        print("== rf-sk 1M Parquet, 2 workers: local pool and Dask LocalCluster, base and new", flush=True)
        o = self.scratch / "abw.parquet"
        c: Any = self.before(o)
        data = str(self.data / "rows-1m.parquet")
        specs = []
        for engine in ("local", "dask"):
            for code, env, log in (
                ("base", {"PYTHONPATH": self.a.base}, ()),
                ("new", self.new_env, ()),
                ("new", self.new_env, ("--log-sample", "0")),
            ):
                for w in (1, 2) if engine == "dask" or log else (2,):
                    cmd = self.liveml("rf-sk", data, str(o), "--engine", engine, "--workers", str(w), *log)
                    name = f"{code}/{engine}/rf-sk/rows-1m/w{w}" + ("/log0" if log else "")
                    specs.append((name, 1_000_000, cmd, {"before": c, "env": env, "meta": {"workers": w}}))
        self.group(specs)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True, help="src folder of the code to compare with")
    p.add_argument("--new", default="", help="src folder for the new/ cases (default: this checkout)")
    p.add_argument("--suites", default="logreg,rf")
    p.add_argument("--repeat", type=int, default=3)
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
        getattr(b, s)()
        b.results.setdefault("loadavg_after", {})[s] = os.getloadavg()
        b.save()
    subprocess.run([PY, str(HERE / "report.py"), str(b.out)], check=False)


if __name__ == "__main__":
    main()
