"""`liveml serve` with every loaded model served on the event loop, for instruction counts under callgrind.

Under callgrind a model's measured cost per call is ~50x too high, which would send it to the thread
pool; without callgrind the fast models benchmarked here run on the event loop, and so they do here.
Used by bench/results/log-overhead-20261121-1529/served.sh (liveml's CLI arguments follow):

    valgrind --tool=callgrind --instr-atstart=no .venv/bin/python bench/serving/serve_inline.py \\
        --home HOME serve --port 8301 --poll 0 --no-auth --no-scheduler
"""

from __future__ import annotations

import sys

import liveml.api.context as context
from liveml.cli.main import main


def _loaded(self: context.ApiContext, ref: str) -> bool:
    return self.host.peek(ref) is not None


if __name__ == "__main__":
    context.ApiContext.runs_inline = _loaded  # type: ignore[method-assign]
    sys.argv[0] = "liveml"
    main()
