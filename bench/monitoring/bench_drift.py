"""Drift speed: ``liveml.monitoring.drift.detect`` on a 1,000,000-row window, 20 input columns.

Plain timed script (not part of the tests): each case runs 5 times after one warm-up; the median and the
minimum are printed, and written as JSON with ``--json PATH``. The reference profile is built once per
case (that happens at push time, not per monitor run) and is not timed.

    .venv/bin/python bench/monitoring/bench_drift.py [--rows 1000000] [--runs 5] [--json out.json]

Cases:
- numeric: 20 float columns, 100,000 reference rows (Wasserstein), plus prediction drift on
  ``prediction`` + ``proba_1`` and multivariate drift (PCA over the 20 columns);
- mixed: 12 floats, 2 small integers (<= 5 values), 4 string columns (8 to 1,000 categories), 2 booleans;
  100,000 reference rows (Wasserstein / Jensen-Shannon), plus prediction and multivariate drift;
- small-reference: the numeric case with 1,000 reference rows (K-S two-sample p-values);
- over-time: the mixed case cut into 10 time slices (``over_time``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from liveml.monitoring.config import DriftConfig
from liveml.monitoring.drift import detect, over_time
from liveml.registry.profile import build_profile


def numeric_frame(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    base = rng.normal(size=rows)
    columns = {f"x{i}": rng.normal(i + shift * (i % 2), 1 + i / 10, rows) for i in range(18)}
    columns["corr_a"] = base
    columns["corr_b"] = 0.8 * base + 0.6 * rng.normal(size=rows)
    return pd.DataFrame(columns)


def mixed_frame(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    columns: dict[str, Any] = {
        f"x{i}": rng.lognormal(0, 1, rows) if i % 3 else rng.normal(size=rows) for i in range(12)
    }
    columns["small0"] = rng.integers(0, 3, rows)
    columns["small1"] = rng.integers(0, 5, rows)
    for i, k in enumerate([8, 30, 200, 1000]):
        labels = np.array([f"value_{j}" for j in range(k)], dtype=object)
        columns[f"cat{i}"] = labels[rng.integers(0, k, rows)]
    columns["flag0"] = rng.random(rows) < 0.3
    columns["flag1"] = rng.random(rows) < 0.5
    return pd.DataFrame(columns)


def outputs_for(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    proba = rng.beta(2, 2, rows)
    return pd.DataFrame({"prediction": (proba >= 0.5).astype("int64"), "proba_1": proba})


def timed(run: Callable[[], object], runs: int) -> dict[str, float]:
    """Wall-clock seconds (median, min, max) and the process's CPU seconds (median; all threads)."""
    run()  # warm-up
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "median_s": statistics.median(wall),
        "min_s": min(wall),
        "max_s": max(wall),
        "cpu_median_s": statistics.median(cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    config = DriftConfig()
    results: dict[str, Any] = {
        "rows": args.rows,
        "columns": 20,
        "runs": args.runs,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average_before": os.getloadavg(),
        "cases": {},
    }

    cases: dict[str, Callable[[], object]] = {}
    ref = numeric_frame(rng, 100_000)
    profile = build_profile(ref, outputs_for(rng, len(ref)))
    window, window_out = numeric_frame(rng, args.rows, shift=0.2), outputs_for(rng, args.rows)
    cases["numeric"] = lambda: detect(profile, window, window_out, config)
    cases["numeric, no multivariate"] = lambda: detect(
        profile, window, window_out, config.model_copy(update={"multivariate": False})
    )

    mixed_ref = mixed_frame(rng, 100_000)
    mixed_profile = build_profile(mixed_ref, outputs_for(rng, len(mixed_ref)))
    mixed_window, mixed_out = mixed_frame(rng, args.rows), outputs_for(rng, args.rows)
    cases["mixed"] = lambda: detect(mixed_profile, mixed_window, mixed_out, config)

    small = numeric_frame(rng, 1_000)
    small_profile = build_profile(small, outputs_for(rng, len(small)))
    cases["small-reference (K-S)"] = lambda: detect(small_profile, window, window_out, config)

    meta = pd.DataFrame(
        {
            "at": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(args.rows), unit="s"),
            "latency_ms": rng.gamma(2, 5, args.rows),
        }
    )
    cases["over-time (mixed, 10 slices)"] = lambda: over_time(
        mixed_profile, mixed_window, mixed_out, meta, config
    )

    for name, run in cases.items():
        results["cases"][name] = timed(run, args.runs)
        r = results["cases"][name]
        print(
            f"{name:30s} median {r['median_s']:.3f} s  (min {r['min_s']:.3f}, max {r['max_s']:.3f})"
            f"  cpu {r['cpu_median_s']:.3f} s",
            flush=True,
        )
    results["load_average_after"] = os.getloadavg()
    print(f"load average before {results['load_average_before']}, after {results['load_average_after']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
