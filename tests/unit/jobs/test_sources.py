"""Chunking: chunk i is always rows [i*n, (i+1)*n) of the input, whatever the format and layout."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from liveml.errors import Invalid, NotFound
from liveml.jobs.sources import Source
from liveml.jobs.spec import JobSpec
from liveml.signature import ColumnSpec, Signature


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({"id": np.arange(n), "x": rng.normal(size=n), "c": rng.choice(["a", "b"], size=n)})


def _spec(**fields: object) -> JobSpec:
    return JobSpec.parse({"model": "m", "output": "out.parquet", **fields})


def _ids(source: Source, chunk_rows: int, skip: int = 0) -> list[list[int]]:
    return [list(c.frame["id"]) for c in source.chunks(chunk_rows, skip=skip)]


def _expected(n: int, size: int, skip: int = 0) -> list[list[int]]:
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)][skip:]


def test_parquet_row_groups_do_not_decide_chunk_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(_frame(1000)), path, row_group_size=77)
    source = Source(_spec(input=str(path)))
    assert source.format == "parquet" and source.total_rows == 1000
    assert _ids(source, 300) == _expected(1000, 300)
    assert _ids(source, 300, skip=2) == _expected(1000, 300, skip=2)
    chunk = next(source.chunks(300, skip=1))
    assert (chunk.index, chunk.first_row) == (1, 300)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_text_files_chunk_exactly(tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("liveml.jobs.sources.READ_PIECE_ROWS", 64)  # many pieces per chunk and across chunks
    frame = _frame(500)
    path = tmp_path / f"in.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    source = Source(_spec(input=str(path)))
    assert source.total_rows is None
    assert _ids(source, 150) == _expected(500, 150)
    got = pd.concat([c.frame for c in source.chunks(150)], ignore_index=True)
    pd.testing.assert_frame_equal(got, frame, check_dtype=False)


def test_glob_reads_files_in_name_order(tmp_path: Path) -> None:
    frame = _frame(90)
    for i, part in enumerate((frame[60:], frame[:30], frame[30:60])):
        part.to_csv(tmp_path / f"day-{['3', '1', '2'][i]}.csv", index=False)
    source = Source(_spec(input=str(tmp_path / "day-*.csv")))
    assert source.files == sorted(source.files)
    assert _ids(source, 40) == _expected(90, 40)


def test_partitioned_parquet_folder_keeps_partition_columns(tmp_path: Path) -> None:
    frame = _frame(60).assign(day=["2026-11-20"] * 30 + ["2026-11-21"] * 30)
    pq.write_to_dataset(pa.Table.from_pandas(frame), tmp_path / "ds", partition_cols=["day"])
    source = Source(_spec(input=str(tmp_path / "ds")))
    got = pd.concat([c.frame for c in source.chunks(25)], ignore_index=True)
    assert len(got) == 60 and set(got["day"].astype(str)) == {"2026-11-20", "2026-11-21"}
    assert sorted(got["id"]) == list(range(60))


def test_sql_query_chunks(tmp_path: Path) -> None:
    db = tmp_path / "data.db"
    with sqlite3.connect(db) as conn:
        _frame(230).to_sql("customers", conn, index=False)
    source = Source(_spec(input_sql="select * from customers order by id", db=f"sqlite:///{db}"))
    assert _ids(source, 100) == _expected(230, 100)
    bad = Source(_spec(input_sql="select * from nowhere", db=f"sqlite:///{db}"))
    with pytest.raises(Invalid, match=r"the input query failed.*nowhere"):
        list(bad.chunks(10))


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        Source(_spec(input=str(tmp_path / "missing.parquet")))
    with pytest.raises(NotFound, match="matches no files"):
        Source(_spec(input=str(tmp_path / "*.csv")))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(Invalid, match="is empty"):
        Source(_spec(input=str(tmp_path / "empty.csv")))
    (tmp_path / "data.xyz").write_text("a,b\n1,2\n")
    with pytest.raises(Invalid, match="--input-format"):
        Source(_spec(input=str(tmp_path / "data.xyz")))
    forced = Source(_spec(input=str(tmp_path / "data.xyz"), input_format="csv"))
    assert [c.frame.to_dict("records") for c in forced.chunks(5)] == [[{"a": 1, "b": 2}]]
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(Invalid, match="Parquet"):
        Source(_spec(input=str(tmp_path / "broken.parquet")))


def test_spec_errors_name_the_field() -> None:
    with pytest.raises(Invalid, match="exactly one of input"):
        JobSpec.parse({"model": "m", "output": "o.parquet"})
    with pytest.raises(Invalid, match="input_sql needs db"):
        JobSpec.parse({"model": "m", "output": "o.parquet", "input_sql": "select 1"})
    with pytest.raises(Invalid, match="chunk_rows"):
        JobSpec.parse({"model": "m", "output": "o.parquet", "input": "i.csv", "chunk_rows": 0})
    with pytest.raises(Invalid, match="unknown_field"):
        JobSpec.parse({"model": "m", "output": "o.parquet", "input": "i.csv", "unknown_field": 1})


def test_split_valid_names_each_bad_row_and_keeps_the_rest() -> None:
    signature = Signature(
        inputs=(
            ColumnSpec(name="x"),
            ColumnSpec(name="n", type="integer", nullable=False),
            ColumnSpec(name="flag", type="boolean"),
        )
    )
    frame = pd.DataFrame(
        {
            "x": ["1.5", "abc", "2", "3", "4"],
            "n": [1, 2, 2.5, None, 5],
            "flag": ["yes", "no", "true", "false", "maybe"],
        }
    )
    good, bad, reasons = signature.split_valid(frame)
    assert list(bad) == [False, True, True, True, True]
    assert reasons == [
        "column 'x' expects number values, got 'abc'",
        "column 'n' expects integer values, got 2.5",
        "column 'n' must not be empty",
        "column 'flag' expects boolean values, got 'maybe'",
    ]
    assert list(good.index) == [0] and good["n"].dtype == np.int64 and good["flag"].tolist() == [True]
    clean = pd.DataFrame({"x": [1.0], "n": [1], "flag": [True]})
    assert signature.split_valid(clean)[1].tolist() == [False]
    with pytest.raises(Invalid, match="missing input column"):
        signature.split_valid(pd.DataFrame({"x": [1.0]}))
