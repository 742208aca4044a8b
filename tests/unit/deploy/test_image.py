"""The model bundle, the pinned requirements and the Dockerfile, without building anything."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liveml import Registry, Settings
from liveml.deploy.build import build_command, find_builder
from liveml.deploy.dockerfile import plan_model_image, plan_server_image, render
from liveml.deploy.entrypoint import healthcheck, main
from liveml.deploy.requirements import extras_for, packages_for, pinned
from liveml.errors import Invalid
from liveml.registry.bundle import MANIFEST, read_bundle, write_bundle
from liveml.registry.loading import load_version
from liveml.serving.model_dir import register_model_dir


@pytest.fixture
def pushed(tmp_path: Path, model_files: dict[str, Path]) -> Registry:
    registry = Registry.init(Settings(home=tmp_path / "home", user="tester"))
    registry.push(
        "iris",
        model_files["logistic"],
        aliases=["production"],
        reference=model_files["reference"],
        tags={"team": "risk"},
        metrics={"accuracy": 0.97},
        description="iris classifier",
    )
    return registry


def test_a_bundle_serves_as_the_same_version_elsewhere(
    pushed: Registry, tmp_path: Path, iris_frame: pd.DataFrame
) -> None:
    manifest = write_bundle(pushed, "iris@production", tmp_path / "bundle")
    assert manifest.ref == "iris:1"
    files = {p.name for p in (tmp_path / "bundle").iterdir()}
    assert {MANIFEST, manifest.file, "reference-profile.json"} <= files

    other = Registry.init(Settings(home=tmp_path / "container", user="container"))
    served = register_model_dir(other, tmp_path / "bundle", name="iris")
    version = other.get(served)
    original = pushed.get("iris:1")
    assert version.signature == original.signature
    assert version.sha256 == original.sha256
    assert version.metrics == {"accuracy": 0.97}
    assert version.tags["team"] == "risk" and version.tags["bundle.source"] == "iris:1"
    assert other.reference_profile(served) == pushed.reference_profile("iris:1")
    # the compiled form travels with the bundle: served at once, no compiling in the container
    assert original.compiled is not None and version.compiled == original.compiled
    assert version.compile_report == original.compile_report
    rows = iris_frame.drop(columns=["target"]).head(10)
    got = load_version(other, version).predict(rows).predictions
    want = load_version(pushed, original).predict(rows).predictions
    np.testing.assert_array_equal(got, want)
    # a second start with the same bundle serves what is there, pushing nothing new
    assert register_model_dir(other, tmp_path / "bundle", name="iris") == served


def test_a_changed_or_broken_bundle_is_refused(pushed: Registry, tmp_path: Path) -> None:
    manifest = write_bundle(pushed, "iris", tmp_path / "bundle")
    assert manifest.compiled is not None
    compiled = tmp_path / "bundle" / manifest.compiled.file
    original = compiled.read_bytes()
    compiled.write_bytes(original[:-10])
    with pytest.raises(Invalid, match=r"compiled\.onnx.*does not match the sha256"):
        read_bundle(tmp_path / "bundle")
    compiled.write_bytes(original)
    assert read_bundle(tmp_path / "bundle") == manifest
    artifact = tmp_path / "bundle" / manifest.file
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    with pytest.raises(Invalid, match="does not match the sha256"):
        read_bundle(tmp_path / "bundle")
    (tmp_path / "bundle" / MANIFEST).write_text(json.dumps({"name": "iris"}))
    with pytest.raises(Invalid, match="not a liveml bundle manifest"):
        read_bundle(tmp_path / "bundle")
    with pytest.raises(Invalid, match="not an empty folder"):
        write_bundle(pushed, "iris", tmp_path / "bundle")


def test_pins_are_the_installed_closure_with_the_formats_extras() -> None:
    core = dict(line.split("==") for line in pinned([]))
    assert core["numpy"] == metadata.version("numpy")
    assert "onnxruntime" not in core and "liveml" not in core
    assert "pytest" not in core  # dev-only packages stay out
    assert "uvloop" in core  # uvicorn[standard]'s extra is followed
    onnx_packages = packages_for(["onnx"])
    assert onnx_packages == ["onnxruntime"] and packages_for(["sklearn"], compiled=True) == ["onnxruntime"]
    with_onnx = dict(line.split("==") for line in pinned(extras_for(["onnx"]), packages=onnx_packages))
    assert with_onnx["onnxruntime"] == metadata.version("onnxruntime")
    assert "skl2onnx" not in with_onnx and "onnx" not in with_onnx  # serving needs no converter
    assert extras_for(["xgboost", "sklearn"], server=True) == ["xgboost", "postgres", "s3"]
    with pytest.raises(Invalid, match="unknown model format 'tensorflow'"):
        extras_for(["tensorflow"])


def test_the_dockerfile_is_multi_stage_non_root_exec_form_with_a_health_check(pushed: Registry) -> None:
    plan, ref = plan_model_image(pushed, "iris@production")
    assert ref == "iris:1"
    assert "lambda" in plan.extras  # the same image runs as a Lambda container
    assert plan.packages == ("onnxruntime",)  # the compiled form's runtime
    text = render(plan)
    froms = re.findall(r"^FROM (.+)$", text, flags=re.M)
    assert froms == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]
    final = text.split("\nFROM ${BASE_IMAGE}\n", 1)[1]
    assert "USER 10001:10001" in final
    assert "pip install" not in final and "gcc" not in text and "build-essential" not in text
    assert 'ENTRYPOINT ["python", "-m", "liveml.deploy.entrypoint"]' in final
    assert 'CMD ["serve"]' in final and "HEALTHCHECK" in final and "EXPOSE 8080" in final
    assert "LIVEML_MODEL_DIR=/opt/ml/model" in final and "LIVEML_DEFAULT_MODEL=iris" in final
    assert "--no-index" not in text

    server = render(plan_server_image(["sklearn"], download=True, base="debian-python:3.12"))
    assert "COPY model/" not in server and "LIVEML_MODEL_DIR" not in server
    assert "ARG BASE_IMAGE=debian-python:3.12" in server
    assert "--no-index --find-links /tmp/build" in server


def test_builders_and_their_commands(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="unknown builder 'kaniko'"):
        find_builder("kaniko")
    command = build_command("buildah", tmp_path, "churn:4", build_args=["BASE_IMAGE=x"])
    assert command[:4] == ["buildah", "build", "--format", "docker"]
    assert "--isolation=chroot" in command and "--build-arg=BASE_IMAGE=x" in command
    assert build_command("docker", tmp_path, "churn:4")[:4] == ["docker", "build", "-t", "churn:4"]


def test_the_entrypoint_refuses_training_and_reports_an_unready_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train"]) == 2
    assert "do not train" in capsys.readouterr().err
    monkeypatch.setenv("LIVEML_SERVER_PORT", "9")  # nothing listens on the discard port
    assert healthcheck() == 1
    with pytest.raises(SystemExit) as exited:
        main(["models", "--no-such-option"])
    assert exited.value.code == 2
