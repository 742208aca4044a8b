"""`liveml dockerfile` and `liveml build` as a user types them, including what they refuse."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.unit.cli.conftest import Cli


def _push(cli: Cli, model_files: dict[str, Path]) -> None:
    assert cli("init").code == 0
    pushed = cli("push", "iris", model_files["logistic"], "--alias", "production")
    assert pushed.code == 0, pushed.err


def test_dockerfile_prints_the_model_image_and_writes_its_context(
    cli: Cli, model_files: dict[str, Path], tmp_path: Path
) -> None:
    _push(cli, model_files)
    printed = cli("dockerfile", "iris@production")
    assert printed.code == 0, printed.err
    assert printed.out.startswith("# syntax=docker/dockerfile:1\n# liveml model image: iris:1 (sklearn)")
    assert "USER 10001:10001" in printed.out

    written = cli("dockerfile", "iris", "--context", tmp_path / "ctx")
    assert written.code == 0, written.err
    assert (tmp_path / "ctx" / "Dockerfile").read_text() == written.out
    assert (tmp_path / "ctx" / "model" / "liveml-model.json").is_file()
    wheels = list((tmp_path / "ctx" / "wheels").glob("liveml-*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as wheel:  # the package data ships in it
        names = set(wheel.namelist())
    assert "liveml/deploy/observability/liveml-dashboard.json" in names
    assert "liveml/monitoring/templates/report.html.j2" in names
    requirements = (tmp_path / "ctx" / "requirements.txt").read_text().splitlines()
    pins = [line for line in requirements if not line.startswith("#")]
    assert pins and all("==" in line for line in pins)

    server = cli("dockerfile", "server", "--formats", "sklearn,xgboost")
    assert server.code == 0, server.err
    assert "server image" in server.out and "COPY model/" not in server.out


def test_bad_references_folders_formats_and_builders_are_clear_errors(
    cli: Cli, model_files: dict[str, Path], tmp_path: Path
) -> None:
    _push(cli, model_files)
    missing = cli("dockerfile", "nope@production")
    assert missing.code != 0 and "no model named 'nope'" in missing.err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    busy = cli("dockerfile", "iris", "--context", tmp_path / "busy")
    assert busy.code == 2 and "not an empty folder" in busy.err
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"  # nothing of the user's is touched

    unknown = cli("dockerfile", "server", "--formats", "sklearn,tensorflow")
    assert unknown.code == 2 and "unknown model format 'tensorflow'" in unknown.err

    builder = cli("build", "iris", "--tag", "iris:1", "--builder", "kaniko")
    assert builder.code == 2 and "unknown builder 'kaniko'" in builder.err
    tag = cli("build", "iris", "--tag", "iris 1")
    assert tag.code == 2 and "is not an image name" in tag.err
    for text in (missing.err, busy.err, unknown.err, builder.err, tag.err):
        assert "Traceback" not in text
