"""Build an image from a written context with whichever builder is here: docker, podman or buildah.

buildah needs no daemon (``--isolation chroot --storage-driver vfs`` works even inside a container);
docker needs a running engine. Images are built in Docker's format so the HEALTHCHECK is kept (the OCI
format has no field for it).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from liveml.errors import Invalid, Unavailable

BUILDERS = ("docker", "podman", "buildah")


def find_builder(wanted: str | None = None) -> str:
    """The builder's program: ``wanted`` if given, else the first of docker, podman, buildah found."""
    if wanted is not None:
        if wanted not in BUILDERS:
            raise Invalid(f"unknown builder {wanted!r}; use one of {', '.join(BUILDERS)}")
        if shutil.which(wanted) is None:
            raise Unavailable(f"{wanted} is not installed here; install it or pick another --builder")
        return wanted
    for name in BUILDERS:
        if shutil.which(name) is None:
            continue
        if name == "docker" and not _docker_engine():
            continue
        return name
    raise Unavailable(
        "no image builder here: install docker (with a running engine), podman or buildah "
        "(apt-get install buildah builds without a daemon), or write the context with "
        "`liveml dockerfile REF --context DIR` and build it elsewhere"
    )


def _docker_engine() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def build_command(
    builder: str, context: Path, tag: str, *, build_args: Sequence[str] = (), isolation: str | None = None
) -> list[str]:
    args = [f"--build-arg={item}" for item in build_args]
    if builder == "docker":
        return ["docker", "build", "-t", tag, *args, str(context)]
    command = [builder, "build", "--format", "docker", "-t", tag, *args]
    if builder == "buildah" or isolation:
        command.append(f"--isolation={isolation or 'chroot'}")
    return [*command, str(context)]


def build_image(
    context: Path,
    tag: str,
    *,
    builder: str | None = None,
    build_args: Sequence[str] = (),
    isolation: str | None = None,
) -> list[str]:
    """Build; the builder's output goes straight to this process's stdout/stderr. Returns the command."""
    program = find_builder(builder)
    for item in build_args:
        if "=" not in item:
            raise Invalid(f"--build-arg {item!r} needs the form NAME=VALUE, e.g. BASE_IMAGE=python:3.11-slim")
    command = build_command(program, context, tag, build_args=build_args, isolation=isolation)
    done = subprocess.run(command)
    if done.returncode != 0:
        raise Unavailable(f"{program} build failed (exit {done.returncode}); its output is above")
    return command


__all__ = ["BUILDERS", "build_command", "build_image", "find_builder"]
