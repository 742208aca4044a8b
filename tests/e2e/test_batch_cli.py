"""`liveml batch run` / `liveml jobs` as a user runs them, including a real SIGKILL and resume."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liveml import Registry, Settings
from liveml.jobs.store import JobStore

LIVEML = [sys.executable, "-m", "liveml.cli.main"]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
pytestmark = pytest.mark.slow


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEML_")}
    return {**env, "LIVEML_HOME": str(home)}


def _cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*LIVEML, *args], env=_env(home), capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def home(tmp_path: Path, model_files: dict[str, Path]) -> Path:
    home = tmp_path / "home"
    _cli(home, "init")
    _cli(home, "push", "churn", str(model_files["forest"]), "--alias", "production")
    return home


@pytest.fixture
def customers(tmp_path: Path, iris_frame: pd.DataFrame) -> Path:
    rng = np.random.default_rng(5)
    frame = (
        iris_frame.drop(columns=["target"])
        .sample(120_000, replace=True, random_state=2)
        .reset_index(drop=True)
    )
    frame[FEATURES] += rng.normal(scale=0.05, size=frame.shape)
    frame.insert(0, "customer_id", np.arange(len(frame)))
    path = tmp_path / "customers.parquet"
    frame.to_parquet(path)
    return path


def test_run_list_show(home: Path, tmp_path: Path, customers: Path) -> None:
    out = tmp_path / "scores.parquet"
    result = _cli(
        home,
        "batch",
        "run",
        "churn@production",
        "-i",
        str(customers),
        "-o",
        str(out),
        "--keep",
        "customer_id",
    )
    assert "job 1 succeeded: 120,000 rows → 120,000 predictions by churn:1" in result.stderr
    scores = pd.read_parquet(out)
    assert len(scores) == 120_000 and scores["customer_id"].is_monotonic_increasing
    [job] = json.loads(_cli(home, "jobs", "--json").stdout)
    assert (job["id"], job["status"], job["rows_done"], job["errors"], job["version"]) == (
        1,
        "succeeded",
        120_000,
        0,
        1,
    )
    assert job["spec"]["input"] == str(customers) and job["rows_per_s"] > 0
    assert "churn:1" in _cli(home, "jobs").stdout
    assert "120,000 of 120,000 read" in _cli(home, "jobs", "show", "1").stdout
    missing = _cli(
        home, "batch", "run", "churn", "-i", str(tmp_path / "nope.csv"), "-o", str(out), check=False
    )
    assert (
        missing.returncode == 1 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    )
    both = _cli(home, "batch", "run", "churn", "-o", str(out), check=False)
    assert both.returncode == 2 and "exactly one of input" in both.stderr
    assert len(json.loads(_cli(home, "jobs", "--json").stdout)) == 1  # refused jobs are not recorded


def test_a_job_killed_with_sigkill_resumes_to_the_uninterrupted_output(
    home: Path, tmp_path: Path, customers: Path
) -> None:
    frame = pd.read_parquet(customers).head(60_000)
    customers = tmp_path / "smaller.parquet"
    frame.to_parquet(customers)
    _cli(
        home,
        "batch",
        "run",
        "churn",
        "-i",
        str(customers),
        "-o",
        str(tmp_path / "whole.parquet"),
        "--keep",
        "customer_id",
        "--chunk-rows",
        "300",
    )
    proc = subprocess.Popen(
        [
            *LIVEML,
            "batch",
            "run",
            "churn",
            "-i",
            str(customers),
            "-o",
            str(tmp_path / "killed.parquet"),
            "--keep",
            "customer_id",
            "--chunk-rows",
            "300",
        ],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with Registry(Settings(home=home)) as registry:
        store = JobStore(registry)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            jobs = store.list(limit=1)
            if jobs and jobs[0].id == 2 and jobs[0].chunks_done >= 10:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        killed = store.get(2)
        assert killed.status == "running" and killed.stale, "the kill must land mid-job"
        assert 10 <= killed.chunks_done < 200 and killed.display_status == "interrupted"
    assert not (tmp_path / "killed.parquet").exists()
    listing = {j["id"]: j for j in json.loads(_cli(home, "jobs", "--json").stdout)}
    assert listing[2]["display_status"] == "interrupted"
    result = _cli(home, "jobs", "resume", "2")
    assert "job 2 succeeded: 60,000 rows" in result.stderr
    whole, resumed = pd.read_parquet(tmp_path / "whole.parquet"), pd.read_parquet(tmp_path / "killed.parquet")
    pd.testing.assert_frame_equal(whole.drop(columns="prediction_id"), resumed.drop(columns="prediction_id"))
    uid = json.loads(_cli(home, "jobs", "show", "2", "--json").stdout)["uid"]
    assert resumed["prediction_id"].tolist() == [
        f"{uid}{i:016x}" for i in range(60_000)
    ]  # none twice, none missing
    again = _cli(home, "jobs", "resume", "2", check=False)
    assert again.returncode == 1 and "already succeeded" in again.stderr


def test_progress_bar_on_a_terminal(home: Path, tmp_path: Path, customers: Path) -> None:
    """On a terminal the job shows rows, rows/s and an ETA; piped output stays clean (checked above)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [
            *LIVEML,
            "batch",
            "run",
            "churn",
            "-i",
            str(customers),
            "-o",
            str(tmp_path / "o.parquet"),
            "--chunk-rows",
            "5000",
        ],
        env={**_env(home), "COLUMNS": "160"},
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        seen += data
    assert proc.wait(timeout=60) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", seen.decode(errors="replace"))  # without terminal codes
    assert "120000/120000 rows" in text and "rows/s" in text and "ETA" in text
