"""The examples the README and docs point at, run as a user would run them, and the docs kept in sync."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_BLOCK = re.compile(r"<!-- example: (?P<path>[^ ]+) -->\n```[a-z]*\n(?P<code>.*?)```", re.S)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEML_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


#: the tours share one demo run: on one test worker where `--dist loadgroup` groups (pytest-xdist 3.8 does
#: not with pytest 9.2: pytest-dev/pytest-xdist#1386), else one run per worker
ON_ONE_WORKER = pytest.mark.xdist_group("examples")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A folder where `python examples/demo.py` ran (as `make run` runs it), and what it printed. Every
    tour runs in a copy of it, so the demo trains and pushes once per test worker, not once per tour."""
    folder = tmp_path_factory.mktemp("demo")
    return folder, _run([sys.executable, str(ROOT / "examples" / "demo.py")], folder)


def _after_demo(demo: tuple[Path, str], tmp_path: Path) -> str:
    """The demo's folder copied into ``tmp_path`` (its registry included); what the demo printed."""
    shutil.copytree(demo[0], tmp_path, dirs_exist_ok=True)
    return demo[1]


@pytest.mark.slow
@ON_ONE_WORKER
def test_demo_then_the_tours(tmp_path: Path, demo: tuple[Path, str]) -> None:
    first = _after_demo(demo, tmp_path)
    assert "pushed churn:1 with alias production" in first and "predictions from churn:1" in first
    again = _run([sys.executable, str(ROOT / "examples" / "demo.py")], tmp_path)
    assert "already serves this exact model as churn:1" in again

    tour = _run(["bash", str(ROOT / "examples" / "tour.sh")], tmp_path)
    assert "pushed churn:2" in tour and "rolled back: churn@production → version 1 (was 2)" in tour
    assert tour.strip().splitlines()[-1] == "churn 1 ['production']"
    preds = pd.read_parquet(tmp_path / "demo" / "preds.parquet")
    assert list(preds.columns) == ["customer_id", "prediction", "proba_0", "proba_1"] and len(preds) == 8

    python_tour = _run([sys.executable, str(ROOT / "examples" / "registry_tour.py")], tmp_path)
    assert "pushed churn:3" in python_tour and "churn:latest     -> churn:3" in python_tour
    assert "refused: missing input column(s)" in python_tour


def test_docs_show_the_example_files_as_they_are() -> None:
    found = 0
    for page in sorted((ROOT / "docs").glob("*.md")):
        for match in EXAMPLE_BLOCK.finditer(page.read_text()):
            found += 1
            source = (ROOT / match["path"]).read_text()
            assert match["code"] == source, (
                f"{page.name} shows an outdated copy of {match['path']}; run python scripts/sync_doc_examples.py"
            )
    assert found >= 2


@pytest.mark.slow
@ON_ONE_WORKER
def test_batch_tour(tmp_path: Path, demo: tuple[Path, str]) -> None:
    _after_demo(demo, tmp_path)
    tour = _run(["bash", str(ROOT / "examples" / "batch_tour.sh")], tmp_path)
    assert "C00003" in tour and "expects integer values, got 'ten'" in tour
    scores = pd.read_parquet(tmp_path / "demo" / "scores.parquet")
    assert len(scores) == 200_000 and scores["customer_id"].iloc[-1] == "C199999"
    assert list(scores.columns) == [
        "customer_id",
        "prediction",
        "proba_0",
        "proba_1",
        "model_version",
        "prediction_id",
    ]
    assert len(pd.read_csv(tmp_path / "demo" / "broken_scores.csv")) == 98


@pytest.mark.slow
@ON_ONE_WORKER
def test_monitoring_tour(tmp_path: Path, demo: tuple[Path, str]) -> None:
    _after_demo(demo, tmp_path)
    port = free_port()
    env = {**_env(), "PORT": str(port)}
    done = subprocess.run(
        ["bash", str(ROOT / "examples" / "monitoring_tour.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "churn: 800 new labels, 0 replaced, 0 refused; 0 match no logged prediction" in done.stdout
    assert "realized performance (800 labelled rows)" in done.stdout
    assert re.search(
        r"│ tenure_months +│ input +│ numeric +│ wasserstein +│ [0-9.]+ \(distance; drift when ≥ 0.1\) +│ DRIFT",
        done.stdout,
    )
    assert "firing" in done.stdout.splitlines()[-2]
    assert (tmp_path / "demo" / "report.html").stat().st_size > 50_000
