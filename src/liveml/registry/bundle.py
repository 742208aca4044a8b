"""A model bundle: one version taken out of the registry as a folder a container can serve on its own.

The folder holds the version's artifact under its own file name, ``liveml-model.json`` (the manifest:
name, version, format, signature, runtime options, description, tags, metrics, lineage and sha256),
``input-example.jsonl`` when the version has an example, ``reference-profile.json`` when it has a
reference profile, and ``compiled.onnx`` when it has a compiled form (checked at the original push, so the
container serves it at once, with onnxruntime alone and no compiling at start). ``liveml serve --model-dir FOLDER`` serves it under the same name and signature, with
no database server; this is what a model image bakes in at ``/opt/ml/model`` and what SageMaker's
``model.tar.gz`` holds (``liveml.deploy`` builds those from it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from liveml.errors import Invalid, first_problem
from liveml.registry.compile import Compiled, CompileReport
from liveml.registry.profile import ReferenceProfile
from liveml.registry.registry import Registry
from liveml.registry.store import hash_file
from liveml.registry.types import ModelVersion
from liveml.signature import Signature

MANIFEST = "liveml-model.json"
EXAMPLE = "input-example.jsonl"
PROFILE = "reference-profile.json"
SCHEMA_VERSION = 1


class BundleCompiled(BaseModel):
    """The version's compiled form in the bundle, with the report of the check made at its push."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    file: str
    format: str
    sha256: str
    report: dict[str, Any]


class BundleManifest(BaseModel):
    """What ``liveml-model.json`` says about the bundled version."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = SCHEMA_VERSION
    name: str
    version: int
    format: str
    file: str
    sha256: str
    signature: Signature
    runtime_options: dict[str, Any] = {}
    description: str = ""
    tags: dict[str, str] = {}
    metrics: dict[str, float] = {}
    task: str = ""
    framework: str = ""
    pushed_by: str = ""
    pushed_at: str = ""
    data_hash: str | None = None
    code_commit: str | None = None
    compiled: BundleCompiled | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


def manifest_of(version: ModelVersion) -> BundleManifest:
    compiled = None
    if version.compiled is not None:
        compiled = BundleCompiled(
            file=f"compiled.{version.compiled.format}",
            format=version.compiled.format,
            sha256=version.compiled.sha256,
            report=dict(version.compile_report or {}),
        )
    return BundleManifest(
        name=version.model,
        version=version.version,
        format=version.format,
        file=version.lineage.file_name,
        sha256=version.sha256,
        signature=version.signature,
        runtime_options=dict(version.runtime_options),
        description=version.description,
        tags=dict(version.tags),
        metrics=dict(version.metrics),
        task=version.task,
        framework=version.framework,
        pushed_by=version.lineage.pushed_by,
        pushed_at=version.lineage.pushed_at.isoformat(),
        data_hash=version.lineage.data_hash,
        code_commit=version.lineage.code_commit,
        compiled=compiled,
    )


def write_bundle(registry: Registry, ref: str, folder: Path) -> BundleManifest:
    """Write ``ref``'s bundle into ``folder`` (created; it must be empty or absent)."""
    version = registry.get(ref)
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise Invalid(f"{str(folder)!r} is not an empty folder; give a new or empty folder for the bundle")
    folder.mkdir(parents=True, exist_ok=True)
    manifest = manifest_of(version)
    shutil.copyfile(registry.artifact_path(version), folder / manifest.file)
    if manifest.compiled is not None:
        shutil.copyfile(registry.artifact_path(version, compiled=True), folder / manifest.compiled.file)
    if version.input_example:
        lines = (json.dumps(row, default=str) for row in version.input_example)
        (folder / EXAMPLE).write_text("\n".join(lines) + "\n")
    profile = registry.reference_profile(version.ref)
    if profile is not None:
        (folder / PROFILE).write_text(profile.to_json())
    (folder / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n")
    return manifest


def read_bundle(folder: Path) -> BundleManifest | None:
    """The manifest of the bundle in ``folder``, checked against its artifact; None if it has none."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = BundleManifest.model_validate_json(path.read_text())
    except ValidationError as exc:
        where, problem, _ = first_problem(exc)
        raise Invalid(
            f"{str(path)!r} is not a liveml bundle manifest: {where}: {problem}; write bundles with "
            "`liveml export bundle` or `liveml export sagemaker`"
        ) from exc
    files = [(manifest.file, manifest.sha256)]
    if manifest.compiled is not None:
        files.append((manifest.compiled.file, manifest.compiled.sha256))
    for name, sha256 in files:
        artifact = Path(folder) / name
        if not artifact.is_file():
            raise Invalid(f"{str(path)!r} names {name!r}, which is not in {str(folder)!r}")
        if hash_file(artifact)[0] != sha256:
            raise Invalid(
                f"{str(artifact)!r} does not match the sha256 in {MANIFEST}: the bundle was changed or "
                "damaged; export it again"
            )
    return manifest


def push_bundle(registry: Registry, folder: Path, manifest: BundleManifest, *, name: str) -> ModelVersion:
    """Push the bundled version into ``registry`` as ``name`` (alias production)."""
    folder = Path(folder)
    example = folder / EXAMPLE
    profile_file = folder / PROFILE
    profile = ReferenceProfile.from_json(profile_file.read_text()) if profile_file.is_file() else None
    precompiled = None
    if manifest.compiled is not None:
        report = CompileReport.model_validate(manifest.compiled.report)
        precompiled = Compiled(folder / manifest.compiled.file, report)
    return registry.push(
        name,
        folder / manifest.file,
        aliases=["production"],
        example=example if example.is_file() else None,
        signature=manifest.signature,
        format=manifest.format,
        runtime_options=manifest.runtime_options,
        description=manifest.description or f"{manifest.ref}, from a bundle",
        tags={**manifest.tags, "bundle.source": manifest.ref},
        metrics=manifest.metrics,
        data_hash=manifest.data_hash,
        code_commit=manifest.code_commit,
        profile=profile,
        precompiled=precompiled,
        compile=False,  # a bundle carries its compiled form, checked at the original push, or has none
    )


__all__ = [
    "MANIFEST",
    "BundleCompiled",
    "BundleManifest",
    "manifest_of",
    "push_bundle",
    "read_bundle",
    "write_bundle",
]
