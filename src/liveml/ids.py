"""Prediction ids: a random head per request or job, then the row's number in hex.

A served request gets ``PredictionIds``: 24 random hex digits (96 bits) and the row number in 8 hex digits,
kept as the head and a count, so a request of many rows builds no string per row on the predict path. The
response joins them in one step (``joined``), and the prediction log builds the whole id column of a segment
as one Arrow buffer (``hex_ids``; batch jobs write theirs with it too: the job's uid, then the row number in
16 hex digits).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np
import pyarrow as pa

#: hex digits of a served request's random head and of its row number
ID_HEAD = 24
ROW_DIGITS = 8
#: each byte's two hex digits, as the uint16 whose little-endian bytes they are
_HEX_PAIRS = np.array([int.from_bytes(f"{b:02x}".encode(), "little") for b in range(256)], dtype="<u2")
#: the row numbers' suffixes, built up to the largest request seen
_SUFFIXES: list[str] = []


def _suffixes(count: int) -> list[str]:
    if len(_SUFFIXES) < count:
        _SUFFIXES.extend(f"{i:0{ROW_DIGITS}x}" for i in range(len(_SUFFIXES), count))
    return _SUFFIXES


class PredictionIds(Sequence[str]):
    """The ids of one request's rows: ``head`` then the row number, ``rows`` of them (a read-only
    sequence of strings that makes a string only when one is asked for)."""

    __slots__ = ("head", "rows")

    def __init__(self, head: str, rows: int) -> None:
        self.head = head
        self.rows = rows

    @classmethod
    def new(cls, count: int) -> PredictionIds:
        """Fresh ids for a request of ``count`` rows: 96 random bits, unique without coordination."""
        return cls(os.urandom(ID_HEAD // 2).hex(), count)

    def __len__(self) -> int:
        return self.rows

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.rows))]
        if index < 0:
            index += self.rows
        if not 0 <= index < self.rows:
            raise IndexError("prediction id index out of range")
        return self.head + _suffixes(index + 1)[index]

    def __iter__(self) -> Iterator[str]:
        head = self.head
        return (head + s for s in _suffixes(self.rows)[: self.rows])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PredictionIds):
            return (self.head, self.rows) == (other.head, other.rows)
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.head, self.rows))

    def __repr__(self) -> str:
        return f"PredictionIds({self.head!r}, {self.rows})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (PredictionIds, (self.head, self.rows))

    def joined(self, separator: str = ",") -> str:
        """All ids in one string, ``separator`` between them (one join, no list of ids)."""
        if not self.rows:
            return ""
        return self.head + (separator + self.head).join(_suffixes(self.rows)[: self.rows])

    def tolist(self) -> list[str]:
        return list(self)


def joined(ids: Sequence[str], separator: str = ",") -> str:
    """``separator.join(ids)``, in one step for ``PredictionIds``."""
    return ids.joined(separator) if isinstance(ids, PredictionIds) else separator.join(ids)


def hex_ids(heads: np.ndarray, numbers: np.ndarray, digits: int) -> pa.StringArray:
    """Ids as one Arrow string array: row ``i`` is the ASCII bytes ``heads[i]`` (an ``(n, k)`` uint8 array,
    or one ``(k,)`` row for all) then ``numbers[i]`` in ``digits`` hex digits (8 or 16). No Python string
    per row."""
    width = digits // 2
    numbers = np.asarray(numbers, dtype=np.uint64)
    rows = len(numbers)
    k = heads.shape[-1]
    size = k + digits
    data = np.empty((rows, size), dtype=np.uint8)
    data[:, :k] = heads
    big_endian = (
        numbers.astype(">u8").view(np.uint8).reshape(rows, 8)[:, 8 - width :]
    )  # most significant first
    data[:, k:] = _HEX_PAIRS[big_endian].view(np.uint8).reshape(rows, digits)
    offsets = np.arange(0, size * (rows + 1), size, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def request_ids_array(ids: Sequence[PredictionIds]) -> pa.StringArray:
    """The ids of many served requests, in order, as one Arrow string array."""
    counts = np.fromiter((i.rows for i in ids), dtype=np.int64, count=len(ids))
    heads = np.frombuffer("".join(i.head for i in ids).encode("ascii"), dtype=np.uint8).reshape(len(ids), -1)
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    numbers = np.arange(total, dtype=np.int64) - starts
    return hex_ids(np.repeat(heads, counts, axis=0), numbers, ROW_DIGITS)


__all__ = ["ID_HEAD", "ROW_DIGITS", "PredictionIds", "hex_ids", "joined", "request_ids_array"]
