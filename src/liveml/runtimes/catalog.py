"""Finding runtimes: the ``liveml.runtimes`` entry-point group, and detecting a file's format."""

from __future__ import annotations

import zipfile
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

from liveml.errors import Invalid, NotFound
from liveml.runtimes.base import Runtime, read_head

ENTRY_POINT_GROUP = "liveml.runtimes"


@cache
def runtimes() -> dict[str, type[Runtime]]:
    """Every installed runtime by format name, built-in and third-party alike."""
    found: dict[str, type[Runtime]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Runtime)):
            raise TypeError(
                f"entry point {ep.name!r} in {ENTRY_POINT_GROUP} is not a liveml Runtime subclass"
            )
        found[cls.name] = cls
    return dict(sorted(found.items(), key=lambda item: (item[1].priority, item[0])))


def get_runtime(name: str) -> type[Runtime]:
    try:
        return runtimes()[name]
    except KeyError:
        raise NotFound(
            f"no runtime for format {name!r}; installed formats: {', '.join(runtimes())}"
        ) from None


def supported_formats() -> str:
    return "; ".join(
        f"{cls.label} ({', '.join(cls.extensions + cls.accepts)})" for cls in runtimes().values()
    )


def detect_format(path: Path) -> type[Runtime]:
    """The runtime whose format the file's content is in; ``Invalid`` listing formats if none."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"model file {str(path)!r} does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise Invalid(f"model file {str(path)!r} is empty; supported formats: {supported_formats()}")
    head = read_head(path)
    for cls in runtimes().values():
        if cls.sniff(path, head):
            return cls
    raise Invalid(
        f"{str(path)!r} is not a model file liveml can load; supported formats: {supported_formats()}"
    )


def zip_members(path: Path, head: bytes) -> list[str]:
    """Member names of a zip archive, or [] when the file is not one (shared by zip-based formats)."""
    if not head.startswith(b"PK\x03\x04"):
        return []
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


__all__ = [
    "ENTRY_POINT_GROUP",
    "detect_format",
    "get_runtime",
    "runtimes",
    "supported_formats",
    "zip_members",
]
