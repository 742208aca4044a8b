"""`liveml ...` with candidate fixes monkeypatched in (src/ untouched), to check what they would buy.

usage: .venv/bin/python bench/batch/probes/patched_run.py [--fix prebuffer,readahead,proba] batch run MODEL ...
  prebuffer: read Parquet with ParquetFragmentScanOptions(pre_buffer=False) (sources.py _parquet_dataset)
  readahead: to_batches(batch_readahead=1, fragment_readahead=1) (sources.py _pieces)
  proba:     sklearn runtime calls predict_proba only (labels = classes_[argmax]) instead of predict
             *and* predict_proba (runtimes/sklearn.py _predict)"""

import sys

fixes = {"prebuffer", "readahead", "proba"}
if sys.argv[1] == "--fix":
    fixes = set(sys.argv[2].split(",")) - {""}
    del sys.argv[1:3]

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402

import liveml.jobs.sources as sources  # noqa: E402

if "prebuffer" in fixes:

    def _parquet_dataset(self):
        fmt = ds.ParquetFileFormat(
            default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False)
        )
        return ds.dataset(
            self.files,
            filesystem=self.fs,
            format=fmt,
            partitioning="hive" if self.base is not None else None,
            partition_base_dir=self.base,
        )

    sources.Source._parquet_dataset = _parquet_dataset

if "readahead" in fixes:
    _orig_pieces = sources.Source._pieces

    def _pieces(self):
        if self.format != "parquet":
            yield from _orig_pieces(self)
            return
        for batch in self.dataset.to_batches(
            batch_size=sources.READ_PIECE_ROWS, batch_readahead=1, fragment_readahead=1
        ):
            yield pa.Table.from_batches([batch])

    sources.Source._pieces = _pieces

if "proba" in fixes:
    import liveml.runtimes.sklearn as sk
    from liveml.runtimes.base import Prediction, plain

    _orig_predict = sk.SklearnRuntime._predict if hasattr(sk, "SklearnRuntime") else None

    def _predict(self, frame):
        model = self._loaded()
        classes = getattr(model, "classes_", None)
        if (
            classes is None
            or not callable(getattr(model, "predict_proba", None))
            or getattr(model, "_estimator_type", "") != "classifier"
        ):
            return _orig_predict(self, frame)
        features = frame if getattr(model, "feature_names_in_", None) is not None else frame.to_numpy()
        probabilities = np.asarray(model.predict_proba(features), dtype=np.float64)
        predictions = np.asarray(classes).take(probabilities.argmax(axis=1))
        return Prediction(
            predictions=predictions, probabilities=probabilities, classes=tuple(plain(c) for c in classes)
        )

    if _orig_predict is not None:
        sk.SklearnRuntime._predict = _predict

from liveml.cli.main import main  # noqa: E402

sys.argv = ["liveml", *sys.argv[1:]]
main()
