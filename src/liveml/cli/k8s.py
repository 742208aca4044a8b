"""``liveml k8s``: Kubernetes manifests (and KServe objects) for a liveml image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liveml.cli.context import open_registry
from liveml.cli.render import error_console
from liveml.errors import Invalid


def k8s(
    ctx: typer.Context,
    ref: Annotated[
        str | None,
        typer.Argument(
            metavar="REF",
            help="Model shape: the version baked into the image, e.g. churn@production (resolved in the "
            "local registry). Server shape: the references to serve, comma-separated (default: every model).",
        ),
    ] = None,
    image: Annotated[
        str, typer.Option("--image", help="The image to run, e.g. ghcr.io/acme/churn:4 (see `liveml build`).")
    ] = "",
    replicas: Annotated[
        str, typer.Option("--replicas", help="N replicas, or MIN..MAX for an autoscaler on CPU, e.g. 2..10.")
    ] = "2",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the manifests and a kustomization.yaml here (default: print YAML)."
        ),
    ] = None,
    shape: Annotated[
        str,
        typer.Option(
            "--shape", help="model: one version baked in; server: the image reads the shared registry."
        ),
    ] = "model",
    name: Annotated[
        str | None, typer.Option("--name", help="Name of the Deployment and Service (default: the model's).")
    ] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", help="Namespace of every object.")] = None,
    port: Annotated[int, typer.Option("--port", help="Port the container listens on.")] = 8080,
    cpu: Annotated[
        str,
        typer.Option("--cpu", help="CPU REQUEST[:LIMIT] per pod, e.g. 500m or 1:2 (the autoscaler's base)."),
    ] = "500m",
    memory: Annotated[
        str, typer.Option("--memory", help="Memory REQUEST[:LIMIT] per pod, e.g. 512Mi:1Gi.")
    ] = "512Mi:1Gi",
    cpu_target: Annotated[
        int, typer.Option("--cpu-target", help="Autoscaler target: average CPU use, % of the request.")
    ] = 70,
    workers: Annotated[
        int, typer.Option("--workers", help="Worker processes per pod (`liveml serve --workers`).")
    ] = 1,
    auth: Annotated[
        str | None,
        typer.Option(
            "--auth",
            help="platform: an authenticating ingress or mesh checks callers (model shape default); keys: "
            "liveml API keys from the shared registry (server shape default).",
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            help="An existing Secret whose keys the pods read as environment variables (LIVEML_DATABASE_URL, "
            "AWS_ACCESS_KEY_ID, ...). Secret values never go into the files written.",
        ),
    ] = None,
    config_map: Annotated[
        str | None,
        typer.Option("--config-map", help="An existing ConfigMap the pods also read settings from."),
    ] = None,
    artifact_root: Annotated[
        str | None,
        typer.Option(
            "--artifact-root", help="Server shape: the shared artifact store, e.g. s3://models/liveml."
        ),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            help="A non-secret setting for the pods, KEY=VALUE (repeat), e.g. LIVEML_LOG_URL=s3://...",
        ),
    ] = None,
    image_pull_secret: Annotated[
        str | None,
        typer.Option("--image-pull-secret", help="Secret to pull the image from a private registry."),
    ] = None,
    dashboard: Annotated[
        bool,
        typer.Option(
            "--dashboard/--no-dashboard",
            help="Include the Grafana dashboard ConfigMap (grafana_dashboard=1).",
        ),
    ] = True,
    prometheus_rule: Annotated[
        bool,
        typer.Option(
            "--prometheus-rule", help="Include the alert rules as a PrometheusRule (Prometheus Operator)."
        ),
    ] = False,
    kserve: Annotated[
        bool, typer.Option("--kserve", help="Also write a KServe ServingRuntime and InferenceService.")
    ] = False,
    storage_uri: Annotated[
        str | None,
        typer.Option(
            "--storage-uri",
            help="With --kserve: the InferenceService loads the model from here through the liveml runtime.",
        ),
    ] = None,
) -> None:
    """Write Kubernetes manifests for a liveml image: Deployment, Service, autoscaler, disruption budget,
    settings, Grafana dashboard, kustomization; with --kserve, KServe objects too."""
    from liveml.deploy import k8s as manifests
    from liveml.deploy.k8s_options import make_spec, notes

    if not image:
        raise Invalid(
            "--image is required: the image to run, e.g. --image ghcr.io/acme/churn:4 (`liveml build` makes it)"
        )
    version = None
    if shape == "model":
        if not ref:
            raise Invalid("give the model the image holds, e.g. liveml k8s churn@production --image ...")
        with open_registry(ctx) as registry:
            version = registry.get(ref)
    spec = make_spec(
        image=image,
        shape=shape,
        ref=ref,
        version=version,
        name=name,
        namespace=namespace,
        replicas=replicas,
        port=port,
        cpu=cpu,
        memory=memory,
        cpu_target=cpu_target,
        workers=workers,
        auth=auth,
        secret=secret,
        config_map=config_map,
        image_pull_secret=image_pull_secret,
        artifact_root=artifact_root,
        env=env,
        dashboard=dashboard,
        prometheus_rule=prometheus_rule,
        kserve=kserve,
        storage_uri=storage_uri,
    )
    console = error_console()
    for note in notes(spec):
        console.print(f"[yellow]note:[/] {note}", markup=True, highlight=False)
    if out is None:
        typer.echo(manifests.dump(manifests.objects(spec)), nl=False)
        return
    written = manifests.write(spec, out)
    console.print(f"wrote {len(written)} files to {out}", highlight=False)
    console.print(f"apply: kubectl apply -k {out}", highlight=False)
    if spec.kserve:
        console.print(f"KServe: kubectl apply -k {out / 'kserve'}", highlight=False)
