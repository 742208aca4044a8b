"""What the registry returns: frozen records, never dicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from liveml.signature import Signature


class Lineage(BaseModel):
    """Where a version came from."""

    model_config = ConfigDict(frozen=True)

    pushed_by: str
    pushed_at: datetime
    file_name: str
    sha256: str
    size: int
    data_hash: str | None = None
    code_commit: str | None = None
    parent_version: int | None = None


class CompiledForm(BaseModel):
    """A faster artifact equivalent to the original (checked at push), served in its place."""

    model_config = ConfigDict(frozen=True)

    format: str
    sha256: str
    size: int


class ModelVersion(BaseModel):
    """One immutable version of a model, with the aliases that point at it now."""

    model_config = ConfigDict(frozen=True)

    model: str
    version: int
    aliases: tuple[str, ...]
    format: str
    task: str
    framework: str
    sha256: str
    size: int
    description: str
    tags: dict[str, str]
    metrics: dict[str, float]
    signature: Signature
    classes: tuple[Any, ...] | None = None
    input_example: list[dict[str, Any]] | None = None
    runtime_options: dict[str, Any]
    has_reference: bool
    lineage: Lineage
    compiled: CompiledForm | None = None
    compile_report: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"


class ModelSummary(BaseModel):
    """A row of ``liveml models``."""

    model_config = ConfigDict(frozen=True)

    name: str
    latest_version: int
    versions: int
    aliases: dict[str, int]
    format: str
    updated_at: datetime


class AliasEvent(BaseModel):
    """One move of an alias: set, rollback or delete."""

    model_config = ConfigDict(frozen=True)

    model: str
    alias: str
    action: str
    from_version: int | None
    to_version: int | None
    actor: str
    at: datetime


__all__ = ["AliasEvent", "CompiledForm", "Lineage", "ModelSummary", "ModelVersion"]
