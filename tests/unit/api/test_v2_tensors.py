"""V2 tensor coding as pure functions: JSON and binary inputs, tensors into tables, outputs back out."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pandas as pd
import pytest

from liveml.api.v2_tensors import (
    decode_binary,
    decode_json,
    encode_output,
    input_metadata,
    output_array,
    parse_request,
    split_body,
    tensors_to_frame,
)
from liveml.errors import Invalid
from liveml.signature import ColumnSpec, Signature

IRIS = Signature.from_names(["a", "b", "c"], source="user")
MIXED = Signature(
    inputs=(
        ColumnSpec(name="plan", type="string"),
        ColumnSpec(name="age", type="integer"),
        ColumnSpec(name="active", type="boolean"),
        ColumnSpec(name="when", type="datetime"),
    )
)


def tensor(name: str, shape: list[int], datatype: str, data: Any, **parameters: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "shape": shape, "datatype": datatype, "data": data}
    if parameters:
        out["parameters"] = parameters
    return out


def bytes_tensor(values: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def test_json_data_flat_and_nested_row_major() -> None:
    flat = decode_json("x", "FP64", [1, 2.5, 3, 4], 4)
    nested = decode_json("x", "FP64", [[1, 2.5], [3, 4]], 4)
    assert flat.dtype == np.float64 and flat.tolist() == nested.tolist() == [1.0, 2.5, 3.0, 4.0]
    assert decode_json("x", "INT32", [[1], [2]], 2).dtype == np.int32
    assert decode_json("x", "BOOL", [True, False], 2).tolist() == [True, False]
    assert decode_json("x", "BYTES", ["a", None], 2).tolist() == ["a", None]
    assert np.isnan(decode_json("x", "FP32", [None, 1.0], 2)[0])
    # unevenly nested values are read in row-major order too (the checked path)
    assert decode_json("x", "FP64", [[1.0, 2.0], [3.0]], 3).tolist() == [1.0, 2.0, 3.0]
    assert decode_json("x", "FP32", [[1, 2], 3], 3).tolist() == [1.0, 2.0, 3.0]
    assert decode_json("x", "INT64", [[1, 2], [3, 4]], 4).tolist() == [1, 2, 3, 4]
    assert decode_json("x", "UINT64", [2**64 - 1], 1).tolist() == [2**64 - 1]
    assert np.isnan(decode_json("x", "FP64", [[1.0, None], [2.0]], 3)[1])


@pytest.mark.parametrize(
    ("datatype", "data", "count", "message"),
    [
        (
            "FP64",
            ["5.1", "3.5"],
            2,
            "input 'x' is FP64 but element 0 is '5.1' (str); FP64 data must be numbers: send JSON numbers without quotes, or declare the datatype BYTES if 'x' is text",
        ),
        ("INT64", [1, 2.5], 2, "element 1 is 2.5 (float); INT64 data must be whole numbers"),
        ("BOOL", [1, 0], 2, "BOOL data must be true or false"),
        ("BYTES", [1], 1, "BYTES data must be strings"),
        ("FP64", [1.0, 2.0, 3.0], 2, "input 'x' has 3 value(s) but its shape holds 2"),
        ("FP64", 1.0, 1, "'data' must be a list"),
        ("UINT8", [300], 1, "out of the UINT8 range"),
        ("FP64", [True], 1, "element 0 is True (bool)"),
        ("FP64", [[1.0, 2.0], [3.0, 4.0]], 3, "input 'x' has 4 value(s) but its shape holds 3"),
        ("FP64", [[1.0, "a"]], 2, "element 1 is 'a' (str)"),
        ("INT32", [[1, 2], [3, 2**40]], 4, "out of the INT32 range"),
        ("INT64", [[1, 2], [3, 4.5]], 4, "element 3 is 4.5 (float)"),
    ],
)
def test_json_data_refused_with_the_input_named(datatype: str, data: Any, count: int, message: str) -> None:
    with pytest.raises(Invalid, match="input 'x'") as caught:
        decode_json("x", datatype, data, count)
    assert message in str(caught.value)


def test_binary_data_little_endian_and_bytes_elements() -> None:
    raw = np.array([1.5, -2.0], dtype="<f8").tobytes()
    assert decode_binary("x", "FP64", memoryview(raw), 2).tolist() == [1.5, -2.0]
    assert decode_binary("x", "BYTES", memoryview(bytes_tensor(["pro", "", "héllo"])), 3).tolist() == [
        "pro",
        "",
        "héllo",
    ]
    with pytest.raises(Invalid, match="16 bytes of binary data but 3 FP64 values take 24"):
        decode_binary("x", "FP64", memoryview(raw), 3)
    for bad in (bytes_tensor(["a"]) + b"\x01", bytes_tensor(["a"])[:-1], b"\x00\x00"):
        with pytest.raises(Invalid, match="does not hold exactly 1 element"):
            decode_binary("x", "BYTES", memoryview(bad), 1)
    with pytest.raises(Invalid, match="not UTF-8"):
        decode_binary("x", "BYTES", memoryview(struct.pack("<I", 1) + b"\xff"), 1)


def test_split_body_and_binary_inputs_in_order() -> None:
    header = {
        "id": "r1",
        "parameters": {"binary_data_output": True},
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 8}},
            tensor("b", [2], "INT64", [1, 2]),
            {"name": "c", "shape": [2, 1], "datatype": "BYTES", "parameters": {"binary_data_size": 11}},
        ],
        "outputs": [{"name": "predict", "parameters": {"binary_data": False}}, {"name": "predict_proba"}],
    }
    raw = np.array([1, 2], dtype="<f4").tobytes() + bytes_tensor(["x", "yz"])
    assert len(raw) == 19
    request = parse_request(header, raw)
    assert request.id == "r1" and request.binary_output
    assert [(t.name, t.shape) for t in request.inputs] == [("a", (2,)), ("b", (2,)), ("c", (2, 1))]
    assert request.inputs[2].data.tolist() == ["x", "yz"]
    assert [(o.name, o.binary) for o in request.outputs or ()] == [
        ("predict", False),
        ("predict_proba", True),
    ]

    head, rest = split_body(b'{"a":1}XYZ', "7")
    assert (head, rest) == (b'{"a":1}', b"XYZ")
    assert split_body(b"{}", None) == (b"{}", b"")
    with pytest.raises(Invalid, match="says the JSON header has 99 bytes but the body has only 2"):
        split_body(b"{}", "99")
    with pytest.raises(Invalid, match="must be the JSON header's size in bytes"):
        split_body(b"{}", "ten")
    with pytest.raises(Invalid, match="add up to 19"):
        parse_request(header, raw + b"extra")
    with pytest.raises(Invalid, match="only 17 bytes of binary data are left"):
        parse_request({"inputs": [{**header["inputs"][0], "parameters": {"binary_data_size": 25}}]}, raw[:17])


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ([], "must be a JSON object"),
        ({}, "needs 'inputs'"),
        ({"inputs": []}, "needs 'inputs'"),
        ({"inputs": [1]}, "inputs[0] must be an object"),
        ({"inputs": [{"shape": [1], "datatype": "FP64", "data": [1]}]}, "inputs[0] needs a 'name'"),
        ({"inputs": [tensor("a", [1], "FLOAT", [1])]}, "datatype 'FLOAT'; use one of BOOL"),
        ({"inputs": [tensor("a", [1], "BF16", [1])]}, "BF16"),
        ({"inputs": [tensor("a", [-1], "FP64", [1])]}, "needs a 'shape'"),
        ({"inputs": [{"name": "a", "shape": [1], "datatype": "FP64"}]}, "has no 'data'"),
        (
            {"inputs": [tensor("a", [1], "FP64", [1]), tensor("a", [1], "FP64", [1])]},
            "'a' appear more than once",
        ),
        ({"id": 7, "inputs": [tensor("a", [1], "FP64", [1])]}, "'id' must be a string"),
        ({"inputs": [tensor("a", [1], "FP64", [1])], "outputs": "predict"}, "'outputs' must be a list"),
        ({"inputs": [tensor("a", [1], "FP64", [1])], "parameters": []}, "'parameters' of the request"),
        ({"inputs": [tensor("a", [1], "FP64", [1], shared_memory_region="r")]}, "shared memory"),
        ({"inputs": [tensor("a", [1], "FP64", [1], binary_data_size=-1)]}, "binary_data_size -1"),
    ],
)
def test_bad_requests_are_refused(header: Any, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_request(header)
    assert message in str(caught.value)


def frame_of(signature: Signature, *tensors: dict[str, Any]) -> pd.DataFrame:
    return tensors_to_frame(parse_request({"inputs": list(tensors)}).inputs, signature)


def test_one_tensor_per_column_in_signature_order() -> None:
    frame = frame_of(
        IRIS,
        tensor("c", [2, 1], "FP32", [5, 6]),
        tensor("a", [2], "FP64", [1, 2]),
        tensor("b", [2], "INT64", [3, 4]),
    )
    assert list(frame.columns) == ["a", "b", "c"] and frame["c"].tolist() == [5.0, 6.0]
    mixed = frame_of(
        MIXED,
        tensor("plan", [2], "BYTES", ["pro", "free"]),
        tensor("age", [2], "INT64", [41, 30]),
        tensor("active", [2], "BOOL", [True, False]),
        tensor("when", [2], "BYTES", ["2024-01-01", "2024-02-01"]),
    )
    assert mixed.to_dict("list")["plan"] == ["pro", "free"] and mixed["active"].tolist() == [True, False]


def test_a_single_matrix_when_every_input_is_numeric() -> None:
    frame = frame_of(IRIS, tensor("whatever", [2, 3], "FP64", [[1, 2, 3], [4, 5, 6]]))
    assert list(frame.columns) == ["a", "b", "c"] and frame.iloc[1].tolist() == [4.0, 5.0, 6.0]
    with pytest.raises(Invalid, match=r"has shape \[2, 2\], 2 column\(s\), but the model takes 3: a, b, c"):
        frame_of(IRIS, tensor("x", [2, 2], "FP64", [1, 2, 3, 4]))
    with pytest.raises(Invalid, match="every input is numeric, but 'plan' is string"):
        frame_of(MIXED, tensor("x", [1, 4], "FP64", [1, 2, 3, 4]))
    with pytest.raises(Invalid, match="must be numeric"):
        frame_of(IRIS, tensor("x", [1, 3], "BYTES", ["1", "2", "3"]))


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        (
            [tensor("a", [1], "FP64", [1]), tensor("b", [1], "FP64", [1])],
            "missing input(s) 'c'; the model takes one tensor per column",
        ),
        (
            [
                tensor("a", [1], "FP64", [1]),
                tensor("b", [1], "FP64", [1]),
                tensor("c", [1], "FP64", [1]),
                tensor("d", [1], "FP64", [1]),
            ],
            "unknown input(s) 'd'",
        ),
        (
            [tensor("a", [1], "FP64", [1]), tensor("b", [2], "FP64", [1, 2]), tensor("c", [1], "FP64", [1])],
            "'b' has 2 row(s) but the inputs before it have 1",
        ),
        (
            [tensor("a", [1], "BYTES", ["1"]), tensor("b", [1], "FP64", [1]), tensor("c", [1], "FP64", [1])],
            "'a' is the model's number column; send it as FP64",
        ),
        (
            [
                tensor("a", [1, 2], "FP64", [1, 2]),
                tensor("b", [1], "FP64", [1]),
                tensor("c", [1], "FP64", [1]),
            ],
            "a column tensor has shape [N] or [N, 1]",
        ),
        (
            [tensor("a", [0], "FP64", []), tensor("b", [0], "FP64", []), tensor("c", [0], "FP64", [])],
            "no rows",
        ),
        ([tensor("x", [1, 1, 3], "FP64", [1, 2, 3])], "unknown input(s) 'x'"),
    ],
)
def test_tensors_that_do_not_fit_the_signature(tensors: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(Invalid) as caught:
        frame_of(IRIS, *tensors)
    assert message in str(caught.value)


def test_unknown_input_message_offers_the_matrix_style() -> None:
    with pytest.raises(Invalid) as caught:
        frame_of(IRIS, tensor("x", [3], "FP64", [1, 2, 3]))
    assert "a (FP64), b (FP64), c (FP64); or a single [N, 3] tensor" in str(caught.value)


def test_metadata_and_outputs() -> None:
    assert input_metadata(MIXED) == [
        {"name": "plan", "datatype": "BYTES", "shape": [-1]},
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "active", "datatype": "BOOL", "shape": [-1]},
        {"name": "when", "datatype": "BYTES", "shape": [-1]},
    ]
    assert output_array(np.array([1, 2], dtype=np.int32))[0] == "INT64"
    assert output_array(np.array([1, 2], dtype=object))[0] == "INT64"
    assert output_array(np.array([1.5, 2], dtype=object))[0] == "FP64"
    assert output_array(np.array([True], dtype=object))[0] == "BOOL"
    assert output_array(np.array(["yes", 1], dtype=object))[1].tolist() == ["yes", "1"]
    assert output_array(np.array(["2024-01-01"], dtype="datetime64[ns]"))[0] == "BYTES"

    tensor_json, raw = encode_output("predict", np.array([[1.0, 2.0], [3.0, 4.0]]), binary=False)
    assert tensor_json == {
        "name": "predict",
        "datatype": "FP64",
        "shape": [2, 2],
        "data": [1.0, 2.0, 3.0, 4.0],
    }
    assert raw == b""
    tensor_bin, raw = encode_output("predict", np.array(["no", "yes"], dtype=object), binary=True)
    assert tensor_bin == {
        "name": "predict",
        "datatype": "BYTES",
        "shape": [2],
        "parameters": {"binary_data_size": 13},
    }
    assert raw == bytes_tensor(["no", "yes"])
    _, raw = encode_output("p", np.array([1, 2]), binary=True)
    assert np.frombuffer(raw, dtype="<i8").tolist() == [1, 2]
