"""Scoring one chunk: split off the rows that fail validation, predict the rest, build the output columns.

Pure and picklable, so every engine (in this process, a process pool, a Dask worker) runs the same code
and gives the same bytes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from liveml.errors import Invalid, LivemlError, ModelFailed, first_line
from liveml.ids import hex_ids
from liveml.registry.loading import LoadedModel

#: the columns every output has after the kept ones and the predictions
VERSION_COLUMN = "model_version"
ID_COLUMN = "prediction_id"


@dataclass(frozen=True)
class ChunkOptions:
    uid: str
    keep: tuple[str, ...]
    proba: bool
    #: add the explanation columns (``shap_*``), measured against ``background``
    explain: bool = False
    background: pd.DataFrame | None = field(default=None, compare=False)
    background_source: str = "rows"
    #: share of the rows for the prediction log, and whether ``score_chunk`` attaches their inputs (when
    #: the worker read the chunk itself, the job's process never sees them)
    log_rate: float = 1.0
    log_inputs: bool = False


@dataclass
class ScoredChunk:
    index: int
    first_row: int
    #: the output rows: a frame as scored, or the Arrow table the output file stores (``to_arrow``)
    output: pd.DataFrame | pa.Table
    #: input rows that failed validation: ``row`` (position in the whole input), kept columns, ``error``
    errors: pd.DataFrame
    #: which rows of the chunk were scored (the others are in ``errors``)
    scored: np.ndarray
    seconds: float
    #: the inputs of the rows for the prediction log (``ChunkOptions.log_inputs``), in output order
    logged: pd.DataFrame | None = None

    def to_arrow(self) -> ScoredChunk:
        """The chunk with its output as the Arrow table the output file stores: what a worker process
        sends back, so that the job's process, which writes every chunk, converts none of them. Pickled,
        the table travels as one Arrow IPC stream (a copy of its buffers; read back without one)."""
        if isinstance(self.output, pa.Table):
            return self
        return replace(self, output=output_table(self.output))

    def output_frame(self) -> pd.DataFrame:
        """The output rows as a frame, as ``score_chunk`` made it (the prediction ids Arrow-backed)."""
        if isinstance(self.output, pd.DataFrame):
            return self.output
        table = self.output
        if ID_COLUMN not in table.column_names:
            return table.to_pandas()
        frame = table.drop_columns([ID_COLUMN]).to_pandas()
        frame[ID_COLUMN] = pd.arrays.ArrowExtensionArray(table.column(ID_COLUMN))
        return frame[table.column_names]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if isinstance(self.output, pa.Table):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, self.output.schema) as writer:
                writer.write_table(self.output)
            state["output"] = _IPC(sink.getvalue().to_pybytes())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["output"], _IPC):
            state["output"] = pa.ipc.open_stream(state["output"].data).read_all()
        self.__dict__.update(state)


@dataclass(frozen=True)
class _IPC:
    """An Arrow table as pickled inside a ``ScoredChunk``: one IPC stream."""

    data: bytes


def output_table(frame: pd.DataFrame) -> pa.Table:
    """A chunk's output frame as the table the output file stores (no pandas metadata)."""
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)


def log_mask(uid: str, index: int, rows: int, rate: float) -> np.ndarray | None:
    """Which of a chunk's ``rows`` scored rows go to the prediction log (None: all). Seeded by the job and
    the chunk, so a chunk scored again after a resume logs the same rows; one vectorised draw."""
    if rate >= 1.0:
        return None
    return np.random.default_rng([int(uid[:15], 16), index]).random(rows) < rate


def logged_rows(scored: np.ndarray, chosen: np.ndarray | None) -> np.ndarray:
    """The chunk's rows to log: the scored ones, thinned by ``chosen`` (which runs over the scored rows)."""
    if chosen is None:
        return scored
    rows = scored.copy()
    rows[rows] = chosen
    return rows


def prediction_ids(uid: str, rows: np.ndarray) -> pa.StringArray:
    """``uid`` (16 hex digits, one per job) then the input row number (16 hex digits): unique, and the
    same however often the job is resumed. Built as one Arrow buffer (no Python string per row)."""
    return hex_ids(np.frombuffer(uid.encode("ascii"), dtype=np.uint8), rows, 16)


def check_columns(model: LoadedModel, columns: list[str], keep: tuple[str, ...], where: str) -> None:
    """Fail fast when the input lacks a column the model needs or that --keep names."""
    present = set(columns)
    missing = [c for c in model.signature.input_names if c not in present]
    if missing:
        raise Invalid(
            f"{where} lacks column(s) {', '.join(missing)} that {model.version.ref} needs; it has "
            f"{', '.join(columns[:30])}{' …' if len(columns) > 30 else ''}. Use an input with the model's columns "
            f"(`liveml show {model.version.ref}` lists them)"
        )
    unknown = [c for c in keep if c not in present]
    if unknown:
        raise Invalid(f"--keep names column(s) {', '.join(unknown)} that {where} does not have")


def score_chunk(
    model: LoadedModel, index: int, first_row: int, frame: pd.DataFrame, options: ChunkOptions
) -> ScoredChunk:
    started = time.perf_counter()
    good, bad, reasons = model.signature.split_valid(frame)
    rows = np.arange(first_row, first_row + len(frame))
    scored = ~bad
    if len(good):
        try:
            prediction = model.runtime.predict(good)
        except LivemlError:
            raise
        except Exception as exc:
            raise ModelFailed(
                f"{model.version.ref} failed on rows {first_row} to {first_row + len(frame) - 1}: {first_line(exc)}"
            ) from exc
        predicted = prediction.to_frame(probabilities=options.proba)
        if options.explain:
            predicted = pd.concat([predicted, _explained(model, good, options)], axis=1)
    else:
        predicted = pd.DataFrame({"prediction": pd.Series([], dtype=np.float64)})
    kept = frame.loc[scored, list(options.keep)].reset_index(drop=True)
    output = pd.concat([kept, predicted.reset_index(drop=True)], axis=1)
    output[VERSION_COLUMN] = np.full(len(output), model.version.version, dtype=np.int64)
    output[ID_COLUMN] = pd.Series(
        pd.arrays.ArrowExtensionArray(prediction_ids(options.uid, rows[scored])), index=output.index
    )
    errors = frame.loc[bad, list(options.keep)].reset_index(drop=True)
    errors.insert(0, "row", rows[bad])
    errors["error"] = reasons
    logged = None
    if options.log_inputs and options.log_rate > 0:
        chosen = log_mask(options.uid, index, len(output), options.log_rate)
        logged = frame.loc[logged_rows(scored, chosen), model.signature.input_names].reset_index(drop=True)
    return ScoredChunk(index, first_row, output, errors, scored, time.perf_counter() - started, logged)


def _explained(model: LoadedModel, rows: pd.DataFrame, options: ChunkOptions) -> pd.DataFrame:
    from liveml.explain import explain

    explanation = explain(
        model,
        rows,
        background=options.background,
        background_source=options.background_source,  # type: ignore[arg-type]
    )
    frame = explanation.to_frame()
    clash = [c for c in frame.columns if c in options.keep]
    if clash:
        raise Invalid(f"--keep column(s) {', '.join(clash)} clash with the explanation columns; rename them")
    return frame


__all__ = [
    "ID_COLUMN",
    "VERSION_COLUMN",
    "ChunkOptions",
    "ScoredChunk",
    "check_columns",
    "log_mask",
    "logged_rows",
    "output_table",
    "prediction_ids",
    "score_chunk",
]
