"""Where a job's results go: segments (or, for a folder output, chunk parts) staged in the data home, then
one file (or a folder of parts).

A segment or part is written to a temporary name and renamed, so after a crash it either is whole or is
not there; a resumed job continues after the last whole one. Finishing moves the one segment into place
or merges them in chunk order, streaming (one row group in memory at a time), and can be repeated safely
if the process dies half way."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from liveml.errors import Invalid, Unavailable, first_line
from liveml.jobs.scoring import ID_COLUMN, output_table

OutputFormat = Literal["parquet", "csv"]
#: an open output segment is closed (made durable) after this many seconds: the most work a killed job redoes
SEGMENT_S = 60.0


def output_format(output: str, given: str = "auto") -> OutputFormat:
    if given in ("parquet", "csv"):
        return given  # type: ignore[return-value]
    name = output.rstrip("/").rsplit("/", 1)[-1].lower()
    if is_folder(output):
        return "parquet"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    raise Invalid(
        f"cannot tell the output format of {output!r}; end the name in .parquet or .csv, end it in / for a folder "
        "of Parquet parts, or give --output-format"
    )


def is_folder(output: str) -> bool:
    return output.endswith("/") or (("://" not in output) and Path(output).is_dir())


def default_errors_path(output: str) -> str:
    """``scores.parquet`` → ``scores.errors.csv``; a folder → ``<folder>/errors.csv``."""
    if is_folder(output):
        return output.rstrip("/") + "/errors.csv"
    stem, dot, _ = output.rpartition(".")
    return (stem if dot else output) + ".errors.csv"


class Durable(NamedTuple):
    """What a resumed job keeps: the chunks before ``chunks`` and their counters."""

    chunks: int
    rows: int
    rows_out: int
    errors: int


class Staging:
    """A job's results while it runs, in ``<data home>/jobs/<id>/parts``.

    For a single output file (the usual case) the results go into *segments*: one Parquet file written by
    one ``ParquetWriter``, a row group per chunk, closed (footer, fsync, rename to
    ``seg-<first chunk>-<end chunk>-<input rows>.parquet``) every ``SEGMENT_S`` seconds and at the end. A
    closed segment is durable; the open one is not (a Parquet file has no footer until it is closed), so a
    job killed with SIGKILL resumes after the last closed segment and redoes at most ``SEGMENT_S`` seconds of
    work. A job that ends in one segment (most: every job shorter than ``SEGMENT_S``, and the first
    ``SEGMENT_S`` of every job) needs no merge: the segment *is* the output, moved into place.

    For a folder output every chunk is its own part (``part-<chunk>.parquet``), as the folder will hold."""

    def __init__(self, folder: Path, *, segments: bool = True) -> None:
        self.folder = folder
        self.segments = segments
        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer: pq.ParquetWriter | None = None
        self._open_first = 0  # first chunk of the open segment
        self._open_end = 0  # chunks written to it so far end here
        self._open_rows = 0
        self._opened_at = 0.0
        self._whole = True  # False while a write to the open segment is under way

    def part(self, index: int) -> Path:
        return self.folder / f"part-{index:06d}.parquet"

    def errors_part(self, index: int) -> Path:
        return self.folder / f"errors-{index:06d}.parquet"

    def _open_path(self) -> Path:
        return self.folder / f"seg-{self._open_first:06d}.parquet.tmp"

    def closed_segments(self) -> list[tuple[int, int, int, Path]]:
        """(first chunk, end chunk, input rows, path) of the closed segments, in order."""
        found = []
        for path in self.folder.glob("seg-*.parquet"):
            first, end, rows = (int(x) for x in path.stem.split("-")[1:4])
            found.append((first, end, rows, path))
        return sorted(found)

    def recover(self, chunks_done: int) -> Durable | None:
        """Before a (re)start: drop what a killed run left past its durable point. For segments, returns
        the durable point (it can be before the database's last checkpoint: the open segment was lost);
        for parts, None (every counted part is durable)."""
        if not self.segments:
            self.forget_after(chunks_done)
            return None
        end, rows, out = 0, 0, 0
        for first, last, rows_in, path in self.closed_segments():
            if first != end:  # past a gap (cannot happen, but never count it)
                path.unlink(missing_ok=True)
                continue
            end, rows, out = last, rows + rows_in, out + pq.read_metadata(path).num_rows
        self.forget_after(end)
        errors = sum(pq.read_metadata(p).num_rows for p in self.error_parts(end))
        return Durable(end, rows, out, errors)

    def forget_after(self, chunks_done: int) -> None:
        """Remove parts a killed run wrote past its last checkpoint (and half-written temporary files)."""
        for path in self.folder.iterdir():
            number = path.stem.split("-")[1] if path.name.startswith("seg-") else path.stem.split("-")[-1]
            if path.name.endswith(".tmp") or (number.isdigit() and int(number) >= chunks_done):
                path.unlink(missing_ok=True)

    def write(self, index: int, output: pd.DataFrame | pa.Table, errors: pd.DataFrame) -> None:
        """Chunk ``index``'s output (a frame, or the table a worker made of it: ``ScoredChunk.to_arrow``)."""
        try:
            if len(errors):
                _atomic_parquet(errors, self.errors_part(index))
            table = output if isinstance(output, pa.Table) else output_table(output)
            if not self.segments:
                _atomic_parquet(table, self.part(index))
                return
            self._append(index, table, len(output) + len(errors))
        except OSError as exc:
            raise Unavailable(
                f"cannot write chunk {index} to {self.folder}: {first_line(exc)}; check the disk and that nothing "
                "else removes the job's folder, then `liveml jobs resume`"
            ) from exc

    def _append(self, index: int, table: pa.Table, rows_in: int) -> None:
        if self._writer is not None and not table.schema.equals(self._writer.schema):
            try:  # e.g. a chunk whose rows all failed: its empty prediction column has another type
                table = table.select(self._writer.schema.names).cast(self._writer.schema)
            except (pa.ArrowException, KeyError, ValueError):
                self.close_segment()  # a new segment with this schema; the final merge unifies them
        if self._writer is None:
            self._open_first = self._open_end = index
            self._open_rows = 0
            self._opened_at = time.monotonic()
            self._writer = pq.ParquetWriter(self._open_path(), table.schema, **encoding(table.schema))
        self._whole = False
        self._writer.write_table(table, row_group_size=max(len(table), 1))
        self._whole = True
        self._open_end = index + 1
        self._open_rows += rows_in
        if time.monotonic() - self._opened_at >= SEGMENT_S:
            self.close_segment()

    def close_segment(self) -> None:
        """Make the open segment durable (after a failure too, when its last write was whole)."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if not self._whole:
            with contextlib.suppress(Exception):
                writer.close()
            self._open_path().unlink(missing_ok=True)
            return
        writer.close()
        tmp = self._open_path()
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(
            tmp, self.folder / f"seg-{self._open_first:06d}-{self._open_end:06d}-{self._open_rows}.parquet"
        )

    def finish(self, chunks: int, destination: str, fmt: OutputFormat) -> None:
        """Write the output: move the one segment into place, or merge segments / parts, in chunk order."""
        if not self.segments:
            merge(self.parts(chunks), destination, fmt)
            return
        self.close_segment()
        segments = [path for _, _, _, path in self.closed_segments()]
        if len(segments) == 1 and fmt == "parquet":
            _move(segments[0], destination)
        else:
            merge(segments, destination, fmt)

    def parts(self, chunks: int) -> list[Path]:
        return [self.part(i) for i in range(chunks)]

    def error_parts(self, chunks: int) -> list[Path]:
        return [p for p in (self.errors_part(i) for i in range(chunks)) if p.exists()]

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.close_segment()
        shutil.rmtree(self.folder, ignore_errors=True)


def encoding(schema: pa.Schema) -> dict[str, Any]:
    """Parquet writer options for job outputs: dictionary encoding for text columns only, and never for the
    prediction ids (unique by construction). Numbers are written plain: Arrow would otherwise build a
    dictionary for every column of every row group and drop it once past 1 MB (2M rows of the benchmark's
    output: 0.33 s to write, 0.14 s without; the file is smaller too)."""
    text = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_dictionary)
    return {
        "use_dictionary": [f.name for f in schema if f.name != ID_COLUMN and any(is_(f.type) for is_ in text)]
    }


def _atomic_parquet(frame: pd.DataFrame | pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, tmp, **encoding(table.schema))
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def merge(parts: list[Path], destination: str, fmt: OutputFormat) -> None:
    """Write the parts, in order, as one file or (for a folder) as numbered part files."""
    import fsspec

    if not parts:
        return
    schema = pa.unify_schemas([pq.read_schema(p) for p in parts], promote_options="permissive")
    schema = schema.remove_metadata()
    try:
        if is_folder(destination):
            fs, root = fsspec.core.url_to_fs(destination)
            fs.makedirs(root, exist_ok=True)
            suffix = "parquet" if fmt == "parquet" else "csv"
            for i, part in enumerate(parts):
                with fs.open(f"{root.rstrip('/')}/part-{i:06d}.{suffix}", "wb") as handle:
                    tables = list(_row_groups(part, schema)) or [schema.empty_table()]
                    _write_one(pa.concat_tables(tables), handle, fmt)
            return
        fs, path = fsspec.core.url_to_fs(destination)
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent:
            fs.makedirs(parent, exist_ok=True)
        with fs.open(path, "wb") as handle:
            if fmt == "parquet":
                with pq.ParquetWriter(handle, schema, **encoding(schema)) as writer:
                    for part in parts:
                        for table in _row_groups(part, schema):
                            writer.write_table(table, row_group_size=max(len(table), 1))
            else:
                first = True
                for part in parts:
                    for table in _row_groups(part, schema):
                        pacsv.write_csv(table, handle, write_options=pacsv.WriteOptions(include_header=first))
                        first = False
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise Unavailable(f"cannot write the output {destination!r}: {first_line(exc)}") from exc


def _row_groups(part: Path, schema: pa.Schema) -> Iterator[pa.Table]:
    """A part or segment one row group (one chunk) at a time, as ``schema``."""
    with pq.ParquetFile(part) as file:
        for i in range(file.num_row_groups):
            table = file.read_row_group(i)
            yield table.select(schema.names).cast(schema) if table.schema != schema else table


def _move(segment: Path, destination: str) -> None:
    """The one segment becomes the output: a rename on the same disk, else a byte copy (no re-encoding)."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(destination)
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent:
            fs.makedirs(parent, exist_ok=True)
        if "://" not in destination or destination.startswith("file://"):
            shutil.move(segment, path)
        else:
            fs.put_file(str(segment), path)
    except (OSError, ValueError) as exc:
        raise Unavailable(f"cannot write the output {destination!r}: {first_line(exc)}") from exc


def _write_one(table: pa.Table, handle: Any, fmt: OutputFormat) -> None:
    if fmt == "parquet":
        pq.write_table(table, handle, **encoding(table.schema))
    else:
        pacsv.write_csv(table, handle)


__all__ = [
    "SEGMENT_S",
    "Durable",
    "OutputFormat",
    "Staging",
    "default_errors_path",
    "is_folder",
    "merge",
    "output_format",
]
