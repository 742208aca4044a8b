"""Log segments are dictionary-encoded only where that helps: labels and text, not floats or ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from liveml.monitoring.segments import segment_options


def _encodings(path: Path) -> dict[str, tuple[str, ...]]:
    group = pq.ParquetFile(path).metadata.row_group(0)
    return {group.column(i).path_in_schema: group.column(i).encodings for i in range(group.num_columns)}


def test_dictionary_only_for_labels_versions_and_text(tmp_path: Path) -> None:
    n = 500
    table = pa.table(
        {
            "prediction_id": pa.array([f"{i:032x}" for i in range(n)]),
            "version": pa.array(np.ones(n, np.int32)),
            "at": pa.array(np.arange(n, dtype=np.int64)).cast(pa.timestamp("us", tz="UTC")),
            "in.x": np.random.default_rng(0).normal(size=n),
            "in.plan": pa.array(["pro", "free"] * (n // 2)),
            "out.prediction": pa.array(["yes", "no"] * (n // 2)),
        }
    )
    pq.write_table(table, tmp_path / "s.parquet", **segment_options(table))
    encodings = _encodings(tmp_path / "s.parquet")
    dictionary = {name for name, used in encodings.items() if any("DICTIONARY" in e for e in used)}
    assert dictionary == {"version", "in.plan", "out.prediction"}
    assert pq.read_table(tmp_path / "s.parquet").equals(table)  # the same data back
