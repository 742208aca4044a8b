"""How predictions become the Arrow tables of the log's segments.

Two ways in. Served requests of numeric models (one float64 block of inputs, a runtime ``Prediction``, string
ids) are taken apart when they are emitted: their arrays go into a ``ServedColumns`` per model, version and
hour, and the request's frame and prediction objects are let go at once (nothing kept for the garbage
collector to walk; the flush joins arrays instead of looking into thousands of frames). Anything else
(batch-job chunks, mixed-type inputs) stays a ``PredictionBatch`` until the flush and goes through
``batches_table``. Both give the same columns: ``prediction_id``, ``version``, ``at``, ``latency_ms``,
``job_id``, ``in.<column>``, ``out.<column>``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from liveml.ids import ID_HEAD, PredictionIds, request_ids_array
from liveml.monitoring.records import PredictionBatch
from liveml.runtimes.base import Prediction
from liveml.signature import frame_block

HOUR_US = 3_600_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: what identifies a ``ServedColumns``: model, version, UTC hour number, input names, classes, job id,
#: prediction dtype and number of dimensions, number of probability columns (-1: none)
ServedKey = tuple[str, int, int, tuple[str, ...], tuple[Any, ...] | None, str | None, np.dtype[Any], int, int]


class ServedColumns:
    """The served requests of one ``ServedKey``, as lists of arrays to be joined at the flush."""

    __slots__ = ("classes", "ids", "inputs", "job_id", "latency", "micros", "model", "names", "predictions",
                 "probas", "rows", "total", "version")  # fmt: skip

    def __init__(self, key: ServedKey) -> None:
        self.model, self.version, _, self.names, self.classes, self.job_id = key[:6]
        self.ids: list[Sequence[str]] = []  # one per request (``PredictionIds`` from the host)
        self.total = 0  # rows in all
        self.micros: list[int] = []  # one per request
        self.latency: list[float] = []  # per row, one per request
        self.rows: list[int] = []  # rows per request
        self.inputs: list[np.ndarray] = []  # (columns x rows) per request
        self.predictions: list[np.ndarray] = []
        self.probas: list[np.ndarray] = []

    def add(self, parts: ServedParts) -> None:
        _, ids, micros, latency, block, predictions, probas = parts
        self.ids.append(ids)
        self.total += len(ids)
        self.micros.append(micros)
        self.latency.append(latency)
        self.rows.append(len(ids))
        self.inputs.append(block)
        self.predictions.append(predictions)
        if probas is not None:
            self.probas.append(probas)

    def merge(self, newer: ServedColumns) -> None:
        """Append what ``newer`` (same key) gathered after this one."""
        for name in ("ids", "micros", "latency", "rows", "inputs", "predictions", "probas"):
            getattr(self, name).extend(getattr(newer, name))
        self.total += newer.total

    def __len__(self) -> int:
        return self.total

    @property
    def hour(self) -> int:
        return self.micros[0] // HOUR_US

    def table(self) -> pa.Table:
        n = np.asarray(self.rows, dtype=np.int64)
        columns: dict[str, Any] = {
            "prediction_id": _ids_array(self.ids),
            "version": pa.array(np.full(self.total, self.version, np.int32)),
            "at": pa.array(np.repeat(np.asarray(self.micros, np.int64), n)).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "latency_ms": pa.array(np.repeat(np.asarray(self.latency, np.float32), n)),
            "job_id": pa.nulls(self.total, pa.string())
            if self.job_id is None
            else pa.array([self.job_id] * self.total, pa.string()),
        }
        by_column = np.concatenate(self.inputs, axis=1)
        for i, name in enumerate(self.names):
            columns[f"in.{name}"] = by_column[i]
        probas = np.concatenate(self.probas) if self.probas else None
        output_columns(columns, np.concatenate(self.predictions), probas, self.classes)
        return pa.table(columns)

    def batches(self) -> list[PredictionBatch]:
        """The same requests as ``PredictionBatch``es again (for a flush that must mix them with others)."""
        out, names = [], list(self.names)
        for i, rows in enumerate(self.rows):
            out.append(
                PredictionBatch(
                    self.model,
                    self.version,
                    EPOCH + timedelta(microseconds=self.micros[i]),
                    self.ids[i],
                    pd.DataFrame(self.inputs[i].T, columns=names),
                    Prediction(self.predictions[i], self.probas[i] if self.probas else None, self.classes),
                    self.latency[i] * rows,
                    self.job_id,
                )
            )
        return out


def _ids_array(ids: list[Sequence[str]]) -> pa.Array:
    """The prediction-id column of requests' ids: one Arrow buffer when every request has host-made ids."""
    if all(type(i) is PredictionIds and len(i.head) == ID_HEAD for i in ids):
        return request_ids_array(ids)  # type: ignore[arg-type]
    return pa.array(list(chain.from_iterable(ids)), pa.string())


