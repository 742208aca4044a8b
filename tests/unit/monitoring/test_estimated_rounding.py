"""Confidence-based estimates survive float32 probabilities a hair above 1 (ONNX-compiled models)."""

from __future__ import annotations

import pandas as pd

from liveml.monitoring.performance import estimated


def test_probabilities_just_over_one_do_not_break_the_estimate() -> None:
    three = pd.DataFrame(
        {
            "prediction": [0, 1, 2],
            "proba_0": [1.0000001, 0, 0],
            "proba_1": [0, 1.0000002, 0],
            "proba_2": [0, 0, 1.0000001],
        }
    )
    two = pd.DataFrame({"prediction": [0, 1], "proba_0": [1.0000001, -1e-9], "proba_1": [-1e-9, 1.0000002]})
    for outputs, classes in ((three, [0, 1, 2]), (two, [0, 1])):
        accuracy = estimated(outputs, classes).metrics[0]
        assert accuracy.name == "accuracy" and accuracy.value == 1.0
