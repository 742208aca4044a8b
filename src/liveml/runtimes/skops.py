"""scikit-learn models saved with skops (no pickle: only trusted types are loaded)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from liveml.errors import Invalid
from liveml.runtimes.catalog import zip_members
from liveml.runtimes.sklearn import SklearnRuntime


def _sklearn_class(name: str) -> bool:
    """Whether ``name`` is a class defined in scikit-learn (importing scikit-learn's own modules only)."""
    module, _, attr = name.strip().rpartition(".")
    if not (module == "sklearn" or module.startswith("sklearn.")) or not attr:
        return False
    try:
        found = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return False
    return isinstance(found, type) and found.__module__.split(".")[0] == "sklearn"


class SkopsRuntime(SklearnRuntime):
    name = "skops"
    label = "scikit-learn (skops)"
    extensions = (".skops",)
    extra = "skops"
    priority = 20
    # skops reads only the types it trusts by default; trusted_types lets the pusher widen that
    unpickles = False

    @classmethod
    def unsafe_options(cls, options: Mapping[str, Any]) -> list[str]:
        """``trusted_types`` entries other than scikit-learn classes. skops' defaults leave out some of
        scikit-learn's own (``sklearn.tree._tree.Tree``, a forest's trees), so those may be trusted; a
        function or a class from anywhere else could run code as the file is loaded."""
        listed = options.get("trusted_types") or []
        names = listed.split(",") if isinstance(listed, str) else list(listed)
        return [f"trusted_types={name}" for name in map(str, names) if not _sklearn_class(name)]

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return "schema.json" in zip_members(path, head)

    def load(self) -> None:
        sio = self.require("skops.io")
        trusted = [str(t) for t in self.option_list("trusted_types") or []]
        try:
            untrusted = sio.get_untrusted_types(file=self.path)
        except Exception as exc:
            raise Invalid(
                f"the skops file could not be read ({exc}); it is corrupt or not a skops file"
            ) from exc
        refused = sorted(set(untrusted) - set(trusted))
        if refused:
            raise Invalid(
                f"the skops file holds types that are not trusted by default: {', '.join(refused)}; "
                "if you trust them, push again with --runtime-option trusted_types=" + ",".join(refused)
            )
        try:
            obj = sio.load(self.path, trusted=untrusted or None)
        except Exception as exc:
            raise Invalid(f"the skops file could not be loaded ({type(exc).__name__}: {exc})") from exc
        self._model = self.check_model(obj)
