"""Custom Python model classes: a ``.py`` file or a package folder, stored as one deterministic zip."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
import tempfile
import traceback
import uuid
import weakref
import zipfile
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liveml.errors import Invalid, ModelFailed
from liveml.runtimes.base import ModelDescription, Prediction, Runtime, Task, plain, read_head
from liveml.runtimes.catalog import zip_members

MARKER = "liveml-custom.json"
_SKIP_DIRS = {"__pycache__", ".git", ".ipynb_checkpoints"}
_MODEL_CLASS = re.compile(rb"^class\s+\w+.*:", re.MULTILINE)
_PREDICT = re.compile(rb"^\s+def\s+predict\s*\(", re.MULTILINE)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the zip epoch: packing the same source twice gives the same bytes
_TASKS = ("classification", "regression", "other")


class CustomRuntime(Runtime):
    name = "custom"
    label = "custom Python class"
    extensions = (".py",)
    accepts = ("a folder",)
    # the zip marker is specific, and must win over skops, which claims any zip with a schema.json
    priority = 15
    unpickles = True  # loading imports the pushed Python code (which may unpickle, too)
    _workdir: Path | None = None
    _module_name: str | None = None
    _cleanup: weakref.finalize[Any, Any] | None = None

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        if path.is_dir():
            return any(p.is_file() for p in path.glob("*.py"))
        if MARKER in zip_members(path, head):
            return True
        if not head or b"\x00" in head:  # binary, so not Python source
            return False
        # a .py file is read further than the head: its model class may sit below long imports
        return _defines_model(_read(path, 1 << 18) if path.suffix == ".py" else head)

    @classmethod
    def package(cls, source: Path, workdir: Path) -> Path:
        source = Path(source)
        if source.is_file() and MARKER in zip_members(source, read_head(source)):
            return source
        stem = re.sub(r"\W", "_", source.stem) or "model"
        files, entry = _folder_files(source) if source.is_dir() else ({f"{stem}.py": source}, f"{stem}.py")
        members = {MARKER: json.dumps({"entry": entry}).encode()}
        members.update({name: path.read_bytes() for name, path in files.items()})
        target = Path(workdir) / f"{stem}.zip"
        with zipfile.ZipFile(target, "w") as archive:
            for name in sorted(members):
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
                archive.writestr(info, members[name])
        return target

    def load(self) -> None:
        self.unload()
        workdir = Path(tempfile.mkdtemp(prefix="liveml-custom-"))
        # removed on unload, or when this runtime is garbage collected without one
        self._workdir, self._cleanup = workdir, weakref.finalize(self, shutil.rmtree, workdir, True)
        try:
            self._model = self._load_into(workdir)
        except BaseException:
            self.unload()
            raise

    def _load_into(self, workdir: Path) -> Any:
        # a .py file or folder not packed yet (pushed by path, or in tests) is packed on the fly
        is_zip = self.path.is_file() and read_head(self.path).startswith(b"PK\x03\x04")
        root = workdir / "model"
        marker = _unpack(self.path if is_zip else self.package(self.path, workdir), root)
        entry = str(marker.get("entry", ""))
        if not entry.endswith(".py") or not (root / entry).is_file():
            raise Invalid(f"the custom model's {MARKER} names entry {entry!r}, which is not a .py file in it")
        self._module_name = f"liveml_custom_{uuid.uuid4().hex}"
        module = _import(self._module_name, root, entry)
        model_class = self._pick_class(module, self.options.get("class") or marker.get("class"))
        try:
            obj = model_class()
            obj.load((root / entry).parent)  # the folder pushed, or the one holding the .py file
        except Exception as exc:
            raise Invalid(
                f"loading the custom model {model_class.__name__} failed: {_where(exc, root)}"
            ) from exc
        return obj

    @staticmethod
    def _pick_class(module: Any, wanted: Any) -> type:
        # classes defined in the module or its package, not ones it imports (numpy's, sklearn's, ...)
        classes = {
            n: c
            for n, c in vars(module).items()
            if isinstance(c, type) and c.__module__.split(".")[0] == module.__name__
        }
        defined = ", ".join(classes) or "none"
        if wanted:
            if not isinstance(chosen := getattr(module, str(wanted), None), type):
                raise Invalid(f"the custom model has no class {wanted!r}; classes defined: {defined}")
            return chosen
        models = [n for n, c in classes.items() if hasattr(c, "load") and hasattr(c, "predict")]
        if len(models) == 1:
            return classes[models[0]]
        if not models:
            raise Invalid(f"no class in the custom model has load() and predict(); classes: {defined}")
        raise Invalid(
            f"the custom model defines several model classes ({', '.join(models)}); "
            "choose one with the runtime option class=<name>"
        )

    def unload(self) -> None:
        self._model = None
        if self._module_name:
            _forget(self._module_name)
        if self._cleanup is not None:
            self._cleanup()
        self._workdir = self._module_name = self._cleanup = None

    def _obj(self) -> Any:
        if self._model is None:
            self.load()
        return self._model

    def _info(self) -> dict[str, Any]:
        """What the object says about itself: attributes, overridden by its optional describe() dict."""
        obj = self._obj()
        keys = ("task", "input_names", "n_inputs", "classes")
        info: dict[str, Any] = {k: getattr(obj, k) for k in keys if getattr(obj, k, None) is not None}
        described = obj.describe() if callable(getattr(obj, "describe", None)) else {}
        if not isinstance(described, dict):
            raise Invalid(f"the custom model's describe() returned a {type(described).__name__}, not a dict")
        return info | {k: v for k, v in described.items() if v is not None}

    def describe(self) -> ModelDescription:
        obj, info = self._obj(), self._info()
        task: Task = info.get("task", "classification" if hasattr(obj, "predict_proba") else "other")
        if task not in _TASKS:
            raise Invalid(f"the custom model's task is {task!r}; use one of {', '.join(_TASKS)}")
        names, classes = info.get("input_names"), info.get("classes")
        n_inputs = info.get("n_inputs", len(names) if names else None)
        return ModelDescription(
            format=self.name,
            task=task,
            framework=f"python {sys.version.split()[0]}",
            input_names=tuple(str(n) for n in names) if names is not None else None,
            n_inputs=int(n_inputs) if n_inputs is not None else None,
            classes=tuple(plain(c) for c in classes) if classes is not None else None,
            details={"class": f"{type(obj).__module__.split('.', 1)[-1]}.{type(obj).__qualname__}"},
        )

    def _predict(self, frame: pd.DataFrame) -> Prediction:
        obj = self._obj()
        root = self._workdir / "model" if self._workdir else Path(".")
        try:
            predictions = _array(obj.predict(frame))
            raw = obj.predict_proba(frame) if callable(getattr(obj, "predict_proba", None)) else None
        except (ValueError, TypeError, KeyError, IndexError) as exc:  # the model refusing this input
            raise Invalid(f"the custom model refused the input: {_where(exc, root)}") from exc
        except Exception as exc:  # anything else is a fault in the model's code, not in the request
            raise ModelFailed(f"the custom model failed: {_where(exc, root)}") from exc
        if raw is None:
            return Prediction(predictions=predictions)
        classes = self._info().get("classes")
        if classes is None and isinstance(raw, pd.DataFrame):
            classes = list(raw.columns)
        probabilities = np.asarray(raw, dtype=np.float64)
        width = probabilities.shape[1] if probabilities.ndim == 2 else 0
        labels = tuple(plain(c) for c in classes) if classes is not None else tuple(range(width))
        if len(labels) != width or width == 0:
            raise Invalid(
                f"predict_proba must return an (n, classes) table for {len(labels)} classes; "
                f"it returned shape {probabilities.shape}"
            )
        return Prediction(predictions=predictions, probabilities=probabilities, classes=labels)


def _array(result: Any) -> np.ndarray:
    """A prediction as a 1-D array (one output) or a 2-D array (several)."""
    array = np.asarray(result.to_numpy() if isinstance(result, pd.DataFrame) else result)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.reshape(-1)
    if array.ndim not in (1, 2):
        raise Invalid(f"the custom model's predict must return one value per row; got shape {array.shape}")
    return array


def _folder_files(source: Path) -> tuple[dict[str, Path], str]:
    """Files to pack (archive name -> path) and the entry module, for a package or a plain folder."""
    prefix = f"{source.name}/" if (source / "__init__.py").is_file() else ""
    files: dict[str, Path] = {}
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_file() and path.suffix != ".pyc" and not _SKIP_DIRS.intersection(relative.parts[:-1]):
            files[prefix + relative.as_posix()] = path
    if prefix:  # a package keeps its name, so its relative imports work
        return files, f"{prefix}__init__.py"
    modules = [p.name for p in sorted(source.glob("*.py")) if _defines_model(p.read_bytes())]
    if len(modules) != 1:
        raise Invalid(
            f"cannot tell which module of {str(source)!r} holds the model (candidates: "
            f"{', '.join(modules) or 'none'}); keep one model module there, or make the folder a package"
        )
    return files, modules[0]


def _unpack(archive: Path, root: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(archive) as zf:
            # a member may not escape the folder it is unpacked into
            unsafe = [m for m in zf.namelist() if m.startswith("/") or ".." in Path(m).parts]
            if unsafe:
                raise Invalid(f"the custom model archive has an unsafe member name {unsafe[0]!r}")
            zf.extractall(root)
            marker = json.loads(zf.read(MARKER))
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError) as exc:
        raise Invalid(f"the custom model archive is corrupt or not a liveml custom model ({exc})") from exc
    if not isinstance(marker, dict):
        raise Invalid(f"{MARKER} in the custom model archive must hold a JSON object")
    return marker


def _import(module_name: str, root: Path, entry: str) -> Any:
    path = root / entry
    is_package = path.name == "__init__.py"
    locations = [str(path.parent)] if is_package else None
    spec = importlib.util.spec_from_file_location(module_name, path, submodule_search_locations=locations)
    if spec is None or spec.loader is None:
        raise Invalid(f"cannot import {entry} from the custom model")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # before executing, so a package's relative imports find it
    # the folder is importable only while the module runs, so that sibling modules resolve
    search = str(root if is_package else path.parent)
    sys.path.insert(0, search)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # a user module may even call sys.exit()
        _forget(module_name)
        raise Invalid(f"importing the custom model {entry} failed: {_where(exc, root)}") from exc
    finally:
        with suppress(ValueError):
            sys.path.remove(search)
    return module


def _forget(module_name: str) -> None:
    for key in [k for k in sys.modules if k.split(".")[0] == module_name]:
        del sys.modules[key]


def _where(exc: BaseException, root: Path) -> str:
    """The exception, and the innermost line of the user's own code that raised it."""
    if isinstance(exc, SyntaxError) and exc.filename:
        message, spots = f"{type(exc).__name__}: {exc.msg}", [(exc.filename, exc.lineno)]
    else:
        message = f"{type(exc).__name__}: {exc}"
        spots = [(f.filename, f.lineno) for f in traceback.extract_tb(exc.__traceback__)]
    ours = [(name, line) for name, line in spots if name.startswith(str(root))]
    if not ours:
        return message
    return f"{message} ({Path(ours[-1][0]).relative_to(root).as_posix()}:{ours[-1][1]})"


def _defines_model(text: bytes) -> bool:
    return bool(_MODEL_CLASS.search(text) and _PREDICT.search(text))


def _read(path: Path, limit: int) -> bytes:
    with path.open("rb") as fh:
        return fh.read(limit)
