"""A local Dask cluster's fork server imports without the garbage collector; the workers forked from it
collect again, with what they inherited frozen. Anywhere else, importing the module changes nothing."""

from __future__ import annotations

import gc
import json
import multiprocessing
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(), reason="no fork server on this platform"
)


def report(queue: Any) -> None:
    """Run in a process forked from the fork server: how the collector stands there."""
    queue.put({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()})


def _child_of_fork_server(preload: list[str]) -> dict[str, Any]:
    script = textwrap.dedent(
        f"""
        import json, multiprocessing
        from tests.unit.jobs.test_forkserver import report

        if __name__ == "__main__":
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload({preload!r})
            queue = context.Queue()
            child = context.Process(target=report, args=(queue,))
            child.start()
            seen = queue.get(timeout=60)
            child.join(60)
            print(json.dumps(seen))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_workers_forked_from_the_fork_server_collect_with_their_inheritance_frozen() -> None:
    seen = _child_of_fork_server(["liveml.jobs.forkserver", "liveml.jobs.engines"])
    assert seen["enabled"] is True
    assert seen["frozen"] > 10_000  # liveml's scoring code and what it imports, out of the collector's way


def test_without_it_the_fork_servers_children_freeze_nothing() -> None:
    seen = _child_of_fork_server(["liveml.jobs.engines"])
    assert seen == {"enabled": True, "frozen": 0}


def test_imported_anywhere_else_it_does_nothing() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gc, json; import liveml.jobs.forkserver as f; "
            "print(json.dumps([f.ACTIVE, gc.isenabled(), gc.get_freeze_count()]))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [False, True, 0]
