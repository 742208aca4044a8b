"""scikit-learn estimators and pipelines saved with joblib or pickle (and anything with ``predict``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from liveml.errors import Invalid
from liveml.runtimes.base import ModelDescription, Prediction, Runtime, Task, plain

# pickle protocol 2+ starts with PROTO; joblib may compress with zlib, gzip, bz2, xz or lz4
_PICKLE_PROTOCOLS = {2, 3, 4, 5}
_COMPRESSED_MAGIC = (
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ",
    b"\x04\x22\x4d\x18",
    b"\x78\x01",
    b"\x78\x5e",  # zlib levels 2-5: joblib.dump(..., compress=3)
    b"\x78\x9c",
    b"\x78\xda",
)


class SklearnRuntime(Runtime):
    name = "sklearn"
    label = "scikit-learn (joblib/pickle)"
    extensions: ClassVar[tuple[str, ...]] = (".joblib", ".pkl", ".pickle")
    priority = 80
    unpickles = True  # joblib.load / pickle.load run whatever the file says

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        if len(head) >= 2 and head[0] == 0x80 and head[1] in _PICKLE_PROTOCOLS:
            return True
        return path.suffix.lower() in cls.extensions and head.startswith(_COMPRESSED_MAGIC)

    def load(self) -> None:
        import joblib

        try:
            obj = joblib.load(self.path)
        except (ModuleNotFoundError, AttributeError) as exc:
            raise Invalid(
                f"the pickle needs code that is not installed here ({exc}); install the package that defined "
                "the model, or save it in a portable format (ONNX, skops)"
            ) from exc
        except Exception as exc:  # a damaged pickle can fail in any of the unpickler's layers
            raise Invalid(
                f"the file could not be unpickled ({type(exc).__name__}: {exc}); it is corrupt or truncated"
            ) from exc
        self._model = self.check_model(obj)

    @staticmethod
    def check_model(obj: Any) -> Any:
        if not callable(getattr(obj, "predict", None)):
            raise Invalid(
                f"the file holds a {type(obj).__module__}.{type(obj).__qualname__}, not a model: it has no "
                "predict method; save the fitted estimator or pipeline itself"
            )
        return obj

    def describe(self) -> ModelDescription:
        import sklearn

        model = self._loaded()
        names = getattr(model, "feature_names_in_", None)
        n_inputs = getattr(model, "n_features_in_", None)
        classes = getattr(model, "classes_", None)
        task: Task = "other"
        if classes is not None and callable(getattr(model, "predict_proba", None)):
            task = "classification"
        elif getattr(model, "_estimator_type", None) == "regressor" or _is_regressor(model):
            task = "regression"
        elif classes is not None:
            task = "classification"
        return ModelDescription(
            format=self.name,
            task=task,
            framework=f"scikit-learn {sklearn.__version__}",
            input_names=tuple(str(n) for n in names) if names is not None else None,
            n_inputs=int(n_inputs) if n_inputs is not None else None,
            classes=tuple(plain(c) for c in classes) if classes is not None else None,
            details={"estimator": f"{type(model).__module__}.{type(model).__qualname__}"},
        )

    def _loaded(self) -> Any:
        if self._model is None:
            self.load()
        return self._model

    def _predict(self, frame: pd.DataFrame) -> Prediction:
        model = self._loaded()
        features: Any = frame if getattr(model, "feature_names_in_", None) is not None else frame.to_numpy()
        probabilities = None
        classes = getattr(model, "classes_", None)
        if classes is not None and callable(getattr(model, "predict_proba", None)):
            try:
                probabilities = np.asarray(model.predict_proba(features), dtype=np.float64)
            except AttributeError:  # e.g. SVC(probability=False) exposes the method but refuses
                probabilities = None
        if probabilities is not None and _predicts_by_argmax(model):
            # the class predict would give, without scoring every row a second time (a forest's
            # predict is its predict_proba's argmax)
            predictions = np.asarray(classes).take(np.argmax(probabilities, axis=1))
        else:
            predictions = np.asarray(model.predict(features))
        return Prediction(
            predictions=predictions,
            probabilities=probabilities,
            classes=tuple(plain(c) for c in classes)
            if probabilities is not None and classes is not None
            else None,
        )


def _predicts_by_argmax(model: Any) -> bool:
    """Estimators whose ``predict`` is, by definition, the class with the highest ``predict_proba`` (with
    the same tie-breaking): for them one ``predict_proba`` call gives both."""
    pipeline = sys.modules.get("sklearn.pipeline")  # not imported: the model cannot be a Pipeline
    final = model.steps[-1][1] if pipeline is not None and isinstance(model, pipeline.Pipeline) else model
    return type(final) in _argmax_types()


#: (package, class) of the argmax estimators, as scikit-learn exports them
_ARGMAX_CLASSES = (
    ("sklearn.ensemble", "RandomForestClassifier"),
    ("sklearn.ensemble", "ExtraTreesClassifier"),
    ("sklearn.ensemble", "GradientBoostingClassifier"),
    ("sklearn.ensemble", "HistGradientBoostingClassifier"),
    ("sklearn.ensemble", "BaggingClassifier"),
    ("sklearn.tree", "DecisionTreeClassifier"),
    ("sklearn.linear_model", "LogisticRegression"),
    ("sklearn.naive_bayes", "GaussianNB"),
)


def _argmax_types() -> tuple[type, ...]:
    """The argmax estimators whose package is imported, without importing any: a model of a package that
    is not imported is none of them (unpickling it would have imported it). Importing them all cost a
    one-off ~0.05-0.3 s (``sklearn.ensemble``, ``tree``, ``naive_bayes``) in every process that scored a
    logistic regression."""
    found = []
    for package, name in _ARGMAX_CLASSES:
        module = sys.modules.get(package)
        cls = getattr(module, name, None) if module is not None else None
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def _is_regressor(model: Any) -> bool:
    try:
        from sklearn.base import is_regressor

        return bool(is_regressor(model))
    except Exception:
        return False
