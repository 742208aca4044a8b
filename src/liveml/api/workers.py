"""Several worker processes serving one port: models are loaded once, then the process forks, so the
workers share the loaded models' memory copy-on-write instead of each loading its own. The workers'
metrics go to one folder of memory-mapped files, so ``/metrics`` from any worker reports the whole server.

A worker that dies (killed, out of memory) is replaced at once. Its clients' connections die with it:
requests it was answering end with a reset connection (no HTTP response), which clients see as a
connection error and may retry; the other workers keep answering."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from types import FrameType

import uvicorn

from liveml.serving.metrics import ServingMetrics

log = logging.getLogger("liveml.workers")


def run_workers(
    config: uvicorn.Config,
    workers: int,
    *,
    after_fork: Callable[[], None],
    before_fork: Callable[[], object],
    metrics: ServingMetrics | None = None,
) -> None:
    """Fork ``workers`` uvicorn servers on one listening socket and keep that many running.

    A worker that dies is replaced (``before_fork`` runs first, e.g. to catch up with alias moves); its
    clients' open connections are lost with it. SIGTERM or SIGINT stops every worker gracefully.
    ``metrics`` (default: those of the app's host) are shared across the workers while they run."""
    metrics = metrics or _app_metrics(config)
    shared = tempfile.mkdtemp(prefix="liveml-metrics-")
    if metrics is not None:
        metrics.share_across_processes(shared)
    try:
        _supervise(config, workers, after_fork=after_fork, before_fork=before_fork, metrics=metrics)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _supervise(
    config: uvicorn.Config,
    workers: int,
    *,
    after_fork: Callable[[], None],
    before_fork: Callable[[], object],
    metrics: ServingMetrics | None,
) -> None:
    sock = config.bind_socket()
    children: dict[int, int] = {}
    stopping = False

    def spawn(index: int) -> None:
        before_fork()
        gc.collect()
        gc.freeze()  # objects from before the fork stay untouched by the collector: pages stay shared
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                after_fork()
                uvicorn.Server(config).run(sockets=[sock])
                code = 0
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                sys.stdout.flush()
                os._exit(code)
        children[pid] = index
        log.info("worker %d started (pid %d)", index, pid)

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for number in range(workers):
        spawn(number)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        ended = children.pop(pid) if pid in children else None
        if metrics is not None:
            metrics.process_ended(pid)
        if ended is None or stopping:
            continue
        log.warning("worker %d (pid %d) ended (%s); starting a replacement", ended, pid, _describe(status))
        spawn(ended)
    sock.close()


def _app_metrics(config: uvicorn.Config) -> ServingMetrics | None:
    """The metrics of the host behind ``config``'s app (``liveml.api.create_app`` keeps its context)."""
    ctx = getattr(getattr(config.app, "state", None), "ctx", None)
    metrics = getattr(getattr(ctx, "host", None), "metrics", None)
    return metrics if isinstance(metrics, ServingMetrics) else None


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


__all__ = ["run_workers"]
