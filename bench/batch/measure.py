"""Measuring one command: wall, CPU and max RSS from `/usr/bin/time -v`, and the peak RSS/PSS of its whole
process tree sampled with psutil; and a description of the machine. Used by run.py and ab.py."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import threading
import time

import psutil

THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PYTHONWARNINGS": "ignore",
}


class Sampler(threading.Thread):
    """Peak RSS of a process tree: sum over the tree, and the largest single process."""

    def __init__(self, pid: int, extra: list[int] | None = None, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pids = [pid, *(extra or [])]
        self.interval = interval
        self.peak_sum = 0
        self.peak_one = 0
        self.peak_pss = 0
        self.max_procs = 0
        #: last CPU seconds (user+sys) seen per process of the tree: unlike ``/usr/bin/time``, this counts
        #: processes that are not waited for by the command (a Dask fork server's workers)
        self.cpu: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            total, pss, procs = 0, 0, 0
            for root in self.pids:
                try:
                    p = psutil.Process(root)
                    tree = [p, *p.children(recursive=True)]
                except psutil.Error:
                    continue
                for q in tree:
                    try:
                        if q.name() == "time":  # /usr/bin/time itself
                            continue
                        info = q.memory_full_info()  # rss, and pss from /proc/PID/smaps_rollup
                        rss = info.rss
                        times = q.cpu_times()
                        self.cpu[q.pid] = times.user + times.system
                    except psutil.Error:
                        continue
                    total += rss
                    pss += getattr(info, "pss", rss)
                    procs += 1
                    self.peak_one = max(self.peak_one, rss)
            self.peak_sum = max(self.peak_sum, total)
            self.peak_pss = max(self.peak_pss, pss)
            self.max_procs = max(self.max_procs, procs)
            self.stop.wait(self.interval)


def parse_time_v(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        out["time_maxrss_mib"] = int(m.group(1)) / 1024
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
    if m:
        out["time_wall_s"] = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    u = re.search(r"User time \(seconds\): ([\d.]+)", text)
    s = re.search(r"System time \(seconds\): ([\d.]+)", text)
    if u and s:
        out["cpu_s"] = float(u.group(1)) + float(s.group(1))
    return out


def measure(
    cmd: list[str],
    env: dict[str, str],
    extra_pids: list[int] | None = None,
    cwd: str | None = None,
    interval: float = 0.1,
) -> dict:
    """``interval``: seconds between samples of the process tree. Sampling is not free: reading
    ``smaps_rollup`` of a few 500 MB processes ten times a second took ~15% of a core here, which a
    2-worker run on 2 cores pays and a 1-worker run mostly does not."""
    full_env = {**os.environ, **THREAD_ENV, **env}
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["/usr/bin/time", "-v", *cmd],
        env=full_env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = Sampler(proc.pid, extra_pids, interval)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    result = {
        "rc": proc.returncode,
        "wall_s": wall,
        "tree_peak_rss_mib": sampler.peak_sum / 2**20,
        "largest_proc_rss_mib": sampler.peak_one / 2**20,
        "tree_peak_pss_mib": sampler.peak_pss / 2**20,
        "procs": sampler.max_procs,
        # sampled every 0.1 s: misses each process's last moments, but sees every process of the tree
        "tree_cpu_s": sum(sampler.cpu.values()),
        **parse_time_v(stderr),
    }
    if proc.returncode != 0:
        result["stderr_tail"] = stderr[-2000:]
    lines = [l for l in stdout.strip().splitlines() if l.startswith("{")]
    if lines:
        try:
            result["stdout_json"] = json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    if "stdout_json" not in result and stdout.strip().startswith("{"):
        try:
            result["stdout_json"] = json.loads(stdout)
        except json.JSONDecodeError:
            pass
    return result


def machine() -> dict:
    import numpy
    import pandas
    import pyarrow
    import sklearn

    return {
        "cpus": os.cpu_count(),
        "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_model": next(
            (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"
        ),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "pyarrow": pyarrow.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "loadavg_at_start": os.getloadavg(),
        "thread_env": THREAD_ENV,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
