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
    "onnx": (),  # serving an ONNX file needs onnxruntime only (FORMAT_PACKAGES), not the converters
    "torchscript": ("torch",),
    "torch_export": ("torch",),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
}
# packages a format needs beyond liveml's extras
FORMAT_PACKAGES: dict[str, tuple[str, ...]] = {"onnx": ("onnxruntime",)}
#: a compiled form (scikit-learn → ONNX, checked at push) is served by onnxruntime
COMPILED_PACKAGES = ("onnxruntime",)
SERVER_EXTRAS = ("postgres", "s3")
# installed from their own wheels, never from this environment's pins
NOT_PINNED = frozenset({"liveml", "pip", "setuptools", "wheel"})


def extras_for(formats: Iterable[str], *, server: bool = False) -> list[str]:
    """The liveml extras an image serving these formats needs."""
    extras: list[str] = []
    for name in formats:
        if name not in FORMAT_EXTRAS:
            known = ", ".join(sorted(FORMAT_EXTRAS))
            raise Invalid(f"unknown model format {name!r}; formats: {known}")
        extras.extend(FORMAT_EXTRAS[name])
    if server:
        extras.extend(SERVER_EXTRAS)
    return list(dict.fromkeys(extras))


def packages_for(formats: Iterable[str], *, compiled: bool = False) -> list[str]:
    """The packages (beyond liveml's extras) an image serving these formats needs."""
    packages = [p for name in formats for p in FORMAT_PACKAGES.get(name, ())]
    if compiled:
        packages.extend(COMPILED_PACKAGES)
    return list(dict.fromkeys(packages))


def pinned(extras: Iterable[str], *, packages: Iterable[str] = (), root: str = "liveml") -> list[str]:
    """``name==version`` for every distribution ``root[extras]`` and ``packages`` need here, by name."""
    environment: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    found: dict[str, str] = {}
    queue: list[tuple[str, frozenset[str]]] = [(root, frozenset(extras))]
    queue += [(name, frozenset()) for name in packages]
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


__all__ = ["FORMAT_EXTRAS", "extras_for", "packages_for", "pinned"]
