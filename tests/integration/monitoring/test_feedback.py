"""Labels by prediction id, over HTTP and from files: late, repeated, malformed, unknown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from liveml import Registry
from liveml.api import create_app
from liveml.errors import Invalid, NotFound
from liveml.monitoring.labels import LabelStore, labels_from_frame
from liveml.serving import ModelHost
from liveml.serving.host import HostOptions
from tests.live_server import LiveServer


@pytest.fixture
def churn(registry: Registry, model_files: dict[str, Path]) -> Registry:
    registry.push("churn", model_files["forest"], aliases=["production"])
    return registry


def test_store_counts_new_repeated_and_malformed_labels(churn: Registry) -> None:
    store = LabelStore(churn)
    first = store.add("churn", [{"prediction_id": f"p{i}", "label": i % 3} for i in range(1200)])
    assert (first.accepted, first.repeated, first.invalid) == (1200, 0, 0)
    again = store.add(
        "churn@production",
        [
            {"prediction_id": "p1", "label": 2},  # a correction: the last label counts
            {"prediction_id": "", "label": 1},
            {"label": 1},
            {"prediction_id": "p9999", "label": None},
            "not an object",
            {"prediction_id": "x" * 65, "label": 1},
        ],
    )
    assert (again.accepted, again.repeated, again.invalid) == (0, 1, 5)
    assert again.problems[0] == "entry 1: no prediction_id" and "entry 4: not an object" in again.problems[3]
    assert store.get("churn", ["p1", "p2", "nope"]) == {"p1": 2, "p2": 2}
    assert store.count("churn") == 1200
    with pytest.raises(NotFound):
        store.add("nope", [])


def test_labels_from_a_file(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "churned": [1, 0]})
    assert labels_from_frame(frame, "id", "churned") == [
        {"prediction_id": "a", "label": 1},
        {"prediction_id": "b", "label": 0},
    ]
    with pytest.raises(Invalid, match=r"lacks column\(s\) prediction_id, label.*--id-column"):
        labels_from_frame(frame)


@pytest.fixture
def server(churn: Registry) -> Iterator[str]:
    host = ModelHost(churn, options=HostOptions(poll_interval_s=0.5))
    with LiveServer(create_app(host)) as live:
        yield live.url


def test_feedback_over_http_joins_the_ids_predict_gave(server: str, churn: Registry) -> None:
    rows = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}] * 3
    ids = httpx.post(f"{server}/v1/models/churn/predict", json={"inputs": rows}).json()["ids"]
    response = httpx.post(
        f"{server}/v1/models/churn/feedback",
        json={
            "labels": [{"prediction_id": i, "label": 0} for i in ids]
            + [{"prediction_id": ids[0], "label": 1}]
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() | {"problems": []} == {
        "model": "churn",
        "accepted": 3,
        "repeated": 1,
        "invalid": 0,
        "problems": [],
    }
    assert LabelStore(churn).get("churn", ids) == {ids[0]: 1, ids[1]: 0, ids[2]: 0}
    bad = httpx.post(f"{server}/v1/models/churn/feedback", json={"label": 1})
    assert bad.status_code == 400 and '"labels"' in bad.json()["error"]
    assert httpx.post(f"{server}/v1/models/nope/feedback", json={"labels": []}).status_code == 404
    assert httpx.post(f"{server}/v1/models/churn/feedback", content=b"{").status_code == 400
