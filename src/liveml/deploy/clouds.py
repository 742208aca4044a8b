"""What the managed clouds tell a model container, and the one place a model server is put together.

Each platform starts the image its own way: SageMaker unpacks ``model.tar.gz`` into ``/opt/ml/model``
(and says ``SAGEMAKER_BATCH=true`` in a Batch Transform), Vertex AI names routes, port and artifacts in
``AIP_*`` variables, Azure ML mounts the registered model at ``AZUREML_MODEL_DIR`` (in a subfolder when a
folder was registered). ``platform_settings`` turns that into liveml settings (every interface, port
8080, batch-sized requests, no per-caller limits behind a platform that authenticates), ``model_folder``
finds the model to serve, and ``assemble`` builds the registry, host and API context that ``liveml
serve`` and the AWS Lambda handler both run.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from liveml.errors import Invalid, NotFound
from liveml.settings import Settings

if TYPE_CHECKING:
    from liveml.api.context import ApiContext
    from liveml.registry import Registry
    from liveml.serving import ModelHost
    from liveml.serving.host import HostOptions

Platform = Literal["sagemaker", "vertex", "azure"]
SAGEMAKER_MODEL_DIR = Path("/opt/ml/model")
#: the port SageMaker probes, and the one liveml's images declare for Vertex AI and Azure ML
CLOUD_PORT = 8080
MIB = 1024 * 1024
#: in a Batch Transform the payload size bounds a request, not a row count
BATCH_MAX_ROWS = 1_000_000_000
#: behind a platform every request comes from its front end's address: one "caller" for everyone
PLATFORM_MAX_CONCURRENT = 10_000
#: how deep Azure's mounted folder may nest the model (AZUREML_MODEL_DIR/<registered folder>/...)
MAX_DEPTH = 3


def platform_of(settings: Settings) -> Platform | None:
    """The managed cloud this process runs under, from the variables each sets; None for none."""
    if settings.azureml_model_dir is not None:
        return "azure"
    if settings.vertex_predict_route or settings.vertex_health_route or settings.vertex_storage_uri:
        return "vertex"
    if settings.sagemaker_batch or _implicit_sagemaker(settings):
        return "sagemaker"
    return None


def _implicit_sagemaker(settings: Settings) -> bool:
    return settings.model_dir is None and settings.database_url is None and SAGEMAKER_MODEL_DIR.is_dir()


def platform_settings(settings: Settings) -> Settings:
    """``settings`` with each platform's needs where the operator did not say otherwise: every interface
    and port 8080 on a managed cloud; in a SageMaker Batch Transform no row limit and a body limit of at
    least MaxPayloadInMB; behind a platform that authenticates callers (``platform_auth``), no per-caller
    rate or concurrency limit, since every request arrives from the platform's own front end."""
    given = settings.model_fields_set
    update: dict[str, Any] = {}
    if platform_of(settings) is not None:
        if "server_host" not in given:
            update["server_host"] = "0.0.0.0"  # the platform probes from outside
        if "server_port" not in given:
            update["server_port"] = CLOUD_PORT
    if settings.sagemaker_batch:
        if "max_request_rows" not in given:
            update["max_request_rows"] = BATCH_MAX_ROWS
        if settings.sagemaker_max_payload_mb:
            update["max_body_bytes"] = max(settings.max_body_bytes, settings.sagemaker_max_payload_mb * MIB)
    if settings.platform_auth:
        if "rate_limit_per_s" not in given:
            update["rate_limit_per_s"] = 0.0
        if "max_concurrent_per_key" not in given:
            update["max_concurrent_per_key"] = PLATFORM_MAX_CONCURRENT
    return settings.model_copy(update=update) if update else settings


def model_folder(settings: Settings, *, given: Path | None = None) -> Path | None:
    """The folder of the one model to serve, or None to serve the registry's models. In order: ``given``
    (``--model-dir``); the platform's own location (AZUREML_MODEL_DIR, AIP_STORAGE_URI; unless a registry
    database is configured); ``model_dir``
    (LIVEML_MODEL_DIR, e.g. a model image's baked-in bundle); SageMaker's ``/opt/ml/model`` when it
    exists and no registry database is configured."""
    if given is not None:
        return given
    if settings.database_url is None:  # a configured registry database is served instead
        if settings.azureml_model_dir is not None:
            return azure_model_folder(settings.azureml_model_dir)
        if settings.vertex_storage_uri:
            return vertex_model_folder(settings.vertex_storage_uri, settings.home_path / "vertex-model")
    if settings.model_dir is not None:
        return settings.model_dir
    return SAGEMAKER_MODEL_DIR if _implicit_sagemaker(settings) else None


