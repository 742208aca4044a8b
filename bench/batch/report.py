"""results.json → report.md (medians, ratios to the floor, goals). usage: report.py RESULTS_DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt(x: float | None, digits: int = 0) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def main() -> None:
    out = Path(sys.argv[1])
    r = json.loads((out / "results.json").read_text())
    cases = r["cases"]

    def get(name: str, key: str = "median_rows_per_s") -> float | None:
        return cases.get(name, {}).get(key)

    lines = [
        f"# Batch predictions benchmark — {out.name}",
        "",
        f"Machine: {r['machine']['cpus']} CPUs ({r['machine']['cpu_model']}), {r['machine']['mem_gib']} GiB, "
        f"Python {r['machine']['python']}, scikit-learn {r['machine']['sklearn']}, pyarrow {r['machine']['pyarrow']}, "
        f"pandas {r['machine']['pandas']}. Load average at start {r['machine']['loadavg_at_start']}; after each suite "
        f"{r.get('loadavg_after', {})}. Runs per case in the tables (the last `--repeat` was {r['repeat']}), medians.",
        "",
        *[f"- {n}" for n in r.get("notes", [])],
        "",
        "## All cases",
        "",
        "| case | runs | wall s (median, min–max) | rows/s (median) | CPU s | /usr/bin/time max RSS MiB | tree peak RSS MiB (sum) | tree peak PSS MiB (sum) | largest process MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c in cases.items():
        ok = [x for x in c["runs"] if x["rc"] == 0]
        if not ok:
            lines.append(f"| {name} | failed | — | — | — | — | — | — | — |")
            continue
        lines.append(
            f"| {name} | {len(ok)} | {fmt(c.get('median_wall_s'), 2)} ({fmt(c.get('min_wall_s'), 2)}–{fmt(c.get('max_wall_s'), 2)}) "
            f"| {fmt(c.get('median_rows_per_s'))} | {fmt(c.get('median_cpu_s'), 1)} | {fmt(c.get('median_time_maxrss_mib'))} "
            f"| {fmt(c.get('median_tree_peak_rss_mib'))} | {fmt(c.get('median_tree_peak_pss_mib'))} | {fmt(c.get('median_largest_proc_rss_mib'))} |"
        )

    lines += [
        "",
        "## Goal 1: local engine vs floor (rows/s per core used; goal ≥ 0.90)",
        "",
        "ratio (wall) = (liveml rows/s ÷ workers) ÷ floor rows/s. ratio (CPU) = floor CPU s ÷ liveml CPU s "
        "(user+sys of the whole process tree, from /usr/bin/time; less sensitive to other load on the machine).",
        "",
        "| model (served form) | input | workers | liveml rows/s (min–max) | per core | floor rows/s, 1 core (min–max) | ratio (wall) | met? | CPU s liveml / floor | ratio (CPU) |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name, c in cases.items():
        parts = name.split("/")
        if parts[0] not in ("liveml", "nolog") or not c.get("median_rows_per_s"):
            continue
        variant, inp, w = parts[1], parts[2], int(parts[3][1:])
        model = variant.removesuffix("-sk")
        form = ("sklearn (--no-compile)" if variant.endswith("-sk") else "ONNX (default push)") + (
            ", prediction log off" if parts[0] == "nolog" else ""
        )
        floor_name = f"floor/{model}/{inp}" + ("/proba" if parts[-1] == "proba" else "")
        fl, lv = get(floor_name), c["median_rows_per_s"]
        if fl:
            ratio = lv / w / fl
            label = inp + (" --proba" if parts[-1] == "proba" else "")
            lines.append(
                f"| {model} {form} | {label} | {w} | {fmt(lv)} ({fmt(c['min_rows_per_s'])}–{fmt(c['max_rows_per_s'])}) "
                f"| {fmt(lv / w)} | {fmt(fl)} ({fmt(cases[floor_name]['min_rows_per_s'])}–{fmt(cases[floor_name]['max_rows_per_s'])}) "
                f"| {ratio:.2f} | {'yes' if ratio >= 0.9 else 'no'} "
                f"| {fmt(c.get('median_cpu_s'), 1)} / {fmt(cases[floor_name].get('median_cpu_s'), 1)} "
                f"| {cases[floor_name]['median_cpu_s'] / c['median_cpu_s']:.2f} |"
            )

    fixed = [
        f"{n.split('/', 1)[1].rsplit('/', 1)[0]} {c['median_wall_s']:.2f}"
        for n, c in cases.items()
        if n.startswith("startup/") and c.get("median_wall_s")
    ]
    if fixed:
        lines += ["", "Fixed cost (1000 rows, one chunk; wall s, median): " + ", ".join(fixed) + "."]
    lines += [
        "",
        "## Goal 2: memory, 10M rows × 20 columns (goal ≤ 1 GiB)",
        "",
        "| case | /usr/bin/time max RSS MiB | tree peak RSS MiB (sum) | tree peak PSS MiB (sum) | largest process MiB | wall s | met? (max of PSS sum and max RSS ≤ 1024) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, c in cases.items():
        if name.startswith("memory/") and c.get("median_wall_s"):
            worst = max(c.get("max_tree_peak_pss_mib") or 0, c.get("max_time_maxrss_mib") or 0)
            lines.append(
                f"| {name} | {fmt(c.get('max_time_maxrss_mib'))} | {fmt(c.get('max_tree_peak_rss_mib'))} | {fmt(c.get('max_tree_peak_pss_mib'))} | {fmt(c.get('max_largest_proc_rss_mib'))} "
                f"| {fmt(c.get('median_wall_s'), 1)} | {'yes' if worst <= 1024 else 'no'} |"
            )

    lines += ["", "## Goal 3: Dask", ""]
    d1, d2 = get("dask/rf-sk/parquet-1m/w1"), get("dask/rf-sk/parquet-1m/w2")
    if d1 and d2:
        lines.append(
            f"rf (sklearn), 1M rows Parquet: 1 worker {fmt(d1)} rows/s, 2 workers {fmt(d2)} rows/s → "
            f"{d2 / d1:.2f}× (goal ≥ 1.7×: {'met' if d2 / d1 >= 1.7 else 'missed'})."
        )
        ext = get("dask/rf-sk/parquet-1m/external-2workers")
        if ext:
            lines.append(
                f"External `dask scheduler` + 2 `dask worker`: {fmt(ext)} rows/s ({ext / d1:.2f}× the 1-worker LocalCluster)."
            )
    lines += [
        "",
        "Per-chunk overhead (200k rows logreg sklearn; 1000 chunks of 200 vs 2 chunks of 100k):",
        "",
        "| engine | 1000 chunks wall s | 2 chunks wall s | overhead per chunk ms |",
        "|---|---:|---:|---:|",
    ]
    for eng in ("local-w1", "dask-w1", "dask-w2"):
        a = get(f"overhead/logreg-sk/200k/chunk200/{eng}", "median_wall_s")
        b = get(f"overhead/logreg-sk/200k/chunk100000/{eng}", "median_wall_s")
        if a and b:
            lines.append(f"| {eng} | {a:.2f} | {b:.2f} | {(a - b) / 998 * 1000:.2f} |")
    lo = get("overhead/logreg-sk/200k/chunk200/local-w1", "median_wall_s")
    da = get("overhead/logreg-sk/200k/chunk200/dask-w1", "median_wall_s")
    if lo and da:
        lines.append(f"| dask-w1 − local-w1 at 1000 chunks | | | {(da - lo) / 1000 * 1000:.2f} |")

    lines += [
        "",
        "## Goal 4: peers, 1M rows CSV",
        "",
        "| model | floor rows/s | liveml (ONNX) | liveml (sklearn) | MLflow `models predict` | MLServer `mlserver infer` |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in ("logreg", "rf"):
        lines.append(
            f"| {m} | {fmt(get(f'peers/floor/{m}/csv-1m'))} | {fmt(get(f'peers/liveml/{m}/csv-1m/w1'))} | "
            f"{fmt(get(f'peers/liveml/{m}-sk/csv-1m/w1'))} | {fmt(get(f'peers/mlflow/{m}/csv-1m'))} | "
            f"{fmt(get(f'peers/mlserver/{m}/csv-1m'))} |"
        )
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print(out / "report.md")


if __name__ == "__main__":
    main()
