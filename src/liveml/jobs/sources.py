"""Reading a job's input in fixed-size chunks: files, globs, partitioned folders, fsspec URLs, SQL queries.

Chunk ``i`` is always rows ``[i * chunk_rows, (i + 1) * chunk_rows)`` of the input, whatever the sizes of
the pieces underneath (row groups, CSV blocks, query pages): that is what lets a resumed job skip exactly
the chunks it had finished."""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate, groupby
from typing import Any

import pandas as pd
import pyarrow as pa

from liveml.errors import Invalid, NotFound, Unavailable, first_line
from liveml.jobs.spec import JobSpec
from liveml.tabular import EXTENSIONS, TableFormat

InputFormat = TableFormat
_SUFFIXES = EXTENSIONS
#: rows a CSV / JSON lines / SQL reader asks for at a time when the chunk is larger (bounds memory)
READ_PIECE_ROWS = 100_000


@dataclass(frozen=True)
class Chunk:
    index: int
    first_row: int
    #: the rows, or None when the worker that scores the chunk reads them itself (``Source.read_rows``)
    frame: pd.DataFrame | None
    rows: int = 0


class Source:
    """An input: where it is, what format, how many rows (when the format says so without reading)."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.description = spec.source
        self.total_rows: int | None = None
        self._row_groups: list[tuple[str, int, int]] | None = None
        self._last: tuple[tuple[str, int], pa.Table] | None = None
        self.base: str | None = None
        if spec.input_sql is not None:
            self.format: str = "sql"
            self.files: list[str] = []
            return
        import fsspec

        assert spec.input is not None
        try:
            self.fs, path = fsspec.core.url_to_fs(spec.input)
        except (ImportError, ValueError) as exc:
            raise Unavailable(f"cannot open input {spec.input!r}: {first_line(exc)}") from exc
        self.files, self.base = _expand(self.fs, path, spec.input)
        self.format = spec.input_format if spec.input_format != "auto" else _format_of(self.files, spec.input)
        if self.format == "parquet":
            self.dataset = self._parquet_dataset()
            self.total_rows = self.dataset.count_rows()

    def _parquet_dataset(self) -> Any:
        import pyarrow.dataset as ds

        try:
            return ds.dataset(
                self.files,
                filesystem=self.fs,
                format="parquet",
                partitioning="hive" if self.base is not None else None,
                partition_base_dir=self.base,
            )
        except (pa.ArrowInvalid, OSError) as exc:
            raise Invalid(
                f"input {self.description!r} could not be read as Parquet: {first_line(exc)}"
            ) from exc

    # -- any rows, read where they are (so that workers read their own chunks) -------------------
    @property
    def splittable(self) -> bool:
        """Whether any process can read rows ``[a, b)`` by itself: Parquet files without partition columns."""
        return self.format == "parquet" and self.base is None

    def row_groups(self) -> list[tuple[str, int, int]]:
        """(file, row group, rows) of every row group, in input order (from the files' footers only)."""
        import pyarrow.parquet as pq

        if self._row_groups is None:
            found = []
            for path in self.files:
                with self.fs.open(path, "rb") as handle:
                    meta = pq.ParquetFile(handle).metadata
                found += [(path, i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups)]
            self._row_groups = found
        return self._row_groups

    def read_rows(self, start: int, stop: int) -> pd.DataFrame:
        """Rows ``[start, stop)`` of the input, reading only the row groups that hold them: whole (kept for
        the next chunk), or only the head that is needed where a run's last chunk reaches into a row group
        the next run decodes (see ``runs``)."""
        import pyarrow.parquet as pq

        tables, offset = [], 0
        for path, group, rows in self.row_groups():
            if offset < stop and offset + rows > start:
                lo, hi = max(start - offset, 0), min(stop - offset, rows)
                if self._last is not None and self._last[0] == (path, group):
                    table = self._last[1]  # the next chunk of the row group this process read last
                else:
                    with self.fs.open(path, "rb") as handle:
                        reader = pq.ParquetFile(handle, pre_buffer=False)
                        if lo == 0 and hi < rows:
                            table = _head(reader, group, hi)
                        else:
                            table = reader.read_row_group(group)
                            self._last = ((path, group), table)
                tables.append(table.slice(lo, hi - lo))
            offset += rows
            if offset >= stop:
                break
        return _frame(list(tables))

    def plan(self, chunk_rows: int, *, skip: int = 0) -> Iterator[Chunk]:
        """The chunks from ``skip`` on, without their rows: for workers that read their own."""
        total = sum(rows for _, _, rows in self.row_groups())
        for index in range(skip, -(-total // chunk_rows)):
            first = index * chunk_rows
            yield Chunk(index, first, None, min(chunk_rows, total - first))

    def runs(self, chunk_rows: int, *, skip: int = 0) -> Iterator[list[Chunk]]:
        """``plan``'s chunks in runs, one task each: the chunks that start in the same row group. The worker
        that scores a run decodes that row group once for all its chunks, and of the next row group only
        the head its last chunk reaches into; so each row group is decoded once, not once per worker."""
        starts = list(accumulate((rows for _, _, rows in self.row_groups()), initial=0))

        def group_of(chunk: Chunk) -> int:
            return bisect_right(starts, chunk.first_row)

        for _, run in groupby(self.plan(chunk_rows, skip=skip), key=group_of):
            yield list(run)

    @property
    def columns(self) -> list[str]:
        return [str(name) for name in self.dataset.schema.names]

    # -- pieces of any size, in input order ------------------------------------------------
    def _pieces(self) -> Iterator[pd.DataFrame | pa.Table]:
        if self.format == "sql":
            yield from self._sql_pieces()
        elif self.format == "parquet":
            # read ahead one batch and one file at most: memory stays a few chunks, whatever the file size
            # (and no pre-buffering, which would hold the whole file's bytes)
            import pyarrow.dataset as ds

            for batch in self.dataset.to_batches(
                batch_size=READ_PIECE_ROWS,
                batch_readahead=1,
                fragment_readahead=1,
                fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
            ):
                yield pa.Table.from_batches([batch])
        else:
            for path in self.files:
                yield from self._text_pieces(path)

    def _text_pieces(self, path: str) -> Iterator[pd.DataFrame]:
        with self.fs.open(path, "rb") as handle:
            if self.format == "csv":
                reader: Any = pd.read_csv(handle, chunksize=READ_PIECE_ROWS)
            else:
                reader = pd.read_json(handle, lines=True, chunksize=READ_PIECE_ROWS)
            with reader:
                yield from reader

    def _sql_pieces(self) -> Iterator[pd.DataFrame]:
        from sqlalchemy import create_engine, text

        from liveml.registry.db import normalize_url, safe_url

        assert self.spec.db is not None and self.spec.input_sql is not None
        engine = create_engine(normalize_url(self.spec.db))
        try:
            with engine.connect().execution_options(stream_results=True) as connection:
                yield from pd.read_sql_query(text(self.spec.input_sql), connection, chunksize=READ_PIECE_ROWS)
        except Exception as exc:
            if isinstance(exc, GeneratorExit):
                raise
            raise Invalid(
                f"the input query failed on {safe_url(normalize_url(self.spec.db))}: {first_line(exc)}; "
                "check the SQL and the --db URL"
            ) from exc
        finally:
            engine.dispose()

    # -- fixed-size chunks -----------------------------------------------------------------
    def chunks(self, chunk_rows: int, *, skip: int = 0) -> Iterator[Chunk]:
        """Chunks of exactly ``chunk_rows`` rows (the last may be shorter), from chunk ``skip`` on."""
        pending: list[pd.DataFrame | pa.Table] = []
        held = 0
        index = 0
        try:
            for piece in self._pieces():
                pending.append(piece)
                held += len(piece)
                while held >= chunk_rows:
                    head, pending, held = _take(pending, chunk_rows)
                    if index >= skip:
                        yield Chunk(index, index * chunk_rows, _frame(head))
                    index += 1
            if held:
                head, pending, held = _take(pending, held)
                if index >= skip:
                    yield Chunk(index, index * chunk_rows, _frame(head))
        except (Invalid, NotFound, Unavailable):
            raise
        except FileNotFoundError as exc:
            raise NotFound(f"input {self.description!r}: {first_line(exc)}") from exc
        except (pd.errors.ParserError, ValueError, json.JSONDecodeError, pa.ArrowException) as exc:
            raise Invalid(
                f"input {self.description!r} could not be read as {self.format}: {first_line(exc)}"
            ) from exc


def _take(
    pieces: list[pd.DataFrame | pa.Table], n: int
) -> tuple[list[pd.DataFrame | pa.Table], list[pd.DataFrame | pa.Table], int]:
    """Split the first ``n`` rows off a list of pieces: (those rows as pieces, the rest, rows in the rest)."""
    head: list[pd.DataFrame | pa.Table] = []
    need = n
    while need:
        piece = pieces[0]
        if len(piece) <= need:
            head.append(pieces.pop(0))
            need -= len(piece)
        else:
            head.append(piece[:need] if isinstance(piece, pd.DataFrame) else piece.slice(0, need))
            pieces[0] = piece[need:] if isinstance(piece, pd.DataFrame) else piece.slice(need)
            need = 0
    return head, pieces, sum(len(p) for p in pieces)


def _head(reader: Any, group: int, rows: int) -> pa.Table:
    """The first ``rows`` rows of row group ``group``, decoding no more of it than that."""
    batches, held = [], 0
    for batch in reader.iter_batches(batch_size=rows, row_groups=[group]):
        batches.append(batch)
        held += batch.num_rows
        if held >= rows:
            break
    return pa.Table.from_batches(batches, schema=reader.schema_arrow)


def _frame(pieces: list[pd.DataFrame | pa.Table]) -> pd.DataFrame:
    if all(isinstance(p, pa.Table) for p in pieces):
        tables = [p for p in pieces if isinstance(p, pa.Table)]
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
        frame = table.to_pandas()
    else:
        frames = [p if isinstance(p, pd.DataFrame) else p.to_pandas() for p in pieces]
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return frame


_GLOB = set("*?[")


def _expand(fs: Any, path: str, given: str) -> tuple[list[str], str | None]:
    """The files of an input, sorted: a glob's matches, a folder's data files (and the folder, as the base
    of hive partitions like ``day=2026-11-21/``), or the one file."""
    if any(c in path for c in _GLOB):
        files = sorted(p for p in fs.glob(path) if fs.isfile(p))
        if not files:
            raise NotFound(f"input {given!r} matches no files; check the pattern")
        return files, None
    if not fs.exists(path):
        raise NotFound(f"input {given!r} does not exist")
    if fs.isdir(path):
        files = sorted(
            p
            for p in fs.find(path)
            if _suffix(p) in _SUFFIXES
            and not any(part.startswith((".", "_")) for part in p[len(path) :].split("/"))
        )
        if not files:
            raise NotFound(f"input folder {given!r} holds no CSV, Parquet or JSON lines files")
        return files, path.rstrip("/")
    if fs.size(path) == 0:
        raise Invalid(f"input {given!r} is empty; it needs a header and at least one row")
    return [path], None


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _format_of(files: list[str], given: str) -> InputFormat:
    formats = {_SUFFIXES.get(_suffix(f)) for f in files}
    if None in formats or len(formats) != 1:
        raise Invalid(
            f"cannot tell the format of input {given!r} from its file names; name the files .csv, .parquet or "
            ".jsonl, or give --input-format csv|parquet|jsonl"
        )
    (fmt,) = formats
    assert fmt is not None
    return fmt


__all__ = ["Chunk", "Source"]
