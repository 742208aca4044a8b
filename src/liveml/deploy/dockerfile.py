"""The Dockerfile of a liveml image, and the build context it reads.

Two shapes: a **model image** bakes one version's bundle in at ``/opt/ml/model`` and starts with no
database (SageMaker, Vertex AI, Azure ML, Lambda, a plain ``docker run``); a **server image** has no model
and reads the shared registry (PostgreSQL + object store) from its settings (Kubernetes). Both are
multi-stage (the build stage makes a virtual environment from pinned wheels; the final stage copies it
onto a clean base with no build tools), run as a non-root user, start in exec form so SIGTERM reaches
the server and drains in-flight requests, and define a health check.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from liveml import __version__
from liveml.deploy.requirements import extras_for, packages_for, pinned
from liveml.errors import Invalid
from liveml.registry import Registry
from liveml.registry.bundle import BundleManifest, write_bundle

DEFAULT_BASE = "python:3.11-slim-bookworm"
PORT = 8080
UID = 10001
MODEL_DIR = "/opt/ml/model"
VENV = "/opt/liveml"
HOME = "/var/lib/liveml"


@dataclass(frozen=True)
class ImagePlan:
    """What an image holds: its shape, the model (for a model image) and the extras installed."""

    shape: str  # "model" or "server"
    extras: tuple[str, ...]
    packages: tuple[str, ...] = ()
    manifest: BundleManifest | None = None
    base: str = DEFAULT_BASE
    index_url: str | None = None
    extra_index_url: str | None = None
    download: bool = False  # wheels fetched here into the context; the build reaches no index

    @property
    def title(self) -> str:
        if self.manifest is not None:
            return f"model image: {self.manifest.ref} ({self.manifest.format})"
        return "server image: every model of the shared registry"


def plan_model_image(
    registry: Registry,
    ref: str,
    *,
    download: bool = False,
    base: str | None = None,
    index_url: str | None = None,
    extra_index_url: str | None = None,
) -> tuple[ImagePlan, str]:
    """The plan for ``ref``'s model image, and the exact version reference it pins."""
    from liveml.registry.bundle import manifest_of

    version = registry.get(ref)
    # "lambda": the same image also runs as an AWS Lambda container (the entrypoint hands over to awslambdaric)
    extras = [*extras_for([version.format]), "lambda"]
    plan = ImagePlan(
        "model",
        tuple(extras),
        packages=tuple(packages_for([version.format], compiled=version.compiled is not None)),
        manifest=manifest_of(version),
        base=base or DEFAULT_BASE,
        index_url=index_url,
        extra_index_url=extra_index_url,
        download=download,
    )
    return plan, version.ref


def plan_server_image(
    formats: list[str],
    *,
    download: bool = False,
    base: str | None = None,
    index_url: str | None = None,
    extra_index_url: str | None = None,
) -> ImagePlan:
    return ImagePlan(
        "server",
        tuple(extras_for(formats, server=True)),
        packages=tuple(packages_for(formats, compiled="sklearn" in formats or "skops" in formats)),
        base=base or DEFAULT_BASE,
        index_url=index_url,
        extra_index_url=extra_index_url,
        download=download,
    )


