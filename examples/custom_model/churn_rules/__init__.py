"""A hand-written churn scorer pushed as a custom Python model (a package: relative imports work)."""

from .model import ChurnRules

__all__ = ["ChurnRules"]
