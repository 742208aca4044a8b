"""Adaptive micro-batching of one model version's predict calls: framework-agnostic and thread-safe.

Concurrent requests are merged into one ``run`` call; every caller gets exactly its own rows back.

1. **Idle**: a request that finds a free slot (``max_concurrent_batches``) and an empty queue runs at
   once; through ``submit_sync`` in the caller's own thread: no hand-off, no timer (``immediate``).
2. **Busy**: arrivals queue (FIFO). When a slot frees, the oldest queued request heads the next batch,
   which takes queued requests in order while the total stays within ``max_batch_size`` rows (a larger
   single request goes alone; frames with other column names are not merged). A batch is what arrived
   during the previous call, so it grows with load without any timer.
3. **Window** (``max_latency_ms``; 0, the default, disables it): only for a head that had to queue.
   While fewer than ``max_batch_size`` rows are queued, it waits for more until the head has waited
   ``max_latency_ms`` since it *arrived* (time queued behind the previous call counts, as in Triton's
   max_queue_delay), so a model slower than the window never waits. Unlike Ray Serve's
   ``@serve.batch`` or MLServer, no window ever holds a request that arrived at an idle model.
4. **Failures**: a failed merged call is split in halves until each failing request runs alone, so a
   bad request costs the others ~2*log2(n) calls and only its caller gets the exception, the very
   object ``run`` raised (a ``LivemlError`` unchanged).
5. **Cancellation**: a cancelled ``submit`` leaves the queue, or its answer is dropped if its batch
   runs already; nobody else is affected. ``close`` refuses new requests and drains the accepted ones.

``submit_sync`` runs batches on callers' threads: the head's caller runs its batch, then wakes the
next head's caller. ``submit`` runs them on ``executor`` (None: the loop's default); do not use an
executor whose threads also block in ``submit_sync`` on the same batcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from liveml.errors import Unavailable
from liveml.runtimes.base import Prediction

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("liveml.serving")


@dataclass(frozen=True)
class BatchStats:
    """One dispatched batch, for metrics (given to ``on_batch`` after its callers have their answers)."""

    requests: int
    rows: int
    queue_waits_s: tuple[float, ...]  # per request, arrival to dispatch; 0.0 for an idle arrival
    window_s: float  # how long a free slot was held open to fill this batch (0.0 without a window)
    run_s: float  # time in the model, failed calls and retries included
    calls: int  # model calls made: 1, or more when a failed batch was split


class _Request:
    __slots__ = ("arrived", "error", "event", "frame", "future", "lead", "loop", "queued", "rows", "value")

    def __init__(self, frame: pd.DataFrame, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.frame = frame
        self.rows = len(frame)
        self.arrived: float | None = None  # set when it queues
        self.value: Prediction | None = None
        self.error: BaseException | None = None
        self.event: threading.Event | None = None  # a queued submit_sync caller waits on it
        self.loop = loop
        self.future: asyncio.Future[Prediction] | None = loop.create_future() if loop else None
        self.lead = False  # woken to run a batch rather than with an answer
        self.queued = False

    @property
    def done(self) -> bool:
        return self.value is not None or self.error is not None

    def outcome(self) -> Prediction:
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


class MicroBatcher:
    """Merges concurrent ``run`` calls of one model version; see the module docstring for the policy."""

    def __init__(
        self,
        run: Callable[[pd.DataFrame], Prediction],
        *,
        max_batch_size: int = 64,
        max_latency_ms: float = 0.0,
        executor: Executor | None = None,
        max_concurrent_batches: int = 1,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        if max_batch_size < 1 or max_concurrent_batches < 1 or max_latency_ms < 0:
            raise ValueError("max_batch_size and max_concurrent_batches must be >= 1, max_latency_ms >= 0")
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_latency_ms = max_latency_ms
        self._executor = executor
        self._slots = max_concurrent_batches
        self._on_batch = on_batch
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[_Request] = deque()
        self._queued_rows = 0
        self._running = 0
        self._filling = 0  # batches holding a slot open for max_latency_ms
        self._closed = False
        # counters for metrics, read as attributes (BatchStats per batch goes to on_batch)
        self.batches = 0  # batches dispatched
        self.calls = 0  # model calls, retries of failed batches included
        self.requests = 0
        self.rows = 0
        self.max_rows = 0  # the largest batch seen, in rows
        self.immediate = 0  # requests dispatched on arrival, without queueing
        self.windows = 0  # batches that held a free slot open to fill (rule 3)
        self.splits = 0  # failed merged calls split to isolate the bad request
        self.queue_wait_s = 0.0  # total time requests spent queued

    # -- entry points ------------------------------------------------------------------------------
    def submit_sync(self, frame: pd.DataFrame) -> Prediction:
        """Predict ``frame``'s rows, merged with concurrent callers; safe from any number of threads."""
        req = _Request(frame)
        with self._cond:
            immediate = self._admit(req)
            if not immediate:
                req.event = threading.Event()
                self._enqueue(req)
        if immediate:
            self._turn(req, queued=False, drain=False)
        else:
            assert req.event is not None
            req.event.wait()
            if req.lead:
                self._turn(req, queued=True, drain=False)
        return req.outcome()

    async def submit(self, frame: pd.DataFrame) -> Prediction:
        """Predict ``frame``'s rows on the executor, merged with concurrent callers."""
        loop = asyncio.get_running_loop()
        req = _Request(frame, loop)
        with self._cond:
            immediate = self._admit(req)
            if not immediate:
                self._enqueue(req)
        if immediate:
            job = functools.partial(self._turn, req, queued=False, drain=True)
            try:
                loop.run_in_executor(self._executor, job)
            except RuntimeError:  # the executor is shut down: run it here rather than lose the slot
                job()
        assert req.future is not None
        try:
            return await req.future
        except asyncio.CancelledError:
            with self._cond:
                if req.queued:
                    self._queue.remove(req)
                    self._queued_rows -= req.rows
                    req.queued = False
            raise

    def close(self, timeout: float | None = None) -> bool:
        """Refuse new requests and wait for the accepted ones to finish; False if ``timeout`` ran out."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._running and not self._queue, timeout)

    async def aclose(self, timeout: float | None = None) -> bool:
        return await asyncio.get_running_loop().run_in_executor(None, self.close, timeout)

    @property
    def queued(self) -> int:
        """Requests waiting for a slot now."""
        return len(self._queue)

    # -- scheduling (methods named _admit/_enqueue/_next run under the lock) --------------------------
    def _admit(self, req: _Request) -> bool:
        if self._closed:
            raise Unavailable("this model is shutting down; retry the request")
        if self._running < self._slots and not self._queue:
            self._running += 1
            self.immediate += 1
            return True
        return False

    def _enqueue(self, req: _Request) -> None:
        req.arrived = time.perf_counter()
        req.queued = True
        self._queue.append(req)
        self._queued_rows += req.rows
        if self._filling:
            self._cond.notify_all()

    def _pop(self) -> _Request:
        req = self._queue.popleft()
        self._queued_rows -= req.rows
        req.queued = False
        return req

    def _next(self, batch: list[_Request], calls: int) -> _Request | None:
        """Count the finished batch; the next head for the slot it frees, or None (slot released)."""
        self.calls += calls
        self.splits += (calls - 1) // 2  # each failed merged call made two more
        if self._queue:
            return self._pop()
        self._running -= 1
        if self._closed:
            self._cond.notify_all()
        return None

    def _assemble(self, head: _Request, queued: bool) -> tuple[list[_Request], float]:
        """The batch ``head`` leads (rules 2 and 3), and how long it held the slot open to fill."""
        batch, rows, window, limit = [head], head.rows, 0.0, self.max_batch_size
        with self._cond:
            if queued and self.max_latency_ms > 0 and 0 < rows < limit and head.arrived is not None:
                window = self._fill(rows, head.arrived + self.max_latency_ms / 1000)
            columns = head.frame.columns
            while (
                self._queue
                and rows > 0
                and 0 < self._queue[0].rows <= limit - rows
                and self._queue[0].frame.columns.equals(columns)
            ):
                batch.append(self._pop())
                rows += batch[-1].rows
            self.batches += 1
            self.requests += len(batch)
            self.rows += rows
            self.max_rows = max(self.max_rows, rows)
        return batch, window

    def _fill(self, rows: int, deadline: float) -> float:
        started = time.perf_counter()
        if rows + self._queued_rows >= self.max_batch_size or started >= deadline:
            return 0.0
        self.windows += 1
        self._filling += 1
        try:
            while rows + self._queued_rows < self.max_batch_size and not self._closed:
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or not self._cond.wait(remaining):
                    break
        finally:
            self._filling -= 1
        return time.perf_counter() - started

    # -- running --------------------------------------------------------------------------------------
    def _turn(self, head: _Request, *, queued: bool, drain: bool) -> None:
        """Run the batch ``head`` leads on this thread, which holds a slot; pass the slot on after it.

        A caller's thread (``drain`` False) wakes the next head's caller (or spawns it); an executor
        thread keeps the slot and runs the next batches itself while any are queued.
        """
        nxt: _Request | None = head
        while nxt is not None:
            batch, window = self._assemble(nxt, queued)
            started = dispatched = time.perf_counter()
            calls, ok = 0, False
            try:
                calls = self._call(batch)
                ok = True
            finally:
                run_s = time.perf_counter() - started
                for req in batch:
                    if not req.done:  # run raised a BaseException: nobody may wait forever
                        self._deliver(req, None, Unavailable("the prediction was interrupted; retry"))
                with self._cond:
                    nxt = self._next(batch, calls)
                    waits = tuple(dispatched - r.arrived if r.arrived is not None else 0.0 for r in batch)
                    self.queue_wait_s += sum(waits)
                if nxt is not None and (not drain or not ok):
                    self._promote(nxt)
                    nxt = None
            if self._on_batch is not None:
                stats = BatchStats(len(batch), sum(r.rows for r in batch), waits, window, run_s, calls)
                try:
                    self._on_batch(stats)
                except Exception:  # metrics must never fail a prediction
                    log.exception("batch metrics callback failed")
            queued = True

    def _promote(self, head: _Request) -> None:
        if head.event is not None:  # a submit_sync caller: its own thread runs the batch
            head.lead = True
            head.event.set()
        else:
            self._spawn(head)

    def _spawn(self, head: _Request) -> None:
        """Run ``head``'s batch on the executor (called from a worker thread, never the loop's)."""
        job = functools.partial(self._turn, head, queued=True, drain=True)
        try:
            if self._executor is not None:
                self._executor.submit(job)
            elif head.loop is not None:
                head.loop.call_soon_threadsafe(head.loop.run_in_executor, None, job)
        except RuntimeError:  # executor shut down or loop closed: run it here rather than lose the slot
            job()

    def _call(self, batch: list[_Request]) -> int:
        """Run ``batch`` as one model call and deliver; a failed merged call is split. Returns calls made."""
        if len(batch) == 1:
            try:
                value = self._run(batch[0].frame)
            except Exception as exc:
                self._deliver(batch[0], None, exc)
            else:
                self._deliver(batch[0], value, None)
            return 1
        try:
            import pandas as pd

            frame = pd.concat([r.frame for r in batch], ignore_index=True)
            result = self._run(frame)
            if len(result) != len(frame):
                raise ValueError(f"the model returned {len(result)} predictions for {len(frame)} rows")
        except Exception:
            mid = len(batch) // 2
            return 1 + self._call(batch[:mid]) + self._call(batch[mid:])
        start = 0
        for req in batch:
            stop = start + req.rows
            self._deliver(req, _rows(result, start, stop), None)
            start = stop
        return 1

    def _deliver(self, req: _Request, value: Prediction | None, error: BaseException | None) -> None:
        req.value, req.error = value, error
        if req.future is not None and req.loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits for it
                req.loop.call_soon_threadsafe(_resolve, req.future, value, error)
        elif req.event is not None:
            req.event.set()


def _rows(prediction: Prediction, start: int, stop: int) -> Prediction:
    probabilities = prediction.probabilities
    return dataclasses.replace(
        prediction,
        predictions=prediction.predictions[start:stop],
        probabilities=None if probabilities is None else probabilities[start:stop],
    )


def _resolve(
    future: asyncio.Future[Prediction], value: Prediction | None, error: BaseException | None
) -> None:
    if future.done():  # cancelled: the caller left
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert value is not None
        future.set_result(value)


__all__ = ["BatchStats", "MicroBatcher"]
