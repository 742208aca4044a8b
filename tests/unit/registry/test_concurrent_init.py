"""Several processes creating the same registry at once (servers starting together) all succeed."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from liveml import Registry, Settings
from tests.integration.test_concurrent_push import CONTEXT  # processes that start in milliseconds


def _init(home: str, url: str | None, barrier: mp.synchronize.Barrier) -> None:  # type: ignore[name-defined]
    barrier.wait(timeout=60)
    Registry.init(Settings(home=Path(home), database_url=url)).close()


def test_concurrent_init(settings: Settings) -> None:
    barrier = CONTEXT.Barrier(3)
    procs = [
        CONTEXT.Process(target=_init, args=(str(settings.home), settings.database_url, barrier))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with Registry(settings) as registry:
        assert registry.db.current_revision() == registry.db.head_revision()
        assert registry.models() == []
