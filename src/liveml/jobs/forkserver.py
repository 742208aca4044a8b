"""The first module a job's local Dask cluster's fork server imports (``engines._local_cluster``).

The fork server imports Dask, liveml's scoring code and the model's library once, and every worker is
forked from it. Those imports create a few hundred thousand objects that live as long as the process,
which Python's cyclic garbage collector scans again and again for nothing (~0.3 s of the fork server's
~1.8 s of imports). So, imported by a fork server, this module turns the collector off there, and each
worker forked from it turns it back on as it starts, with the inherited objects frozen out of its way
(``gc.freeze``, as Python's documentation advises for forked children; it moves them, it does not touch
them, so their pages stay shared). Imported anywhere else it does nothing."""

from __future__ import annotations

import gc
import sys
from multiprocessing import forkserver, util
from types import FrameType


def _preloading() -> bool:
    """Whether a fork server's ``main`` is importing this module (its preload list)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code is forkserver.main.__code__:
            return True
        frame = frame.f_back
    return False


class _Hook:
    """What ``register_after_fork`` holds (by weak reference) for as long as the fork server lives."""


def _in_worker(_: object) -> None:
    gc.freeze()
    gc.enable()


_HOOK = _Hook()
ACTIVE = _preloading()
if ACTIVE:
    gc.disable()
    util.register_after_fork(_HOOK, _in_worker)

__all__ = ["ACTIVE"]
