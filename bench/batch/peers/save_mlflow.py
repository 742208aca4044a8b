"""Save a joblib sklearn model in MLflow's own format (run with the mlflow venv's python).

usage: save_mlflow.py MODEL.joblib OUT_DIR SAMPLE.parquet
The signature is inferred from the sample (f0..f19, no id), so `mlflow models predict` checks the input
schema and ignores the extra id column, as for any MLflow model logged with a signature."""

import shutil
import sys

import joblib
import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature

model_path, out, sample = sys.argv[1:4]
model = joblib.load(model_path)
x = pd.read_parquet(sample)[list(model.feature_names_in_)].head(100)
shutil.rmtree(out, ignore_errors=True)
kwargs = {}
if type(model).__name__.startswith("RandomForest"):
    # MLflow 3.x saves with skops; a forest needs its Tree type trusted (MLflow's own error says so)
    kwargs["skops_trusted_types"] = ["sklearn.tree._tree.Tree"]
try:
    mlflow.sklearn.save_model(model, out, signature=infer_signature(x, model.predict(x)), **kwargs)
except TypeError:
    mlflow.sklearn.save_model(model, out, signature=infer_signature(x, model.predict(x)))
print(out)
