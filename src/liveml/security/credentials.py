"""The credentials file: the key the CLI and the Python client send, readable only by its owner.

It holds the key text on one line (so ``curl -H "Authorization: Bearer $(cat .liveml/credentials)"``
works). ``LIVEML_API_KEY`` (``Settings.api_key``) wins over it."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from liveml.errors import Invalid
from liveml.settings import Settings

MODE = 0o600


def write_credentials(path: Path, key: str) -> Path:
    """Write ``key`` to ``path`` with mode 0600, atomically: the file is created 0600 (never readable by
    others, not even for a moment) under a temporary name, then renamed over any older one."""
    path = path.expanduser().absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(key + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, MODE)  # whatever the umask did
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def read_credentials(path: Path) -> str | None:
    """The key in a credentials file, or None when there is no such file."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Invalid(f"cannot read the credentials file {path}: {exc.strerror or exc}") from exc
    key = text.strip()
    return key or None


def api_key(settings: Settings) -> str | None:
    """The key to send: ``LIVEML_API_KEY``, else the credentials file, else None."""
    if settings.api_key is not None and settings.api_key.get_secret_value().strip():
        return settings.api_key.get_secret_value().strip()
    return read_credentials(settings.resolved_credentials_file)


__all__ = ["MODE", "api_key", "read_credentials", "write_credentials"]
