"""The HTTP edge: a thin ASGI layer that translates every protocol into ``ModelHost`` calls."""

from liveml.api.app import create_app

__all__ = ["create_app"]
