"""The main job until serving lands: train a churn model, push it to the registry, predict with it.

Run with `make run` (or `python examples/demo.py`). It uses the data home ./.liveml (or $LIVEML_HOME),
so afterwards `liveml models`, `liveml show churn@production` and friends show what it did.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import joblib
from rich.console import Console
from rich.table import Table
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

sys.path.insert(0, str(Path(__file__).parent))
from churn_data import FEATURES, churn_table

import liveml
from liveml import Registry, Settings, load_model
from liveml.registry.store import hash_file


def main(workdir: Path = Path("demo")) -> None:
    console = Console()
    workdir.mkdir(exist_ok=True)
    table = churn_table()
    train, test = train_test_split(table, test_size=0.2, random_state=0, stratify=table["churned"])
    model = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
                ),
            ),
            ("boost", HistGradientBoostingClassifier(max_iter=100, random_state=0)),
        ]
    ).fit(train[FEATURES], train["churned"])
    auc = roc_auc_score(test["churned"], model.predict_proba(test[FEATURES])[:, 1])
    joblib.dump(model, workdir / "churn.joblib")
    train[FEATURES].to_parquet(workdir / "train.parquet")
    test.head(8).to_csv(workdir / "customers.csv", index=False)
    console.print(f"trained a churn model: ROC-AUC {auc:.3f} on {len(test)} held-out customers")

    settings = Settings()
    with Registry.init(settings) as registry:
        current = None
        with contextlib.suppress(liveml.NotFound):
            current = registry.get("churn@production")
        if current is not None and current.sha256 == hash_file(workdir / "churn.joblib")[0]:
            version = current
            console.print(f"the registry already serves this exact model as {version.ref} (production)")
        else:
            version = registry.push(
                "churn",
                workdir / "churn.joblib",
                aliases=["production"],
                reference=workdir / "train.parquet",
                description="gradient boosting on the demo churn table",
                tags={"team": "demo"},
                metrics={"auc": round(auc, 4)},
            )
            console.print(f"pushed {version.ref} with alias production to {settings.home_path}")
        loaded = load_model("churn@production", registry=registry)

    customers = test.head(8)
    result = loaded.predict(customers)
    out = Table(title=f"predictions from {loaded.version.ref}", title_justify="left")
    for column in ("customer_id", "plan", "tenure_months", "support_calls", "churn?", "p(churn)"):
        out.add_column(column)
    for (_, row), label, proba in zip(
        customers.iterrows(), result.predictions, result.probabilities[:, 1], strict=True
    ):
        out.add_row(
            row.customer_id,
            row.plan,
            str(row.tenure_months),
            str(row.support_calls),
            "yes" if label else "no",
            f"{proba:.2f}",
        )
    console.print(out)
    console.print(
        "next: liveml models | liveml show churn@production | "
        "liveml predict churn --input demo/customers.csv --proba"
    )


if __name__ == "__main__":
    main()
