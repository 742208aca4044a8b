#!/bin/bash
# served.sh LOG PORT -> instructions per served request (server process, callgrind), wrk 8 connections
L=$1; P=$2; cd /tmp/prof
LIVEML_LOG_PREDICTIONS=$L LIVEML_LOG_FLUSH_S=50 LIVEML_RATE_LIMIT_PER_S=0 LIVEML_MAX_CONCURRENT_PER_KEY=100000 \
 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/dev/null /work/main/.venv/bin/python /work/main/bench/serving/serve_inline.py \
 --home $HOME_DIR serve --port $P --log-level warning --poll 0 --no-auth --no-scheduler > /tmp/cg/served-$L.log 2>&1 &
for k in $(seq 240); do curl -sf localhost:$P/health/ready >/dev/null && break; sleep 1; done
BODY_FILE=/tmp/prof/body1.json CONTENT_TYPE=application/json wrk -t1 -c8 -d10s -s /tmp/peerbench/wrk_post.lua http://127.0.0.1:$P/v2/models/logreg/infer > /dev/null
PID=$(pgrep -f "valgrind.*serve --port $P" | head -1)
callgrind_control -i on $PID > /dev/null; sleep 1
out=$(BODY_FILE=/tmp/prof/body1.json CONTENT_TYPE=application/json wrk -t1 -c8 -d30s --timeout 20s -s /tmp/peerbench/wrk_post.lua http://127.0.0.1:$P/v2/models/logreg/infer)
sleep 55   # the writer's flush of these rows (every 50 s) is counted too
callgrind_control -i off $PID > /dev/null; sleep 1
n=$(echo "$out" | grep WRKJSON | sed 's/.*"requests":\([0-9]*\).*/\1/')
kill -INT $PID; sleep 5
c=$(grep -o 'Collected : [0-9]*' /tmp/cg/served-$L.log | awk '{print $3}')
echo "log=$L requests=$n instructions=$c per_request=$((c / n))"
