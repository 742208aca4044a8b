#!/bin/bash
# interleaved A/B of the log's overhead: base vs new src snapshots, each a full log_overhead.py run,
# then the in-process CPU bench (log_cpu.py) for each
cd /work/main
out=$1; shift
mkdir -p $out
uptime > $out/uptime-before.txt
for i in "$@"; do
  for v in base new; do
    src=/tmp/lb/basesrc; [ $v = new ] && src=$NEWSRC
    PYTHONPATH=$src .venv/bin/python bench/monitoring/log_overhead.py --rounds 3 --duration 8 --json $out/$v-$i.json > $out/$v-$i.log 2>&1
    echo "$v $i $(python3 /tmp/lb/summ.py $out/$v-$i.json)"
  done
done
uptime > $out/uptime-mid.txt
for v in base new base new; do
  src=/tmp/lb/basesrc; [ $v = new ] && src=$NEWSRC
  PYTHONPATH=$src .venv/bin/python bench/monitoring/log_cpu.py --requests 10000 --rounds 3 --json $out/cpu-$v-$RANDOM.json > /dev/null 2>&1
done
uptime > $out/uptime-after.txt
echo done
