"""ONNX models (``.onnx``) run with onnxruntime on CPU, including skl2onnx classifiers and regressors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
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

# ModelProto field number -> protobuf wire type (0 varint, 2 length-delimited); 8/14/20/25 repeat
_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}
_REPEATED = {8, 14, 20, 25}
_INTEGERS = [f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)]
# ONNX element types whose names numpy shares (int64, bool, float16, ...), and the three it does not
_DTYPES: dict[str, Any] = {f"tensor({t})": np.dtype(t).type for t in ("float16", "bool", *_INTEGERS)}
_DTYPES |= {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(string)": object}
_LABEL_TYPES = {"tensor(int64)", "tensor(int32)", "tensor(string)"}
_CLASS_ATTRS = ("classlabels_int64s", "classlabels_ints", "classlabels_strings")
_Node = tuple[str, str, dict[str, Any]]  # a graph node's op type, domain and attributes


@dataclass(frozen=True)
class _Layout:
    """How the graph's outputs map to a prediction, worked out once at load."""

    task: Task
    values: str  # the output holding labels (classification) or values
    probabilities: str | None = None
    zipmap: bool = False
    scores: bool = False  # values are raw [N, C] class scores: labels and probabilities come from them


class OnnxRuntime(Runtime):
    name = "onnx"
    label = "ONNX"
    extensions = (".onnx",)
    extra = "onnx"
    unpickles = False
    priority = 10

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return _looks_like_model_proto(head)

    def load(self) -> None:
        ort = self.require("onnxruntime")
        # Reading the graph needs the `onnx` package (~30 MB resident). Compiled forms know their classes
        # already and say `inspect_graph: false`, so a server of compiled models never imports it.
        inspect_graph = self.options.get("inspect_graph", True) not in (False, "false", "0")
        onnx = self.require("onnx") if inspect_graph else None
        try:
            proto = onnx.load(str(self.path), load_external_data=False) if onnx is not None else None
            session_options = ort.SessionOptions()
            session_options.log_severity_level = 3  # warnings about unused initializers are noise here
            # One thread and no spin-waiting by default: a server runs many small calls side by side, and
            # onnxruntime's spinning pool would otherwise burn the cores the HTTP work needs. Models that
            # gain from intra-op parallelism opt in with the `threads` option.
            session_options.intra_op_num_threads = int(self.options.get("threads", 1))
            session_options.inter_op_num_threads = 1
            session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(
                str(self.path), session_options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # DecodeError, InvalidProtobuf, Fail, InvalidGraph, ...
            raise Invalid(f"the ONNX model could not be loaded: {_clean(exc)}") from exc
        self._inputs = list(session.get_inputs())
        self._output_names = [o.name for o in session.get_outputs()]  # get_outputs() builds objects per call
        # attributes only of ONNX-ML nodes (classifiers, ZipMap): a network's constants stay untouched
        nodes = [
            (n.op_type, n.domain, {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute})  # type: ignore[union-attr]
            if n.domain == "ai.onnx.ml"
            else (n.op_type, n.domain, {})
            for n in (proto.graph.node if proto is not None and onnx is not None else ())
        ]
        opsets = {o.domain or "ai.onnx": o.version for o in proto.opset_import} if proto is not None else {}
        self._opset = ", ".join(f"{domain} {version}" for domain, version in sorted(opsets.items()))
        self._layout = _layout(list(session.get_outputs()), nodes, self.options)
        self._model_classes = _classes(nodes, list(session.get_outputs()), self._layout)
        self._classes = self._model_classes
        renamed = self.options.get("classes")
        if self._layout.task == "classification" and renamed is not None:
            renamed = self.option_list("classes") or []
            if self._model_classes is not None and len(renamed) != len(self._model_classes):
                n = len(self._model_classes)
                raise Invalid(f"the runtime option classes lists {len(renamed)} labels for {n} classes")
            self._classes = tuple(renamed)
        self._model = session

    def _session(self) -> Any:
        if self._model is None:
            self.load()
        return self._model

    @property
    def _matrix_input(self) -> bool:
        """One 2-D input: the whole frame goes in as an [N, F] tensor."""
        return len(self._inputs) == 1 and len(self._inputs[0].shape) == 2

    def describe(self) -> ModelDescription:
        ort = self.require("onnxruntime")
        self._session()
        if self._matrix_input:
            width = self._inputs[0].shape[1]
            n_inputs = width if isinstance(width, int) else None
            # an [N, 1] tensor is one column, so its name names the column; otherwise it names the matrix
            names = (self._inputs[0].name,) if n_inputs == 1 else None
            types = None
        else:
            names = tuple(i.name for i in self._inputs)
            n_inputs = len(names)
            types = {i.name: _column_type(i.type) for i in self._inputs}
        return ModelDescription(
            format=self.name,
            task=self._layout.task,
            framework=f"onnxruntime {ort.__version__}",
            input_names=names,
            n_inputs=n_inputs,
            input_types=types,
            classes=self._classes,
            details={
                "inputs": ", ".join(f"{i.name}: {i.type} {i.shape}" for i in self._inputs),
                "opset": self._opset,
            },
        )

    def _feeds(self, frame: pd.DataFrame) -> dict[str, Any]:
        if self._matrix_input:
            spec = self._inputs[0]
            width = spec.shape[1]
            if isinstance(width, int) and frame.shape[1] != width:
                raise Invalid(f"the ONNX model takes {width} input columns; got {frame.shape[1]}")
            return {spec.name: _column(frame, spec.type)}
        if len(self._inputs) != frame.shape[1]:
            count = len(self._inputs)
            raise Invalid(f"the ONNX model takes {count} inputs, one column each; got {frame.shape[1]}")
        names = [i.name for i in self._inputs]
        # one input per column: by name when the frame's columns are the model's inputs, else by position
        by_name = set(names) == {str(c) for c in frame.columns}
        feeds = {}
        for position, spec in enumerate(self._inputs):
            column = frame[[spec.name]] if by_name else frame.iloc[:, [position]]
            array = _column(column, spec.type)
            feeds[spec.name] = array.reshape(-1) if len(spec.shape) == 1 else array
        return feeds

    def _predict(self, frame: pd.DataFrame) -> Prediction:
        session = self._session()
        feeds = self._feeds(frame)
        try:
            names = self._output_names
            outputs = dict(zip(names, session.run(None, feeds), strict=True))
        except Exception as exc:  # onnxruntime's InvalidArgument / Fail derive from Exception only
            raise Invalid(f"the ONNX model rejected the input: {_clean(exc)}") from exc
        layout, classes = self._layout, self._classes
        values = outputs[layout.values]
        if layout.scores:
            return classify(as_probabilities(np.asarray(values, dtype=np.float64)), classes)
        if layout.task != "classification":
            array = np.asarray(values)
            single = array.ndim == 2 and array.shape[1] == 1
            return Prediction(predictions=array.reshape(-1) if single else array)
        labels = np.asarray(values).reshape(-1)
        if labels.dtype.kind in "SU":
            labels = labels.astype(object)
        if layout.probabilities is None:
            return Prediction(predictions=labels)
        raw = outputs[layout.probabilities]
        if layout.zipmap:  # a list of {class: probability} dicts, keyed by the model's own labels
            keys = self._model_classes if self._model_classes is not None else tuple(raw[0].keys())
            probabilities = np.array([[row[k] for k in keys] for row in raw], dtype=np.float64)
            classes = keys
        else:
            probabilities = np.asarray(raw, dtype=np.float64)
        if self.options.get("classes") is not None:
            if self._model_classes is None:
                # the graph's labels are the real ones (e.g. a compiled scikit-learn model); the option
                # only names the probability columns
                return Prediction(predictions=labels, probabilities=probabilities, classes=self._classes)
            # the user renames the classes: labels follow the probabilities' columns
            return classify(probabilities, self._classes)
        if classes is None:
            classes = tuple(range(probabilities.shape[1]))
        return Prediction(predictions=labels, probabilities=probabilities, classes=tuple(classes))


def _layout(outputs: Sequence[Any], nodes: Sequence[_Node], options: dict[str, Any]) -> _Layout:
    ml_ops = [op for op, domain, _ in nodes if domain == "ai.onnx.ml"]
    classifier = any(op.endswith("Classifier") for op in ml_ops)
    regressor = any(op.endswith("Regressor") for op in ml_ops)
    zipmaps = [o for o in outputs if o.type.startswith("seq(map(")]
    labels = [o for o in outputs if o.type in _LABEL_TYPES and len(o.shape) in (1, 2)]
    floats = [o for o in outputs if o.type in ("tensor(float)", "tensor(double)") and len(o.shape) in (1, 2)]
    # a label output beside a float matrix is a classifier too: skl2onnx writes double-precision linear
    # models as plain MatMul/Softmax/ArgMax graphs, with no ai.onnx.ml classifier node
    two_outputs = len(outputs) == 2 and len(floats) == 1 and len(floats[0].shape) == 2
    if (classifier or zipmaps or two_outputs) and labels:
        # skl2onnx classifiers: a label output plus probabilities as a ZipMap or an [N, C] tensor
        if zipmaps:
            return _Layout("classification", labels[0].name, zipmaps[0].name, zipmap=True)
        return _Layout("classification", labels[0].name, floats[0].name if floats else None)
    if len(floats) == 1 and len(outputs) == 1 and not regressor and options.get("output") != "raw":
        width = floats[0].shape[-1] if len(floats[0].shape) == 2 else 1
        if isinstance(width, int) and width > 1:  # a network's [N, C] class scores, as for torch models
            return _Layout("classification", floats[0].name, scores=True)
    task: Task = "regression" if floats and (regressor or not ml_ops) else "other"
    return _Layout(task, (floats or list(outputs))[0].name)


def _classes(nodes: Sequence[_Node], outputs: Sequence[Any], layout: _Layout) -> tuple[Any, ...] | None:
    if layout.task != "classification":
        return None
    # a ZipMap's labels are the ones the probabilities are keyed by; the classifier's otherwise
    ordered = sorted(nodes, key=lambda n: n[0] != "ZipMap")
    for _op, _domain, attrs in ordered:
        for attr in _CLASS_ATTRS:
            if attrs.get(attr):
                return tuple(v.decode() if isinstance(v, bytes) else int(v) for v in attrs[attr])
    if layout.scores:
        width = next(o.shape[-1] for o in outputs if o.name == layout.values)
        return tuple(range(width))
    return None


def _column(frame: pd.DataFrame, onnx_type: str) -> np.ndarray:
    if onnx_type not in _DTYPES:
        raise Invalid(f"the ONNX model takes {onnx_type} input, which liveml cannot build from a table")
    dtype = _DTYPES[onnx_type]
    if dtype is object:
        return np.asarray(frame.astype(str).to_numpy(dtype=object))
    return numeric_matrix(frame, dtype)


def _column_type(onnx_type: str) -> str:
    """The signature column type for an input's ONNX element type."""
    kind = np.dtype(_DTYPES.get(onnx_type, np.float32)).kind
    return {"O": "string", "b": "boolean", "i": "integer", "u": "integer"}.get(kind, "number")


def _looks_like_model_proto(head: bytes) -> bool:
    """Walk the top-level protobuf fields in ``head``: ir_version, then ModelProto fields up to the graph."""
    if not head.startswith(b"\x08"):
        return False
    pos, seen = 0, set()
    while pos < len(head):
        key = _varint(head, pos)
        if key is None:
            break
        tag, pos = key
        field, wire = tag >> 3, tag & 7
        if _MODEL_FIELDS.get(field) != wire or (field in seen and field not in _REPEATED):
            return False
        seen.add(field)
        value = _varint(head, pos)
        if value is None:
            break
        number, pos = value
        if field == 1 and not 1 <= number <= 100:
            return False
        if wire == 2:
            pos += number  # may run past the head: the graph usually does
    return 7 in seen


def _varint(buf: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(buf) and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def _clean(exc: BaseException) -> str:
    """onnxruntime's message without its code, the file path and the C++ source location."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"^Load model from .* failed:", "", text)
    return re.sub(r"\S+\.(cc|h):\d+ (\S+\(.*?\) )?", "", text).strip()
