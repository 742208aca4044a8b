"""The benchmark page's plot: one run of the shared peer harness (its ``results.json``) as an SVG of req/s
and p99 latency per scenario, one bar per server, a panel per model.

    .venv/bin/python bench/serving/plot.py bench/results/<run>/results.json docs/img/serving.svg

Needs matplotlib (``pip install 'liveml[reports]'``; the dev install has it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SCENARIOS = ("single_c1", "single_c8", "single_c64", "batch100_c8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path, help="results.json of a peer-harness run")
    parser.add_argument("out", type=Path, help="the SVG to write")
    args = parser.parse_args()
    data = json.loads(args.results.read_text())
    runs = [r for r in data["runs"] if r.get("status") == "ok" and r.get("mode") == "pinned"]
    models = sorted({r["model"] for r in runs})
    targets = list(dict.fromkeys(r["target"] for r in runs))
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 3.6 * len(models)), layout="constrained")
    axes = figure.subplots(len(models), 2, squeeze=False)
    width = 0.8 / max(len(targets), 1)
    for row, model in enumerate(models):
        by_target = {r["target"]: r["scenarios"] for r in runs if r["model"] == model}
        for col, (key, label) in enumerate(
            (("rps", "requests/s (higher is better)"), ("lat_p99_us", "p99 ms, log scale (lower is better)"))
        ):
            ax = axes[row][col]
            for i, target in enumerate(targets):
                scenarios: dict[str, Any] = by_target.get(target, {})
                values = [_value(scenarios.get(s), key) for s in SCENARIOS]
                positions = [j + (i - (len(targets) - 1) / 2) * width for j in range(len(SCENARIOS))]
                ax.bar(positions, values, width, label=target)
            ax.set_xticks(range(len(SCENARIOS)), SCENARIOS)
            ax.set_title(f"{model}: {label}")
            if col == 1:
                ax.set_yscale("log")
            ax.grid(axis="y", alpha=0.3)
        axes[row][0].legend(fontsize="small")
    stamp = data.get("meta", {}).get("started", "")
    figure.suptitle(f"liveml beside the peers, one server core, wrk on the other (run {stamp})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, format="svg", metadata={"Date": None})
    print(f"wrote {args.out}")


def _value(scenario: dict[str, Any] | None, key: str) -> float:
    if not scenario:
        return 0.0
    value = float(scenario.get(key, 0.0))
    return value / 1000 if key.endswith("_us") else value


if __name__ == "__main__":
    main()