#: (key, ids, at in µs, latency per row, inputs (columns x rows), predictions, probabilities or None)
ServedParts = tuple[ServedKey, Any, int, float, np.ndarray, np.ndarray, "np.ndarray | None"]


def served_parts(batch: PredictionBatch) -> ServedParts | None:
    """A served request's arrays, when it takes the columnar path (see the module's doc); else None."""
    outputs = batch.outputs
    ids = batch.prediction_ids
    if type(outputs) is not Prediction or not isinstance(ids, PredictionIds | tuple | list):
        return None
    frame = batch.inputs
    block = _own_float_block(frame)
    if block is None:
        return None
    predictions, probas = outputs.predictions, outputs.probabilities
    micros = int(batch.at.timestamp() * 1_000_000)
    key: ServedKey = (
        batch.model,
        batch.version,
        micros // HOUR_US,
        _column_names(frame.columns),
        outputs.classes,
        batch.job_id,
        predictions.dtype,
        predictions.ndim,
        -1 if probas is None else probas.shape[1],
    )
    rows = len(ids)
    return key, ids, micros, batch.latency_ms / max(rows, 1), block, predictions, probas


#: column names by the identity of their Index: the predict path builds one Index per signature and
#: reuses it (``columns_index``), so its names are listed once, not once per request
_NAMES: dict[int, tuple[pd.Index, tuple[str, ...]]] = {}


def _column_names(columns: pd.Index) -> tuple[str, ...]:
    found = _NAMES.get(id(columns))
    if found is not None and found[0] is columns:
        return found[1]
    names = tuple(columns.tolist())
    if len(_NAMES) >= 256:  # frames built elsewhere bring Indexes of their own: keep the table small
        _NAMES.clear()
    _NAMES[id(columns)] = (columns, names)  # the Index is kept, so its id is not reused meanwhile
    return names


def segment_options(table: pa.Table) -> dict[str, Any]:
    """``pyarrow.parquet.write_table`` options for a log segment: dictionary encoding only for the columns
    it helps (labels, versions, text inputs); for floats, timestamps and ids it costs more than half of
    the write and makes the file larger."""
    dictionary = [
        f.name
        for f in table.schema
        if f.name != "prediction_id"
        and not pa.types.is_floating(f.type)
        and not pa.types.is_timestamp(f.type)
    ]
    return {"use_dictionary": dictionary}


def _own_float_block(frame: pd.DataFrame) -> np.ndarray | None:
    """The frame's one float64 block, columns in order, (columns x rows); None in any other case."""
    values = frame_block(frame)
    if values is None or values.dtype != np.float64 or not len(values):
        return None
    return values


def batches_table(batches: list[PredictionBatch]) -> pa.Table:
    """One Arrow table from many batches: numeric inputs and model outputs are concatenated as arrays
    (cheap for thousands of one-row requests); anything else through pandas."""
    n = [len(b) for b in batches]
    # per-batch values repeated per row, as plain integers (never per-row Python objects)
    micros = np.repeat(np.array([int(b.at.timestamp() * 1_000_000) for b in batches], dtype=np.int64), n)
    jobs = [b.job_id for b in batches]
    job_values = sorted({j for j in jobs if j is not None})
    job_codes = np.repeat(np.array([job_values.index(j) if j is not None else -1 for j in jobs], np.int32), n)
    job_ids = pa.DictionaryArray.from_arrays(
        pa.array(job_codes, mask=job_codes < 0), pa.array(job_values, pa.string())
    ).cast(pa.string())
    columns: dict[str, Any] = {
        "prediction_id": _ids(batches),
        "version": pa.array(np.repeat([b.version for b in batches], n), pa.int32()),
        "at": pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "latency_ms": pa.array(np.repeat([b.latency_ms / max(len(b), 1) for b in batches], n), pa.float32()),
        "job_id": job_ids,
    }
    first_columns = batches[0].inputs.columns
    names = list(first_columns)
    same_columns = all(
        b.inputs.columns is first_columns or b.inputs.columns.equals(first_columns) for b in batches
    )
    blocks = [_float_block(b.inputs) for b in batches] if same_columns else [None]
    if all(block is not None for block in blocks):
        # one (columns x rows) float64 block per request: joined along the rows, each column contiguous
        by_column: np.ndarray = np.concatenate(blocks, axis=1)  # type: ignore[arg-type]
        for i, name in enumerate(names):
            columns[f"in.{name}"] = by_column[i]
    else:
        frame = pd.concat([b.inputs for b in batches], ignore_index=True)
        for name in frame.columns:
            columns[f"in.{name}"] = _arrow(frame[name])
    if all(isinstance(b.outputs, Prediction) for b in batches):
        first = batches[0].outputs
        assert isinstance(first, Prediction)
        probas = [b.outputs.probabilities for b in batches]
        output_columns(
            columns,
            np.concatenate([b.outputs.predictions for b in batches]),
            np.concatenate(probas) if all(p is not None for p in probas) else None,  # type: ignore[arg-type]
            first.classes,
        )
    else:
        outputs = pd.concat([b.outputs_frame() for b in batches], ignore_index=True)
        for name in outputs.columns:
            columns[f"out.{name}"] = _arrow(outputs[name])
    return pa.table(columns)


