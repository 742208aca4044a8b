"""Per-prediction explanations: per-column attributions that add up to the model's output.

``explain(model, rows)`` picks the exact algorithm of the model's family (linear models, tree
ensembles, XGBoost, LightGBM) or a model-agnostic one (everything else); ``ExplanationStore`` keeps
explanations under their prediction ids, next to the prediction log. See docs/explanations.md.
"""

from liveml.explain.background import background_for
from liveml.explain.explainers import SPACES, check_class, explain
from liveml.explain.results import Explanation, RowExplanation
from liveml.explain.store import ExplanationStore

__all__ = [
    "SPACES",
    "Explanation",
    "ExplanationStore",
    "RowExplanation",
    "background_for",
    "check_class",
    "explain",
]
