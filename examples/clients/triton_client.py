"""Predict with a liveml model through tritonclient, the Open Inference Protocol (V2) client of Triton.

    pip install 'tritonclient[http]'
    liveml serve --port 8000                          # in another terminal
    python examples/clients/triton_client.py --url 127.0.0.1:8000 --model iris

The model is any liveml model with the four iris columns (a classifier gives labels and probabilities).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import tritonclient.http as httpclient

# sepal_length, sepal_width, petal_length, petal_width: two flowers
ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="127.0.0.1:8000", help="host:port of the liveml server")
    parser.add_argument("--model", default="iris", help="a liveml model name")
    parser.add_argument("--version", default="", help="a version number or an alias; empty: the served one")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("LIVEML_API_KEY"),
        help="a liveml API key (default $LIVEML_API_KEY)",
    )
    args = parser.parse_args()
    key = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else None

    client = httpclient.InferenceServerClient(args.url)
    print("server ready:", client.is_server_ready())
    print("model ready:", client.is_model_ready(args.model, args.version, headers=key))
    metadata = client.get_model_metadata(args.model, args.version, headers=key)
    names = [tensor["name"] for tensor in metadata["inputs"]]
    print("inputs:", ", ".join(f"{t['name']} {t['datatype']}" for t in metadata["inputs"]))

    # 1. One tensor per column, shape [N], sent as binary tensor data (tritonclient's default).
    inputs = []
    for i, name in enumerate(names):
        column = httpclient.InferInput(name, [len(ROWS)], "FP64")
        column.set_data_from_numpy(np.ascontiguousarray(ROWS[:, i]))
        inputs.append(column)
    outputs = [httpclient.InferRequestedOutput("predict")]
    if any(tensor["name"] == "predict_proba" for tensor in metadata["outputs"]):
        outputs.append(httpclient.InferRequestedOutput("predict_proba"))
    result = client.infer(args.model, inputs, model_version=args.version, outputs=outputs, headers=key)
    response = result.get_response()
    print("answered by version:", response["model_version"])
    print("per-column predict:", result.as_numpy("predict").tolist())
    if len(outputs) > 1:
        print("per-column predict_proba:", np.round(result.as_numpy("predict_proba"), 4).tolist())
    print("prediction ids:", response["parameters"]["prediction_ids"].split(","))

    # 2. One [N, F] tensor, the columns in signature order, as JSON this time.
    matrix = httpclient.InferInput("features", list(ROWS.shape), "FP64")
    matrix.set_data_from_numpy(ROWS, binary_data=False)
    result = client.infer(
        args.model,
        [matrix],
        model_version=args.version,
        outputs=[httpclient.InferRequestedOutput("predict", binary_data=False)],
        headers=key,
    )
    print("matrix predict:", result.as_numpy("predict").tolist())
    client.close()


if __name__ == "__main__":
    main()
