"""The signature's cached input facts follow its inputs, including through copies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liveml.errors import Invalid
from liveml.signature import ColumnSpec, Signature, columns_index


def _signature(*specs: ColumnSpec) -> Signature:
    return Signature(inputs=specs, source="user")


def test_layout_names_the_inputs_and_their_kinds() -> None:
    signature = _signature(ColumnSpec(name="a"), ColumnSpec(name="b", type="integer", nullable=False))
    assert signature.layout.names == ("a", "b")
    assert signature.layout.all_numeric and not signature.layout.all_number
    assert not signature.layout.all_nullable
    assert signature.input_names == ["a", "b"]
    signature.input_names.append("changed")  # a fresh list each time: the layout is not touched
    assert signature.input_names == ["a", "b"]


def test_a_copy_with_other_inputs_has_their_layout() -> None:
    signature = _signature(ColumnSpec(name="a"))
    assert signature.layout.all_numeric
    copied = signature.model_copy(update={"inputs": (ColumnSpec(name="z", type="string"),)})
    assert copied.layout.names == ("z",) and not copied.all_numeric
    assert signature == _signature(ColumnSpec(name="a"))  # the cached layout is not part of equality


def test_conform_takes_the_fast_path_only_for_exact_numeric_frames() -> None:
    signature = _signature(ColumnSpec(name="a"), ColumnSpec(name="b", nullable=False))
    exact = pd.DataFrame(np.array([[1.0, 2.0]]), columns=columns_index(("a", "b")), copy=False)
    assert signature.conform(exact) is exact
    same_names = pd.DataFrame(np.array([[1.0, 2.0]]), columns=["a", "b"])
    assert signature.conform(same_names) is same_names
    swapped = pd.DataFrame(np.array([[1.0, 2.0]]), columns=["b", "a"])
    assert list(signature.conform(swapped).iloc[0]) == [2.0, 1.0]
    with pytest.raises(Invalid, match="'b'"):
        signature.conform(pd.DataFrame(np.array([[1.0, np.nan]]), columns=["a", "b"]))
