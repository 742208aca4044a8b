"""Security: API keys and roles, the audit trail, safe model loading, limits."""
