"""liveml serve, with every loaded model served on the event loop (under callgrind a model's measured cost
is ~50x too high, which would send it to the thread pool)."""
import sys
import liveml.api.context as context
context.ApiContext.runs_inline = lambda self, ref: self.host.peek(ref) is not None
from liveml.cli.main import main
sys.argv[0] = "liveml"
main()
