"""The model registry: models, versions, aliases, signatures, reference profiles and artifacts."""

from liveml.registry.names import ModelRef, parse_ref
from liveml.registry.registry import Registry
from liveml.registry.types import AliasEvent, Lineage, ModelSummary, ModelVersion

__all__ = ["AliasEvent", "Lineage", "ModelRef", "ModelSummary", "ModelVersion", "Registry", "parse_ref"]
