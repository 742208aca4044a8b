"""A small, reproducible customer-churn table (fixed seed), used by the demo and the docs' examples."""

from __future__ import annotations

import numpy as np
import pandas as pd

PLANS = ("basic", "pro", "enterprise")


def churn_table(rows: int = 5000, seed: int = 7) -> pd.DataFrame:
    """Customers with a ``churned`` label that depends on tenure, charges, plan and support calls."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(PLANS, size=rows, p=[0.5, 0.35, 0.15])
    tenure = rng.integers(1, 72, size=rows)
    charges = np.round(rng.normal(70, 20, size=rows).clip(15, 150), 2)
    calls = rng.poisson(1.5, size=rows)
    age = rng.integers(18, 85, size=rows)
    logit = 0.8 - 0.09 * tenure + 0.04 * (charges - 70) + 0.9 * calls - 1.5 * (plan == "enterprise")
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(rows)],
            "age": age,
            "plan": plan,
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "churned": churned,
        }
    )


FEATURES = ["age", "plan", "tenure_months", "monthly_charges", "support_calls"]
