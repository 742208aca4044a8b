"""The columns liveml adds to every output row: prediction ids, and how the output is encoded."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from liveml.jobs.outputs import encoding
from liveml.jobs.scoring import prediction_ids


def test_prediction_ids_are_the_job_uid_then_the_row_in_16_hex_digits() -> None:
    uid = "0123456789abcdef"
    rows = np.array([0, 1, 255, 256, 0x0123456789ABCDEF, 2**63, 2**64 - 1], dtype=np.uint64)
    assert prediction_ids(uid, rows).to_pylist() == [f"{uid}{int(r):016x}" for r in rows]
    assert prediction_ids(uid, np.array([], dtype=np.int64)).to_pylist() == []


def test_only_text_columns_other_than_the_ids_get_a_dictionary() -> None:
    schema = pa.schema(
        [
            ("customer_id", pa.string()),
            ("score", pa.float64()),
            ("prediction", pa.string()),
            ("segment", pa.dictionary(pa.int8(), pa.string())),
            ("model_version", pa.int64()),
            ("prediction_id", pa.string()),
        ]
    )
    assert encoding(schema) == {"use_dictionary": ["customer_id", "prediction", "segment"]}


def test_a_scored_chunk_travels_as_the_arrow_table_the_output_stores() -> None:
    """What pool and Dask workers send back: the output as an Arrow table (one IPC stream when pickled),
    which the job's process writes as it is, and turns back into the frame ``score_chunk`` made."""
    import pickle

    import pandas as pd

    from liveml.jobs.scoring import ScoredChunk, output_table

    rows = np.arange(5, 9)
    frame = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "prediction": ["yes", "no", "no", "yes"]})
    frame["proba_yes"] = [0.9, 0.2, 0.1, 0.8]
    frame["model_version"] = np.full(4, 3, dtype=np.int64)
    frame["prediction_id"] = pd.arrays.ArrowExtensionArray(prediction_ids("0123456789abcdef", rows))
    errors = pd.DataFrame({"row": [9], "customer_id": ["e"], "error": ["bad"]})
    chunk = ScoredChunk(2, 5, frame, errors, np.array([True] * 4 + [False]), 0.5)
    sent = chunk.to_arrow()
    assert isinstance(sent.output, pa.Table) and sent.output.equals(output_table(frame))
    assert sent.output.schema.metadata is None and sent.to_arrow() is sent
    back = pickle.loads(pickle.dumps(sent))
    assert isinstance(back.output, pa.Table) and back.output.equals(sent.output)
    assert len(back.output) == 4 and back.index == 2 and back.first_row == 5
    pd.testing.assert_frame_equal(back.errors, errors)
    np.testing.assert_array_equal(back.scored, chunk.scored)
    out = back.output_frame()
    assert list(out.columns) == list(frame.columns)
    assert out["prediction_id"].dtype == frame["prediction_id"].dtype
    assert out["prediction_id"].tolist() == frame["prediction_id"].tolist()
    pd.testing.assert_frame_equal(
        out.drop(columns=["prediction_id"]), frame.drop(columns=["prediction_id"]), check_dtype=False
    )
    assert chunk.output_frame() is frame
