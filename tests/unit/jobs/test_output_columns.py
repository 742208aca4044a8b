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
