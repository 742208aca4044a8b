"""`liveml export sagemaker`: the model.tar.gz SageMaker unpacks into /opt/ml/model, and the commands it
prints to take it to an endpoint."""

from __future__ import annotations

import hashlib
import shlex
import tarfile
from pathlib import Path

import pytest

from liveml import Registry, Settings
from liveml.registry.bundle import MANIFEST, read_bundle
from liveml.serving.model_dir import register_model_dir
from tests.unit.cli.conftest import Cli, cli  # noqa: F401 (the in-process CLI fixture)

DOCS = Path(__file__).resolve().parents[3] / "docs"
#: the shell variables the cloud pages set before their commands
DOC_VARIABLES = {"$ECR": "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "$BUCKET": "my-ml-models"}


@pytest.fixture
def pushed(cli: Cli, model_files: dict[str, Path]) -> Cli:  # noqa: F811
    assert cli("init").code == 0
    done = cli("push", "iris", model_files["logistic"], "--alias", "production", "--tag", "team=growth")
    assert done.code == 0, done.err
    return cli


def test_the_archive_holds_the_bundle_at_its_root(pushed: Cli, tmp_path: Path) -> None:
    out = tmp_path / "model.tar.gz"
    done = pushed("export", "sagemaker", "iris@production", "--out", out, "--image", "1234.dkr.ecr/liveml:1")
    assert done.code == 0, done.err
    assert done.out.strip() == str(out)
    with tarfile.open(out, "r:gz") as tar:
        members = tar.getmembers()
        assert sorted(m.name for m in members) == sorted([MANIFEST, "logistic.joblib"])
        assert all(m.isfile() and "/" not in m.name and m.mode == 0o644 for m in members)
        tar.extractall(tmp_path / "opt-ml-model", filter="data")
    manifest = read_bundle(tmp_path / "opt-ml-model")  # checks the artifact's sha256 too
    assert manifest is not None and manifest.ref == "iris:1" and manifest.tags == {"team": "growth"}
    assert [c.name for c in manifest.signature.inputs][:2] == ["sepal_length", "sepal_width"]
    registry = Registry(Settings(home=tmp_path / "served"), create=True)
    assert register_model_dir(registry, tmp_path / "opt-ml-model", name=manifest.name) == "iris:1"
    registry.close()


def test_it_prints_the_aws_commands_to_a_live_endpoint(pushed: Cli, tmp_path: Path) -> None:
    out = tmp_path / "churn.tar.gz"
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/liveml:0.1"
    done = pushed("export", "sagemaker", "iris:1", "-o", out, "--image", image, "--bucket", "ml-models")
    assert done.code == 0, done.err
    said = " ".join(done.err.split())
    assert f"aws s3 cp {out} s3://ml-models/liveml/iris-v1/model.tar.gz" in said
    assert "aws sagemaker create-model --model-name iris-v1" in said
    assert f"Image={image},ModelDataUrl=s3://ml-models/liveml/iris-v1/model.tar.gz" in said
    assert "aws sagemaker create-endpoint-config --endpoint-config-name iris-v1" in said
    assert "aws sagemaker create-endpoint --endpoint-name iris-v1 --endpoint-config-name iris-v1" in said
    assert "invoke-endpoint --endpoint-name iris-v1" in said


def test_the_same_version_gives_the_same_bytes(pushed: Cli, tmp_path: Path) -> None:
    out = tmp_path / "model.tar.gz"
    digests = []
    for _ in range(2):
        assert pushed("export", "sagemaker", "iris", "--out", out, "--force").code == 0
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["nope@production"], 1, "nope"),
        (["iris", "--out", "{tmp}"], 2, "is a folder"),
        (["iris", "--out", "{tmp}/missing/model.tar.gz"], 2, "does not exist"),
        (["iris", "--out", "{tmp}/exists.tar.gz"], 2, "pass --force"),
    ],
    ids=["unknown-model", "out-is-a-folder", "no-such-folder", "exists"],
)
def test_bad_input_is_one_clear_line(
    pushed: Cli, tmp_path: Path, args: list[str], code: int, says: str
) -> None:
    (tmp_path / "exists.tar.gz").write_bytes(b"keep me")
    done = pushed("export", "sagemaker", *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert done.code == code, done.err
    assert says in done.err and "Traceback" not in done.err
    assert (tmp_path / "exists.tar.gz").read_bytes() == b"keep me"


def test_export_bundle_writes_the_folder_vertex_and_azure_take(pushed: Cli, tmp_path: Path) -> None:
    out = tmp_path / "churn-v1"
    done = pushed("export", "bundle", "iris@production", "--out", out)
    assert done.code == 0, done.err
    assert done.out.strip() == str(out) and f"liveml serve --model-dir {out}" in done.err
    manifest = read_bundle(out)
    assert manifest is not None and manifest.ref == "iris:1"
    again = pushed("export", "bundle", "iris", "--out", out)
    assert again.code == 2 and "not an empty folder" in again.err


@pytest.mark.parametrize("page", ["sagemaker.md", "vertex-ai.md", "azure-ml.md"])
def test_the_cloud_pages_export_commands_work(
    cli: Cli,  # noqa: F811
    model_files: dict[str, Path],
    tmp_path: Path,
    page: str,
) -> None:
    """Every `liveml export` line of the page, as written, against a registry with a `churn` model."""
    assert cli("init").code == 0
    assert cli("push", "churn", model_files["forest"], "--alias", "production").code == 0
    commands = []
    for line in (DOCS / page).read_text().splitlines():
        line = line.strip()
        if line.startswith("liveml export "):
            for name, value in DOC_VARIABLES.items():
                line = line.replace(name, value)
            commands.append(shlex.split(line, comments=True)[1:])
    assert commands, f"{page} shows no `liveml export` command"
    for args in commands:
        done = cli(*args)
        assert done.code == 0, f"{page}: liveml {' '.join(args)}\n{done.err}"
        if args[1] == "sagemaker":
            assert "aws sagemaker create-endpoint --endpoint-name churn-v1" in " ".join(done.err.split())
