"""The registry from Python: push, resolve references, move aliases, roll back, load and predict.

Run after `make run` (it reuses demo/churn.joblib and demo/train.parquet).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import liveml

demo = Path("demo")
with liveml.Registry.init() as registry:
    candidate = registry.push(
        "churn",
        demo / "churn.joblib",
        aliases=["challenger"],
        reference=demo / "train.parquet",
        description="the demo model again, as a challenger",
        metrics={"auc": 0.88},
        tags={"team": "risk"},
    )
    print("pushed", candidate.ref, "signature:", candidate.signature.input_names)

    print("churn            ->", registry.get("churn").ref)  # alias production, else the latest
    print("churn:latest     ->", registry.get("churn:latest").ref)
    print("churn@challenger ->", registry.get("churn@challenger").ref)

    registry.set_alias("churn", "production", candidate.version)
    registry.rollback("churn", "production")  # production goes back to what it held before
    for event in registry.alias_history("churn", "production"):
        print(
            f"{event.at:%H:%M:%S} {event.action:8} {event.from_version} -> {event.to_version} by {event.actor}"
        )

    profile = registry.reference_profile("churn@challenger")
    assert profile is not None
    for row in profile.summary()[:3]:
        print(f"{row.column:16} {row.kind:12} {row.text}")

    model = liveml.load_model("churn@production", registry=registry)
    rows = pd.read_csv(demo / "customers.csv")
    print(model.predict(rows).to_frame().head(3))
    try:
        model.predict([{"age": 41, "plan": "pro"}])
    except liveml.Invalid as error:  # what a caller sees for bad input
        print("refused:", error)
