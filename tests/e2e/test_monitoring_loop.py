"""The whole monitoring loop through the public interfaces: serve a model, send traffic whose distribution
shifts, post labels, run the monitor, receive the alert at a local webhook, open the report."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.browser import require_chromium, run_chromium
from tests.conftest import Cli, checked, init_and_push_iris
from tests.e2e.test_serve_cli import serving

SECRET = "hook-secret"
pytestmark = pytest.mark.slow


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def webhook() -> Iterator[str]:
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_serve_shift_label_monitor_alert_report(
    tmp_path: Path, model_files: dict[str, Path], iris_frame: pd.DataFrame, webhook: str, cli: Cli
) -> None:
    """`liveml serve` is a real process; the other commands run in-process (the same entry point)."""
    home = tmp_path / "home"  # the cli fixture's data home too
    init_and_push_iris(cli, model_files)
    checked(cli, "alerts", "add", "iris", "--metric", "drift_share", "--above", "0.3", "--min-rows", "100",
         "--window", "1h", "--webhook", webhook, "--secret", SECRET)  # fmt: skip
    rng = np.random.default_rng(0)
    features = iris_frame.drop(columns=["target"])
    rows = features.sample(600, replace=True, random_state=1).reset_index(drop=True)
    truth = iris_frame["target"].loc[features.sample(600, replace=True, random_state=1).index].tolist()
    rows += rng.normal(scale=0.05, size=rows.shape)
    shifted = rows.iloc[300:].copy()
    shifted[["petal_length", "petal_width", "sepal_length"]] += [2.5, 1.0, 1.5]  # the population moved

    # a short log flush; the server's scheduler runs the monitors of models with rules every second
    quick = {"LIVEML_LOG_FLUSH_S": "0.2", "LIVEML_MONITOR_INTERVAL_S": "1"}
    with (
        serving(["--poll", "0.5"], home, tmp_path, env=quick) as (url, _proc),
        httpx.Client(base_url=url) as http,
    ):
        ids: list[str] = []
        for frame in (rows.iloc[:300], shifted):
            for start in range(0, len(frame), 10):
                part = frame.iloc[start : start + 10].to_dict("records")
                answer = http.post("/v1/models/iris/predict", json={"inputs": part})
                assert answer.status_code == 200, answer.text
                ids += answer.json()["ids"]
        for _ in range(5):  # requests that get no prediction count in the error rate
            refused = http.post("/v1/models/iris/predict", json={"inputs": [{"sepal_length": 1}]})
            assert refused.status_code == 400
        labels = [{"prediction_id": i, "label": int(t)} for i, t in zip(ids, truth, strict=True)]
        fed = http.post("/v1/models/iris/feedback", json={"labels": labels}).json()
        assert (fed["accepted"], fed["invalid"]) == (600, 0)
        deadline = time.monotonic() + 90  # the server's own scheduler runs the monitor and alerts
        while not Receiver.received and time.monotonic() < deadline:
            time.sleep(0.5)
        assert Receiver.received, "no alert reached the webhook from the server's scheduled monitor"
        metrics = http.get("/metrics").text
        assert re.search(
            r'liveml_alert_firing\{metric="drift_share",model="iris",rule="1",severity="warning"\} 1.0',
            metrics,
        )

    headers, body = Receiver.received[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Liveml-Signature"], expected)
    notice = json.loads(body)
    assert (notice["kind"], notice["model"], notice["metric"]) == ("fired", "iris", "drift_share")
    assert notice["value"] > 0.3 and notice["rows"] >= 100

    result = checked(cli, "monitor", "run", "iris", "--window", "1h", "--json", ok=(3,)).json()  # 3: drift
    assert result["rows"] == 600 and result["dataset"]["drift"] is True
    assert result["error_rate"] == pytest.approx(5 / 65)  # 5 refused requests, 60 answered
    drifted = {f["column"] for f in result["features"] if f["drift"]}
    assert {"petal_length", "petal_width", "sepal_length"} <= drifted
    realized = {m["name"]: m for m in result["realized"]["metrics"]}
    assert realized["accuracy"]["rows"] == 600 and result["realized"]["labelled_rows"] == 600
    assert any(m["name"] == "accuracy" for m in result["estimated"]["metrics"])

    report = tmp_path / "report.html"
    checked(cli, "monitor", "report", "iris", "--window", "1h", "--html", str(report))
    require_chromium("the monitoring report")
    page = run_chromium(report.as_uri(), tmp_path / "chromium", "--dump-dom", budget_ms=5000, offline=True)
    assert "petal_length" in page.stdout and page.stdout.count("<svg") >= 6
