"""SageMaker's model artifact: ``model.tar.gz``, which SageMaker unpacks into ``/opt/ml/model`` before it
starts the container with ``serve``; and the AWS CLI commands that take it to a live endpoint.

The archive holds one version's bundle (``liveml.registry.bundle``) at its root: the artifact,
``liveml-model.json`` and, when the version has them, its input example and reference profile. Entries
are written in name order with fixed owners, modes and times, so the same version always gives the same
bytes (and the same S3 ETag).
"""

from __future__ import annotations

import gzip
import io
import os
import shlex
import tarfile
import tempfile
from pathlib import Path

from liveml.errors import Invalid
from liveml.registry import Registry
from liveml.registry.bundle import BundleManifest, write_bundle

#: SageMaker resource names: up to 63 letters, digits and hyphens
NAME_LIMIT = 63


def export_model_tar(registry: Registry, ref: str, out: Path, *, overwrite: bool = False) -> BundleManifest:
    """Write ``ref``'s bundle as SageMaker's ``model.tar.gz`` at ``out`` (atomically: a failed export
    leaves no partial file)."""
    out = Path(out)
    if out.is_dir():
        raise Invalid(f"{str(out)!r} is a folder; give the archive's file name, e.g. {out / 'model.tar.gz'}")
    if out.exists() and not overwrite:
        raise Invalid(f"{str(out)!r} exists; pass --force to replace it, or choose another --out")
    if not out.parent.is_dir():
        raise Invalid(f"folder {str(out.parent)!r} does not exist; create it or choose another --out")
    with tempfile.TemporaryDirectory(prefix="liveml-bundle-") as tmp:
        folder = Path(tmp) / "bundle"
        manifest = write_bundle(registry, ref, folder)
        partial = out.with_name(f".{out.name}.partial")
        try:
            with partial.open("wb") as raw:
                _write_tar(folder, raw)
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    return manifest


def _write_tar(folder: Path, raw: io.BufferedWriter) -> None:
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(folder).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o644
            info.mtime = 0
            with path.open("rb") as data:
                tar.addfile(info, data)


def resource_name(manifest: BundleManifest) -> str:
    """A SageMaker model / endpoint name for the version, e.g. ``churn-v4``."""
    cleaned = "".join(c if c.isalnum() else "-" for c in manifest.name).strip("-") or "model"
    return f"{cleaned[: NAME_LIMIT - 8]}-v{manifest.version}"


def next_steps(manifest: BundleManifest, out: Path, *, image: str | None, bucket: str | None) -> str:
    """The AWS CLI commands from the archive to a live endpoint, ready to paste (placeholders in caps)."""
    name = resource_name(manifest)
    s3 = f"s3://{bucket or 'BUCKET'}/liveml/{name}/model.tar.gz"
    image_uri = image or "ACCOUNT.dkr.ecr.REGION.amazonaws.com/IMAGE:TAG"
    container = f"Image={image_uri},ModelDataUrl={s3},Environment={{LIVEML_PLATFORM_AUTH=true}}"
    lines = [
        f"{out} holds {manifest.ref} ({manifest.format}); SageMaker unpacks it into /opt/ml/model.",
        "Next: upload it, register a SageMaker model with a liveml image pushed to ECR, built with",
        f"`liveml build server --formats {manifest.format} --tag IMAGE` (docs/sagemaker.md), and create",
        "the endpoint:",
        "",
        f"  aws s3 cp {shlex.quote(str(out))} {s3}",
        f"  aws sagemaker create-model --model-name {name} \\",
        "      --execution-role-arn arn:aws:iam::ACCOUNT:role/SAGEMAKER_ROLE \\",
        f"      --primary-container '{container}'",
        f"  aws sagemaker create-endpoint-config --endpoint-config-name {name} \\",
        f"      --production-variants VariantName=main,ModelName={name},"
        "InstanceType=ml.m5.large,InitialInstanceCount=1",
        f"  aws sagemaker create-endpoint --endpoint-name {name} --endpoint-config-name {name}",
        f"  aws sagemaker wait endpoint-in-service --endpoint-name {name}",
        f"  aws sagemaker-runtime invoke-endpoint --endpoint-name {name} \\",
        "      --content-type text/csv --body fileb://rows.csv /dev/stdout",
    ]
    return "\n".join(lines)


__all__ = ["export_model_tar", "next_steps", "resource_name"]
