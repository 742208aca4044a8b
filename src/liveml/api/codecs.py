"""Request bodies into tables: JSON records or columns, CSV, Parquet and Arrow; with size limits."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pandas as pd
from starlette.requests import Request

from liveml.api.errors import PayloadTooLarge, UnsupportedMediaType
from liveml.errors import Invalid

# curl -d sends application/x-www-form-urlencoded unless told otherwise: read it as the JSON it is
JSON_TYPES = ("application/json", "text/json", "", "application/x-www-form-urlencoded")
CSV_TYPES = ("text/csv", "application/csv")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")
ARROW_TYPES = ("application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file")
TABLE_TYPES = (
    "application/json, text/csv, application/vnd.apache.parquet or application/vnd.apache.arrow.stream"
)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 past ``limit`` bytes (before reading it when the length is declared)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body of {int(declared)} bytes is over the {limit}-byte limit; send fewer rows per request"
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the {limit}-byte limit; send fewer rows per request")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise Invalid('the request body is empty; send JSON such as {"inputs": [{"age": 41}]}')
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"the request body is not valid JSON: {exc}") from exc


Table = pd.DataFrame | list[dict[str, Any]]


def rows_from_json(value: Any, *, field: str = "inputs") -> Table:
    """Records (a list of objects, kept as they are: the host builds the table the fastest way for the
    signature), columns (an object of lists) or one row (an object of scalars)."""
    if isinstance(value, list):
        if not value:
            raise Invalid(f"'{field}' is empty; send at least one row")
        if not all(isinstance(r, dict) for r in value):
            raise Invalid(
                f'\'{field}\' must be a list of objects like {{"age": 41, "plan": "pro"}}, one per row'
            )
        return value
    if isinstance(value, dict):
        if not value:
            raise Invalid(f"'{field}' is empty; send at least one row")
        lists = [isinstance(v, list) for v in value.values()]
        if all(lists):
            lengths = {len(v) for v in value.values()}
            if len(lengths) != 1:
                raise Invalid(
                    f"the columns in '{field}' have different lengths ({sorted(lengths)}); give each column one value per row"
                )
            return pd.DataFrame(value)
        if not any(lists):
            return pd.DataFrame([value])
        raise Invalid(
            f"'{field}' mixes lists and single values; send columns (all lists) or one row (no lists)"
        )
    raise Invalid(
        f"'{field}' must be a list of row objects or an object of columns, not {type(value).__name__}"
    )


def table_from_body(body: bytes, content_type: str) -> pd.DataFrame:
    """A non-JSON body as a table."""
    try:
        if content_type in CSV_TYPES:
            frame = pd.read_csv(io.BytesIO(body))
        elif content_type in PARQUET_TYPES:
            frame = pd.read_parquet(io.BytesIO(body))
        elif content_type in ARROW_TYPES:
            import pyarrow as pa

            reader = pa.ipc.open_stream(body) if content_type.endswith("stream") else pa.ipc.open_file(body)
            frame = reader.read_all().to_pandas()
        else:
            raise UnsupportedMediaType(
                f"content type {content_type!r} is not supported here; use {TABLE_TYPES}"
            )
    except (Invalid, UnsupportedMediaType):
        raise
    except pd.errors.EmptyDataError as exc:
        raise Invalid("the CSV body is empty; send a header line and at least one row") from exc
    except Exception as exc:
        raise Invalid(
            f"the {content_type} body could not be read: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc
    if frame.empty:
        raise Invalid("the body has no rows; send a header line and at least one row")
    frame.columns = [str(c) for c in frame.columns]
    return frame


__all__ = [
    "TABLE_TYPES",
    "Table",
    "media_type",
    "parse_json",
    "read_body",
    "rows_from_json",
    "table_from_body",
]
