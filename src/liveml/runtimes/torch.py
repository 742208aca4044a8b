"""PyTorch models: TorchScript archives (``torch.jit.save``) and exported programs (``torch.export.save``)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liveml.errors import Invalid
from liveml.runtimes.base import (
    ModelDescription,
    Prediction,
    Runtime,
    Task,
    as_probabilities,
    classify,
    numeric_matrix,
)
from liveml.runtimes.catalog import zip_members

_UNBOUNDED = 1 << 20  # rows per forward call when the batch dimension has no upper bound


class _TorchRuntime(Runtime):
    """What both torch formats share: a float32 [N, F] tensor in, a tensor out, read as values or scores."""

    extra = "torch"
    priority = 30
    # TorchScript and torch.export archives are read by torch's restricted loaders (tensors and TorchScript
    # types only), not by pickle's: loading them runs no code from the file
    unpickles = False

    def __init__(self, path: Path, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(path, options)
        self._n_inputs: int | None = None
        self._out_width: int | None = None  # None: one value per row (or not known)
        self._known = False  # whether the output shape is known: without it the task is "other"

    def _forward(self, matrix: np.ndarray) -> Any:
        """The model's raw output for the matrix."""
        raise NotImplementedError

    def _loaded(self) -> Any:
        if self._model is None:
            self.load()
        return self._model

    def _task(self) -> Task:
        if not self._known:
            return "other"
        if self._out_width is None or self._out_width == 1 or self.options.get("output") == "raw":
            return "regression"
        return "classification"

    def _classes(self, width: int) -> tuple[Any, ...]:
        return self.class_labels(width)

    def describe(self) -> ModelDescription:
        torch = self.require("torch")
        self._loaded()
        task = self._task()
        width = self._out_width or 1
        return ModelDescription(
            format=self.name,
            task=task,
            framework=f"torch {torch.__version__}",
            n_inputs=self._n_inputs,
            classes=self._classes(width) if task == "classification" else None,
            details={"outputs": str(width)} if self._known else {},
        )

    def _predict(self, frame: pd.DataFrame) -> Prediction:
        self._loaded()
        if self._n_inputs is not None and frame.shape[1] != self._n_inputs:
            raise Invalid(f"the {self.label} model takes {self._n_inputs} columns; got {frame.shape[1]}")
        matrix = numeric_matrix(frame, np.float32)
        missing = np.isnan(matrix).any(axis=0)
        if missing.any():  # a network has no notion of missing values: NaN in gives NaN out
            raise Invalid(
                f"column {frame.columns[int(np.argmax(missing))]!r} has missing values; this model needs numbers"
            )
        try:
            output = _to_numpy(self._forward(matrix))
        except Invalid:
            raise
        except Exception as exc:  # torch.jit.Error, shape errors, guard failures: the input does not fit
            raise Invalid(f"the {self.label} model rejected the input: {_torch_message(exc)}") from exc
        if output.ndim == 2 and output.shape[1] == 1:
            output = output.reshape(-1)
        if output.ndim == 1 or self.options.get("output") == "raw":
            return Prediction(predictions=output)
        if output.ndim != 2:
            raise Invalid(f"the {self.label} model returned shape {output.shape}; liveml reads [N] or [N, C]")
        return classify(as_probabilities(output), self._classes(output.shape[1]))


class TorchScriptRuntime(_TorchRuntime):
    name = "torchscript"
    label = "TorchScript"
    extensions = (".pt", ".pth")

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        # torch.save also writes <name>/data.pkl, but only torch.jit.save writes code/ and constants.pkl
        inner = {m.split("/", 1)[1] for m in zip_members(path, head) if "/" in m}
        return "data.pkl" in inner and "constants.pkl" in inner and any(m.startswith("code/") for m in inner)

    def load(self) -> None:
        torch = self.require("torch")
        try:
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; serving it is still fine
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(self.path), map_location="cpu")
        except Exception as exc:
            raise Invalid(f"the TorchScript file is corrupt or unloadable: {_torch_message(exc)}") from exc
        module.eval()
        self._model = module
        self._n_inputs = _int_option(self.options, "n_inputs") or _first_matrix_width(module)
        self._probe()

    def _probe(self) -> None:
        """Run two zero rows once, to learn the output width (and so the task) before any request."""
        self._known = False
        if self._n_inputs is None:
            return
        try:
            output = _to_numpy(self._forward(np.zeros((2, self._n_inputs), dtype=np.float32)))
        except Exception:  # the guessed width was wrong: describe says "other", predict still works
            self._n_inputs = _int_option(self.options, "n_inputs")
            return
        self._known = output.ndim in (1, 2)
        self._out_width = int(output.shape[1]) if output.ndim == 2 else None

    def _forward(self, matrix: np.ndarray) -> Any:
        torch = self.require("torch")
        with torch.inference_mode():
            return self._model(torch.from_numpy(np.array(matrix)))  # a writable copy, as torch wants


