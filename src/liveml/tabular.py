"""Reading and writing tables (CSV, Parquet, JSON lines) from local paths or fsspec URLs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Literal

import pandas as pd

from liveml.errors import Invalid, NotFound, first_line

TableFormat = Literal["csv", "parquet", "jsonl"]
EXTENSIONS: dict[str, TableFormat] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".txt": "csv",
}
SUPPORTED = "CSV (.csv), Parquet (.parquet) or JSON lines (.jsonl)"


def table_format(path: str | Path, *, content: bytes | None = None) -> TableFormat:
    """The format of a table file, from its extension, else from its first bytes."""
    suffix = Path(str(path)).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if content is not None and not suffix:
        if content.startswith(b"PAR1"):
            return "parquet"
        if content.lstrip().startswith(b"{"):
            return "jsonl"
        return "csv"
    raise Invalid(f"cannot tell the format of {str(path)!r} from its name; use a file ending in {SUPPORTED}")


def read_table(path: str | Path, *, what: str = "input") -> pd.DataFrame:
    """Read a whole table; errors name the file and what is wrong with it."""
    import fsspec

    text = str(path)
    if "://" not in text:
        local = Path(text)
        if not local.exists():
            raise NotFound(f"{what} file {text!r} does not exist")
        if local.is_dir() and not any(local.glob("*.parquet")):
            raise Invalid(f"{what} {text!r} is a folder; give a {SUPPORTED} file")
        if local.is_file() and local.stat().st_size == 0:
            raise Invalid(f"{what} file {text!r} is empty; it needs a header and at least one row")
    try:
        with fsspec.open(text, "rb") as fh:
            head = fh.read(8)
        fmt = table_format(text, content=head)
        frame = _read(text, fmt)
    except (Invalid, NotFound):
        raise
    except FileNotFoundError as exc:
        raise NotFound(f"{what} file {text!r} does not exist") from exc
    except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError, json.JSONDecodeError) as exc:
        raise Invalid(f"{what} file {text!r} could not be read as {fmt}: {first_line(exc)}") from exc
    except Exception as exc:  # pyarrow raises its own hierarchy for corrupt Parquet
        raise Invalid(f"{what} file {text!r} could not be read: {first_line(exc)}") from exc
    if frame.empty or len(frame.columns) == 0:
        raise Invalid(f"{what} file {text!r} has no rows; it needs a header and at least one row")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _read(path: str, fmt: TableFormat) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "jsonl":
        import fsspec

        with fsspec.open(path, "rb") as fh:
            raw = fh.read()
        stripped = raw.lstrip()
        if stripped.startswith(b"["):
            return pd.DataFrame(json.loads(raw))
        return pd.read_json(io.BytesIO(raw), lines=True)
    return pd.read_csv(path)


def write_table(frame: pd.DataFrame, path: str | Path) -> TableFormat:
    """Write ``frame`` in the format its path names; returns that format."""
    fmt = table_format(path)
    text = str(path)
    if "://" not in text:
        Path(text).parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.to_parquet(text, index=False)
    elif fmt == "csv":
        frame.to_csv(text, index=False)
    else:
        frame.to_json(text, orient="records", lines=True)
    return fmt


__all__ = ["SUPPORTED", "TableFormat", "read_table", "table_format", "write_table"]
