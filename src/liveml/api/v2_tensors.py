"""Open Inference Protocol (V2) tensors: JSON and binary encodings, and tabular signatures as tensors.

Pure functions, no HTTP: ``split_body`` and ``parse_request`` turn a request body into tensors,
``tensors_to_frame`` turns tensors into the table a model's signature asks for, ``encode_output``
turns a prediction array into an output tensor (JSON data or raw bytes). Every refusal is an
``Invalid`` whose message names the input and says how to fix it.
"""

from __future__ import annotations

import math
import numbers
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from liveml.errors import Invalid
from liveml.signature import ColumnSpec, Signature, columns_index

#: every V2 datatype liveml reads, as little-endian numpy dtypes (BYTES: Python objects)
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
INTEGERS = ("INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8")
FLOATS = ("FP64", "FP32", "FP16")
#: which datatypes a signature column takes, the preferred (advertised) one first
ACCEPTED: dict[str, tuple[str, ...]] = {
    "number": (*FLOATS, *INTEGERS),
    "integer": (*INTEGERS, *FLOATS),
    "boolean": ("BOOL", *INTEGERS),
    "string": ("BYTES",),
    "datetime": ("BYTES",),
}
NUMERIC_COLUMNS = ("number", "integer", "boolean")
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    #: the elements, flat, row-major; BYTES elements are ``str`` (UTF-8 decoded) or None
    data: np.ndarray


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    parameters: dict[str, Any]
    inputs: list[Tensor]
    #: None: every output the model has
    outputs: list[RequestedOutput] | None
    binary_output: bool