def concat_segments(tables: list[pa.Table]) -> pa.Table:
    """Segments as one table; a column whose type differs between segments (versions of a model whose
    outputs differ, e.g. labels then numbers) is read as strings."""
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        types: dict[str, set[pa.DataType]] = defaultdict(set)
        for table in tables:
            for field in table.schema:
                if not pa.types.is_null(field.type):
                    types[field.name].add(field.type)
        mixed = {name for name, found in types.items() if len(found) > 1}
        cast = [
            pa.Table.from_arrays(
                [
                    c.cast(pa.string()) if n in mixed else c
                    for n, c in zip(t.column_names, t.columns, strict=True)
                ],
                names=t.column_names,
            )
            for t in tables
        ]
        return pa.concat_tables(cast, promote_options="permissive")


def output_columns(
    columns: dict[str, Any],
    predictions: np.ndarray,
    probas: np.ndarray | None,
    classes: tuple[Any, ...] | None,
) -> None:
    """Add ``out.prediction`` (or ``out.prediction_<i>``) and ``out.proba_<class>`` to ``columns``."""
    if predictions.ndim == 1:
        columns["out.prediction"] = _arrow(pd.Series(predictions))
    else:
        for i in range(predictions.shape[1]):
            columns[f"out.prediction_{i}"] = predictions[:, i]
    if probas is not None:
        for i, cls in enumerate(classes or tuple(range(probas.shape[1]))):
            columns[f"out.proba_{cls}"] = probas[:, i]


def _ids(batches: list[PredictionBatch]) -> pa.ChunkedArray:
    """The prediction ids of many batches: Arrow arrays as they are, Python strings in one conversion."""
    chunks: list[pa.Array] = []
    pending: list[str] = []
    for batch in batches:
        if isinstance(batch.prediction_ids, pa.Array):
            if pending:
                chunks.append(pa.array(pending, pa.string()))
                pending = []
            chunks.append(batch.prediction_ids)
        else:
            pending.extend(batch.prediction_ids)
    if pending:
        chunks.append(pa.array(pending, pa.string()))
    return pa.chunked_array(chunks, pa.string())


def _float_block(frame: pd.DataFrame) -> np.ndarray | None:
    """The frame's values as one (columns x rows) float64 array, when pandas holds them so (requests of
    numeric models): read from the block itself, without a per-frame dtype check or copy. Else None."""
    blocks = getattr(getattr(frame, "_mgr", None), "blocks", None)  # pandas internals, a fast path only
    if blocks is not None and len(blocks) == 1 and blocks[0].dtype == np.float64 and len(frame.columns):
        values = np.asarray(blocks[0].values)
        if values.ndim == 2 and values.shape[0] == len(frame.columns):
            placement = blocks[0].mgr_locs.as_array
            return (
                values
                if np.array_equal(placement, np.arange(len(placement)))
                else values[np.argsort(placement)]
            )
    if len(frame.columns) and all(dtype == np.float64 for dtype in frame.dtypes):
        return np.ascontiguousarray(frame.to_numpy().T)
    return None


def _arrow(series: pd.Series) -> pa.Array:
    try:
        return pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(series.map(lambda v: None if v is None else str(v)), pa.string())


__all__ = [
    "ServedColumns",
    "ServedKey",
    "ServedParts",
    "batches_table",
    "concat_segments",
    "output_columns",
    "segment_options",
    "served_parts",
]