def azure_model_folder(root: Path) -> Path:
    """The folder holding the model under Azure's mount: ``root`` itself (a registered file, or a
    registered folder's content) or the one subfolder a registered folder keeps its name as."""
    from liveml.serving.model_dir import SKIP, model_file

    where = f"AZUREML_MODEL_DIR ({root})"
    if not root.is_dir():
        raise NotFound(f"{where} does not exist; attach the model to the deployment (model: in its YAML)")
    folder = root
    for _ in range(MAX_DEPTH):
        try:
            model_file(folder)
            return folder
        except Invalid as exc:
            entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in SKIP]
            folders = [p for p in entries if p.is_dir()]
            if len(folders) != 1 or _holds_model_files(folder):
                raise Invalid(f"{where}: {exc.message}") from exc
            folder = folders[0]
    raise Invalid(f"{where}: no model within {MAX_DEPTH} folder levels; register the bundle folder itself")


def _holds_model_files(folder: Path) -> bool:
    from liveml.registry.bundle import MANIFEST
    from liveml.runtimes import detect_format

    for path in folder.iterdir():
        if path.is_file() and not path.name.startswith("."):
            if path.name == MANIFEST:
                return True
            with contextlib.suppress(Invalid):
                detect_format(path)
                return True
    return False


def vertex_model_folder(uri: str, download_to: Path) -> Path:
    """Vertex AI's AIP_STORAGE_URI as a local folder: a path or ``file://`` URL as it is; any other
    fsspec URL (``gs://`` with gcsfs installed) downloaded, every file under it, into ``download_to``."""
    if "://" not in uri:
        return Path(uri)
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        scheme = uri.split("://", 1)[0]
        fix = (
            "pip install gcsfs"
            if scheme in ("gs", "gcs")
            else f"install the fsspec filesystem for {scheme}://"
        )
        raise Invalid(f"AIP_STORAGE_URI {uri!r} cannot be read here ({exc}); {fix} in the image") from exc
    root = root.rstrip("/")
    files = [root] if fs.isfile(root) else sorted(fs.find(root))
    if not files:
        raise NotFound(f"AIP_STORAGE_URI {uri!r} holds no files; give the model's folder as artifactUri")
    shutil.rmtree(download_to, ignore_errors=True)
    for remote in files:
        relative = remote[len(root) :].lstrip("/") or Path(remote).name
        local = download_to / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(remote, str(local))
    return download_to


@dataclass(frozen=True)
class Assembled:
    """A model server's parts: what ``create_app`` needs, and what was decided on the way."""

    settings: Settings
    registry: Registry
    host: ModelHost
    context: ApiContext
    #: the model folder served (no registry database), or None for the registry's models
    folder: Path | None
    #: what the model folder was registered as, e.g. ``churn:1``
    served: str | None = None


def host_options(settings: Settings, **flags: Any) -> HostOptions:
    """The host's options from the settings, plus ``liveml serve``'s flags (batching, compiled, ...)."""
    from liveml.serving.host import HostOptions

    return HostOptions(
        poll_interval_s=settings.alias_poll_s,
        max_rows=settings.max_request_rows,
        lazy=settings.lazy_load,
        **flags,
    )


def assemble(
    settings: Settings, *, require_keys: bool, options: HostOptions, folder: Path | None = None
) -> Assembled:
    """The registry, host and API context of a server with these settings: over the registry's models,
    or over the one model in ``folder`` (pushed into a registry of its own under the data home)."""
    from liveml.api.auth import AuthConfig
    from liveml.api.context import ApiContext
    from liveml.monitoring.log import sink_for
    from liveml.registry import Registry
    from liveml.serving import ModelHost

    registry = Registry(settings, create=folder is not None)
    refs = settings.serve_models
    default_model = settings.default_model
    served = None
    if folder is not None:
        name = _folder_model_name(folder, settings)
        try:
            from liveml.serving.model_dir import register_model_dir

            served = register_model_dir(registry, folder, name=name)
        except BaseException:
            registry.close()
            raise
        refs, default_model = [name], name
    host = ModelHost(registry, refs=refs, sink=sink_for(settings), options=options)
    context = ApiContext(
        host=host,
        max_body_bytes=settings.max_body_bytes,
        default_model=default_model,
        vertex_predict_route=settings.vertex_predict_route,
        vertex_health_route=settings.vertex_health_route,
        auth=AuthConfig.from_settings(settings, require_keys=require_keys),
    )
    return Assembled(settings, registry, host, context, folder, served)


def _folder_model_name(folder: Path, settings: Settings) -> str:
    """A bundle keeps its model's name; a bare model file is served as ``default_model`` or ``model``."""
    from liveml.registry.bundle import read_bundle

    manifest = read_bundle(folder) if folder.is_dir() else None
    if manifest is not None:
        return manifest.name
    return settings.default_model or "model"


__all__ = [
    "CLOUD_PORT",
    "SAGEMAKER_MODEL_DIR",
    "Assembled",
    "Platform",
    "assemble",
    "azure_model_folder",
    "host_options",
    "model_folder",
    "platform_of",
    "platform_settings",
    "vertex_model_folder",
]
