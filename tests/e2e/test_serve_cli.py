"""`liveml serve` started as a user starts it: a real process, the curl it prints, the client example,
`predict --url`, the model-folder mode, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import Cli, checked, init_and_push_iris
from tests.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]
LIVEML = [sys.executable, "-m", "liveml.cli.main"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEML_", "SAGEMAKER_", "AIP_"))}
    return {
        **env,
        "LIVEML_HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
    }


@contextmanager
def serving(
    args: list[str],
    home: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    *,
    auth: bool = False,
    verify: ssl.SSLContext | bool = True,
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``liveml serve ARGS`` on a free port until ready; without API keys (``--no-auth``, on loopback)
    unless ``auth``; HTTPS when ARGS has ``--ssl-certfile`` (``verify``: what to trust)."""
    port = free_port()
    proc = subprocess.Popen(
        [*LIVEML, "serve", "--port", str(port), *args, *([] if auth else ["--no-auth"])],
        cwd=cwd,
        env={**_env(home), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"{'https' if '--ssl-certfile' in args else 'http'}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(
                    f"liveml serve exited early:\n{proc.stdout.read() if proc.stdout else ''}"
                )
            try:
                if httpx.get(f"{url}/health/ready", timeout=1, verify=verify).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("liveml serve did not become ready")
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 30) -> str:
    """What the process wrote up to and including the line with ``marker`` (read as raw bytes, so the rest
    of its output is left for ``proc.stdout.read()``)."""
    assert proc.stdout is not None
    seen, deadline = b"", time.monotonic() + timeout
    while marker.encode() not in seen[: seen.rfind(b"\n") + 1]:  # in a whole line
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(proc.stdout.fileno(), 1) if ready else b""
        if not chunk:
            raise AssertionError(f"no {marker!r} in the output of liveml serve:\n{seen.decode()}")
        seen += chunk
    return seen.decode()


@pytest.mark.slow
def test_serve_prints_a_working_curl_and_stops_cleanly(
    tmp_path: Path, model_files: dict[str, Path], cli: Cli
) -> None:
    home = tmp_path / "home"  # the cli fixture's data home too
    init_and_push_iris(cli, model_files)
    with serving([], home, tmp_path, auth=True) as (url, proc):
        key = (home / "credentials").read_text().strip()
        head = _read_until(proc, "try: curl")
        curl = re.search(r"(try: )(curl -X POST (\S+) .+ -d '.+')", head)
        assert curl is not None, head
        assert f'-H "Authorization: Bearer $(cat {home / "credentials"})"' in curl[2]
        # the curl it printed works, as printed (through a shell)
        done = subprocess.run(
            ["bash", "-c", curl[2] + " --fail-with-body -sS"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr + done.stdout
        assert json.loads(done.stdout)["version"] == 1
        refused = httpx.post(f"{url}/v1/models/iris/predict", json={"inputs": [{"sepal_length": 1}]})
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        # the client example and `predict --url` send the key `liveml init` saved in the credentials file
        example = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "clients" / "python_client.py"), url, "iris"],
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert example.returncode == 0, example.stderr
        assert (
            "iris:1 takes ['sepal_length'" in example.stdout
            and "refused: missing input column" in example.stdout
        )
        out = tmp_path / "preds.csv"
        predicted = subprocess.run(
            [
                *LIVEML,
                "predict",
                "iris",
                "--input",
                str(model_files["rows"]),
                "--url",
                url,
                "--output",
                str(out),
            ],
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert predicted.returncode == 0, predicted.stderr
        assert len(out.read_text().splitlines()) == 21
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status says why it stopped
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        log = head + (proc.stdout.read() if proc.stdout else "")
    assert "Finished server process" in log
    assert "serving iris:1 (production)" in log
    assert curl[3] == f"{url}/v1/models/iris/predict" and key not in log
    assert "Traceback" not in log


@pytest.mark.slow
def test_serve_a_model_folder_without_a_registry(tmp_path: Path, model_files: dict[str, Path]) -> None:
    folder = tmp_path / "opt-ml-model"
    folder.mkdir()
    shutil.copy(model_files["logistic"], folder / "model.joblib")
    with serving(["--model-dir", str(folder)], tmp_path / "home", tmp_path) as (url, _):
        rows = json.loads(httpx.get(f"{url}/v1/models/model").text)["signature"]["inputs"]
        row = {c["name"]: 1.0 for c in rows}
        response = httpx.post(f"{url}/v1/models/model/predict", json={"inputs": [row]})
        assert response.status_code == 200 and response.json()["model"] == "model"


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.add(int(entry.name))
    return found


@pytest.mark.slow
def test_worker_processes_share_the_port_survive_a_crash_and_follow_aliases(
    tmp_path: Path, model_files: dict[str, Path], cli: Cli
) -> None:
    home = tmp_path / "home"  # the cli fixture's data home too
    checked(cli, "init")
    checked(cli, "push", "iris", str(model_files["logistic"]), "--alias", "production")
    checked(cli, "push", "iris", str(model_files["forest"]))
    row = {"inputs": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}
    key = {"Authorization": f"Bearer {(home / 'credentials').read_text().strip()}"}
    with serving(["--workers", "2", "--poll", "0.2"], home, tmp_path, auth=True) as (url, proc):
        deadline = time.monotonic() + 30
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _children(proc.pid)
        assert len(workers) == 2
        with httpx.Client(base_url=url, headers=key) as http:
            assert all(
                http.post("/v1/models/iris/predict", json=row).json()["version"] == 1 for _ in range(20)
            )
            os.kill(next(iter(workers)), signal.SIGKILL)  # a worker dies: the other answers, a new one starts
        # A kept-alive connection that belonged to the killed process is gone with it (as with any pre-fork
        # server); every new connection is answered by a live worker.
        close = {"Connection": "close", **key}
        with httpx.Client(base_url=url, headers=close) as http:
            assert all(http.post("/v1/models/iris/predict", json=row).status_code == 200 for _ in range(20))
            deadline = time.monotonic() + 30
            while (
                len(_children(proc.pid)) < 2 or _children(proc.pid) == workers
            ) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(_children(proc.pid)) == 2 and _children(proc.pid) != workers
            checked(cli, "alias", "set", "iris", "production", "2")  # from outside the server's processes
            deadline = time.monotonic() + 30  # every worker follows the move by itself
            while time.monotonic() < deadline:
                seen = {http.post("/v1/models/iris/predict", json=row).json()["version"] for _ in range(30)}
                if seen == {2}:
                    break
                time.sleep(0.2)
            assert seen == {2}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        assert not _children(proc.pid)
