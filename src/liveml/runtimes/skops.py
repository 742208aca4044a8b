"""scikit-learn models saved with skops (no pickle: only trusted types are loaded)."""

from __future__ import annotations

from pathlib import Path

from liveml.errors import Invalid
from liveml.runtimes.catalog import zip_members
from liveml.runtimes.sklearn import SklearnRuntime


class SkopsRuntime(SklearnRuntime):
    name = "skops"
    label = "scikit-learn (skops)"
    extensions = (".skops",)
    extra = "skops"
    priority = 20

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
