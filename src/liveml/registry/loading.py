"""A registered version loaded in this process: validate rows against its signature, then predict."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from liveml.errors import Invalid, Unavailable
from liveml.registry.names import ModelRef
from liveml.registry.registry import Registry
from liveml.registry.types import ModelVersion
from liveml.runtimes import Prediction, Runtime, get_runtime
from liveml.security.pickles import check_loadable

log = logging.getLogger("liveml.registry")

Rows = pd.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Any]


class LoadedModel:
    """One model version in memory. ``predict`` takes a DataFrame, a list of row dicts or a dict of columns.

    ``serving_format`` says which artifact answers: the original's format, or the compiled form's."""

    def __init__(self, version: ModelVersion, runtime: Runtime, *, compiled: bool = False) -> None:
        self.version = version
        self.signature = version.signature
        self.runtime = runtime
        self.compiled = compiled
        self.serving_format = runtime.name

    def predict(self, rows: Rows) -> Prediction:
        frame = self.signature.conform(to_frame(rows))
        return self.runtime.predict(frame)

    def unload(self) -> None:
        self.runtime.unload()

    def __repr__(self) -> str:
        return f"<LoadedModel {self.version.ref} format={self.version.format} task={self.version.task}>"


def to_frame(rows: Rows) -> pd.DataFrame:
    """Rows as a DataFrame: accepts a DataFrame, a list of records, or a mapping of column lists."""
    if isinstance(rows, pd.DataFrame):
        return rows
    try:
        if isinstance(rows, Mapping):
            values = list(rows.values())
            if values and all(
                isinstance(v, list | tuple) or (hasattr(v, "__len__") and not isinstance(v, str))
                for v in values
            ):
                return pd.DataFrame(dict(rows))
            return pd.DataFrame([dict(rows)])
        records = list(rows)
    except (TypeError, ValueError) as exc:
        raise Invalid(
            f"cannot read the rows: {exc}; give a DataFrame, a list of records or a dict of columns"
        ) from exc
    if not records:
        raise Invalid("no rows to predict; send at least one row")
    if not all(isinstance(r, Mapping) for r in records):
        raise Invalid('each row must be an object of column: value, e.g. {"age": 41, "plan": "pro"}')
    return pd.DataFrame.from_records(records)


def load_version(
    registry: Registry, version: ModelVersion, *, compiled: bool = False, load: bool = True
) -> LoadedModel:
    """Load a version; with ``compiled``, its compiled form when it has one (else the original).

    The artifact is verified against its sha256 first, and the safe-loading policy (``pickle_policy``)
    is checked before it is read: under ``strict`` a pickle-based original is refused, though its
    compiled ONNX form (checked equal to it at push) still loads. With ``load=False`` the original is
    checked the same way but not read (its runtime loads on first use): for a process that needs the
    version's signature while others score with it."""
    policy = registry.settings.pickle_policy
    if compiled and version.compiled is not None:
        try:
            options = (version.compile_report or {}).get("runtime_options", {})
            runtime_cls = get_runtime(version.compiled.format)
            path = registry.artifact_path(version, compiled=True)
            check_loadable(runtime_cls, policy, path=path, options=options, what=f"{version.ref} (compiled)")
            runtime = runtime_cls(path, options)
            runtime.load()
            return LoadedModel(version, runtime, compiled=True)
        except Unavailable as exc:  # e.g. onnxruntime not installed here: the original still serves
            log.warning("serving the original of %s: %s", version.ref, exc)
    runtime_cls = get_runtime(version.format)
    check_loadable(runtime_cls, policy, options=version.runtime_options, what=version.ref)
    path = registry.artifact_path(version)
    check_loadable(runtime_cls, policy, path=path, options=version.runtime_options, what=version.ref)
    runtime = runtime_cls(path, version.runtime_options)
    if load:
        runtime.load()
    return LoadedModel(version, runtime)


def load_model(ref: str | ModelRef, *, registry: Registry | None = None) -> LoadedModel:
    """Load ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` from the registry into this process."""
    own = registry is None
    reg = registry or Registry()
    try:
        return load_version(reg, reg.get(ref))
    finally:
        if own:
            reg.close()


__all__ = ["LoadedModel", "load_model", "load_version", "to_frame"]
