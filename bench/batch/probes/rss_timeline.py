"""Run a command and print the RSS (sum over its process tree) every N seconds: growth vs plateau.
usage: rss_timeline.py SECONDS -- CMD ..."""

import subprocess
import sys
import time

import psutil

every = float(sys.argv[1])
cmd = sys.argv[sys.argv.index("--") + 1 :]
t0 = time.perf_counter()
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
proc = psutil.Process(p.pid)
peak = 0
while p.poll() is None:
    try:
        rss = sum(q.memory_info().rss for q in [proc, *proc.children(recursive=True)])
    except psutil.Error:
        rss = 0
    peak = max(peak, rss)
    print(f"{time.perf_counter() - t0:6.1f}s {rss / 2**20:7.0f} MiB", flush=True)
    time.sleep(every)
print(f"exit {p.returncode} after {time.perf_counter() - t0:.1f}s, peak {peak / 2**20:.0f} MiB")
