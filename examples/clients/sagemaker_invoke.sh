#!/usr/bin/env bash
# Call a liveml server the way SageMaker calls a model container: GET /ping, then POST /invocations with
# the ContentType and Accept that `invoke_endpoint` passes on. Run by the tests against a real server.
#
# Usage: bash examples/clients/sagemaker_invoke.sh http://127.0.0.1:8080
# (the server serves one iris classifier, or was started with --default-model). Behind SageMaker the
# platform authenticates callers (LIVEML_PLATFORM_AUTH=true); called directly, set LIVEML_API_KEY.
set -euo pipefail
URL="${1:-http://127.0.0.1:8080}"
KEY=()
if [[ -n "${LIVEML_API_KEY:-}" ]]; then KEY=(-H "Authorization: Bearer $LIVEML_API_KEY"); fi

curl -sS -o /dev/null -w "ping: %{http_code}\n" "$URL/ping"

# MLflow's dataframe_split JSON in, {"predictions": [...]} out
curl -sS --fail-with-body "$URL/invocations" "${KEY[@]}" \
    -H "Content-Type: application/json" \
    -d '{"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
         "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}}'
echo

# CSV lines without a header (values in signature order) in, CSV out: label and class probabilities
printf '5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n' | curl -sS --fail-with-body "$URL/invocations" "${KEY[@]}" \
    -H "Content-Type: text/csv" \
    -H "Accept: text/csv" \
    -H "X-Amzn-SageMaker-Custom-Attributes: probabilities=true" \
    --data-binary @-

# A missing column is a 400 with MLflow's error body, never a 500
curl -sS -w "\nstatus: %{http_code}\n" "$URL/invocations" "${KEY[@]}" \
    -H "Content-Type: application/json" \
    -d '{"dataframe_records": [{"sepal_length": 5.1}]}'
