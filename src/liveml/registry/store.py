"""Content-addressed artifact storage on any fsspec filesystem, verified by sha256 on every load."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

from liveml.errors import Corrupted, NotFound, Unavailable

CHUNK = 1 << 20  # stream in 1 MiB pieces: a 2 GB model never sits in memory


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 hex digest and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with Path(path).open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class ArtifactStore:
    """Blobs named by their sha256 under ``root`` (a folder or any fsspec URL)."""

    def __init__(self, root: str, *, cache_dir: Path, storage_options: dict[str, Any] | None = None) -> None:
        import fsspec.core

        self.root = root
        self.cache_dir = cache_dir
        try:
            self.fs, self.base = fsspec.core.url_to_fs(root, **(storage_options or {}))
        except ImportError as exc:
            raise Unavailable(
                f"artifact root {root!r} needs an extra package ({exc}); for s3:// run pip install 'liveml[s3]'"
            ) from exc
        except ValueError as exc:
            raise Unavailable(f"artifact root {root!r} is not a usable fsspec URL ({exc})") from exc
        protocol = self.fs.protocol
        self.is_local = "file" in (protocol if isinstance(protocol, tuple | list) else (protocol,))

    def key(self, sha256: str) -> str:
        return f"{self.base.rstrip('/')}/sha256/{sha256[:2]}/{sha256}"

    def exists(self, sha256: str) -> bool:
        try:
            return bool(self.fs.exists(self.key(sha256)))
        except Exception as exc:
            raise self._unavailable(exc) from exc

    def put(self, path: Path, sha256: str) -> bool:
        """Store ``path`` under its hash; returns False when that content was already stored."""
        key = self.key(sha256)
        try:
            if self.fs.exists(key):
                return False
            if self.is_local:
                target = Path(key)
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{sha256}.{uuid.uuid4().hex}.tmp")
                try:
                    self._copy(path, tmp)
                    os.replace(tmp, target)  # atomic: readers see the whole file or none
                finally:
                    tmp.unlink(missing_ok=True)
            else:
                self.fs.put_file(str(path), key)  # one object PUT is atomic on object stores
        except OSError as exc:
            raise self._unavailable(exc) from exc
        except Exception as exc:
            raise self._unavailable(exc) from exc
        return True

    @staticmethod
    def _copy(source: Path, target: Path) -> None:
        with Path(source).open("rb") as src, target.open("wb") as dst:
            while chunk := src.read(CHUNK):
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())

    def fetch(self, sha256: str, *, label: str) -> Path:
        """A local path holding the artifact, verified against its sha256 (``label`` names it in errors)."""
        key = self.key(sha256)
        if self.is_local:
            local = Path(key)
            if not local.exists():
                raise NotFound(
                    f"the artifact of {label} is missing from {self.root} (sha256 {sha256[:12]}…); push the model again"
                )
        else:
            local = self.cache_dir / "sha256" / sha256[:2] / sha256
            if not local.exists():
                local.parent.mkdir(parents=True, exist_ok=True)
                tmp = local.with_name(f".{sha256}.{uuid.uuid4().hex}.tmp")
                try:
                    self.fs.get_file(key, str(tmp))
                    os.replace(tmp, local)
                except FileNotFoundError as exc:
                    raise NotFound(
                        f"the artifact of {label} is missing from {self.root}; push the model again"
                    ) from exc
                except Exception as exc:
                    raise self._unavailable(exc) from exc
                finally:
                    tmp.unlink(missing_ok=True)
        actual, _ = hash_file(local)
        if actual != sha256:
            if not self.is_local:
                local.unlink(missing_ok=True)  # a bad cached copy is fetched again next time
            raise Corrupted(
                f"the artifact of {label} was changed or damaged: sha256 is {actual[:12]}…, expected "
                f"{sha256[:12]}…; it was refused. Restore the file or push the model again"
            )
        return local

    def delete(self, sha256: str) -> None:
        key = self.key(sha256)
        try:
            if self.fs.exists(key):
                self.fs.rm_file(key)
        except Exception as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> Unavailable:
        return Unavailable(
            f"cannot use the artifact store {self.root} ({type(exc).__name__}: {exc}); check LIVEML_ARTIFACT_ROOT and its credentials"
        )


__all__ = ["ArtifactStore", "hash_file"]
