#!/usr/bin/env bash
# The CLI tour: a second version, aliases moved and rolled back, predictions from a file.
# Run it after `make run` (which trains demo/churn.joblib and pushes it as churn:1, alias production).
set -euo pipefail

liveml init
liveml push churn demo/churn.joblib --alias staging --reference demo/train.parquet \
    --description "same model, pushed again as a candidate" --tag team=risk --metric auc=0.88 \
    --code-commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" --parent 1
liveml models
liveml versions churn
liveml show churn@staging
liveml alias set churn production 2          # promote the candidate
liveml alias history churn
liveml rollback churn production             # and take it back: production is version 1 again
liveml predict churn@production --input demo/customers.csv --output demo/preds.parquet --proba --keep customer_id
liveml show churn --json | python -c "import json, sys; v = json.load(sys.stdin); print(v['name'], v['version'], v['aliases'])"
