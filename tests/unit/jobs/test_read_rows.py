"""Workers read their own chunks: ``Source.read_rows`` gives exactly the rows the streamed chunks hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from liveml.jobs.runner import workers_read_input
from liveml.jobs.sources import Source
from liveml.jobs.spec import JobSpec


def _spec(**fields: object) -> JobSpec:
    return JobSpec.parse({"model": "m", "output": "out.parquet", **fields})


def _write(path: Path, first: int, n: int, row_group: int) -> None:
    rng = np.random.default_rng(first)
    frame = pd.DataFrame({"id": np.arange(first, first + n), "x": rng.normal(size=n)})
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group)


def test_row_ranges_across_row_groups_and_files_match_the_streamed_chunks(tmp_path: Path) -> None:
    _write(tmp_path / "a.parquet", 0, 530, 70)
    _write(tmp_path / "b.parquet", 530, 250, 200)
    source = Source(_spec(input=f"{tmp_path}/*.parquet"))
    assert source.splittable
    planned = list(source.plan(100, skip=2))
    assert [(c.index, c.first_row, c.rows, c.frame) for c in planned[:1]] == [(2, 200, 100, None)]
    assert planned[-1].first_row == 700 and planned[-1].rows == 80
    streamed = {c.index: c.frame for c in source.chunks(100) if c.frame is not None}
    assert len(streamed) == 8
    reader = Source(_spec(input=f"{tmp_path}/*.parquet"))  # as a worker would: its own reader
    for chunk in reversed(planned):  # any order
        pd.testing.assert_frame_equal(
            reader.read_rows(chunk.first_row, chunk.first_row + chunk.rows), streamed[chunk.index]
        )


def test_who_reads_the_input(tmp_path: Path) -> None:
    _write(tmp_path / "a.parquet", 0, 10, 5)
    (tmp_path / "day=1").mkdir()
    _write(tmp_path / "day=1" / "b.parquet", 0, 10, 5)
    (tmp_path / "c.csv").write_text("id\n1\n")
    _write(tmp_path / "huge.parquet", 0, (1 << 20) + 1, (1 << 20) + 1)  # one row group a worker would hold
    one = _spec(input=str(tmp_path / "a.parquet"))
    pool = _spec(input=str(tmp_path / "a.parquet"), workers=2)
    assert not workers_read_input(one, Source(one))  # one process: it reads, it scores
    assert workers_read_input(pool, Source(pool))
    for spec in (
        _spec(input=str(tmp_path / "c.csv"), workers=2),  # CSV cannot be cut by row group
        _spec(input=str(tmp_path / "huge.parquet"), workers=2, chunk_rows=1000),
        _spec(input=str(tmp_path / "day=1"), workers=2),  # partition columns come from the folder names
        _spec(
            input=str(tmp_path / "a.parquet"), engine="dask", scheduler="tcp://10.0.0.5:8786"
        ),  # a path there?
    ):
        assert not workers_read_input(spec, Source(spec))


def test_runs_dealt_to_two_workers_decode_each_row_group_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "a.parquet", 0, 530, 70)  # chunks of 100 end inside row groups of 70
    _write(tmp_path / "b.parquet", 530, 250, 200)
    _write(tmp_path / "c.parquet", 780, 1000, 500)  # row groups of 500: chunks of 100 fit them exactly
    decoded: list[tuple[str, int]] = []
    whole = pq.ParquetFile.read_row_group

    def counted(self: pq.ParquetFile, i: int, *args: object, **kwargs: object) -> pa.Table:
        decoded.append((self.metadata.num_rows, i))
        return whole(self, i, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counted)
    source = Source(_spec(input=f"{tmp_path}/*.parquet"))
    runs = list(source.runs(100, skip=1))
    assert [c for run in runs for c in run] == list(source.plan(100, skip=1))  # all chunks, in order
    assert [len(run) for run in runs][-2:] == [5, 5]  # c.parquet: a run per row group
    streamed = {c.index: c.frame for c in source.chunks(100) if c.frame is not None}
    workers = [Source(_spec(input=f"{tmp_path}/*.parquet")) for _ in range(2)]
    for i, run in enumerate(runs):  # dealt out in turn: the worst case for one reader per worker
        for chunk in run:
            got = workers[i % 2].read_rows(chunk.first_row, chunk.first_row + chunk.rows)
            pd.testing.assert_frame_equal(got, streamed[chunk.index])
    assert len(decoded) == len(set(decoded))  # no row group decoded whole twice
