"""The entrypoint of liveml's images: ``python -m liveml.deploy.entrypoint [serve | healthcheck | ...]``.

- run by AWS Lambda (``AWS_LAMBDA_RUNTIME_API`` is set): hands the process to the Lambda runtime
  interface client with liveml's handler;
- no arguments or ``serve`` (how SageMaker starts a container: ``docker run IMAGE serve``): ``liveml serve``
  with any further arguments; settings come from the image's ``LIVEML_*`` environment;
- ``healthcheck``: exit 0 when the server in this container answers ready, else 1 (the image's
  HEALTHCHECK);
- ``train``: SageMaker's training contract, which a serving image does not take; a clear error;
- anything else: a ``liveml`` command (``predict``, ``models``, ...).

The server runs in this process (exec form, PID 1), so SIGTERM reaches uvicorn, which stops taking new
connections and finishes the requests in flight before it exits.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

LAMBDA_HANDLER = "liveml.deploy.aws_lambda.handler"


def healthcheck() -> int:
    from liveml.settings import Settings

    url = f"{Settings().local_server_url}/v2/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get("AWS_LAMBDA_RUNTIME_API") and not args[1:]:
        os.execv(sys.executable, [sys.executable, "-m", "awslambdaric", LAMBDA_HANDLER])
    if args[:1] == ["healthcheck"]:
        return healthcheck()
    if args[:1] == ["train"]:
        print(
            "liveml images serve models; they do not train. Run training elsewhere, push the model "
            "(`liveml push`) and build a new image, or start this one with `serve`.",
            file=sys.stderr,
        )
        return 2
    if not args:
        args = ["serve"]
    from liveml.cli.main import main as liveml

    liveml(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
