"""Prediction ids: a served request's ids behave as its strings, and the log builds them as one Arrow column."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import numpy as np
import orjson
import pandas as pd
import pytest

from liveml.api.responses import dumps
from liveml.ids import PredictionIds, hex_ids, joined, request_ids_array
from liveml.monitoring.records import PredictionBatch
from liveml.monitoring.segments import ServedColumns, served_parts
from liveml.runtimes.base import Prediction


def _strings(ids: PredictionIds) -> list[str]:
    return [f"{ids.head}{i:08x}" for i in range(ids.rows)]


def test_ids_are_the_head_and_the_row_number_in_hex() -> None:
    ids = PredictionIds("ab" * 12, 300)
    expected = _strings(ids)
    assert len(ids) == 300 and list(ids) == expected and ids.tolist() == expected
    assert ids[0] == expected[0] and ids[-1] == expected[-1] and ids[255] == "ab" * 12 + "000000ff"
    assert ids[10:13] == expected[10:13] and ids[::100] == expected[::100]
    assert ids == expected and ids == tuple(expected) and ids != expected[:-1]
    assert joined(ids) == ",".join(expected) and joined(ids, ";") == ";".join(expected)
    assert joined(("a", "b")) == "a,b" and joined(PredictionIds("f" * 24, 0)) == ""
    assert pickle.loads(pickle.dumps(ids)) == ids  # the strict log's write-ahead file pickles them
    assert orjson.loads(dumps({"ids": ids})) == {"ids": expected}  # JSON responses list them
    with pytest.raises(IndexError):
        ids[300]


def test_fresh_ids_are_random_per_request() -> None:
    first, second = PredictionIds.new(5), PredictionIds.new(5)
    assert len(first.head) == 24 and first.head != second.head
    assert len(set(first) | set(second)) == 10


def test_many_requests_ids_as_one_arrow_column() -> None:
    requests = [PredictionIds.new(n) for n in (1, 0, 100, 7, 20_000)]  # 20,000: past the cached suffixes
    column = request_ids_array(requests)
    assert column.to_pylist() == [s for ids in requests for s in _strings(ids)]


def test_hex_ids_with_sixteen_digits_as_batch_jobs_write_them() -> None:
    uid = "0123456789abcdef"
    rows = np.array([0, 1, 255, 2**40 + 3], dtype=np.uint64)
    head = np.frombuffer(uid.encode(), dtype=np.uint8)
    assert hex_ids(head, rows, 16).to_pylist() == [f"{uid}{int(r):016x}" for r in rows]


def _batch(ids: object, rows: int) -> PredictionBatch:
    frame = pd.DataFrame(np.arange(rows * 2, dtype=float).reshape(rows, 2), columns=["a", "b"])
    prediction = Prediction(np.arange(rows), None, None)
    return PredictionBatch("m", 1, datetime.now(UTC), ids, frame, prediction, 1.0)  # type: ignore[arg-type]


def test_the_log_writes_the_ids_the_response_gave() -> None:
    made = [PredictionIds.new(3), PredictionIds.new(2)]
    given = ("x1", "x2")  # ids made elsewhere (another sink's caller) take the same path
    parts = [served_parts(_batch(ids, len(ids))) for ids in [*made, given]]
    assert all(p is not None for p in parts)
    columns = ServedColumns(parts[0][0])  # type: ignore[index]
    for p in parts[:2]:
        columns.add(p)  # type: ignore[arg-type]
    assert len(columns) == 5
    assert columns.table()["prediction_id"].to_pylist() == [*made[0], *made[1]]
    columns.add(parts[2])  # type: ignore[arg-type]
    assert columns.table()["prediction_id"].to_pylist() == [*made[0], *made[1], "x1", "x2"]
    assert [list(b.prediction_ids) for b in columns.batches()] == [list(made[0]), list(made[1]), ["x1", "x2"]]
