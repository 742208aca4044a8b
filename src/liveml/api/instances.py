"""What the cloud protocols share: rows given as *instances* (objects with column names, or lists of
values in the model's signature order), JSON-only bodies, and yes/no flags in parameters.

KServe V1, Vertex AI, MLflow's ``instances``/``inputs``/``dataframe_split`` and headerless CSV all send
rows without names; the signature of the served version gives the names, in one place: here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from liveml.api.codecs import JSON_TYPES, Table, media_type, parse_json, read_body, rows_from_json
from liveml.api.context import ApiContext
from liveml.api.errors import UnsupportedMediaType
from liveml.errors import Invalid

TRUE = frozenset({"1", "true", "yes", "on"})


def flag(value: Any) -> bool:
    """A yes/no option as clients send it: ``true``, ``1``, ``"true"``, ``"yes"``, ``"on"``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in TRUE


async def json_body(request: Request, ctx: ApiContext, *, example: str) -> Any:
    """The parsed JSON body of a JSON-only protocol: 415 for another content type, 400 when malformed."""
    kind = media_type(request)
    if kind not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"content type {kind!r} is not supported here; send application/json such as {example}"
        )
    return parse_json(await read_body(request, ctx.max_body_bytes))


def json_object(payload: Any, *, example: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise Invalid(f"the JSON body must be an object such as {example}, not a {_kind(payload)}")
    return payload


def parameters(payload: dict[str, Any], field: str = "parameters") -> dict[str, Any]:
    """The request's options object (``parameters`` in KServe and Vertex, ``params`` in MLflow)."""
    value = payload.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f'"{field}" must be an object such as {{"probabilities": true}}, not a {_kind(value)}')
    return value


async def input_columns(ctx: ApiContext, ref: str) -> list[str]:
    """The input column names, in order, of the version ``ref`` serves now (404 for an unknown model)."""
    served = await run_in_threadpool(ctx.host.resolve, ref)
    return served.loaded.signature.input_names


def check_width(
    width: int, columns: Sequence[str], *, where: str, named: str = "objects with column names"
) -> None:
    """Refuse a row of values whose length is not the number of columns, naming the order expected."""
    if width != len(columns):
        raise Invalid(
            f"{where} has {width} value(s) but the model takes {len(columns)} column(s), in this order: "
            f"{', '.join(columns)}; send one value per column, or {named}"
        )


def instance_rows(
    value: Any, columns: Sequence[str], *, field: str = "instances", allow_columns: bool = False
) -> Table:
    """``value`` as a table. It is a list of instances, each an object (named columns), a list of
    values in ``columns`` order, or a lone value when there is one column. With ``allow_columns`` an
    object of column lists (or an object of one row) is taken too, as MLflow does."""
    if isinstance(value, Mapping) and allow_columns:
        return rows_from_json(value, field=field)
    if not isinstance(value, list):
        shapes = "a list of instances" + (" or an object of columns" if allow_columns else "")
        raise Invalid(f'Expected "{field}" to be a list: send {shapes}, not a {_kind(value)}')
    if not value:
        raise Invalid(f"'{field}' is empty; send at least one instance")
    if all(isinstance(v, dict) for v in value):
        return value
    if all(isinstance(v, list) for v in value):
        for i, row in enumerate(value):
            check_width(len(row), columns, where=f"{field}[{i}]")
        return pd.DataFrame(value, columns=list(columns))
    return pd.DataFrame.from_records([_record(v, i, columns, field) for i, v in enumerate(value)])


def _record(value: Any, index: int, columns: Sequence[str], field: str) -> Mapping[str, Any]:
    """One instance of a mixed list as a record."""
    where = f"{field}[{index}]"
    if isinstance(value, Mapping):
        return value
    if isinstance(value, list):
        check_width(len(value), columns, where=where)
        return dict(zip(columns, value, strict=True))
    if len(columns) == 1:
        return {columns[0]: value}
    raise Invalid(
        f"{where} is a single {_kind(value)} but the model takes {len(columns)} columns "
        f"({', '.join(columns)}); send each instance as a list of values in that order, or as an object"
    )


def _kind(value: Any) -> str:
    names = {dict: "JSON object", list: "JSON list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number" if isinstance(value, int | float) else type(value).__name__)


__all__ = ["check_width", "flag", "input_columns", "instance_rows", "json_body", "json_object", "parameters"]
