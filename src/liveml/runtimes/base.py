"""The runtime contract: one small class per model format (load / predict / unload / describe).

A runtime's constructor only stores its arguments; ``load`` reads the artifact; ``predict`` takes a
DataFrame already conformed to the version's signature (columns named and ordered) and returns a
``Prediction``. Framework errors on bad input come back as ``Invalid``, never as a crash.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from liveml.errors import Invalid, LivemlError, Unavailable
from liveml.signature import frame_block

Task = Literal["classification", "regression", "other"]
HEAD_BYTES = 4096


@dataclass(frozen=True)
class Prediction:
    """A model's answer for n rows: values or labels, and class probabilities where it has them."""

    predictions: np.ndarray
    probabilities: np.ndarray | None = None
    classes: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if self.probabilities is not None and self.probabilities.shape[0] != self.predictions.shape[0]:
            raise ValueError("probabilities and predictions disagree on the number of rows")

    def __len__(self) -> int:
        return int(self.predictions.shape[0])

    def to_frame(self, *, probabilities: bool = True) -> pd.DataFrame:
        """Columns ``prediction`` (or ``prediction_0..k`` for several outputs) and ``proba_<class>``."""
        preds = self.predictions
        if preds.ndim == 1:
            frame = pd.DataFrame({"prediction": preds})
        else:
            frame = pd.DataFrame({f"prediction_{i}": preds[:, i] for i in range(preds.shape[1])})
        if probabilities and self.probabilities is not None:
            classes = self.classes or tuple(range(self.probabilities.shape[1]))
            for i, cls in enumerate(classes):
                frame[f"proba_{cls}"] = self.probabilities[:, i]
        return frame


@dataclass(frozen=True)
class ModelDescription:
    """What a loaded model says about itself."""

    format: str
    task: Task
    framework: str
    input_names: tuple[str, ...] | None = None
    n_inputs: int | None = None
    input_types: Mapping[str, str] | None = None
    classes: tuple[Any, ...] | None = None
    details: Mapping[str, str] = field(default_factory=dict)


class Runtime(ABC):
    """Base class of every model format. Subclasses set the class variables and the abstract methods."""

    name: ClassVar[str]
    label: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]] = ()
    #: other things ``push`` takes for this format, for help texts (e.g. "a folder")
    accepts: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None
    #: lower sniffs first; formats that are containers of others (zip, pickle) go after specific ones
    priority: ClassVar[int] = 50
    #: whether loading this format can run code from the artifact (unpickling, importing Python); such
    #: formats are refused under ``pickle_policy=strict``. True unless a runtime declares otherwise, so a
    #: runtime that says nothing is treated as unsafe (see liveml.security.pickles)
    unpickles: ClassVar[bool] = True

    def __init__(self, path: Path, options: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.options: dict[str, Any] = dict(options or {})
        self._model: Any = None

    # -- detection and packaging -------------------------------------------------------------
    @classmethod
    @abstractmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        """True when the file (or folder) at ``path`` is in this format; ``head`` is its first bytes."""

    @classmethod
    def unsafe_members(cls, path: Path) -> list[str]:
        """Parts of a file in a format declared safe (``unpickles = False``) that its framework would
        still hand to a full unpickler or load as native code; ``pickle_policy=strict`` refuses files
        with any. Must not load the file with the framework itself."""
        return []

    @classmethod
    def unsafe_options(cls, options: Mapping[str, Any]) -> list[str]:
        """Runtime option values that would widen what a safe format's loader accepts beyond what is
        safe (refused under ``pickle_policy=strict``)."""
        return []

    @classmethod
    def package(cls, source: Path, workdir: Path) -> Path:
        """The single file to store for ``source``; formats that accept folders pack them here."""
        return source

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._model is not None

    @abstractmethod
    def load(self) -> None:
        """Read the artifact into memory; raise ``Invalid`` when it is not a usable model."""

    def unload(self) -> None:
        self._model = None

    @abstractmethod
    def describe(self) -> ModelDescription:
        """What the loaded model says about its inputs, task and classes."""

    def predict(self, frame: pd.DataFrame) -> Prediction:
        """Predict for every row of ``frame``; bad input raises ``Invalid``, never a crash."""
        if not self.loaded:
            self.load()
        if len(frame) == 0:
            raise Invalid("no rows to predict; send at least one row")
        try:
            result = self._predict(frame)
        except LivemlError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise Invalid(f"the {self.label} model rejected the input: {message}") from exc
        if len(result) != len(frame):
            raise Invalid(f"the model returned {len(result)} predictions for {len(frame)} rows")
        return result

    @abstractmethod
    def _predict(self, frame: pd.DataFrame) -> Prediction:
        """Format-specific prediction; ``predict`` wraps it with the checks every runtime shares."""

    # -- helpers shared by runtimes ---------------------------------------------------------
    def option_list(self, key: str) -> list[Any] | None:
        """A list-valued option; ``--runtime-option classes=no,yes`` arrives as one string."""
        value = self.options.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return [v.strip() for v in value.split(",")]
        if isinstance(value, list | tuple):
            return list(value)
        return [value]

    def class_labels(self, n: int) -> tuple[Any, ...]:
        """The ``classes`` option when given (checked against ``n`` scores), else 0..n-1."""
        classes = self.option_list("classes")
        if classes is None:
            return tuple(range(n))
        if len(classes) != n:
            raise Invalid(f"the runtime option classes lists {len(classes)} labels for {n} class scores")
        return tuple(classes)

    @classmethod
    def require(cls, module: str) -> ModuleType:
        """Import an optional framework, or say which extra installs it."""
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            extra = f"pip install 'liveml[{cls.extra}]'" if cls.extra else f"pip install {module}"
            raise Unavailable(
                f"the {cls.label} runtime needs the {module!r} package; install it with {extra}"
            ) from exc


def numeric_matrix(frame: pd.DataFrame, dtype: Any = np.float64) -> np.ndarray:
    """The frame as a 2-D numeric array, or ``Invalid`` naming the first non-numeric column."""
    block = frame_block(frame)  # one numeric block (a request's rows): a fresh array, no pandas calls
    if block is not None and block.dtype.kind in "fiub" and len(block):
        return np.array(block.T, dtype=dtype, order="C")
    # the common case first and without looking at dtypes (frame.dtypes alone costs ~50 µs)
    try:
        matrix = frame.to_numpy(dtype=dtype, na_value=np.nan)
    except (ValueError, TypeError):
        matrix = None
    if matrix is not None and not any(dt.kind not in "fiub" for dt in _object_free(frame)):
        return matrix
    for name, dt in zip(frame.columns, frame.dtypes, strict=True):
        if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt)):
            raise Invalid(f"column {name!r} must be numeric for this model; got {dt} values")
    return frame.to_numpy(dtype=dtype, na_value=np.nan)


