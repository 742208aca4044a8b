"""Custom Python classes: packing, choosing the class, and errors in the user's code."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from liveml.errors import Invalid, ModelFailed
from liveml.runtimes import detect_format
from liveml.runtimes.custom import MARKER, CustomRuntime

DOUBLER = """
class Doubler:
    def load(self, path):
        self.factor = 2

    def predict(self, frame):
        return frame.iloc[:, 0] * self.factor
"""
FRAME = pd.DataFrame({"x": [1.0, 2.0, 3.0]})


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def packed(source: Path, tmp_path: Path) -> Path:
    out = tmp_path / "packed"
    out.mkdir(exist_ok=True)
    return CustomRuntime.package(source, out)


def test_packing_is_deterministic_and_skips_bytecode(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    write(folder / "model.py", DOUBLER)
    write(folder / "data" / "table.csv", "a,b\n1,2\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\x00")
    (folder / "stale.pyc").write_bytes(b"\x00")
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    a, b = CustomRuntime.package(folder, first), CustomRuntime.package(folder, second)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    with zipfile.ZipFile(a) as archive:
        assert archive.namelist() == ["data/table.csv", MARKER, "model.py"]
        assert json.loads(archive.read(MARKER)) == {"entry": "model.py"}
    assert CustomRuntime.package(a, second) == a  # an archive already packed stays as it is


def test_a_single_file_is_detected_packed_and_run(tmp_path: Path) -> None:
    source = write(tmp_path / "doubler.py", DOUBLER)
    assert detect_format(source) is CustomRuntime
    archive = packed(source, tmp_path)
    assert detect_format(archive) is CustomRuntime
    assert list(CustomRuntime(archive).predict(FRAME).predictions) == [2.0, 4.0, 6.0]


def test_a_source_file_or_folder_loads_without_packing_first(tmp_path: Path) -> None:
    source = write(tmp_path / "pkg" / "doubler.py", DOUBLER)
    assert list(CustomRuntime(source).predict(FRAME).predictions) == [2.0, 4.0, 6.0]
    assert list(CustomRuntime(source.parent).predict(FRAME).predictions) == [2.0, 4.0, 6.0]


def test_a_dataframe_with_several_columns_gives_several_outputs(tmp_path: Path) -> None:
    source = write(
        tmp_path / "two.py",
        """
        class Two:
            task = "regression"
            def load(self, path): pass
            def predict(self, frame): return frame.assign(y=frame["x"] + 1)
    """,
    )
    prediction = CustomRuntime(packed(source, tmp_path)).predict(FRAME)
    assert prediction.predictions.shape == (3, 2)
    assert list(prediction.to_frame().columns) == ["prediction_0", "prediction_1"]


def test_several_model_classes_need_the_class_option(tmp_path: Path) -> None:
    tripler = DOUBLER.replace("Doubler", "Tripler").replace("= 2", "= 3")
    source = write(tmp_path / "both.py", DOUBLER + tripler)
    archive = packed(source, tmp_path)
    with pytest.raises(Invalid, match=r"several model classes \(Doubler, Tripler\).*class="):
        CustomRuntime(archive).load()
    assert list(CustomRuntime(archive, {"class": "Tripler"}).predict(FRAME).predictions) == [3.0, 6.0, 9.0]
    with pytest.raises(Invalid, match="no class 'Quadrupler'; classes defined: Doubler, Tripler"):
        CustomRuntime(archive, {"class": "Quadrupler"}).load()


def test_no_model_class_lists_the_classes_found(tmp_path: Path) -> None:
    source = write(
        tmp_path / "helper.py",
        """
        class Helper:
            def predict(self, frame):
                return frame
    """,
    )
    with pytest.raises(
        Invalid, match=r"no class in the custom model has load\(\) and predict\(\); classes: Helper"
    ):
        CustomRuntime(packed(source, tmp_path)).load()


def test_an_import_error_names_the_file_and_line(tmp_path: Path) -> None:
    source = write(tmp_path / "broken.py", "import numpy\n\nraise ImportError('needs foo')\n" + DOUBLER)
    with pytest.raises(Invalid, match=r"ImportError: needs foo \(broken.py:3\)"):
        CustomRuntime(packed(source, tmp_path)).load()


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    source = write(tmp_path / "typo.py", DOUBLER + "\ndef oops(:\n")
    with pytest.raises(Invalid, match=r"SyntaxError: invalid syntax \(typo.py:9\)"):
        CustomRuntime(packed(source, tmp_path)).load()


def test_errors_in_load_are_invalid_and_faults_in_predict_are_model_failures(tmp_path: Path) -> None:
    source = write(
        tmp_path / "src" / "fragile.py",
        """
        class Fragile:
            def load(self, path):
                if not (path / "weights.bin").exists():
                    raise FileNotFoundError("weights.bin is missing")

            def predict(self, frame):
                return 1 / 0
    """,
    )
    with pytest.raises(Invalid, match=r"FileNotFoundError: weights.bin is missing \(fragile.py:5\)"):
        CustomRuntime(packed(source.parent, tmp_path)).load()
    (source.parent / "weights.bin").write_bytes(b"w")
    runtime = CustomRuntime(packed(source.parent, tmp_path))
    runtime.load()
    # a ZeroDivisionError is a bug in the model, not bad input: a model failure (HTTP 500), not a 400
    with pytest.raises(ModelFailed, match=r"ZeroDivisionError: division by zero \(fragile.py:8\)"):
        runtime.predict(FRAME)


def test_unload_removes_the_unpacked_copy_and_the_module(tmp_path: Path) -> None:
    runtime = CustomRuntime(packed(write(tmp_path / "doubler.py", DOUBLER), tmp_path))
    runtime.load()
    workdir, module = runtime._workdir, runtime._module_name
    assert workdir is not None and workdir.is_dir() and module in sys.modules
    runtime.unload()
    assert not workdir.exists() and module not in sys.modules


def test_an_archive_member_may_not_escape(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(MARKER, json.dumps({"entry": "model.py"}))
        zf.writestr("../outside.py", DOUBLER)
    with pytest.raises(Invalid, match="unsafe member"):
        CustomRuntime(archive).load()
    assert not (tmp_path / "outside.py").exists()