# -- requests --------------------------------------------------------------------------------
def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tensor data after it (``Inference-Header-Content-Length``)."""
    if header_length is None:
        return body, b""
    text = header_length.strip()
    if not text.isdigit():
        raise Invalid(
            f"the Inference-Header-Content-Length header must be the JSON header's size in bytes, not {header_length!r}"
        )
    size = int(text)
    if size > len(body):
        raise Invalid(
            f"Inference-Header-Content-Length says the JSON header has {size} bytes but the body has only "
            f"{len(body)}; send the JSON header first, then the binary tensor data"
        )
    return body[:size], body[size:]


def parse_request(header: Any, raw: bytes = b"") -> InferRequest:
    """An inference request from its JSON header and the binary data that followed it."""
    if not isinstance(header, dict):
        raise Invalid(
            'the inference request must be a JSON object like {"inputs": [{"name": "x", "shape": [1], '
            f'"datatype": "FP64", "data": [1.5]}}]}}, not {type(header).__name__}'
        )
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise Invalid(f"'id' must be a string, not {type(request_id).__name__}")
    parameters = _parameters(header.get("parameters"), "the request")
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise Invalid(
            "the inference request needs 'inputs': a non-empty list of tensors, each with name, shape, datatype "
            "and data"
        )
    view = memoryview(raw)
    offset = 0
    tensors = []
    for index, spec in enumerate(inputs):
        if not isinstance(spec, dict):
            raise Invalid(f"inputs[{index}] must be an object with name, shape, datatype and data")
        size = _parameters(spec.get("parameters"), f"inputs[{index}]").get("binary_data_size")
        chunk = None
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise Invalid(f"inputs[{index}] has binary_data_size {size!r}; it must be a byte count")
            if offset + size > len(raw):
                raise Invalid(
                    f"inputs[{index}] declares binary_data_size {size} but only {len(raw) - offset} bytes of "
                    "binary data are left after the JSON header; check Inference-Header-Content-Length and the sizes"
                )
            chunk = view[offset : offset + size]
            offset += size
        tensors.append(decode_tensor(spec, index, chunk))
    if offset != len(raw):
        raise Invalid(
            f"the body has {len(raw)} bytes of binary data after the JSON header but the inputs' binary_data_size "
            f"values add up to {offset}; check Inference-Header-Content-Length and the sizes"
        )
    names = [t.name for t in tensors]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise Invalid(
            f"input(s) {', '.join(map(repr, duplicates))} appear more than once; send each input once"
        )
    return InferRequest(
        id=request_id,
        parameters=parameters,
        inputs=tensors,
        outputs=_requested_outputs(header.get("outputs"), bool(parameters.get("binary_data_output", False))),
        binary_output=bool(parameters.get("binary_data_output", False)),
    )


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"'parameters' of {where} must be an object, not {type(value).__name__}")
    return value


def _requested_outputs(value: Any, default_binary: bool) -> list[RequestedOutput] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise Invalid('\'outputs\' must be a list of objects like {"name": "predict"}')
    outputs = []
    for index, spec in enumerate(value):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise Invalid(f'outputs[{index}] must be an object with a \'name\', like {{"name": "predict"}}')
        binary = _parameters(spec.get("parameters"), f"outputs[{index}]").get("binary_data", default_binary)
        outputs.append(RequestedOutput(spec["name"], bool(binary)))
    return outputs


def decode_tensor(spec: dict[str, Any], index: int, raw: memoryview | None = None) -> Tensor:
    """One input tensor from its JSON object, with its data from ``raw`` when it came as binary."""
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise Invalid(f"inputs[{index}] needs a 'name' (a string)")
    datatype = spec.get("datatype")
    if datatype == "BF16":
        raise Invalid(f"input {name!r} is BF16, which liveml does not read; send FP32 or FP64")
    if not isinstance(datatype, str) or datatype not in DTYPES:
        raise Invalid(f"input {name!r} has datatype {datatype!r}; use one of {', '.join(DTYPES)}")
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise Invalid(f"input {name!r} needs a 'shape': a list of sizes such as [3] or [3, 4]; got {shape!r}")
    count = math.prod(shape)
    parameters = spec.get("parameters") or {}
    if "shared_memory_region" in parameters:
        raise Invalid(f"input {name!r} uses shared memory, which liveml does not support; send the data")
    if raw is not None:
        if spec.get("data") is not None:
            raise Invalid(f"input {name!r} has both 'data' and binary_data_size; send the data one way")
        data = decode_binary(name, datatype, raw, count)
    elif "data" in spec:
        data = decode_json(name, datatype, spec["data"], count)
    else:
        raise Invalid(f"input {name!r} has no 'data' (and no binary_data_size); send its values")
    return Tensor(name, datatype, tuple(shape), data)


def decode_json(name: str, datatype: str, data: Any, count: int) -> np.ndarray:
    """JSON ``data`` (flat or nested row-major) as a flat array, its element types checked."""
    if datatype in FLOATS or datatype in INTEGERS:
        numbers = _numbers(data)  # all numbers, flat or evenly nested: read in C, no per-value check
        if numbers is not None and numbers.size == count:
            if datatype in FLOATS:
                return numbers.astype(DTYPES[datatype], copy=False)
            if numbers.dtype.kind == "i" and numbers.size:
                limits = np.iinfo(DTYPES[datatype])
                if limits.min <= numbers.min() and numbers.max() <= limits.max:  # astype would wrap silently
                    return numbers.astype(DTYPES[datatype])
    flat = _flatten(data, name)
    if len(flat) != count:
        raise Invalid(
            f"input {name!r} has {len(flat)} value(s) but its shape holds {count}; make the shape match the data"
        )
    if datatype == "BYTES":
        _check_elements(name, datatype, flat, lambda v: v is None or type(v) is str, "strings")
        return np.array(flat, dtype=object)
    if datatype == "BOOL":
        _check_elements(name, datatype, flat, lambda v: type(v) is bool, "true or false")
        return np.array(flat, dtype=bool)
    if datatype in FLOATS:
        # numpy reads an all-number list in C; anything else (text, null, nesting) takes the checked path
        fast = np.asarray(flat)
        if fast.dtype.kind in "fi":
            return fast.astype(DTYPES[datatype], copy=False)
        _check_elements(name, datatype, flat, lambda v: v is None or type(v) in (int, float), "numbers")
        return np.array([math.nan if v is None else v for v in flat], dtype=np.float64).astype(
            DTYPES[datatype]
        )
    fast = np.asarray(flat)
    if fast.dtype.kind == "i" and fast.size:
        limits = np.iinfo(DTYPES[datatype])
        if limits.min <= fast.min() and fast.max() <= limits.max:  # astype would wrap silently
            return fast.astype(DTYPES[datatype])
    _check_elements(name, datatype, flat, lambda v: type(v) is int, "whole numbers")
    try:
        return np.array(flat, dtype=DTYPES[datatype])
    except OverflowError as exc:
        raise Invalid(f"input {name!r} has a value out of the {datatype} range; use INT64 or FP64") from exc


def _numbers(data: Any) -> np.ndarray | None:
    """``data`` as a flat array when it is a list of numbers or an evenly nested list of them, else None
    (text, null, booleans alone, uneven nesting: the checked path says what is wrong)."""
    if not isinstance(data, list):
        return None
    try:
        array = np.asarray(data)
    except (ValueError, TypeError):  # uneven nesting
        return None
    if array.dtype.kind not in "fi":
        return None
    return array.reshape(-1)


def _flatten(data: Any, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise Invalid(f"input {name!r} 'data' must be a list (flat or nested row-major)")
    if not any(isinstance(v, list) for v in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _check_elements(name: str, datatype: str, flat: Sequence[Any], ok: Any, wanted: str) -> None:
    for position, value in enumerate(flat):
        if not ok(value):
            if isinstance(value, str) and datatype != "BYTES":
                hint = f"send JSON numbers without quotes, or declare the datatype BYTES if {name!r} is text"
            else:
                hint = "send values of that type, or declare the datatype that matches them"
            raise Invalid(
                f"input {name!r} is {datatype} but element {position} is {value!r} "
                f"({type(value).__name__}); {datatype} data must be {wanted}: {hint}"
            )


def decode_binary(name: str, datatype: str, raw: memoryview, count: int) -> np.ndarray:
    """Raw little-endian row-major bytes as a flat array (BYTES: 4-byte length, then the bytes)."""
    if datatype != "BYTES":
        dtype = DTYPES[datatype]
        if len(raw) != count * dtype.itemsize:
            raise Invalid(
                f"input {name!r} has {len(raw)} bytes of binary data but {count} {datatype} values take "
                f"{count * dtype.itemsize}; check its shape and binary_data_size"
            )
        return np.frombuffer(raw, dtype=dtype)
    values: list[str] = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(raw):
            break
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > len(raw):
            break
        try:
            values.append(bytes(raw[offset : offset + length]).decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise Invalid(f"input {name!r} element {len(values)} is not UTF-8 text") from exc
        offset += length
    if len(values) != count or offset != len(raw):
        raise Invalid(
            f"input {name!r} binary BYTES data does not hold exactly {count} element(s) (each a 4-byte "
            "little-endian length, then the bytes); check its shape and binary_data_size"
        )
    return np.array(values, dtype=object)


# -- tensors as a table -----------------------------------------------------------------------
def tensors_to_frame(tensors: Sequence[Tensor], signature: Signature) -> pd.DataFrame:
    """One tensor per signature column ([N] or [N, 1]), or one [N, F] tensor when every input is numeric."""
    specs = {c.name: c for c in signature.inputs}
    if (
        len(tensors) == 1
        and len(tensors[0].shape) == 2
        and not (tensors[0].name in specs and tensors[0].shape[1] == 1)
    ):
        return _matrix_frame(tensors[0], signature)
    unknown = [t.name for t in tensors if specs and t.name not in specs]
    if unknown:
        raise Invalid(f"unknown input(s) {', '.join(map(repr, unknown))}; {_expected(signature)}")
    missing = [name for name in specs if name not in {t.name for t in tensors}]
    if missing:
        raise Invalid(f"missing input(s) {', '.join(map(repr, missing))}; {_expected(signature)}")
    rows: int | None = None
    columns: dict[str, np.ndarray] = {}
    for tensor in tensors:
        if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise Invalid(
                f"input {tensor.name!r} has shape {list(tensor.shape)}; a column tensor has shape [N] or [N, 1]"
            )
        if rows is not None and tensor.shape[0] != rows:
            raise Invalid(
                f"input {tensor.name!r} has {tensor.shape[0]} row(s) but the inputs before it have {rows}; "
                "send the same number of values for every column"
            )
        rows = tensor.shape[0]
        if tensor.name in specs:
            _check_column_datatype(tensor, specs[tensor.name])
        columns[tensor.name] = tensor.data
    if not rows:
        raise Invalid("the inputs have no rows (shape [0]); send at least one row")
    order = [c.name for c in signature.inputs] or list(columns)
    return pd.DataFrame({name: columns[name] for name in order})


def _matrix_frame(tensor: Tensor, signature: Signature) -> pd.DataFrame:
    rows, width = tensor.shape
    names = signature.input_names
    text = [c for c in signature.inputs if c.type not in NUMERIC_COLUMNS]
    if text:
        raise Invalid(
            f"a single [N, F] tensor works only when every input is numeric, but {text[0].name!r} is "
            f"{text[0].type}; {_expected(signature, matrix=False)}"
        )
    if width != len(names):
        raise Invalid(
            f"input {tensor.name!r} has shape {list(tensor.shape)}, {width} column(s), but the model takes "
            f"{len(names)}: {', '.join(names)} (in this order)"
        )
    if tensor.datatype == "BYTES":
        raise Invalid(f"input {tensor.name!r} is BYTES; a [N, F] tensor must be numeric, e.g. FP64")
    if not rows:
        raise Invalid(
            f"input {tensor.name!r} has no rows (shape {list(tensor.shape)}); send at least one row"
        )
    return pd.DataFrame(tensor.data.reshape(rows, width), columns=columns_index(tuple(names)), copy=False)


def _check_column_datatype(tensor: Tensor, spec: ColumnSpec) -> None:
    accepted = ACCEPTED[spec.type]
    if tensor.datatype not in accepted:
        raise Invalid(
            f"input {tensor.name!r} is the model's {spec.type} column; send it as {accepted[0]} "
            f"(accepted: {', '.join(accepted)}), not {tensor.datatype}"
        )


def _expected(signature: Signature, *, matrix: bool = True) -> str:
    columns = ", ".join(f"{c.name} ({column_datatype(c.type)})" for c in signature.inputs)
    text = f"the model takes one tensor per column, shape [N] or [N, 1]: {columns}"
    if matrix and signature.inputs and all(c.type in NUMERIC_COLUMNS for c in signature.inputs):
        text += f"; or a single [N, {len(signature.inputs)}] tensor with the columns in that order"
    return text


def column_datatype(column_type: str) -> str:
    """The datatype advertised for a signature column type."""
    return ACCEPTED.get(column_type, ("BYTES",))[0]


def input_metadata(signature: Signature) -> list[dict[str, Any]]:
    return [{"name": c.name, "datatype": column_datatype(c.type), "shape": [-1]} for c in signature.inputs]


# -- outputs ----------------------------------------------------------------------------------
def output_array(values: Any) -> tuple[str, np.ndarray]:
    """The datatype for an output and the array in it: INT64, FP64, BOOL or BYTES (text) by content."""
    array = np.asarray(values)
    kind = array.dtype.kind
    if kind == "b":
        return "BOOL", array
    if kind in "iu":
        return "INT64", array.astype("<i8")
    if kind == "f":
        return "FP64", array.astype("<f8")
    if kind == "O":
        flat = array.ravel().tolist()
        if flat and all(isinstance(v, bool | np.bool_) for v in flat):
            return "BOOL", array.astype(bool)
        if flat and all(isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_) for v in flat):
            return "INT64", array.astype("<i8")
        if flat and all(isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) for v in flat):
            return "FP64", array.astype("<f8")
    text = [_text(v) for v in array.ravel().tolist()]
    return "BYTES", np.array(text, dtype=object).reshape(array.shape)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def encode_output(name: str, values: Any, *, binary: bool) -> tuple[dict[str, Any], bytes]:
    """The output tensor's JSON object and, when ``binary``, its raw bytes (else its data is in the JSON)."""
    datatype, array = output_array(values)
    tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if not binary:
        tensor["data"] = array.ravel().tolist()
        return tensor, b""
    if datatype == "BYTES":
        parts = []
        for value in array.ravel().tolist():
            encoded = value.encode("utf-8")
            parts.append(_LENGTH.pack(len(encoded)))
            parts.append(encoded)
        raw = b"".join(parts)
    else:
        raw = np.ascontiguousarray(array, dtype=DTYPES[datatype]).tobytes()
    tensor["parameters"] = {"binary_data_size": len(raw)}
    return tensor, raw


__all__ = [
    "DTYPES",
    "InferRequest",
    "RequestedOutput",
    "Tensor",
    "column_datatype",
    "decode_binary",
    "decode_json",
    "decode_tensor",
    "encode_output",
    "input_metadata",
    "output_array",
    "parse_request",
    "split_body",
    "tensors_to_frame",
]
