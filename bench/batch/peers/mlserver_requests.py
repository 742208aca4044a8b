"""Turn a CSV of rows into the JSON-lines input of `mlserver infer`: one Open Inference (V2) request per
line, each carrying --rows-per-request rows as one FP64 tensor [n, 20] named "predict" (mlserver-sklearn's
convention). Run with any python that has pyarrow.

usage: mlserver_requests.py INPUT.csv OUT.jsonl [--rows-per-request 1000]"""

import argparse
import json

import pyarrow.csv as pacsv

p = argparse.ArgumentParser()
p.add_argument("input")
p.add_argument("output")
p.add_argument("--rows-per-request", type=int, default=1000)
a = p.parse_args()
table = pacsv.read_csv(a.input)
features = [c for c in table.column_names if c != "id"]
x = table.select(features).to_pandas().to_numpy()
with open(a.output, "w") as out:
    for i, start in enumerate(range(0, len(x), a.rows_per_request)):
        block = x[start : start + a.rows_per_request]
        request = {
            "id": str(i),
            "inputs": [
                {
                    "name": "predict",
                    "shape": list(block.shape),
                    "datatype": "FP64",
                    "data": block.ravel().tolist(),
                }
            ],
        }
        out.write(json.dumps(request) + "\n")
print(a.output)
