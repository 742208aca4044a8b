#!/usr/bin/env bash
# Batch predictions: score every customer in bounded memory, with the model version on record.
# Run it after `make run` (or `python examples/demo.py`), which pushes churn:1 with alias production.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# 200,000 customers to score, and a file with two broken rows
python - "$here" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from churn_data import churn_table
customers = churn_table(200_000, seed=11).drop(columns=["churned"])
customers.to_parquet("demo/customers_200k.parquet")
broken = customers.head(100).astype({"tenure_months": object})
broken.loc[[3, 50], "tenure_months"] = ["ten", "?"]
broken.to_csv("demo/customers_broken.csv", index=False)
PY

liveml batch run churn@production --input demo/customers_200k.parquet --output demo/scores.parquet \
    --keep customer_id --proba --chunk-rows 50000
liveml batch run churn@production --input demo/customers_broken.csv --output demo/broken_scores.csv \
    --keep customer_id
cat demo/broken_scores.errors.csv          # the two rows that could not be scored, and why
liveml jobs                                # id, status, rows, rows/s, errors, model version
liveml jobs show 1
