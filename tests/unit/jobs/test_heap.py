"""The scoring processes' malloc thresholds (``jobs/heap.py``)."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from liveml.jobs.heap import keep_heap

GLIBC = sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "gnu_get_libc_version")


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_large_arrays_reuse_the_heap_after_keep_heap() -> None:
    """Allocating and freeing a 1.6 MB array again and again: with the thresholds fixed, the pages come
    back from the heap (no page faults per call); Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` alone maps them
    fresh every time. Measured in child processes, which start with the environment given."""
    code = (
        "import resource, sys, numpy as np\n"
        "from liveml.jobs.heap import keep_heap\n"
        "if sys.argv[1] == 'keep': assert keep_heap() and keep_heap()\n"
        "for _ in range(3): np.ones(200_000)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(50): np.ones(200_000)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    env = {"MALLOC_TRIM_THRESHOLD_": "65536", "PATH": "/usr/bin:/bin"}

    def faults(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", code, mode], env=env, capture_output=True, text=True, check=True
        )
        return int(out.stdout.strip())

    assert faults("plain") > 50 * 300  # ~390 pages per 1.6 MB array, every time
    assert faults("keep") < 1000


def test_keep_heap_is_safe_to_call_again() -> None:
    first = keep_heap()
    assert keep_heap() is first
