"""How many runs an engine keeps in flight before it waits for the oldest (results come back in order)."""

from __future__ import annotations

from typing import Any

from liveml.jobs.engines import _ordered
from liveml.jobs.sources import Chunk


def _window(workers: int, queued: int, runs: int = 10, chunks_per_run: int = 5) -> list[int]:
    """For each run taken back: how many had been submitted by then."""
    submitted: list[int] = []
    seen: list[int] = []

    def submit(run: list[Chunk]) -> Any:
        submitted.append(run[0].index)
        return run

    def result(run: list[Chunk]) -> Any:
        seen.append(len(submitted))
        return run

    plan = [[Chunk(r * chunks_per_run + c, 0, None, 1) for c in range(chunks_per_run)] for r in range(runs)]
    got = [chunk.index for chunk in _ordered(submit, result, iter(plan), workers, queued=queued)]
    assert got == list(range(runs * chunks_per_run))  # in input order, whatever the window
    return seen


def test_a_pool_keeps_one_run_per_worker_and_one_waiting() -> None:
    assert _window(2, queued=1)[:3] == [3, 4, 5]


def test_dask_keeps_a_waiting_run_for_every_worker() -> None:
    # a worker that finishes while the job waits for an older run on the other finds its next run queued
    assert _window(2, queued=2)[:3] == [4, 5, 6]
    assert _window(3, queued=3)[:2] == [6, 7]


def test_runs_of_one_chunk_still_give_every_worker_two_chunks() -> None:
    assert _window(2, queued=1, chunks_per_run=1)[:2] == [4, 5]
