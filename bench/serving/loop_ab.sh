#!/usr/bin/env bash
# asyncio's event loop against uvloop for `liveml serve`, interleaved rounds: req/s, the server's CPU per
# request (utime+stime from /proc over the measured run) and wrk's p99. Server on CPU 0, wrk on CPU 1, a
# 2-s wrk warm-up, then 8 s measured with fresh connections (as the peer harness runs each scenario).
#
#   bench/serving/loop_ab.sh MODELS_DIR MODEL CONNECTIONS ROWS ROUNDS [LOOP ...]
#   bench/serving/loop_ab.sh ../shared/bench/models rf 64 1 3 asyncio uvloop
#
# MODELS_DIR is the peer harness's models/ (make_models.py): MODEL.joblib and rows.json.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
models=$(cd "$1" && pwd); model=$2; conns=$3; rows=$4; rounds=$5; shift 5
loops=("$@"); [ ${#loops[@]} -gt 0 ] || loops=(asyncio uvloop)
export PATH="$here/.venv/bin:$PATH" LIVEML_RATE_LIMIT_PER_S=0 LIVEML_MAX_CONCURRENT_PER_KEY=100000 OMP_NUM_THREADS=1
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python "$here/bench/targets/liveml_prepare.py" "$models" "$work" "$model" "$models/$model.joblib" > /dev/null
python - "$models/rows.json" "$rows" "$work/body.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"][: int(sys.argv[2])]
flat = [v for r in rows for v in r]
body = {"inputs": [{"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": flat}]}
open(sys.argv[3], "w").write(json.dumps(body))
PY
lua=$(mktemp --suffix .lua); trap 'rm -rf "$work" "$lua"' EXIT
cat > "$lua" <<'LUA'
local f = assert(io.open(os.getenv("BODY_FILE"), "rb")); wrk.method = "POST"; wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
function done(s, latency, r)
  io.write(string.format("RESULT %d %d %d %d\n", s.requests, s.duration, latency:percentile(99),
    s.errors.status + s.errors.read + s.errors.connect + s.errors.timeout))
end
LUA
url="http://127.0.0.1:8161/v2/models/$model/infer"
for _ in $(seq "$rounds"); do
  for loop in "${loops[@]}"; do
    LIVEML_SERVER_LOOP=$loop taskset -c 0 liveml --home "$work/home" serve --port 8161 --log-level warning \
      --poll 0 --no-auth > "$work/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 240); do curl -fs -o /dev/null "http://127.0.0.1:8161/health/ready" && break; sleep 0.25; done
    BODY_FILE="$work/body.json" taskset -c 1 wrk -t1 -c"$conns" -d2 -s "$lua" "$url" > /dev/null
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    read -r _ n us p99 errors < <(BODY_FILE="$work/body.json" taskset -c 1 wrk -t1 -c"$conns" -d8 -s "$lua" "$url" | grep '^RESULT')
    after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill -INT "$pid"; wait "$pid" || true
    tick=$(getconf CLK_TCK)
    python3 -c "print(f'$model c$conns rows=$rows $loop: {$n * 1e6 / $us:,.0f} req/s, server CPU {($after - $before) * 1e6 / $tick / $n:.1f} us/request, p99 {$p99 / 1000:.1f} ms, errors $errors')"
  done
done
