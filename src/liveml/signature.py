"""Signatures: the named, typed columns a model takes and gives, and checking a table against them."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from liveml.errors import Invalid

ColumnType = Literal["integer", "number", "boolean", "string", "datetime"]
COLUMN_TYPES: tuple[str, ...] = ("integer", "number", "boolean", "string", "datetime")
INT64_LIMIT = 2.0**63
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


class InputLayout(NamedTuple):
    names: tuple[str, ...]
    all_numeric: bool
    all_number: bool
    all_nullable: bool


class ColumnSpec(BaseModel):
    """One named, typed column."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    type: ColumnType = "number"
    nullable: bool = True


class Signature(BaseModel):
    """What a model version takes (``inputs``) and gives (``outputs``), and where that was learnt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = ()
    source: str = Field(default="user", description="model, reference, example or user")

    @property
    def input_names(self) -> list[str]:
        return list(self.layout.names)

    @functools.cached_property
    def layout(self) -> InputLayout:
        """Facts about the inputs that the predict path asks on every request, worked out once."""
        return InputLayout(
            names=tuple(c.name for c in self.inputs),
            all_numeric=all(c.type in ("number", "integer") for c in self.inputs),
            all_number=all(c.type == "number" for c in self.inputs),
            all_nullable=all(c.nullable for c in self.inputs),
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, source: str, names: Sequence[str] | None = None) -> Signature:
        cols = list(names) if names is not None else [str(c) for c in frame.columns]
        return cls(inputs=tuple(ColumnSpec(name=c, type=column_type(frame[c])) for c in cols), source=source)

    @classmethod
    def from_names(
        cls, names: Iterable[str], *, source: str, types: dict[str, str] | None = None
    ) -> Signature:
        types = types or {}
        return cls(
            inputs=tuple(ColumnSpec(name=n, type=types.get(n, "number")) for n in names),
            source=source,
        )

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Signature:
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("layout", None)  # worked out again from the copy's own inputs
        return copied

    def with_outputs(self, outputs: Sequence[ColumnSpec]) -> Signature:
        return self.model_copy(update={"outputs": tuple(outputs)})

    def conform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` with exactly the input columns, in order, coerced to their types.

        Raises ``Invalid`` naming the column, the row and the value when something cannot be used.
        """
        if self._already_conform(frame):
            return frame
        columns = {str(c): c for c in frame.columns}
        missing = [c.name for c in self.inputs if c.name not in columns]
        if missing:
            raise Invalid(
                f"missing input column(s) {', '.join(repr(m) for m in missing)}; the model expects "
                f"{', '.join(self.input_names)} (extra columns are ignored)"
            )
        out = {}
        for spec in self.inputs:
            out[spec.name] = _coerce(frame[columns[spec.name]], spec).to_numpy()
        return pd.DataFrame(out, index=frame.index, copy=False)

    def split_valid(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
        """Conform the rows that can be used and say why each other row cannot (batch jobs' per-record errors).

        Returns the conformed usable rows (their index kept), a mask of the bad rows and one reason per bad
        row, in row order. A missing column is not a per-row problem: it raises ``Invalid`` as ``conform``."""
        try:
            return self.conform(frame), np.zeros(len(frame), dtype=bool), []
        except Invalid:
            pass
        columns = {str(c): c for c in frame.columns}
        missing = [c.name for c in self.inputs if c.name not in columns]
        if missing:
            self.conform(frame)  # raises, naming the missing columns
        bad = np.zeros(len(frame), dtype=bool)
        reasons = np.full(len(frame), None, dtype=object)
        for spec in self.inputs:
            series = frame[columns[spec.name]]
            problems = _row_problems(series, spec) & ~bad
            for position in np.flatnonzero(problems):
                value = series.iloc[position]
                value = value.item() if isinstance(value, np.generic) else value
                reasons[position] = (
                    f"column {spec.name!r} must not be empty"
                    if _missing(value)
                    else f"column {spec.name!r} expects {spec.type} values, got {value!r}"
                )
            bad |= problems
        good = self.conform(frame[~bad]) if (~bad).any() else self.conform(frame.iloc[:0])
        return good, bad, [str(r) for r in reasons[bad]]

    def _already_conform(self, frame: pd.DataFrame) -> bool:
        """Exactly the input columns, in order, of exactly the right numeric dtypes, none missing where
        that is not allowed: nothing to do (checked in one pass, without touching columns one by one)."""
        layout = self.layout
        columns = frame.columns
        if not layout.all_numeric or len(columns) != len(layout.names):
            return False
        # the index the predict path builds for this signature (columns_index) is the same object each time
        if columns is not columns_index(layout.names) and tuple(columns) != layout.names:
            return False
        block = frame_block(frame)
        if (
            block is not None and block.dtype == np.float64 and layout.all_number
        ):  # no per-column dtypes needed
            return layout.all_nullable or not np.isnan(frame.to_numpy()).any()
        for spec, dtype in zip(self.inputs, frame.dtypes, strict=True):
            if dtype != (np.float64 if spec.type == "number" else np.int64):
                return False
        return layout.all_nullable or not frame.isna().to_numpy().any()

    @property
    def all_numeric(self) -> bool:
        return self.layout.all_numeric

    def frame_from_records(self, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Rows given as dicts, conformed. Numeric signatures skip pandas' per-column work (the hot path of
        single-row requests); anything unusual takes ``conform``, which names what is wrong."""
        if self.all_numeric and records:
            names = self.input_names
            try:
                matrix = np.array([[row[n] for n in names] for row in records], dtype=np.float64)
            except (KeyError, TypeError, ValueError):
                matrix = None
            if matrix is not None and (not np.isnan(matrix).any() or all(c.nullable for c in self.inputs)):
                if not any(c.type == "integer" for c in self.inputs):
                    return pd.DataFrame(matrix, columns=columns_index(tuple(names)), copy=False)
                whole = np.isfinite(matrix).all() and np.array_equal(matrix, np.floor(matrix))
                if whole and np.abs(matrix).max(initial=0.0) < INT64_LIMIT:
                    return pd.DataFrame(
                        {
                            c.name: matrix[:, i].astype(np.int64 if c.type == "integer" else np.float64)
                            for i, c in enumerate(self.inputs)
                        },
                        copy=False,
                    )
        return self.conform(pd.DataFrame.from_records(records))


def frame_block(frame: pd.DataFrame) -> np.ndarray | None:
    """The frame's values when they are one 2-D NumPy block with the columns in order: that block,
    (columns x rows), not copied; None for any other layout (several blocks, extension arrays, columns
    reordered). A look at pandas internals for the predict path's fast checks (about a microsecond where
    pandas' own API costs tens); everything else goes through the API."""
    blocks = getattr(getattr(frame, "_mgr", None), "blocks", None)
    if blocks is None or len(blocks) != 1:
        return None
    block = blocks[0]
    values = block.values
    if type(values) is not np.ndarray or values.ndim != 2:
        return None
    order = block.mgr_locs.indexer  # one block holds every column: in order when this is 0..n
    if type(order) is not slice or order != slice(0, values.shape[0], 1):
        return None
    return values


@functools.lru_cache(maxsize=256)
def columns_index(names: tuple[str, ...]) -> pd.Index:
    """Column labels built once per signature: building a string Index costs more than the model call."""
    return pd.Index(names, dtype=object)


def column_type(series: pd.Series) -> ColumnType:
    """The signature type of a pandas column."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_object_dtype(dtype):
        values = series.dropna()
        if len(values) and all(isinstance(v, bool | np.bool_) for v in values.head(1000)):
            return "boolean"
    return "string"


def _bad_value(series: pd.Series, bad: pd.Series | np.ndarray, spec: ColumnSpec) -> Invalid:
    position = int(np.flatnonzero(np.asarray(bad))[0])
    value = series.iloc[position]
    value = value.item() if isinstance(value, np.generic) else value
    return Invalid(
        f"column {spec.name!r} expects {spec.type} values; row {position} has {value!r} "
        f"({int(bad.sum())} bad value(s) in all); fix or drop those rows"
    )


def _coerce(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    dtype = series.dtype
    # already the right type: nothing to check but missing values (the common case, kept cheap)
    if (spec.type == "number" and dtype == np.float64) or (spec.type == "integer" and dtype == np.int64):
        if not spec.nullable and series.isna().any():
            raise _bad_value(series, series.isna(), spec)
        return series
    plain_number = pd.api.types.is_float_dtype(dtype) or (
        pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_extension_array_dtype(dtype)
    )
    if spec.type == "number" and plain_number:
        return _coerce(series.astype(np.float64), spec)
    present = series.notna()
    converted: pd.Series
    if spec.type in ("integer", "number"):
        if pd.api.types.is_bool_dtype(series.dtype):
            converted = series.astype("float64")
        else:
            converted = pd.to_numeric(series, errors="coerce")
        bad = present & converted.isna()
        if bad.any():
            raise _bad_value(series, bad, spec)
        if spec.type == "integer" and not converted.isna().any():
            as_float = converted.astype("float64")
            # fractions, infinities and numbers past int64 are not integers (and would not cast)
            not_whole = (
                ~np.isfinite(as_float) | (as_float != np.floor(as_float)) | (as_float.abs() >= INT64_LIMIT)
            )
            if not_whole.any():
                raise _bad_value(series, not_whole, spec)
            converted = as_float.astype("int64")
        elif converted.dtype != np.int64:
            converted = converted.astype("float64")
    elif spec.type == "boolean":
        converted = series.map(_to_bool, na_action="ignore")
        bad = present & converted.isna()
        if bad.any():
            raise _bad_value(series, bad, spec)
        if not converted.isna().any():
            converted = converted.astype(bool)
    elif spec.type == "datetime":
        converted = pd.to_datetime(series, errors="coerce", utc=False)
        bad = present & converted.isna()
        if bad.any():
            raise _bad_value(series, bad, spec)
    else:
        converted = series.map(str, na_action="ignore").astype(object)
    if not spec.nullable and converted.isna().any():
        raise _bad_value(series, converted.isna(), spec)
    return converted


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _row_problems(series: pd.Series, spec: ColumnSpec) -> np.ndarray:
    """Which rows of one column ``_coerce`` would refuse (vectorized; for per-record errors)."""
    present = series.notna().to_numpy()
    if spec.type in ("integer", "number"):
        if pd.api.types.is_bool_dtype(series.dtype):
            converted = series.astype("float64")
        else:
            converted = pd.to_numeric(series, errors="coerce").astype("float64")
        values = converted.to_numpy()
        bad = present & np.isnan(values)
        if spec.type == "integer":
            with np.errstate(invalid="ignore"):
                bad |= (
                    present
                    & ~bad
                    & (~np.isfinite(values) | (values != np.floor(values)) | (np.abs(values) >= INT64_LIMIT))
                )
    elif spec.type == "boolean":
        bad = present & series.map(_to_bool, na_action="ignore").isna().to_numpy()
    elif spec.type == "datetime":
        bad = present & pd.to_datetime(series, errors="coerce", utc=False).isna().to_numpy()
    else:
        bad = np.zeros(len(series), dtype=bool)
    if not spec.nullable:
        bad |= ~present
    return np.asarray(bad, dtype=bool)


def _to_bool(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return np.nan


__all__ = ["COLUMN_TYPES", "ColumnSpec", "ColumnType", "Signature", "column_type", "columns_index"]
