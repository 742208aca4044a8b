"""The serving host on its own: swaps never hand a request a retired model, concurrent first requests
load a model once, model faults are model errors, references resolve exactly."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

from liveml import Registry
from liveml.errors import ModelFailed, NotFound
from liveml.serving import ModelHost
from liveml.serving.host import HostOptions


def test_a_request_never_gets_a_retired_version(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("m", model_files["logistic"], aliases=["production"])
    registry.push("m", model_files["forest"])
    host = ModelHost(registry, options=HostOptions(poll_interval_s=0))
    host.start(watch=False)
    try:
        stale = host.resolve("m")  # what a request saw just before the alias moved
        registry.set_alias("m", "production", 2)
        assert host.refresh() == [("m", 1, 2)]
        assert stale.retired and not stale.loaded.runtime.loaded  # drained and unloaded
        served = host.acquire("m")  # counting in skips the retired one
        try:
            assert served.number == 2 and not served.retired
        finally:
            host._release(served)
        assert host.predict("m", pd.read_csv(model_files["rows"]).head(3)).version == 2
    finally:
        host.stop()


def test_concurrent_first_requests_load_once(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("m", model_files["forest"], aliases=["production"])
    host = ModelHost(registry, options=HostOptions(poll_interval_s=0, lazy=True))
    host.start(watch=False)
    rows = pd.read_csv(model_files["rows"]).head(2)
    barrier = threading.Barrier(8)
    versions: list[int] = []

    def ask() -> None:
        barrier.wait()
        versions.append(host.predict("m", rows).version)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert versions == [1] * 8
        assert len(host.served_models()) == 1
        assert host.metrics.loaded._value.get() == 1
    finally:
        host.stop()


def test_references_resolve_exactly(registry: Registry, model_files: dict[str, Path]) -> None:
    registry.push("m", model_files["logistic"])
    registry.push("m", model_files["forest"])
    host = ModelHost(registry, options=HostOptions(poll_interval_s=0))
    host.start(watch=False)
    try:
        assert host.resolve("m").number == 2  # no production alias: the latest
        with pytest.raises(NotFound, match="no alias 'production'"):
            host.resolve("m@production")  # not the same as `m`
        assert host.resolve("m:1").number == 1 and host.resolve("m@latest").number == 2
    finally:
        host.stop()


def test_a_model_that_raises_is_a_model_fault(registry: Registry, tmp_path: Path) -> None:
    source = tmp_path / "broken.py"
    source.write_text(
        "class Broken:\n"
        "    input_names = ('x',)\n"
        "    def load(self, path):\n        pass\n"
        "    def predict(self, frame):\n        raise ZeroDivisionError('boom')\n"
    )
    registry.push("broken", source, aliases=["production"])
    host = ModelHost(registry, options=HostOptions(poll_interval_s=0, warm_up=False))
    host.start(watch=False)
    try:
        with pytest.raises(
            ModelFailed, match=r"custom model failed: ZeroDivisionError: boom \(broken.py:6\)"
        ):
            host.predict("broken", [{"x": 1.0}])
    finally:
        host.stop()
