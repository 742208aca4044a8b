"""A real model image: built with buildah (no daemon), started the way a container runtime starts it,
and asked for predictions over HTTP.

No image registry is reachable from the test machine, so the base image is made here: Debian bookworm
with its python3 by ``debootstrap`` (kept in buildah's storage under a tag naming its recipe, so a second
run reuses it). Needs root, buildah and debootstrap (``scripts/install_image_tools.sh`` installs them);
without them the test is skipped, loudly, with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from liveml import Registry, Settings
from liveml.registry.loading import load_version
from tests.live_server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("image"), pytest.mark.timeout(1200)]

MIRROR = os.environ.get("LIVEML_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = "python3,python3-venv,ca-certificates"
RECIPE = f"debootstrap --variant=minbase --include={PACKAGES} bookworm"
BASE = f"localhost/liveml-test-base:bookworm-{hashlib.sha256(RECIPE.encode()).hexdigest()[:12]}"
ENV = {**os.environ, "STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}


def _problem() -> str | None:
    if sys.platform != "linux":
        return "container images are built on Linux only"
    if os.geteuid() != 0:
        return "building a base image with debootstrap needs root"
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (run scripts/install_image_tools.sh)"
    return None


def buildah(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["buildah", *args], env=ENV, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done


def base_image() -> str:
    """Debian bookworm with python3, made by debootstrap unless buildah's storage has it already."""
    if buildah("images", "-q", BASE, check=False).returncode == 0:
        return BASE
    with tempfile.TemporaryDirectory(prefix="liveml-rootfs-") as tmp:
        rootfs, tarball = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        command = [
            "debootstrap",
            "--variant=minbase",
            f"--include={PACKAGES}",
            "bookworm",
            str(rootfs),
            MIRROR,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"debootstrap could not make a base image from {MIRROR}: {done.stdout[-500:]}")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
        container = buildah("from", "scratch").stdout.strip()
        try:
            buildah("add", container, str(tarball), "/")
            buildah("config", "--cmd", "python3", container)
            buildah("commit", "-q", container, BASE)
        finally:
            buildah("rm", container, check=False)
    return BASE


@pytest.fixture(scope="module")
def image(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> Iterator[tuple[str, Path]]:
    problem = _problem()
    if problem:
        pytest.skip(f"IMAGE TEST SKIPPED: {problem}")
    home = tmp_path_factory.mktemp("image-home")
    registry = Registry.init(Settings(home=home, user="tester"))
    registry.push("iris", model_files["forest"], aliases=["production"], reference=model_files["reference"])
    registry.close()
    tag = f"localhost/liveml-test-iris:{os.getpid()}"
    base = base_image()
    env = {**ENV, "LIVEML_HOME": str(home), "LIVEML_USER": "tester"}
    command = [
        sys.executable, "-m", "liveml.cli.main", "build", "iris@production", "--tag", tag,
        "--builder", "buildah", "--download", "--build-arg", f"BASE_IMAGE={base}",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"built {tag}" in done.stderr
    try:
        yield tag, home
    finally:
        buildah("rmi", "-f", tag, check=False)


def test_the_image_is_configured_as_a_safe_server(image: tuple[str, Path]) -> None:
    tag, _ = image
    config = json.loads(buildah("inspect", "--type", "image", tag).stdout)["Docker"]["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == [
        "python",
        "-m",
        "liveml.deploy.entrypoint",
    ]  # exec form: PID 1 gets SIGTERM
    assert config["Cmd"] == ["serve"]
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "python"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["LIVEML_MODEL_DIR"] == "/opt/ml/model" and env["LIVEML_DEFAULT_MODEL"] == "iris"
    container = buildah("from", tag).stdout.strip()
    try:
        probe = buildah(
            "run", "--isolation", "chroot", container, "--",
            "sh", "-c", "id -u; command -v gcc cc pip3 || echo no-build-tools; ls /tmp/build 2>&1 || true",
        ).stdout  # fmt: skip
        assert probe.splitlines()[0] == "10001"
        assert "no-build-tools" in probe and "No such file" in probe
    finally:
        buildah("rm", container, check=False)


def test_the_image_serves_predictions_over_http_and_stops_on_sigterm(
    image: tuple[str, Path], iris_frame: pd.DataFrame
) -> None:
    tag, home = image
    port = free_port()
    container = buildah("from", tag).stdout.strip()
    buildah("config", "--env", f"LIVEML_SERVER_PORT={port}", container)
    config = json.loads(buildah("inspect", "--type", "image", tag).stdout)["Docker"]["config"]
    log = Path(tempfile.mkstemp(prefix="liveml-image-", suffix=".log")[1])
    with log.open("w") as out:
        # how a runtime starts it: the image's entrypoint and command, as its user, in its environment
        runner = subprocess.Popen(
            [
                "buildah",
                "run",
                "--isolation",
                "chroot",
                container,
                "--",
                *config["Entrypoint"],
                *config["Cmd"],
            ],
            env=ENV,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as http:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if http.get("/v2/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert runner.poll() is None, f"the server in the image exited: {log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"not ready in 120 s: {log.read_text()[-3000:]}"
                time.sleep(0.5)
            rows = iris_frame.drop(columns=["target"]).head(12)
            registry = Registry(Settings(home=home, user="tester"))
            expected = load_version(registry, registry.get("iris:1")).predict(rows).predictions.tolist()
            registry.close()
            native = http.post("/v1/models/iris/predict", json={"inputs": rows.to_dict(orient="records")})
            assert native.status_code == 200, native.text
            assert native.json()["predictions"] == expected
            # the SageMaker contract on the same server: /ping and CSV /invocations
            assert http.get("/ping").status_code == 200
            csv = rows.to_csv(index=False, header=False)
            invoked = http.post("/invocations", content=csv, headers={"content-type": "text/csv"})
            assert invoked.status_code == 200, invoked.text
            assert invoked.json()["predictions"] == expected
            bad = http.post("/v1/models/iris/predict", json={"inputs": [{"sepal_length": "wide"}]})
            assert bad.status_code == 400 and "petal_length" in bad.text
            metrics = http.get("/metrics")
            assert metrics.status_code == 200 and "liveml" in metrics.text
        check = buildah(
            "run", "--isolation", "chroot", container, "--", "python", "-m", "liveml.deploy.entrypoint", "healthcheck",
            check=False,
        )  # fmt: skip
        assert check.returncode == 0, check.stderr
        # SIGTERM to the server (PID 1 in a real runtime): it drains and exits cleanly
        found = re.search(r"Started server process \[(\d+)\]", log.read_text())
        assert found, log.read_text()[-2000:]
        os.kill(int(found.group(1)), signal.SIGTERM)
        runner.wait(timeout=60)
        text = log.read_text()
        # uvicorn drains, then ends by its own SIGTERM again (exit 143 under docker, as for any runtime)
        assert "Waiting for application shutdown" in text and "Finished server process" in text, text[-2000:]
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        buildah("rm", container, check=False)
        log.unlink(missing_ok=True)
