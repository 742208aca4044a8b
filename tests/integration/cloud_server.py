"""The cloud protocols mounted next to the app's own, over a registry, behind a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import liveml.api.app as app_module
from liveml import Registry, Settings
from liveml.api.context import ApiContext
from liveml.serving.host import HostOptions, ModelHost
from tests.live_server import LiveServer

CLOUD = ("liveml.api.kserve_v1", "liveml.api.sagemaker", "liveml.api.vertex")
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@dataclass(frozen=True)
class Served:
    url: str
    host: ModelHost
    http: httpx.Client


def iris_registry(home: Path, model_files: dict[str, Path]) -> Registry:
    """``iris`` (logistic regression, alias production) and ``forest`` (random forest) on SQLite."""
    registry = Registry.init(Settings(home=home, user="tester"))
    registry.push("iris", model_files["logistic"], aliases=["production"])
    registry.push("forest", model_files["forest"])
    return registry


@contextmanager
def serve(
    registry: Registry,
    *,
    default_model: str | None = None,
    vertex_predict_route: str | None = None,
    vertex_health_route: str | None = None,
    start_host: bool = True,
) -> Iterator[Served]:
    """Every protocol the app has plus the cloud ones (each once, whether or not the app lists them)."""
    host = ModelHost(registry, options=HostOptions(poll_interval_s=0))
    context = ApiContext(
        host=host,
        default_model=default_model,
        vertex_predict_route=vertex_predict_route,
        vertex_health_route=vertex_health_route,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app_module, "PROTOCOLS", tuple(dict.fromkeys((*app_module.PROTOCOLS, *CLOUD))))
        app = app_module.create_app(host, context=context, start_host=start_host)
    try:
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
            yield Served(server.url, host, http)
    finally:
        if not start_host:
            host.stop()
