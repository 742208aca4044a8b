"""Compiling a model to a faster runtime at push, and proving it answers the same.

scikit-learn models whose inputs are all numeric are converted to ONNX (skl2onnx, float64 so trees
split exactly as in scikit-learn) and checked on the reference data: labels identical and probabilities
within ``TOLERANCE``. Only a form that passes is served; the original stays for explanations and as the
fallback. Anything else is recorded with the reason, never an error: compiling is an optimisation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from liveml.runtimes import Runtime
from liveml.signature import Signature

TOLERANCE = 1e-5
MAX_CHECK_ROWS = 10_000
COMPILABLE = ("sklearn", "skops")


class CompileReport(BaseModel):
    """What happened when liveml tried to compile a version; kept with the version."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ok", "skipped", "failed"]
    reason: str
    format: str | None = None
    rows_checked: int = 0
    labels_equal: bool | None = None
    max_abs_diff: float | None = None
    seconds: float = 0.0
    #: what the compiled form's runtime is loaded with (the original's class labels)
    runtime_options: dict[str, Any] = {}


@dataclass(frozen=True)
class Compiled:
    path: Path | None
    report: CompileReport


def compile_to_onnx(
    runtime: Runtime, signature: Signature, sample: pd.DataFrame | None, workdir: Path
) -> Compiled:
    """An ONNX file equivalent to the loaded model ``runtime`` on ``sample``, or the reason there is none."""
    started = time.perf_counter()

    def skipped(reason: str, status: Literal["skipped", "failed"] = "skipped") -> Compiled:
        return Compiled(
            None, CompileReport(status=status, reason=reason, seconds=time.perf_counter() - started)
        )

    if runtime.name not in COMPILABLE:
        return skipped(f"{runtime.name} models are served as they are")
    if not signature.all_numeric:
        return skipped(
            "only models whose inputs are all numbers are compiled (string columns need the original pipeline)"
        )
    if sample is None or sample.empty:
        return skipped(
            "no reference data or input example to check a compiled form against; push with --reference"
        )
    try:
        import onnxruntime  # noqa: F401
        from skl2onnx import to_onnx
    except ImportError:
        return skipped("compiling needs skl2onnx and onnxruntime: pip install 'liveml[onnx]'")
    model: Any = runtime._model
    matrix = sample.head(MAX_CHECK_ROWS).to_numpy(dtype=np.float64)
    outcome: Compiled | None = None
    # float64 first (exact for linear models); then float32, which is what scikit-learn's trees compare in
    for dtype in (np.float64, np.float32):
        try:
            onx = to_onnx(
                model,
                matrix[:1].astype(dtype),
                options={id(model): {"zipmap": False}} if hasattr(model, "classes_") else None,
                target_opset={"": 17, "ai.onnx.ml": 3},
            )
        except Exception as exc:  # skl2onnx raises many kinds for models it cannot convert
            outcome = skipped(
                f"skl2onnx cannot convert {type(model).__name__}: {str(exc).splitlines()[0][:200]}"
            )
            continue
        path = workdir / f"compiled-{np.dtype(dtype).name}.onnx"
        path.write_bytes(onx.SerializeToString())
        outcome = _verify(runtime, path, sample.head(MAX_CHECK_ROWS), started)
        if outcome.path is not None:
            return outcome
    assert outcome is not None
    return outcome


def _verify(runtime: Runtime, path: Path, sample: pd.DataFrame, started: float) -> Compiled:
    from liveml.runtimes import get_runtime

    classes = runtime.describe().classes
    options: dict[str, Any] = {"inspect_graph": False}
    if classes is not None:
        options["classes"] = list(classes)
    compiled = get_runtime("onnx")(path, options)
    try:
        compiled.load()
        expected = runtime.predict(sample)
        got = compiled.predict(sample)
    except Exception as exc:
        report = CompileReport(
            status="failed",
            reason=f"the compiled form did not run: {exc}",
            seconds=time.perf_counter() - started,
        )
        return Compiled(None, report)
    finally:
        compiled.unload()
    labels_equal: bool | None
    if expected.probabilities is not None:
        if got.probabilities is None or got.probabilities.shape != expected.probabilities.shape:
            return Compiled(
                None,
                CompileReport(status="failed", reason="the compiled form gives no matching probabilities"),
            )
        labels_equal = bool(np.array_equal(np.asarray(expected.predictions), np.asarray(got.predictions)))
        diff = float(np.max(np.abs(expected.probabilities - got.probabilities)))
        ok = labels_equal and diff <= TOLERANCE
    else:  # values: within the tolerance, relative to their size
        want = np.asarray(expected.predictions, dtype=np.float64)
        have = np.asarray(got.predictions, dtype=np.float64).reshape(want.shape)
        labels_equal = None
        diff = float(np.max(np.abs(want - have)))
        ok = diff <= TOLERANCE * max(1.0, float(np.max(np.abs(want))))
    reason = (
        f"checked on {len(sample)} reference rows: same predictions, max difference {diff:.1e}"
        if ok
        else f"the compiled form disagrees on the reference rows (max difference {diff:.1e}"
        + (f", labels equal: {labels_equal}" if labels_equal is not None else "")
        + "); the original is served"
    )
    report = CompileReport(
        status="ok" if ok else "failed",
        reason=reason,
        format="onnx",
        rows_checked=len(sample),
        labels_equal=labels_equal,
        max_abs_diff=diff,
        seconds=time.perf_counter() - started,
        runtime_options=options,
    )
    return Compiled(path if ok else None, report)


__all__ = ["COMPILABLE", "TOLERANCE", "CompileReport", "Compiled", "compile_to_onnx"]
