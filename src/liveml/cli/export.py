"""`liveml export ...`: a model version packaged for a managed cloud."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liveml.cli.context import open_registry
from liveml.cli.render import error_console

export_app = typer.Typer(help="Package a model version for a managed cloud.", no_args_is_help=True)


@export_app.command("sagemaker")
def sagemaker(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="The version to export, e.g. churn@production or churn:4.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The archive to write (SageMaker's model.tar.gz).")
    ] = Path("model.tar.gz"),
    image: Annotated[
        str | None,
        typer.Option("--image", help="The liveml image's ECR URI, filled into the printed commands."),
    ] = None,
    bucket: Annotated[
        str | None, typer.Option("--bucket", help="The S3 bucket, filled into the printed commands.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
) -> None:
    """Write SageMaker's model.tar.gz (the version's bundle at the archive root, unpacked into
    /opt/ml/model) and print the AWS CLI commands that deploy it."""
    from liveml.deploy.sagemaker import export_model_tar, next_steps

    with open_registry(ctx) as registry:
        manifest = export_model_tar(registry, ref, out, overwrite=force)
    error_console().print(
        next_steps(manifest, out, image=image, bucket=bucket), highlight=False, markup=False
    )
    typer.echo(str(out))


@export_app.command("bundle")
def bundle(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="The version to export, e.g. churn@production or churn:4.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="A new (or empty) folder for the bundle.")],
) -> None:
    """Write the version's bundle (artifact + liveml-model.json) into a folder: what Vertex AI's
    artifactUri and an Azure ML model registration take, and what `liveml serve --model-dir` serves."""
    from liveml.registry.bundle import write_bundle

    with open_registry(ctx) as registry:
        manifest = write_bundle(registry, ref, out)
    error_console().print(
        f"{manifest.ref} ({manifest.format}) written to {out}; serve it with `liveml serve --model-dir {out}`",
        highlight=False,
        markup=False,
    )
    typer.echo(str(out))
