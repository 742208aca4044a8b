"""MicroBatcher: every caller gets exactly its rows, batches merge under load and never exceed the limit,
an idle request never waits, a bad request fails alone, and cancelled callers do not hurt the others.

Load is made deterministic with gates: the model's first call blocks until the test has queued what it
wants, so "merged under load" is a fact of the schedule, not of timing. Nothing here asserts a duration.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

from liveml.errors import Invalid, Unavailable
from liveml.runtimes.base import Prediction
from liveml.serving.batcher import BatchStats, MicroBatcher


class FakeModel:
    """Returns each row's id as its prediction (and (id, -id) as "probabilities"); records every call.

    Call number k (k < gates) announces itself on ``entered[k]`` and waits for ``release[k]``.
    """

    def __init__(self, gates: int = 0, bad: Iterable[int] = (), error: Exception | None = None) -> None:
        self.calls: list[list[int]] = []
        self.lock = threading.Lock()
        self.entered = [threading.Event() for _ in range(gates)]
        self.release = [threading.Event() for _ in range(gates)]
        self.bad = set(bad)
        self.error = error

    def __call__(self, frame: pd.DataFrame) -> Prediction:
        ids = [int(i) for i in frame["id"]]
        with self.lock:
            k = len(self.calls)
            self.calls.append(ids)
        if k < len(self.entered):
            self.entered[k].set()
            assert self.release[k].wait(10), "the test never released the gate"
        if self.bad & set(ids):
            raise self.error if self.error is not None else ValueError(f"bad ids in {ids}")
        values = np.asarray(ids, dtype=np.int64)
        return Prediction(values, np.column_stack([values, -values]).astype(float), ("pos", "neg"))

    def open_all(self) -> None:
        for event in self.release:
            event.set()


def request(first_id: int, rows: int, *, as_float: bool = False) -> pd.DataFrame:
    ids = list(range(first_id, first_id + rows))
    x = [float(i) for i in ids] if as_float else ids  # int or float columns for the same name
    return pd.DataFrame({"id": ids, "x": x})


def requests(n: int, seed: int = 0) -> list[pd.DataFrame]:
    """n requests of 1..7 rows with globally unique ids; every other one has float columns."""
    sizes = np.random.default_rng(seed).integers(1, 8, size=n)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return [
        request(int(s), int(r), as_float=i % 2 == 1)
        for i, (s, r) in enumerate(zip(starts, sizes, strict=True))
    ]


def check_own_rows(frames: list[pd.DataFrame], results: list[Prediction]) -> None:
    for frame, result in zip(frames, results, strict=True):
        ids = frame["id"].to_numpy()
        np.testing.assert_array_equal(result.predictions, ids)
        assert result.probabilities is not None
        np.testing.assert_array_equal(result.probabilities, np.column_stack([ids, -ids]))
        assert result.classes == ("pos", "neg")


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.0005)


async def async_wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.0005)


def check_limits(model: FakeModel, limit: int) -> None:
    assert all(len(call) <= limit for call in model.calls)
    assert max(len(call) for call in model.calls) > 7, "under load, requests should have been merged"
    assert sorted(i for call in model.calls for i in call) == sorted(set(i for c in model.calls for i in c))


def test_async_callers_get_their_own_rows_and_batches_merge() -> None:
    model = FakeModel(gates=1)
    stats: list[BatchStats] = []
    batcher = MicroBatcher(model, max_batch_size=32, on_batch=stats.append)
    frames = requests(200)

    async def main() -> list[Prediction]:
        tasks = [asyncio.ensure_future(batcher.submit(f)) for f in frames]
        await async_wait_until(lambda: batcher.queued == 199, "199 requests queued behind the first")
        model.open_all()
        return list(await asyncio.gather(*tasks))

    check_own_rows(frames, asyncio.run(main()))
    check_limits(model, 32)
    assert batcher.requests == 200 and batcher.rows == sum(len(f) for f in frames)
    assert batcher.batches == len(model.calls) == len(stats) and batcher.max_rows <= 32
    assert stats[0].queue_waits_s == (0.0,)  # the first request found the model idle
    assert all(w > 0 for s in stats[1:] for w in s.queue_waits_s)
    assert batcher.windows == 0 and all(s.window_s == 0.0 for s in stats)
    assert batcher.close(timeout=5)


@pytest.mark.parametrize("concurrent_batches", [1, 2])
def test_threads_get_their_own_rows_and_batches_merge(concurrent_batches: int) -> None:
    model = FakeModel(gates=concurrent_batches)
    batcher = MicroBatcher(model, max_batch_size=16, max_concurrent_batches=concurrent_batches)
    frames = requests(200, seed=1)
    with ThreadPoolExecutor(32) as pool:
        futures = [pool.submit(batcher.submit_sync, f) for f in frames]
        wait_until(lambda: batcher.queued == 32 - concurrent_batches, "every other thread queued")
        model.open_all()
        results = [f.result(timeout=10) for f in futures]
    check_own_rows(frames, results)
    check_limits(model, 16)
    assert batcher.requests == 200 and batcher.immediate >= concurrent_batches
    assert batcher.close(timeout=5)


def test_real_model_mixed_dtypes_and_an_oversized_request() -> None:
    x, y = load_iris(return_X_y=True, as_frame=True)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    gate = threading.Event()

    def run(frame: pd.DataFrame) -> Prediction:
        gate.wait(10)
        return Prediction(forest.predict(frame), forest.predict_proba(frame), tuple(forest.classes_))

    rng = np.random.default_rng(2)
    frames = [x.iloc[rng.integers(0, len(x), size=int(rng.integers(1, 8)))] for _ in range(100)]
    frames = [f.round().astype("int64") if i % 3 == 0 else f for i, f in enumerate(frames)]  # int columns
    frames.append(x)  # 150 rows > max_batch_size: goes alone
    sizes: list[int] = []
    batcher = MicroBatcher(run, max_batch_size=20, on_batch=lambda s: sizes.append(s.rows))
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(batcher.submit_sync, f) for f in frames]
        wait_until(lambda: batcher.queued == 15, "all but one thread queued")
        gate.set()
        results = [f.result(timeout=10) for f in futures]
    for frame, result in zip(frames, results, strict=True):
        np.testing.assert_array_equal(result.predictions, forest.predict(frame))
        assert result.probabilities is not None
        np.testing.assert_allclose(result.probabilities, forest.predict_proba(frame))
        assert result.classes == (0, 1, 2)
    assert 150 in sizes and all(s <= 20 for s in sizes if s != 150) and max(s for s in sizes if s != 150) > 7


@pytest.mark.parametrize("via", ["sync", "async"])
def test_idle_request_runs_alone_and_never_waits(via: str) -> None:
    model = FakeModel()
    stats: list[BatchStats] = []
    # a window long enough to fail the test by timeout were it ever applied to an idle request
    batcher = MicroBatcher(model, max_batch_size=64, max_latency_ms=600_000, on_batch=stats.append)
    frame = request(0, 3)
    for _ in range(3):
        result = batcher.submit_sync(frame) if via == "sync" else asyncio.run(batcher.submit(frame))
        check_own_rows([frame], [result])
    assert stats == [BatchStats(1, 3, (0.0,), 0.0, s.run_s, 1) for s in stats] and len(stats) == 3
    assert batcher.immediate == 3 and batcher.windows == 0 and batcher.queue_wait_s == 0.0
    assert model.calls == [[0, 1, 2]] * 3


def test_window_fills_a_batch_under_load() -> None:
    model = FakeModel(gates=1)
    stats: list[BatchStats] = []
    batcher = MicroBatcher(model, max_batch_size=8, max_latency_ms=600_000, on_batch=stats.append)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(batcher.submit_sync, request(0, 1))
        assert model.entered[0].wait(10)
        head = pool.submit(batcher.submit_sync, request(1, 2))
        wait_until(lambda: batcher.queued == 1, "the head queued")
        model.open_all()
        wait_until(lambda: batcher.windows == 1, "the head holding the free model open for more rows")
        rest = [pool.submit(batcher.submit_sync, request(3 + 2 * i, 2)) for i in range(3)]  # 2 + 3*2 = 8
        results = [f.result(timeout=10) for f in [first, head, *rest]]
    assert model.calls == [[0], list(range(1, 9))]
    assert [len(r) for r in results] == [1, 2, 2, 2, 2]
    assert stats[1].requests == 4 and stats[1].window_s > 0


def test_no_window_for_a_head_that_already_waited_longer() -> None:
    model = FakeModel(gates=1)
    batcher = MicroBatcher(model, max_batch_size=64, max_latency_ms=1)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(batcher.submit_sync, request(0, 1))
        assert model.entered[0].wait(10)
        head = pool.submit(batcher.submit_sync, request(1, 1))
        wait_until(lambda: batcher.queued == 1, "the head queued")
        time.sleep(0.005)  # the head has now waited longer than max_latency_ms behind the first call
        model.open_all()
        assert len(head.result(timeout=10)) == 1 and len(first.result(timeout=10)) == 1
    assert batcher.windows == 0 and model.calls == [[0], [1]]


@pytest.mark.parametrize("error", [None, Invalid("row 3 is not acceptable")])
def test_a_bad_request_fails_alone(error: Exception | None) -> None:
    frames = [request(10 * i, 3) for i in range(12)]
    model = FakeModel(gates=1, bad={71}, error=error)  # in request 7
    batcher = MicroBatcher(model, max_batch_size=64)
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(batcher.submit_sync, frames[0])]
        assert model.entered[0].wait(10)
        futures += [pool.submit(batcher.submit_sync, f) for f in frames[1:]]
        wait_until(lambda: batcher.queued == 11, "eleven requests queued")
        model.open_all()
        for i, future in enumerate(futures):
            if i != 7:
                check_own_rows([frames[i]], [future.result(timeout=10)])
                continue
            with pytest.raises(ValueError if error is None else Invalid) as caught:
                future.result(timeout=10)
            assert error is None or caught.value is error  # a LivemlError comes back unchanged
    assert [70, 71, 72] in model.calls  # the bad request ended up alone
    assert batcher.splits >= 1 and batcher.calls == len(model.calls) and batcher.batches == 2


def test_cancelled_callers_do_not_hurt_the_others() -> None:
    model = FakeModel(gates=2)
    batcher = MicroBatcher(model, max_batch_size=64)
    frames = [request(10 * i, 2) for i in range(6)]

    async def main() -> None:
        running = asyncio.ensure_future(batcher.submit(frames[0]))
        await async_wait_until(model.entered[0].is_set, "the first call running")
        queued = [asyncio.ensure_future(batcher.submit(f)) for f in frames[1:]]
        await async_wait_until(lambda: batcher.queued == 5, "five queued")
        queued[0].cancel()  # leaves the queue
        running.cancel()  # its batch goes on; the answer is dropped
        await async_wait_until(lambda: batcher.queued == 4, "the cancelled one gone from the queue")
        model.release[0].set()
        await async_wait_until(model.entered[1].is_set, "the second batch running")
        queued[1].cancel()  # cancelled inside a running merged batch
        model.release[1].set()
        results = await asyncio.gather(*queued, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError) and isinstance(
            results[1], asyncio.CancelledError
        )
        check_own_rows(frames[3:], [r for r in results[2:] if isinstance(r, Prediction)])
        assert running.cancelled()
        assert await batcher.aclose(timeout=5)

    asyncio.run(main())
    assert model.calls == [[0, 1], [20, 21, 30, 31, 40, 41, 50, 51]]


def test_sync_and_async_callers_share_batches_on_an_executor() -> None:
    model = FakeModel(gates=1)
    with ThreadPoolExecutor(2) as executor:
        batcher = MicroBatcher(model, max_batch_size=64, executor=executor)
        frames = requests(40, seed=3)

        async def main() -> list[Prediction]:
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32))  # for to_thread
            calls = [
                batcher.submit(f) if i % 2 else asyncio.to_thread(batcher.submit_sync, f)
                for i, f in enumerate(frames)
            ]
            tasks = [asyncio.ensure_future(c) for c in calls]
            await async_wait_until(lambda: batcher.queued == 39, "all but one queued")
            model.open_all()
            return list(await asyncio.gather(*tasks))

        check_own_rows(frames, asyncio.run(main()))
    assert max(len(c) for c in model.calls) > 7


def broken_callback(stats: BatchStats) -> None:
    raise RuntimeError("metrics exporter bug")


def test_close_drains_then_refuses() -> None:
    model = FakeModel(gates=1)
    batcher = MicroBatcher(model, max_batch_size=64, on_batch=broken_callback)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batcher.submit_sync, request(0, 1))]
        assert model.entered[0].wait(10)
        futures += [pool.submit(batcher.submit_sync, request(i, 1)) for i in (1, 2)]
        wait_until(lambda: batcher.queued == 2, "two queued")
        closing = pool.submit(batcher.close, 10)
        wait_until(lambda: batcher._closed, "close called")
        with pytest.raises(Unavailable):
            batcher.submit_sync(request(9, 1))
        assert not closing.done()
        model.open_all()
        assert closing.result(timeout=10) is True
        assert [len(f.result(timeout=1)) for f in futures] == [1, 1, 1]
    assert model.calls == [[0], [1, 2]]


def test_frames_with_other_columns_are_not_merged() -> None:
    model = FakeModel(gates=1)
    batcher = MicroBatcher(model, max_batch_size=64)
    other = request(5, 1).rename(columns={"x": "y"})
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(batcher.submit_sync, request(0, 1))]
        assert model.entered[0].wait(10)
        for frame in (request(1, 1), other, request(6, 1), request(7, 1)):
            futures.append(pool.submit(batcher.submit_sync, frame))
            queued = len(futures) - 1
            wait_until(lambda: batcher.queued == queued, "queued in order")  # noqa: B023
        model.open_all()
        assert [int(f.result(timeout=10).predictions[0]) for f in futures] == [0, 1, 5, 6, 7]
    assert model.calls == [[0], [1], [5], [6, 7]]  # FIFO kept: merging stops at the odd one
