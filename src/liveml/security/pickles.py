"""The safe-loading policy: which model artifacts may be loaded, decided before any byte is unpickled.

Pickle-based artifacts (pickle, joblib, and the frameworks that unpickle) run code when they are loaded:
a crafted file can do anything the process can. ``pickle_policy`` (``LIVEML_PICKLE_POLICY``) says what
liveml does about it:

- ``trusted`` (default): load them; who pushed each version is recorded in its lineage;
- ``strict``: refuse them, at push (before the file is inspected) and at every load (serving, batch
  jobs, ``liveml predict``); ONNX, skops (with its trusted-types check), XGBoost/LightGBM native files
  and TorchScript / torch.export programs still load.

A runtime says whether loading its format runs code from the artifact with the class variable
``Runtime.unpickles`` (True unless it declares otherwise: a third-party runtime that says nothing is
refused under ``strict``), and which of its runtime options widen what it loads with
``Runtime.unsafe_options`` (skops' ``trusted_types`` beyond scikit-learn classes), and which parts of
a file in a safe format its framework would still unpickle with ``Runtime.unsafe_members``
(torch.export archives). ``check_loadable`` is the one place that decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from liveml.errors import Invalid
from liveml.runtimes.base import Runtime

PicklePolicy = Literal["trusted", "strict"]
POLICIES: tuple[str, ...] = ("trusted", "strict")

REFUSED = (
    "pickle-based artifacts are refused by pickle_policy=strict: convert the model to ONNX or skops "
    "(liveml push accepts .onnx and .skops), or set LIVEML_PICKLE_POLICY=trusted if you trust who pushed it"
)
CUSTOM_REFUSED = (
    "custom Python models run their own code when loaded, so pickle_policy=strict refuses them: convert the "
    "model to ONNX or skops (liveml push accepts .onnx and .skops), or set LIVEML_PICKLE_POLICY=trusted if "
    "you trust who pushed it"
)


class PickleRefused(Invalid):
    """An artifact the safe-loading policy does not allow to be loaded."""

    kind = "pickle_refused"


def check_loadable(
    runtime: type[Runtime],
    policy: str,
    *,
    path: Path | None = None,
    options: Mapping[str, Any] | None = None,
    what: str = "the model",
) -> None:
    """Raise ``PickleRefused`` when ``policy`` forbids loading the file at ``path`` (when given) in
    ``runtime``'s format with ``options``.

    Called before the artifact is read by its framework: nothing of it has been unpickled yet."""
    if policy not in POLICIES:
        raise Invalid(f"pickle_policy is {policy!r}; use one of {', '.join(POLICIES)}")
    if policy == "trusted":
        return
    if runtime.unpickles:
        reason = CUSTOM_REFUSED if runtime.name == "custom" else REFUSED
        raise PickleRefused(f"{what} is a {runtime.label} artifact; {reason}")
    unsafe = runtime.unsafe_members(path) if path is not None and path.is_file() else []
    if unsafe:
        listed = ", ".join(unsafe[:5]) + (f" and {len(unsafe) - 5} more" if len(unsafe) > 5 else "")
        raise PickleRefused(
            f"{what} is a {runtime.label} file whose loader would unpickle parts of it ({listed}); {REFUSED}"
        )
    widened = runtime.unsafe_options(options or {})
    if widened:
        raise PickleRefused(
            f"{what} is loaded with runtime option(s) {', '.join(widened)}, which widen what the "
            f"{runtime.label} loader accepts beyond what is safe; pickle_policy=strict refuses that (skops may "
            "trust more scikit-learn classes, nothing else). Push the model without them, or set "
            "LIVEML_PICKLE_POLICY=trusted if you trust who pushed it"
        )


__all__ = ["CUSTOM_REFUSED", "POLICIES", "REFUSED", "PicklePolicy", "PickleRefused", "check_loadable"]
