"""Prepare step of the liveml bench target: a fresh registry in the work dir, the shared model pushed as
production with the harness's request rows as reference data (so the compiled form is checked on them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

models_dir, workdir, model, model_path = (Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4])
rows = json.loads((models_dir / "rows.json").read_text())["rows"]
reference = workdir / "reference.csv"
pd.DataFrame(rows, columns=[f"x{i}" for i in range(len(rows[0]))]).to_csv(reference, index=False)
home = str(workdir / "home")
subprocess.run(["liveml", "--home", home, "init"], check=True)
subprocess.run(
    [
        "liveml",
        "--home",
        home,
        "push",
        model,
        model_path,
        "--alias",
        "production",
        "--reference",
        str(reference),
    ],
    check=True,
)
