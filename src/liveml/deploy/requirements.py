"""Pinned requirements for an image: liveml's own dependencies and those of the extras a model's format
needs, each at the version installed here (the versions the model was pushed and tested with), with the
whole dependency closure listed so the image installs with ``pip install --no-deps`` and no resolver."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from liveml.errors import Invalid

# the extras a runtime needs at serving time, by registry format name
FORMAT_EXTRAS: dict[str, tuple[str, ...]] = {
    "sklearn": (),
    "custom": (),
    "skops": ("skops",),
    "onnx": ("onnx",),
    "torchscript": ("torch",),
    "torch_export": ("torch",),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
}
SERVER_EXTRAS = ("postgres", "s3")
# installed from their own wheels, never from this environment's pins
NOT_PINNED = frozenset({"liveml", "pip", "setuptools", "wheel"})


def extras_for(formats: Iterable[str], *, compiled: bool = False, server: bool = False) -> list[str]:
    """The liveml extras an image serving these formats needs."""
    extras: list[str] = []
    for name in formats:
        if name not in FORMAT_EXTRAS:
            known = ", ".join(sorted(FORMAT_EXTRAS))
            raise Invalid(f"unknown model format {name!r}; formats: {known}")
        extras.extend(FORMAT_EXTRAS[name])
    if compiled:
        extras.append("onnx")  # the compiled ONNX form of a scikit-learn model
    if server:
        extras.extend(SERVER_EXTRAS)
    return list(dict.fromkeys(extras))


def pinned(extras: Iterable[str], *, root: str = "liveml") -> list[str]:
    """``name==version`` for every distribution ``root[extras]`` needs here, sorted by name."""
    environment: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    found: dict[str, str] = {}
    queue: list[tuple[str, frozenset[str]]] = [(root, frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        name, wanted = queue.pop()
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise Invalid(
                f"{name!r} is needed in the image but not installed here, so its version cannot be "
                f"pinned; install it (e.g. pip install 'liveml[{','.join(sorted(wanted)) or 'all'}]')"
            ) from exc
        key = canonicalize_name(dist.metadata["Name"])
        if key not in NOT_PINNED:
            found[key] = f"{dist.metadata['Name']}=={dist.version}"
        for line in dist.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            applies = marker is None or any(
                marker.evaluate({**environment, "extra": extra}) for extra in (wanted or {""})
            )
            if applies:
                queue.append((requirement.name, frozenset(requirement.extras)))
    return [found[key] for key in sorted(found)]


__all__ = ["FORMAT_EXTRAS", "extras_for", "pinned"]
