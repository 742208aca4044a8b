#!/usr/bin/env bash
# Build an MLServer model repository for one joblib model: settings.json (loopback ports) and
# <name>/model-settings.json (mlserver-sklearn, predict output only).
# usage: mlserver_repo.sh MODEL.joblib NAME REPO_DIR [HTTP_PORT] [GRPC_PORT] [METRICS_PORT]
set -euo pipefail
model=$1 name=$2 repo=$3 http=${4:-8191} grpc=${5:-8192} metrics=${6:-8193}
mkdir -p "$repo/$name"
cp "$model" "$repo/$name/model.joblib"
cat > "$repo/settings.json" <<JSON
{"host": "127.0.0.1", "http_port": $http, "grpc_port": $grpc, "metrics_port": $metrics, "debug": false}
JSON
cat > "$repo/$name/model-settings.json" <<JSON
{"name": "$name", "implementation": "mlserver_sklearn.SKLearnModel",
 "parameters": {"uri": "./model.joblib", "version": "v1"}}
JSON
echo "$repo"
