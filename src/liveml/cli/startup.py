"""The ``liveml`` process's start-up without the garbage collector.

A command's start-up creates a few hundred thousand objects that live until the process exits: the modules
it imports (liveml, SQLAlchemy, pandas, scikit-learn …) and the model it loads. Python's cyclic collector
does not know that: every 700 new objects it scans the young ones, and every so often all of them, so
~20% of the start-up went to scans that find nothing (`liveml batch run` on 1,000 rows: 2.0 to 2.2 s with
the collector on, 1.6 s without it, against 1.5 to 1.7 s for the few lines of pyarrow and scikit-learn a user
would write; bench/results/batch-ab-8).

So the process started by the ``liveml`` command (``main()`` without arguments) holds the collector off
while it starts (``begin``) and, once a command is ready for its real work (``release``), moves what the
start-up made out of the collector's way for good (``gc.freeze``, as Python's documentation advises
before forking workers, which the local engine then does) and turns it back on. A command that loads a
model (``batch run``, ``jobs resume``) holds it again until the model is loaded (``hold``). Nothing here
happens when the CLI is called as a function (``main([...])``, as tests and embedding code do): such a
caller keeps its collector as it was."""

from __future__ import annotations

import gc

_process = False


def begin() -> None:
    """This is the ``liveml`` process: hold the collector until ``release``."""
    global _process
    _process = True
    gc.disable()


def hold() -> None:
    """Hold the collector again (the ``liveml`` process only) until the next ``release``."""
    if _process:
        gc.disable()


def release() -> None:
    """Start-up is over: freeze what it made (never scanned again, never freed before exit) and collect as
    usual from now on. Does nothing outside the ``liveml`` process, or when the collector is on."""
    if _process and not gc.isenabled():
        gc.freeze()
        gc.enable()


__all__ = ["begin", "hold", "release"]
