"""Model names, aliases, tags and model references (``NAME``, ``NAME:VERSION``, ``NAME@ALIAS``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from liveml.errors import Invalid

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ALIAS = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_TAG_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")
DEFAULT_ALIAS = "production"
LATEST = "latest"


def validate_name(name: str) -> str:
    """A model name: 1-128 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit."""
    if not isinstance(name, str) or not name:
        raise Invalid("a model name is required (ASCII letters, digits, '.', '_' or '-'), e.g. 'churn'")
    if not name.isascii():
        raise Invalid(
            f"model name {name!r} has non-ASCII characters; use ASCII letters, digits, '.', '_' and '-' "
            "(look-alike letters from other scripts are refused on purpose)"
        )
    if ".." in name or not _NAME.fullmatch(name):
        raise Invalid(
            f"invalid model name {name!r}: use 1-128 ASCII letters, digits, '.', '_' or '-', starting with a "
            "letter or digit, without '..', '/', spaces, ':' or '@' (e.g. 'churn' or 'fraud-v2')"
        )
    return name


def validate_alias(alias: str) -> str:
    if not isinstance(alias, str) or not alias.isascii() or not _ALIAS.fullmatch(alias):
        raise Invalid(
            f"invalid alias {alias!r}: use 1-64 lower-case ASCII letters, digits, '_' or '-', starting with a "
            "letter (e.g. 'production', 'staging', 'champion')"
        )
    if alias == LATEST:
        raise Invalid("'latest' is reserved: NAME:latest always means the newest version; pick another alias")
    return alias


def validate_tag(key: str, value: str) -> tuple[str, str]:
    if not key.isascii() or not _TAG_KEY.fullmatch(key):
        raise Invalid(
            f"invalid tag key {key!r}: use ASCII letters, digits, '.', '_', '/' or '-' (e.g. team=risk)"
        )
    if len(value) > 1000:
        raise Invalid(
            f"tag {key!r} is longer than 1000 characters; keep tags short and put text in the description"
        )
    return key, value


@dataclass(frozen=True)
class ModelRef:
    """Which version of which model: by number, by alias, or neither (``production``, else the latest)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def parse_ref(text: str | ModelRef) -> ModelRef:
    """Parse ``NAME``, ``NAME:VERSION``, ``NAME:latest`` or ``NAME@ALIAS``."""
    if isinstance(text, ModelRef):
        return text
    if not isinstance(text, str) or not text.strip():
        raise Invalid(
            "a model reference is required: NAME, NAME:VERSION or NAME@ALIAS (e.g. churn@production)"
        )
    return _parse_text(text.strip())


@lru_cache(maxsize=1024)  # a server parses the same few references on every request; refs are frozen
def _parse_text(text: str) -> ModelRef:
    if "@" in text:
        name, _, alias = text.partition("@")
        if alias == LATEST:
            return ModelRef(validate_name(name), alias=LATEST)
        return ModelRef(validate_name(name), alias=validate_alias(alias))
    if ":" in text:
        name, _, version = text.partition(":")
        if version == LATEST:
            return ModelRef(validate_name(name), alias=LATEST)
        return ModelRef(validate_name(name), version=parse_version(version))
    return ModelRef(validate_name(text))


def parse_version(text: str | int) -> int:
    try:
        version = int(text)
    except (TypeError, ValueError):
        raise Invalid(f"invalid version {text!r}: versions are whole numbers from 1 (e.g. churn:3)") from None
    if version < 1:
        raise Invalid(f"invalid version {text!r}: versions are numbered from 1")
    return version


__all__ = [
    "DEFAULT_ALIAS",
    "LATEST",
    "ModelRef",
    "parse_ref",
    "parse_version",
    "validate_alias",
    "validate_name",
    "validate_tag",
]
