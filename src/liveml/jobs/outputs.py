"""Where a job's results go: chunk parts staged in the data home, then one file (or a folder of parts).

A part is written to a temporary name and renamed, so after a crash a part either is whole or is not
there; the job's checkpoint counts only parts that are. Finishing merges the parts in chunk order, streaming
(one part in memory at a time), and can be repeated safely if the process dies half way."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from liveml.errors import Invalid, Unavailable, first_line

OutputFormat = Literal["parquet", "csv"]


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


class Staging:
    """The parts of one job, in ``<data home>/jobs/<id>/parts``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def part(self, index: int) -> Path:
        return self.folder / f"part-{index:06d}.parquet"

    def errors_part(self, index: int) -> Path:
        return self.folder / f"errors-{index:06d}.parquet"

    def forget_after(self, chunks_done: int) -> None:
        """Remove parts a killed run wrote past its last checkpoint (and half-written temporary files)."""
        for path in self.folder.iterdir():
            if path.name.endswith(".tmp") or (
                path.stem.split("-")[-1].isdigit() and int(path.stem.split("-")[-1]) >= chunks_done
            ):
                path.unlink(missing_ok=True)

    def write(self, index: int, output: pd.DataFrame, errors: pd.DataFrame) -> None:
        try:
            _atomic_parquet(output, self.part(index))
            if len(errors):
                _atomic_parquet(errors, self.errors_part(index))
        except OSError as exc:
            raise Unavailable(
                f"cannot write chunk {index} to {self.folder}: {first_line(exc)}; check the disk and that nothing "
                "else removes the job's folder, then `liveml jobs resume`"
            ) from exc

    def parts(self, chunks: int) -> list[Path]:
        return [self.part(i) for i in range(chunks)]

    def error_parts(self, chunks: int) -> list[Path]:
        return [p for p in (self.errors_part(i) for i in range(chunks)) if p.exists()]

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _atomic_parquet(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
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
                    _write_one(_read_as(part, schema), handle, fmt)
            return
        fs, path = fsspec.core.url_to_fs(destination)
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent:
            fs.makedirs(parent, exist_ok=True)
        with fs.open(path, "wb") as handle:
            if fmt == "parquet":
                with pq.ParquetWriter(handle, schema) as writer:
                    for part in parts:
                        writer.write_table(_read_as(part, schema))
            else:
                for i, part in enumerate(parts):
                    pacsv.write_csv(
                        _read_as(part, schema),
                        handle,
                        write_options=pacsv.WriteOptions(include_header=i == 0),
                    )
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise Unavailable(f"cannot write the output {destination!r}: {first_line(exc)}") from exc


def _read_as(part: Path, schema: pa.Schema) -> pa.Table:
    table = pq.read_table(part)
    return table.select(schema.names).cast(schema) if table.schema != schema else table


def _write_one(table: pa.Table, handle: Any, fmt: OutputFormat) -> None:
    if fmt == "parquet":
        pq.write_table(table, handle)
    else:
        pacsv.write_csv(table, handle)


__all__ = ["OutputFormat", "Staging", "default_errors_path", "is_folder", "merge", "output_format"]
