#!/usr/bin/env bash
# Data, models, a liveml registry with the models, and the peer venvs. Idempotent.
# usage: bench/batch/setup.sh    (from the repo root; DATA_DIR defaults to /tmp/liveml-batch-bench)
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${DATA_DIR:-/tmp/liveml-batch-bench}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
OMP_NUM_THREADS=2 .venv/bin/python bench/batch/make_data.py --data-dir "$D" "$@"
[ -f "$D/rows-200k.parquet" ] || .venv/bin/python -c "import pyarrow.parquet as pq,sys; pq.write_table(pq.read_table(sys.argv[1]).slice(0,200000), sys.argv[2])" "$D/rows-2m.parquet" "$D/rows-200k.parquet"
export LIVEML_HOME=$D/home
if [ ! -f "$LIVEML_HOME/registry.db" ]; then
  .venv/bin/liveml init
  for m in logreg rf; do
    .venv/bin/liveml push $m "$D/$m.joblib" --alias production --reference "$D/reference.parquet"          # default: compiled (ONNX) form served
    .venv/bin/liveml push $m-sk "$D/$m.joblib" --alias production --no-compile --reference "$D/reference.parquet"  # plain sklearn, like the floor
  done
fi
# peers: the team's pinned venvs (../shared/bench), MLflow 3.17.2 and MLServer 1.7.1
SHARED=${SHARED_BENCH:-/work/shared/bench}
if [ -x "$SHARED/setup_venvs.sh" ]; then PEER_VENVS=${PEER_VENVS:-$HOME/.cache/peer-venvs} "$SHARED/setup_venvs.sh" mlflow mlserver; fi
