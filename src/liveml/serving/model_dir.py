"""Serving a model folder with no shared registry: the SageMaker / Vertex AI / Lambda model-image case."""

from __future__ import annotations

import contextlib
from pathlib import Path

from liveml.errors import Invalid, NotFound
from liveml.registry import Registry
from liveml.registry.bundle import MANIFEST, push_bundle, read_bundle
from liveml.registry.store import hash_file
from liveml.runtimes import detect_format

SKIP = {"code", "__pycache__"}


def model_file(folder: Path) -> Path:
    """The one model in ``folder``: a single model file, or the folder itself for a custom Python model."""
    if not folder.is_dir():
        raise NotFound(f"model folder {str(folder)!r} does not exist")
    candidates = [
        p
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST
    ]
    models = []
    for path in candidates:
        with contextlib.suppress(Invalid):
            detect_format(path)
            models.append(path)
    if len(models) == 1:
        return models[0]
    if not models:
        with contextlib.suppress(Invalid):
            detect_format(folder)
            return folder
        raise Invalid(f"no model file in {str(folder)!r}; put one .joblib, .onnx, .pt, ... file there")
    names = ", ".join(p.name for p in models)
    raise Invalid(
        f"{str(folder)!r} holds several model files ({names}); keep one, or push them to a registry"
    )


def register_model_dir(registry: Registry, folder: Path, *, name: str = "model") -> str:
    """Push the folder's model as ``name`` (alias production) unless that exact content is served already.

    A bundle (``liveml-model.json`` beside the artifact) keeps its signature, example, reference profile,
    metrics and tags; a bare model file gets them inferred as ``liveml push`` would."""
    manifest = read_bundle(folder) if folder.is_dir() else None
    if manifest is not None:
        with contextlib.suppress(NotFound):
            current = registry.get(f"{name}@production")
            if current.sha256 == manifest.sha256:
                return current.ref
        return push_bundle(registry, folder, manifest, name=name).ref
    path = model_file(folder)
    reference = next(
        (p for p in (folder / "reference.parquet", folder / "reference.csv") if p.is_file()), None
    )
    if path.is_file():
        sha = hash_file(path)[0]
        with contextlib.suppress(NotFound):
            current = registry.get(f"{name}@production")
            if current.sha256 == sha:
                return current.ref
    version = registry.push(
        name, path, aliases=["production"], reference=reference, description=f"from {folder}"
    )
    return version.ref


__all__ = ["model_file", "register_model_dir"]
