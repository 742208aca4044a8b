"""`liveml batch run` / `liveml jobs` as a user runs them, including a real SIGKILL and resume. Jobs run
in real `liveml` processes; the commands that only read or refuse run in-process (the same entry point)."""

from __future__ import annotations

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
from tests.conftest import Cli, checked

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
def home(tmp_path: Path, model_files: dict[str, Path], cli: Cli) -> Path:
    checked(cli, "init")
    checked(cli, "push", "churn", str(model_files["forest"]), "--alias", "production")
    return tmp_path / "home"  # the cli fixture's data home


@pytest.fixture(scope="module")
def customers(tmp_path_factory: pytest.TempPathFactory, iris_frame: pd.DataFrame) -> Path:
    """120,000 rows to score (read only: a test that needs other rows writes its own file)."""
    rng = np.random.default_rng(5)
    frame = (
        iris_frame.drop(columns=["target"])
        .sample(120_000, replace=True, random_state=2)
        .reset_index(drop=True)
    )
    frame[FEATURES] += rng.normal(scale=0.05, size=frame.shape)
    frame.insert(0, "customer_id", np.arange(len(frame)))
    path = tmp_path_factory.mktemp("customers") / "customers.parquet"
    frame.to_parquet(path)
    return path


def test_run_list_show(home: Path, tmp_path: Path, customers: Path, cli: Cli) -> None:
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
    [job] = checked(cli, "jobs", "--json").json()
    assert (job["id"], job["status"], job["rows_done"], job["errors"], job["version"]) == (
        1,
        "succeeded",
        120_000,
        0,
        1,
    )
    assert job["spec"]["input"] == str(customers) and job["rows_per_s"] > 0
    assert "churn:1" in checked(cli, "jobs").out
    assert "120,000 of 120,000 read" in checked(cli, "jobs", "show", "1").out
    missing = checked(cli, "batch", "run", "churn", "-i", str(tmp_path / "nope.csv"), "-o", str(out), ok=(1,))
    assert "does not exist" in missing.err
    both = checked(cli, "batch", "run", "churn", "-o", str(out), ok=(2,))
    assert "exactly one of input" in both.err
    assert len(checked(cli, "jobs", "--json").json()) == 1  # refused jobs are not recorded


def test_a_job_killed_with_sigkill_resumes_to_the_uninterrupted_output(
    home: Path, tmp_path: Path, customers: Path, cli: Cli
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
    listing = {j["id"]: j for j in checked(cli, "jobs", "--json").json()}
    assert listing[2]["display_status"] == "interrupted"
    result = _cli(home, "jobs", "resume", "2")
    assert "job 2 succeeded: 60,000 rows" in result.stderr
    whole, resumed = pd.read_parquet(tmp_path / "whole.parquet"), pd.read_parquet(tmp_path / "killed.parquet")
    pd.testing.assert_frame_equal(whole.drop(columns="prediction_id"), resumed.drop(columns="prediction_id"))
    uid = checked(cli, "jobs", "show", "2", "--json").json()["uid"]
    assert resumed["prediction_id"].tolist() == [
        f"{uid}{i:016x}" for i in range(60_000)
    ]  # none twice, none missing
    again = checked(cli, "jobs", "resume", "2", ok=(1,))
    assert "already succeeded" in again.err


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
