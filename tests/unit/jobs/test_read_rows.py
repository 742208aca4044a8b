"""Workers read their own chunks: ``Source.read_rows`` gives exactly the rows the streamed chunks hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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
