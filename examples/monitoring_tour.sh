#!/usr/bin/env bash
# Monitoring: serve churn, send traffic whose population shifts, send labels, find the drift, read the report.
# Run it after `make run` (or `python examples/demo.py`), which pushes churn:1 with a reference profile.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${PORT:-8011}"

liveml init >/dev/null                             # the admin key (if none yet), kept for the CLI and the client
liveml alerts add churn --metric drift_share --above 0.3 --min-rows 200 --window 1h
LIVEML_LOG_FLUSH_S=0.2 liveml serve --port "$port" --no-scheduler &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
until curl -sf "localhost:$port/health/ready" >/dev/null; do sleep 0.3; done

# 400 customers as the model knew them, then 400 from a new, older, long-tenure population; labels later
python - "$here" "$port" <<'PY'
import sys, liveml
sys.path.insert(0, sys.argv[1])
from churn_data import FEATURES, churn_table
client = liveml.Client(f"http://127.0.0.1:{sys.argv[2]}")  # sends the key from the credentials file
usual, new = churn_table(400, seed=21), churn_table(400, seed=22)
new["age"] += 25
new["tenure_months"] = (new["tenure_months"] * 3).clip(upper=200)
labels = []
for frame in (usual, new):
    for start in range(0, len(frame), 20):
        part = frame.iloc[start : start + 20]
        ids = client.predict("churn", part[FEATURES]).ids
        labels += [{"prediction_id": i, "label": int(y)} for i, y in zip(ids, part["churned"])]
import pandas as pd
pd.DataFrame(labels).to_csv("demo/labels.csv", index=False)
PY
kill $server; wait $server || true; trap - EXIT    # stopping the server writes what the log still holds

liveml feedback churn --input demo/labels.csv     # ground truth, joined by prediction id
status=0
liveml monitor run churn --window 1h || status=$?  # exit code 3: the dataset drifted
echo "monitor exit code: $status"
liveml monitor report churn --window 1h --html demo/report.html
liveml alerts                                      # the rule fired (its state and last value)
