"""Predict through a running server with liveml's Python client (run by the tests against a real server).

Usage: python examples/clients/python_client.py http://127.0.0.1:8000 churn
"""

from __future__ import annotations

import sys

import liveml

url, model = sys.argv[1], sys.argv[2]
with liveml.Client(url) as client:
    info = client.model(model)
    print(f"{info['name']}:{info['version']} takes", [c["name"] for c in info["signature"]["inputs"]])
    row = {c["name"]: 1 for c in info["signature"]["inputs"]}
    result = client.predict(model, [row], probabilities=True)
    print(f"answered by version {result.version}:", result.to_frame().to_dict(orient="records"))
    try:
        client.predict(model, [{"no_such_column": 1}])
    except liveml.Invalid as error:
        print("refused:", error)