class TorchExportRuntime(_TorchRuntime):
    name = "torch_export"
    label = "torch.export"
    extensions = (".pt2",)

    @classmethod
    def unsafe_members(cls, path: Path) -> list[str]:
        """torch.export.load unpickles without restriction (torch documents it as unsafe for untrusted
        files): payloads marked ``use_pickle``, opaque and custom objects, and any ``.pt`` member that
        torch's restricted loader (``weights_only=True``) refuses, as torch then retries it unrestricted.
        An archive with none of those (what ``torch.export.save`` writes for plain tensors) is safe."""
        return _export_unsafe_members(cls.require("torch"), path)

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        inner = {m.split("/", 1)[1] for m in zip_members(path, head) if "/" in m}
        # torch >= 2.6 writes the PT2 archive (archive_format + models/); older releases a flat layout
        return ("archive_format" in inner and any(m.startswith("models/") for m in inner)) or (
            "serialized_exported_program.json" in inner
        )

    def load(self) -> None:
        torch = self.require("torch")
        try:
            # a file object: given a path, torch wants the name to end in .pt2, and ours have no suffix
            with self.path.open("rb") as fh:
                program = torch.export.load(fh)
            module = program.module()
        except Exception as exc:
            raise Invalid(f"the torch.export file is corrupt or unloadable: {_torch_message(exc)}") from exc
        inputs = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in _user_inputs(program)]
        if len(inputs) != 1:
            raise Invalid(f"liveml runs exported programs with one [N, F] tensor input, not {len(inputs)}")
        shape = list(inputs[0].meta["val"].shape)
        if len(shape) != 2:
            raise Invalid(f"liveml runs exported programs with one [N, F] tensor input, not shape {shape}")
        self._n_inputs = int(shape[1])
        self._batch = _batch_range(program, shape[0])
        outputs = [a for a in _output_values(program) if hasattr(a, "shape")]
        self._known = len(outputs) >= 1 and len(outputs[0].shape) in (1, 2)
        self._out_width = int(outputs[0].shape[1]) if self._known and len(outputs[0].shape) == 2 else None
        self._model = module

    def _forward(self, matrix: np.ndarray) -> Any:
        torch = self.require("torch")
        low, high = self._batch
        parts = []
        # the program only takes batch sizes in [low, high] (one size, unless exported with a dynamic
        # batch dimension): run chunks of at most high rows, each padded up to low rows by repeating its last
        for start in range(0, len(matrix), high):
            chunk = matrix[start : start + high]
            rows = len(chunk)
            if rows < low:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], low - rows, axis=0)])
            with torch.inference_mode():
                out = _first_tensor(self._model(torch.from_numpy(np.array(chunk))))
            parts.append(out[:rows])
        return torch.cat(parts)


_NATIVE_DIRS = ("data/aotinductor/", "data/executorch/", "data/mtia")


def _export_unsafe_members(torch: Any, path: Path) -> list[str]:
    import io
    import json
    import zipfile

    unsafe: list[str] = []
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                inner = name.split("/", 1)[1] if "/" in name else name
                if inner.startswith(_NATIVE_DIRS):
                    unsafe.append(name)  # compiled native code
                elif inner.startswith(("data/weights/", "data/constants/")) and inner.endswith(".json"):
                    config = json.loads(archive.read(name)).get("config", {})
                    for key, meta in config.items() if isinstance(config, dict) else ():
                        if not isinstance(meta, dict):
                            continue
                        file = str(meta.get("path_name", ""))
                        tensor = inner.startswith("data/weights/") or file.startswith("tensor_")
                        if meta.get("use_pickle") or not tensor:
                            unsafe.append(f"{name}:{key}")
                elif inner.endswith((".pt", ".pkl")):
                    try:
                        torch.load(io.BytesIO(archive.read(name)), weights_only=True)
                    except Exception:
                        unsafe.append(name)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise Invalid(f"the torch.export file is corrupt or unreadable ({exc})") from exc
    return unsafe


def _user_inputs(program: Any) -> set[str]:
    return {str(name) for name in program.graph_signature.user_inputs}


def _output_values(program: Any) -> list[Any]:
    node = next(n for n in program.graph.nodes if n.op == "output")
    specs = program.graph_signature.user_outputs
    return [a.meta.get("val") for a in node.args[0] if getattr(a, "name", None) in specs]


def _batch_range(program: Any, size: Any) -> tuple[int, int]:
    """The batch sizes the program accepts: an exact size, or a dynamic dimension's range."""
    if isinstance(size, int):
        return size, size
    limits = program.range_constraints.get(size.node.expr)
    if limits is None:
        return 1, _UNBOUNDED
    try:
        high = min(int(limits.upper), _UNBOUNDED)
    except Exception:  # torch's int_oo (no upper bound) refuses int()
        high = _UNBOUNDED
    return max(int(limits.lower), 1), high


def _first_matrix_width(module: Any) -> int | None:
    """A guess at the input width: the second dimension of the first 2-D parameter (a Linear's weight)."""
    for parameter in module.parameters():
        if parameter.dim() == 2:
            return int(parameter.shape[1])
    return None


def _first_tensor(output: Any) -> Any:
    if isinstance(output, tuple | list):
        return _first_tensor(output[0]) if output else output
    return output


def _to_numpy(output: Any) -> np.ndarray:
    tensor = _first_tensor(output)
    if not hasattr(tensor, "detach"):
        raise Invalid(f"the model returned a {type(output).__name__}; liveml reads tensors")
    return np.asarray(tensor.detach().cpu().numpy(), dtype=np.float64)


def _int_option(options: Mapping[str, Any], key: str) -> int | None:
    value = options.get(key)
    return int(value) if value is not None else None


def _torch_message(exc: BaseException) -> str:
    # TorchScript errors carry the interpreter's traceback; the last "Error:" line is the cause
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    causes = [line for line in lines if "Error:" in line.split(" ", 1)[0]]
    message = causes[-1] if causes else lines[0] if lines else type(exc).__name__
    return message.split(". ", 1)[0][:300]  # the first sentence; the rest is generic advice
