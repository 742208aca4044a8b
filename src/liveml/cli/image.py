"""`liveml dockerfile` and `liveml build`: container images of one model version, or of the server."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from liveml.cli.context import open_registry
from liveml.cli.render import error_console
from liveml.errors import Invalid

if TYPE_CHECKING:
    from liveml.deploy.dockerfile import ImagePlan
    from liveml.registry import Registry

SERVER = "server"

RefArg = Annotated[
    str,
    typer.Argument(
        help="The model version to bake in, e.g. churn@production or churn:4; `server` for the server "
        "image, which reads the shared registry instead."
    ),
]
FormatsOpt = Annotated[
    str,
    typer.Option("--formats", help="Server image: the model formats it must load, comma-separated."),
]
BaseOpt = Annotated[
    str | None, typer.Option("--base", help="Base image (default python:3.11-slim-bookworm).")
]
IndexOpt = Annotated[
    str | None, typer.Option("--index-url", help="Package index the image installs from (default PyPI).")
]
ExtraIndexOpt = Annotated[
    str | None,
    typer.Option(
        "--extra-index-url",
        help="A second index, e.g. https://download.pytorch.org/whl/cpu for PyTorch's CPU build.",
    ),
]
DownloadOpt = Annotated[
    bool,
    typer.Option(
        "--download",
        help="Download every pinned wheel here, with this machine's pip settings, into the context: the "
        "build then reaches no package index (air-gapped builders, or a proxy only this machine trusts).",
    ),
]
WheelOpt = Annotated[
    Path | None,
    typer.Option("--wheel", help="A liveml wheel to install (default: built from this liveml's source)."),
]


@contextmanager
def _plan(
    ctx: typer.Context,
    ref: str,
    formats: str,
    base: str | None,
    index_url: str | None,
    extra_index_url: str | None,
    download: bool,
) -> Iterator[tuple[ImagePlan, Registry | None, str | None]]:
    """The image's plan, and for a model image the open registry and the exact version it bakes in."""
    from liveml.deploy.dockerfile import plan_model_image, plan_server_image

    if ref == SERVER:
        names = [f.strip() for f in formats.split(",") if f.strip()]
        yield (
            plan_server_image(
                names, download=download, base=base, index_url=index_url, extra_index_url=extra_index_url
            ),
            None,
            None,
        )
        return
    with open_registry(ctx) as registry:
        plan, pinned_ref = plan_model_image(
            registry, ref, download=download, base=base, index_url=index_url, extra_index_url=extra_index_url
        )
        yield plan, registry, pinned_ref


def dockerfile(
    ctx: typer.Context,
    ref: RefArg,
    context: Annotated[
        Path | None,
        typer.Option(
            "--context",
            help="Also write the whole build context (Dockerfile, requirements.txt, wheels/, model/) into "
            "this new folder, ready for `docker build`.",
        ),
    ] = None,
    formats: FormatsOpt = "sklearn,onnx",
    base: BaseOpt = None,
    index_url: IndexOpt = None,
    extra_index_url: ExtraIndexOpt = None,
    wheel: WheelOpt = None,
    download: DownloadOpt = False,
) -> None:
    """Print the Dockerfile of a model image (one version baked in) or of the server image."""
    from liveml.deploy.dockerfile import render, write_context

    with _plan(ctx, ref, formats, base, index_url, extra_index_url, download) as (plan, registry, pinned_ref):
        if context is not None:
            write_context(plan, context, registry=registry, ref=pinned_ref, wheel=wheel)
            error_console().print(f"build context written to {context}: docker build -t TAG {context}")
    typer.echo(render(plan), nl=False)


def build(
    ctx: typer.Context,
    ref: RefArg,
    tag: Annotated[str, typer.Option("--tag", "-t", help="The image's name and tag, e.g. churn:4.")],
    builder: Annotated[
        str | None,
        typer.Option("--builder", help="docker, podman or buildah (default: the first one here that works)."),
    ] = None,
    build_arg: Annotated[
        list[str] | None, typer.Option("--build-arg", help="NAME=VALUE passed to the build (repeatable).")
    ] = None,
    isolation: Annotated[
        str | None, typer.Option("--isolation", help="podman/buildah isolation (buildah default: chroot).")
    ] = None,
    formats: FormatsOpt = "sklearn,onnx",
    base: BaseOpt = None,
    index_url: IndexOpt = None,
    extra_index_url: ExtraIndexOpt = None,
    wheel: WheelOpt = None,
    download: DownloadOpt = False,
    keep_context: Annotated[
        Path | None, typer.Option("--keep-context", help="Write the context here and keep it.")
    ] = None,
) -> None:
    """Build a model image (one version baked in, no database needed) or the server image."""
    from liveml.deploy.build import build_image, find_builder
    from liveml.deploy.dockerfile import write_context

    if not tag.strip() or any(c.isspace() for c in tag):
        raise Invalid(f"--tag {tag!r} is not an image name; use e.g. churn:4 or registry.example.com/churn:4")
    program = find_builder(builder)  # before the context: fail fast without a builder
    with (
        _plan(ctx, ref, formats, base, index_url, extra_index_url, download) as (plan, registry, pinned_ref),
        tempfile.TemporaryDirectory(prefix="liveml-build-") as tmp,
    ):
        folder = keep_context or Path(tmp) / "context"
        write_context(plan, folder, registry=registry, ref=pinned_ref, wheel=wheel)
        error_console().print(f"building {tag} with {program}: {plan.title}")
        build_image(folder, tag, builder=program, build_args=build_arg or (), isolation=isolation)
    error_console().print(f"built {tag}")