def _object_free(frame: pd.DataFrame) -> list[np.dtype]:
    """The frame's dtypes when any might hold text (strings that look like numbers must not pass)."""
    if frame.shape[1] and isinstance(frame.columns, pd.Index) and _single_numeric_block(frame):
        return []
    return [dt if isinstance(dt, np.dtype) else np.dtype(object) for dt in frame.dtypes]


def _single_numeric_block(frame: pd.DataFrame) -> bool:
    blocks = getattr(getattr(frame, "_mgr", None), "blocks", None)  # pandas internals: a fast path only
    return blocks is not None and len(blocks) == 1 and getattr(blocks[0].dtype, "kind", "O") in "fiub"


def classify(scores: np.ndarray, classes: Sequence[Any] | None = None) -> Prediction:
    """Labels and probabilities from an (n, k) probability matrix, or an (n,) positive-class column."""
    probs = np.asarray(scores, dtype=np.float64)
    if probs.ndim == 1 or (probs.ndim == 2 and probs.shape[1] == 1):
        positive = probs.reshape(-1)
        probs = np.column_stack([1.0 - positive, positive])
    labels = tuple(classes) if classes is not None else tuple(range(probs.shape[1]))
    if len(labels) != probs.shape[1]:
        raise Invalid(
            f"the model gives {probs.shape[1]} class scores but {len(labels)} class labels are known"
        )
    predictions = np.asarray(labels, dtype=object)[np.argmax(probs, axis=1)]
    if all(isinstance(c, int | np.integer) for c in labels):
        predictions = predictions.astype(np.int64)
    return Prediction(predictions=predictions, probabilities=probs, classes=labels)


def as_probabilities(scores: np.ndarray) -> np.ndarray:
    """Rows that already are distributions stay; anything else (logits) goes through a softmax."""
    if np.all(scores >= 0) and np.allclose(scores.sum(axis=1), 1.0, atol=1e-4):
        return scores
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


def plain(value: Any) -> Any:
    """numpy scalars as Python ones, so classes and values serialize as JSON."""
    return value.item() if isinstance(value, np.generic) else value


def read_head(path: Path) -> bytes:
    if path.is_dir():
        return b""
    with path.open("rb") as fh:
        return fh.read(HEAD_BYTES)


__all__ = [
    "HEAD_BYTES",
    "ModelDescription",
    "Prediction",
    "Runtime",
    "Task",
    "classify",
    "numeric_matrix",
    "read_head",
]
