"""Several worker processes serving one port: models are loaded once, then the process forks, so the
workers share the loaded models' memory copy-on-write instead of each loading its own."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

import uvicorn

log = logging.getLogger("liveml.workers")


def run_workers(
    config: uvicorn.Config, workers: int, *, after_fork: Callable[[], None], before_fork: Callable[[], object]
) -> None:
    """Fork ``workers`` uvicorn servers on one listening socket and keep that many running.

    A worker that dies is replaced (``before_fork`` runs first, e.g. to catch up with alias moves); its
    clients' open connections are lost with it. SIGTERM or SIGINT stops every worker gracefully."""
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
        if ended is None or stopping:
            continue
        log.warning("worker %d (pid %d) ended (%s); starting a replacement", ended, pid, _describe(status))
        spawn(ended)
    sock.close()


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


__all__ = ["run_workers"]