def render(plan: ImagePlan) -> str:
    """The Dockerfile text."""
    pip_index = " --no-index --find-links /tmp/build" if plan.download else ""
    if plan.index_url and not plan.download:
        pip_index += f" --index-url {plan.index_url}"
    if plan.extra_index_url and not plan.download:
        pip_index += f" --extra-index-url {plan.extra_index_url}"
    model_env = ""
    model_copy = ""
    if plan.manifest is not None:
        model_env = f" \\\n    LIVEML_MODEL_DIR={MODEL_DIR} \\\n    LIVEML_DEFAULT_MODEL={plan.manifest.name}"
        model_copy = f"COPY model/ {MODEL_DIR}/\n"
    extras = ", ".join([f"liveml[{','.join(plan.extras)}]" if plan.extras else "liveml", *plan.packages])
    return f"""\
# syntax=docker/dockerfile:1
# liveml {plan.title}
# Written by liveml {__version__}. Build it with `liveml build`, or write its context with
# `liveml dockerfile ... --context DIR` and run `docker build DIR` (or podman / buildah).
# The context holds: requirements.txt (every dependency of {extras}, pinned), wheels/ (liveml itself{", and every pinned wheel: the build reaches no package index" if plan.download else ""})
# {"and model/ (the version's bundle: artifact + liveml-model.json)" if plan.manifest else "(no model: the server reads the registry named by LIVEML_DATABASE_URL)"}.
ARG BASE_IMAGE={plan.base}

FROM ${{BASE_IMAGE}} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv {VENV}
COPY requirements.txt wheels/ /tmp/build/
RUN {VENV}/bin/pip install --no-deps{pip_index} -r /tmp/build/requirements.txt \\
 && {VENV}/bin/pip install --no-deps /tmp/build/*.whl \\
 && {VENV}/bin/pip check \\
 && {VENV}/bin/python -m compileall -q {VENV}/lib

FROM ${{BASE_IMAGE}}
RUN groupadd --system --gid {UID} liveml \\
 && useradd --system --uid {UID} --gid {UID} --home-dir {HOME} --create-home --shell /usr/sbin/nologin liveml
COPY --from=build {VENV} {VENV}
{model_copy}ENV PATH={VENV}/bin:$PATH \\
    PYTHONUNBUFFERED=1 \\
    LIVEML_HOME={HOME} \\
    LIVEML_SERVER_HOST=0.0.0.0 \\
    LIVEML_SERVER_PORT={PORT} \\
    LIVEML_PLATFORM_AUTH=true{model_env}
USER {UID}:{UID}
WORKDIR {HOME}
EXPOSE {PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \\
  CMD ["python", "-m", "liveml.deploy.entrypoint", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "liveml.deploy.entrypoint"]
CMD ["serve"]
"""


def liveml_wheel(dest: Path) -> Path:
    """A wheel of the installed liveml, built from its source tree (an editable or source install)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file():
        raise Invalid(
            "liveml's source tree is not here to build a wheel from; pass --wheel with a liveml wheel "
            "(pip wheel --no-deps liveml)"
        )
    with tempfile.TemporaryDirectory(prefix="liveml-wheel-") as tmp:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "-q",
                "-w",
                tmp,
                str(root),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise Invalid(f"building liveml's wheel failed: {done.stderr.strip()[-400:]}")
        built = sorted(Path(tmp).glob("liveml-*.whl"))
        if not built:
            raise Invalid("building liveml's wheel made no wheel")
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(built[-1], dest / built[-1].name))


def download_wheels(requirements: Path, dest: Path, plan: ImagePlan) -> None:
    """Fetch every pinned wheel with this machine's pip (its index, proxy and certificate settings)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q"]
    if plan.index_url:
        command += ["--index-url", plan.index_url]
    if plan.extra_index_url:
        command += ["--extra-index-url", plan.extra_index_url]
    done = subprocess.run(
        [*command, "-d", str(dest), "-r", str(requirements)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise Invalid(f"downloading the image's wheels failed: {done.stderr.strip()[-600:]}")


def write_context(
    plan: ImagePlan,
    folder: Path,
    *,
    registry: Registry | None = None,
    ref: str | None = None,
    wheel: Path | None = None,
) -> Path:
    """Write the build context (Dockerfile, requirements.txt, wheels/, model/) into ``folder``."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise Invalid(f"{str(folder)!r} is not an empty folder; give a new or empty folder for the context")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requirements.txt").write_text(
        f"# pinned by liveml {__version__} from the environment that pushed the model\n"
        + "\n".join(pinned(plan.extras, packages=plan.packages))
        + "\n"
    )
    wheels = folder / "wheels"
    if wheel is not None:
        if not wheel.is_file() or wheel.suffix != ".whl":
            raise Invalid(f"--wheel {str(wheel)!r} is not a wheel file")
        wheels.mkdir()
        shutil.copy2(wheel, wheels / wheel.name)
    else:
        liveml_wheel(wheels)
    if plan.download:
        download_wheels(folder / "requirements.txt", wheels, plan)
    if plan.manifest is not None:
        if registry is None or ref is None:
            raise Invalid("a model image needs the registry and the model reference")
        write_bundle(registry, ref, folder / "model")
    (folder / "Dockerfile").write_text(render(plan))
    (folder / ".dockerignore").write_text("**/__pycache__\n")
    return folder


__all__ = ["DEFAULT_BASE", "ImagePlan", "plan_model_image", "plan_server_image", "render", "write_context"]
