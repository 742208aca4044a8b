"""Everything a push checks and computes before anything is stored.

The model is loaded with its runtime (so a file that is not a model is refused), its signature is
inferred, and the reference profile is computed by running the model on the reference data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from liveml.errors import Invalid, NotFound, first_problem
from liveml.registry.compile import Compiled, compile_to_onnx
from liveml.registry.profile import build_profile
from liveml.runtimes import ModelDescription, Runtime, detect_format, get_runtime
from liveml.security.pickles import check_loadable
from liveml.settings import Settings
from liveml.signature import COLUMN_TYPES, ColumnSpec, Signature, column_type
from liveml.tabular import read_table

EXAMPLE_ROWS = 5
PREDICT_CHUNK = 100_000


@dataclass(frozen=True)
class PreparedVersion:
    """A checked model file and everything the registry will record about it."""

    runtime: type[Runtime]
    file: Path
    file_name: str
    description: ModelDescription
    signature: Signature
    profile_json: str | None
    input_example: list[dict[str, Any]] | None
    compiled: Compiled | None = None


def prepare(
    source: Path,
    *,
    workdir: Path,
    format: str | None = None,
    runtime_options: dict[str, Any] | None = None,
    reference: str | Path | None = None,
    example: str | Path | None = None,
    signature: Signature | None = None,
    compile: bool = True,
    pickle_policy: str | None = None,
    precompiled: Compiled | None = None,
) -> PreparedVersion:
    """Check ``source`` and compute what a push records. Under ``pickle_policy="strict"`` (None: the
    current settings' policy) a pickle-based file is refused from its format alone, before it is read."""
    source = Path(source)
    if not source.exists():
        raise NotFound(f"model file {str(source)!r} does not exist")
    runtime_cls = get_runtime(format) if format else detect_format(source)
    policy = pickle_policy or Settings().pickle_policy
    what = f"{source.name!r}"
    # before packaging and loading: sniffing reads bytes, loading is where pickles run code
    check_loadable(runtime_cls, policy, options=runtime_options, what=what)
    file = runtime_cls.package(source, workdir)
    if not file.is_file():
        raise Invalid(f"{str(source)!r} is a folder; the {runtime_cls.label} format takes a single file")
    check_loadable(runtime_cls, policy, path=file, options=runtime_options, what=what)
    runtime = runtime_cls(file, runtime_options)
    runtime.load()
    try:
        described = runtime.describe()
        ref_frame = read_table(reference, what="reference") if reference is not None else None
        example_frame = read_table(example, what="input example") if example is not None else None
        sig = infer_signature(described, reference=ref_frame, example=example_frame, override=signature)
        conformed_ref = _conform(sig, ref_frame, "reference") if ref_frame is not None else None
        conformed_example = (
            _conform(sig, example_frame, "input example") if example_frame is not None else None
        )
        data = conformed_ref if conformed_ref is not None else conformed_example
        outputs = _predict_all(runtime, data) if data is not None else None
        if outputs is not None:
            sig = sig.with_outputs(
                [ColumnSpec(name=str(c), type=column_type(outputs[c])) for c in outputs.columns]
            )
        profile = build_profile(conformed_ref, outputs).to_json() if conformed_ref is not None else None
        records = _records(conformed_example if conformed_example is not None else None)
        compiled: Compiled | None = precompiled  # compiled and checked at the original push (a bundle's)
        if compiled is None and compile:
            compiled = compile_to_onnx(runtime, sig, data, workdir)
    finally:
        runtime.unload()
    return PreparedVersion(
        runtime=runtime_cls,
        file=file,
        file_name=source.name,
        description=described,
        signature=sig,
        profile_json=profile,
        input_example=records,
        compiled=compiled,
    )


def infer_signature(
    described: ModelDescription,
    *,
    reference: pd.DataFrame | None,
    example: pd.DataFrame | None,
    override: Signature | None,
) -> Signature:
    """Input columns from, in order of trust: the user, the model itself, then the data given."""
    if override is not None:
        if described.input_names:
            missing = [n for n in described.input_names if n not in override.input_names]
            if missing:
                raise Invalid(f"the signature given lacks column(s) the model needs: {', '.join(missing)}")
        return override
    data, which = (reference, "reference") if reference is not None else (example, "input example")
    if described.input_names:
        types = dict(described.input_types or {})
        if data is not None:
            types.update({n: column_type(data[n]) for n in described.input_names if n in data.columns})
        return Signature(
            inputs=tuple(
                ColumnSpec(name=n, type=t if (t := types.get(n, "number")) in COLUMN_TYPES else "number")
                for n in described.input_names
            ),
            source="model",
        )
    if data is not None:
        if described.n_inputs is not None and len(data.columns) != described.n_inputs:
            raise Invalid(
                f"the model takes {described.n_inputs} unnamed input columns but the {which} file has "
                f"{len(data.columns)} ({', '.join(map(str, data.columns[:10]))}); drop the extra columns "
                "(such as the label) or give --signature"
            )
        return Signature.from_frame(data, source=which)
    if described.n_inputs is not None:
        return Signature.from_names([f"x{i}" for i in range(described.n_inputs)], source="model")
    raise Invalid(
        "cannot tell which columns the model takes; give --reference (training data), --example (a few "
        "rows) or --signature (a JSON file)"
    )


def _conform(sig: Signature, frame: pd.DataFrame, which: str) -> pd.DataFrame:
    try:
        return sig.conform(frame)
    except Invalid as exc:
        raise Invalid(f"the {which} file does not match the model: {exc}") from exc


def _predict_all(runtime: Runtime, frame: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for start in range(0, len(frame), PREDICT_CHUNK):
        chunk = frame.iloc[start : start + PREDICT_CHUNK]
        try:
            parts.append(runtime.predict(chunk).to_frame())
        except Invalid as exc:
            raise Invalid(f"the model could not predict on the reference/example data: {exc}") from exc
    return pd.concat(parts, ignore_index=True)


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    if frame is None:
        return None
    records: list[dict[str, Any]] = json.loads(
        frame.head(EXAMPLE_ROWS).to_json(orient="records", date_format="iso")
    )
    return records


def load_signature_file(path: str | Path) -> Signature:
    """A signature from a JSON file: {"inputs": [{"name": "age", "type": "integer"}, ...]}."""
    from pydantic import ValidationError

    file = Path(path)
    if not file.is_file():
        raise NotFound(f"signature file {str(file)!r} does not exist")
    try:
        raw = json.loads(file.read_text())
        if isinstance(raw, dict):
            raw.setdefault("source", "user")
        return Signature.model_validate(raw)
    except json.JSONDecodeError as exc:
        raise Invalid(f"signature file {str(file)!r} is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        where, problem, _ = first_problem(exc)
        raise Invalid(
            f"signature file {str(file)!r} is not a signature: {where}: {problem}; expected "
            '{"inputs": [{"name": "age", "type": "integer"}, ...]} with types ' + ", ".join(COLUMN_TYPES)
        ) from exc


__all__ = ["PreparedVersion", "infer_signature", "load_signature_file", "prepare"]
