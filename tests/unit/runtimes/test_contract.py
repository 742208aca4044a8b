"""The runtime contract, checked the same way for every built-in format (cases in conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from liveml.errors import Invalid
from liveml.runtimes import detect_format, get_runtime, runtimes
from liveml.runtimes.base import Prediction, Runtime, read_head

if TYPE_CHECKING:
    from conftest import Case

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")


def loaded(case: Case) -> Runtime:
    runtime = get_runtime(case.format)(case.path, case.options)
    runtime.load()
    return runtime


def check_prediction(case: Case, prediction: Prediction) -> None:
    assert len(prediction) == len(case.frame)
    if case.task == "classification":
        assert list(prediction.predictions) == list(case.predictions)
        if case.probabilities is not None:
            assert prediction.probabilities is not None
            np.testing.assert_allclose(prediction.probabilities, case.probabilities, atol=case.atol)
            np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0, atol=1e-5)
            assert prediction.classes == case.classes
    else:
        assert prediction.probabilities is None
        np.testing.assert_allclose(prediction.predictions, case.predictions, atol=case.atol, rtol=1e-5)
    assert len(prediction.to_frame()) == len(case.frame)


def test_detects_the_format_from_content_alone(case: Case, tmp_path: Path) -> None:
    renamed = tmp_path / "model.bin"  # stored artifacts are content-addressed and have no useful name
    shutil.copyfile(case.path, renamed)
    assert detect_format(renamed).name == case.format


def test_no_other_runtime_claims_the_file(case: Case) -> None:
    head = read_head(case.path)
    assert [name for name, cls in runtimes().items() if cls.sniff(case.path, head)] == [case.format]


def test_describes_the_model(case: Case) -> None:
    description = loaded(case).describe()
    assert description.format == case.format
    assert description.task == case.task
    assert description.classes == case.classes
    assert description.input_names == case.input_names
    assert description.n_inputs == case.n_inputs
    assert description.framework


def test_predicts_what_the_framework_predicts(case: Case) -> None:
    check_prediction(case, loaded(case).predict(case.frame))


def test_loads_from_a_path_without_extension(case: Case, tmp_path: Path) -> None:
    renamed = tmp_path / "0123abcd"
    shutil.copyfile(case.path, renamed)
    runtime = get_runtime(case.format)(renamed, case.options)
    check_prediction(case, runtime.predict(case.frame))  # predict loads on first use


def test_unload_then_load_gives_the_same_answers(case: Case) -> None:
    runtime = loaded(case)
    first = runtime.predict(case.frame)
    runtime.unload()
    assert not runtime.loaded
    runtime.load()
    second = runtime.predict(case.frame)
    assert list(first.predictions) == list(second.predictions)
    if first.probabilities is not None:
        np.testing.assert_array_equal(first.probabilities, second.probabilities)


def test_non_numeric_input_is_invalid(case: Case) -> None:
    frame = case.frame.copy()
    frame[frame.columns[0]] = ["not a number"] * len(frame)
    with pytest.raises(Invalid):
        loaded(case).predict(frame)


def test_a_missing_column_is_invalid(case: Case) -> None:
    if not case.fixed_width:
        pytest.skip("custom code decides for itself what a missing column means")
    with pytest.raises(Invalid):
        loaded(case).predict(case.frame.iloc[:, :-1])


def test_no_rows_is_invalid(case: Case) -> None:
    with pytest.raises(Invalid, match="no rows"):
        loaded(case).predict(case.frame.iloc[:0])


def test_a_truncated_file_is_invalid_on_load(case: Case, tmp_path: Path) -> None:
    data = case.path.read_bytes()
    truncated = tmp_path / "truncated"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(Invalid):
        get_runtime(case.format)(truncated, case.options).load()
