"""glibc's malloc kept from handing a scoring process's arrays back to the kernel after every call.

Scoring a chunk allocates and frees the same large arrays again and again (a forest's ``predict_proba``
makes a 1.6 MB array per tree for 100k rows). When glibc gives such memory back to the kernel at once
(``munmap``, or trimming the top of the heap), the next call gets fresh pages and pays a page fault for
every 4 KiB of them. Dask's nanny makes that happen on every call: it starts its workers with
``MALLOC_TRIM_THRESHOLD_=65536``, and setting any malloc threshold turns off glibc's adaptive mmap
threshold, so arrays over 128 KiB are each a fresh ``mmap``. Measured on 100k rows of the benchmark's
forest (``bench/batch/probes/dask_chunk.py``): ~60,000 page faults and 1.20 s of CPU per call in a Dask
worker, against ~0 faults and 1.06 s in one process; in one process the adaptive threshold gets there by
itself, though not always from the first chunk.

``keep_heap`` fixes the two thresholds for the process it runs in: arrays up to ``MMAP_THRESHOLD`` come
from the heap, and the heap keeps up to ``TRIM_THRESHOLD`` of free memory at its top for the next chunk.
Called by the engines in the processes that score (the job's process, the pool's forked workers inherit
it, each Dask worker on its first task); a process holds at most ``TRIM_THRESHOLD`` more than it would."""

from __future__ import annotations

import ctypes
import sys

#: allocations up to this size come from the heap, not from their own mmap (glibc's largest allowed)
MMAP_THRESHOLD = 32 << 20
#: free memory at the top of the heap kept for reuse, not returned to the kernel
TRIM_THRESHOLD = 64 << 20
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_applied = False


def keep_heap() -> bool:
    """Set glibc's mmap and trim thresholds for this process (once); False where the C library is not
    glibc (macOS, musl) or refuses, and nothing changes."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: their malloc is not glibc's
            return False
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _applied = (
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    )
    return _applied


__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_heap"]
