"""What ``liveml k8s`` is asked for, checked: Kubernetes names, replicas, resource quantities, the image
reference and the pods' settings, gathered in the :class:`K8sSpec` that :mod:`liveml.deploy.k8s` turns
into objects. Every check names the option at fault and how to fix it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from liveml.deploy.dockerfile import HOME, MODEL_DIR, PORT
from liveml.errors import Invalid
from liveml.registry.names import parse_ref
from liveml.settings import Settings

if TYPE_CHECKING:
    from liveml.registry.types import ModelVersion

Shape = Literal["model", "server"]
Auth = Literal["platform", "keys"]
Object = dict[str, Any]

SHAPES: tuple[Shape, ...] = ("model", "server")
AUTHS: tuple[Auth, ...] = ("platform", "keys")
MAX_NAME = 52  # room for the suffixes of the objects derived from the name (-settings, -dashboard, ...)
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_RFC1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CPU = re.compile(r"(\d+m|\d+(\.\d+)?)")
_MEMORY = re.compile(r"\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IMAGE_PART = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_IMAGE_NAME = re.compile(rf"(?:[A-Za-z0-9.-]+(?::\d+)?/)?{_IMAGE_PART}(?:/{_IMAGE_PART})*")
_TAG = re.compile(r"\w[\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")
_SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "API_KEY", "ACCESS_KEY", "PRIVATE", "CREDENTIAL")
_SECRET_KEYS = {"LIVEML_DATABASE_URL", "LIVEML_API_KEY", "LIVEML_SMTP_PASSWORD"}


@dataclass(frozen=True)
class Image:
    """An OCI image reference split the way kustomize's ``images:`` entries name it."""

    name: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


@dataclass(frozen=True)
class K8sSpec:
    """Everything the manifests say; build it with :func:`make_spec`, which checks every field."""

    name: str
    image: Image
    shape: Shape = "model"
    namespace: str | None = None
    min_replicas: int = 2
    max_replicas: int = 2
    port: int = PORT
    cpu: tuple[str, str | None] = ("500m", None)
    memory: tuple[str, str | None] = ("512Mi", "1Gi")
    cpu_target: int = 70
    workers: int = 1
    auth: Auth = "platform"
    secret: str | None = None
    config_map: str | None = None
    image_pull_secret: str | None = None
    #: the non-secret settings the pods read (the ConfigMap the tool writes)
    settings: dict[str, str] = field(default_factory=dict)
    #: model shape: the version baked into the image (labels and annotations)
    model: str | None = None
    version: int | None = None
    model_format: str | None = None
    sha256: str | None = None
    ref: str | None = None
    dashboard: bool = True
    prometheus_rule: bool = False
    kserve: bool = False
    storage_uri: str | None = None

    @property
    def autoscaled(self) -> bool:
        return self.max_replicas > self.min_replicas

    @property
    def settings_name(self) -> str:
        return f"{self.name}-settings"


# -- checking what people type ----------------------------------------------------------------------
def check_name(name: str, what: str = "--name") -> str:
    """A DNS-1035 label (what Services and InferenceServices need), short enough for derived names."""
    if not _DNS_LABEL.fullmatch(name) or len(name) > MAX_NAME:
        raise Invalid(
            f"{what} {name!r} is not a valid Kubernetes name: use at most {MAX_NAME} lower-case letters, digits "
            "and '-', starting with a letter and ending with a letter or digit (RFC 1123/1035), e.g. churn-prod"
        )
    return name


def check_object_name(name: str, what: str) -> str:
    """The name of an existing object (Secret, ConfigMap): an RFC 1123 subdomain."""
    if not _SUBDOMAIN.fullmatch(name) or len(name) > 253:
        raise Invalid(
            f"{what} {name!r} is not a valid Kubernetes object name: use lower-case letters, digits, '-' and "
            "'.', starting and ending with a letter or digit (RFC 1123), e.g. liveml-db"
        )
    return name


def check_namespace(namespace: str) -> str:
    if not _RFC1123_LABEL.fullmatch(namespace) or len(namespace) > 63:
        raise Invalid(
            f"--namespace {namespace!r} is not a valid namespace: use at most 63 lower-case letters, digits "
            "and '-', starting and ending with a letter or digit (RFC 1123), e.g. ml-serving"
        )
    return namespace


def name_for_model(model: str) -> str:
    """The Kubernetes name a model gets by default: ``Churn_Model.v2`` → ``churn-model-v2``."""
    name = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")[:MAX_NAME].rstrip("-")
    if not name or not name[0].isalpha():
        raise Invalid(
            f"model name {model!r} does not make a valid Kubernetes name; give one with --name "
            "(lower-case letters, digits and '-', starting with a letter), e.g. --name churn"
        )
    return name


def parse_replicas(text: str) -> tuple[int, int]:
    """``N`` (a fixed count) or ``MIN..MAX`` (a HorizontalPodAutoscaler between them)."""
    low, sep, high = text.strip().partition("..")
    try:
        lo, hi = int(low), int(high if sep else low)
    except ValueError:
        raise Invalid(
            f"--replicas {text!r} is not N or MIN..MAX: give whole numbers, e.g. --replicas 3 or --replicas 2..10"
        ) from None
    if lo < 1:
        raise Invalid(
            f"--replicas {text!r}: at least 1 replica is needed (scale to zero needs KServe's serverless "
            "mode: see --kserve)"
        )
    if hi < lo:
        raise Invalid(
            f"--replicas {text!r}: the minimum {lo} is above the maximum {hi}; write MIN..MAX, e.g. {hi}..{lo}"
        )
    if hi > 1000:
        raise Invalid(f"--replicas {text!r}: at most 1000 replicas")
    return lo, hi


def _quantity(value: str, kind: Literal["cpu", "memory"]) -> float:
    units = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
    units |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
    number = re.match(r"\d+(\.\d+)?", value)
    assert number is not None
    return float(number.group()) * units.get(value[number.end() :], 1.0)


def parse_resource(text: str, kind: Literal["cpu", "memory"]) -> tuple[str, str | None]:
    """``REQUEST`` or ``REQUEST:LIMIT`` in Kubernetes quantities (``500m``, ``2``; ``512Mi``, ``1Gi``)."""
    pattern, example = (_CPU, "500m or 500m:2") if kind == "cpu" else (_MEMORY, "512Mi or 512Mi:1Gi")
    request, _, limit = text.strip().partition(":")
    for value in (request, limit) if limit else (request,):
        if not pattern.fullmatch(value):
            raise Invalid(
                f"--{kind} {text!r}: {value!r} is not a Kubernetes {kind} quantity; give REQUEST or "
                f"REQUEST:LIMIT, e.g. --{kind} {example}"
            )
    if _quantity(request, kind) <= 0:
        raise Invalid(f"--{kind} {text!r}: the request must be above zero (the autoscaler divides by it)")
    if limit and _quantity(limit, kind) < _quantity(request, kind):
        raise Invalid(f"--{kind} {text!r}: the limit {limit} is below the request {request}")
    return request, limit or None


def parse_image(text: str) -> Image:
    """``[REGISTRY/]REPOSITORY[:TAG][@DIGEST]``, as Docker and kustomize read it."""
    rest, _, digest = text.strip().partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    name, tag = (rest[:colon], rest[colon + 1 :]) if colon > slash else (rest, "")
    if (
        not _IMAGE_NAME.fullmatch(name)
        or (tag and not _TAG.fullmatch(tag))
        or ("@" in text and not _DIGEST.fullmatch(digest))
    ):
        raise Invalid(
            f"--image {text!r} is not an image reference: use [REGISTRY/]REPOSITORY[:TAG][@DIGEST] with a "
            "lower-case repository, e.g. ghcr.io/acme/churn:4 (see `liveml build`)"
        )
    return Image(name, tag or None, digest or None)


def setting_names() -> dict[str, str]:
    """Every environment variable liveml's settings read → the setting it sets."""
    names: dict[str, str] = {}
    for key, info in Settings.model_fields.items():
        choices = getattr(info.validation_alias, "choices", None)
        found = [c for c in choices or () if isinstance(c, str) and c.isupper()]
        for env in found or [f"LIVEML_{key.upper()}"]:
            names[env] = key
    return names


#: the settings `liveml k8s` writes itself, and how each is changed
MANAGED = {
    "LIVEML_HOME": "it is the pods' writable emptyDir volume",
    "LIVEML_SERVER_HOST": "the pods listen on every interface",
    "LIVEML_SERVER_PORT": "change it with --port",
    "LIVEML_MODEL_DIR": "the model shape serves the image's /opt/ml/model",
    "LIVEML_PLATFORM_AUTH": "change it with --auth",
    "LIVEML_AUTH": "change it with --auth",
    "LIVEML_SERVE_MODELS": "give the references as REF (--shape server)",
}


def parse_env(items: list[str] | None) -> dict[str, str]:
    """``--env KEY=VALUE``: non-secret settings for the ConfigMap; secret-looking keys are refused."""
    import difflib

    known = setting_names()
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not _ENV_KEY.fullmatch(key):
            raise Invalid(
                f"--env {item!r} is not KEY=VALUE with a variable name, e.g. --env LIVEML_LOG_URL=s3://logs/churn"
            )
        if "\n" in value:
            raise Invalid(f"--env {key}: the value has a line break; environment values are one line")
        if key in _SECRET_KEYS or any(word in key.upper() for word in _SECRET_WORDS):
            raise Invalid(
                f"--env {key} looks like a secret, and --env values are written in plain text into a ConfigMap. "
                f"Keep it in a Secret (kubectl create secret generic NAME --from-literal={key}=...) and pass "
                "--secret NAME: the pods read every key of that Secret as an environment variable"
            )
        if key in MANAGED:
            raise Invalid(f"--env {key}: liveml k8s sets it itself; {MANAGED[key]}")
        if key.startswith("LIVEML_") and key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else "; see docs/settings.md for the settings"
            raise Invalid(f"--env {key} is not a liveml setting{hint}")
        out[key] = value
    return out


# -- what the pods read -----------------------------------------------------------------------------
def settings_for(
    shape: Shape,
    *,
    port: int,
    auth: Auth,
    model: str | None = None,
    serve_models: list[str] | None = None,
    artifact_root: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The ConfigMap's content: where the server listens and writes, what it serves, who checks callers."""
    settings = {"LIVEML_HOME": HOME, "LIVEML_SERVER_HOST": "0.0.0.0", "LIVEML_SERVER_PORT": str(port)}
    if shape == "model":
        settings["LIVEML_MODEL_DIR"] = MODEL_DIR
        if model is not None:
            settings["LIVEML_DEFAULT_MODEL"] = model
    elif serve_models:
        settings["LIVEML_SERVE_MODELS"] = json.dumps(serve_models)
    # the images default to platform auth; API keys need it off explicitly
    settings["LIVEML_PLATFORM_AUTH"] = "true" if auth == "platform" else "false"
    if artifact_root:
        settings["LIVEML_ARTIFACT_ROOT"] = artifact_root
    settings.update(extra or {})
    return settings


def serve_refs(text: str | None) -> list[str] | None:
    """The server shape's REF: comma-separated references to serve (none: every model)."""
    if text is None or not text.strip():
        return None
    return [str(parse_ref(part)) for part in text.split(",") if part.strip()]


def make_spec(
    *,
    image: str,
    shape: str = "model",
    ref: str | None = None,
    version: ModelVersion | None = None,
    name: str | None = None,
    namespace: str | None = None,
    replicas: str = "2",
    port: int = PORT,
    cpu: str = "500m",
    memory: str = "512Mi:1Gi",
    cpu_target: int = 70,
    workers: int = 1,
    auth: str | None = None,
    secret: str | None = None,
    config_map: str | None = None,
    image_pull_secret: str | None = None,
    artifact_root: str | None = None,
    env: list[str] | None = None,
    dashboard: bool = True,
    prometheus_rule: bool = False,
    kserve: bool = False,
    storage_uri: str | None = None,
) -> K8sSpec:
    """Check every option and build the spec; ``version`` is the model shape's resolved version."""
    if shape not in SHAPES:
        raise Invalid(
            f"--shape {shape!r} is not one of {', '.join(SHAPES)}: model (one version baked into the "
            "image) or server (the image reads the shared registry)"
        )
    auth = auth or ("platform" if shape == "model" else "keys")
    if auth not in AUTHS:
        raise Invalid(
            f"--auth {auth!r} is not one of {', '.join(AUTHS)}: platform (an authenticating ingress "
            "or mesh in front checks callers) or keys (liveml API keys in the shared registry)"
        )
    if shape == "model" and version is None:
        raise Invalid("the model shape needs a model reference, e.g. liveml k8s churn@production --image ...")
    if shape == "model" and auth == "keys":
        raise Invalid(
            "--auth keys needs the shared registry, where API keys live; a model image has none. Use --auth "
            "platform with an authenticating ingress or mesh in front, or --shape server with --secret"
        )
    if shape == "server" and not secret:
        raise Invalid(
            "the server shape reads the shared registry: give --secret NAME, an existing Secret holding "
            "LIVEML_DATABASE_URL (and the object store's credentials), e.g. kubectl create secret generic "
            "liveml-db --from-literal=LIVEML_DATABASE_URL=postgresql://..."
        )
    if storage_uri and not kserve:
        raise Invalid("--storage-uri is where KServe downloads the model from: it goes with --kserve")
    if not 1024 <= port <= 65535:
        raise Invalid(
            f"--port {port}: use 1024-65535 (the container runs as a non-root user, which cannot "
            "bind ports below 1024)"
        )
    if not 1 <= cpu_target <= 100:
        raise Invalid(
            f"--cpu-target {cpu_target}: give a percentage of the CPU request from 1 to 100, e.g. 70"
        )
    if workers < 1:
        raise Invalid(f"--workers {workers}: at least 1")
    low, high = parse_replicas(replicas)
    model = version.model if version is not None else None
    extra = parse_env(env)
    return K8sSpec(
        name=check_name(name) if name else (name_for_model(model) if model else "liveml"),
        image=parse_image(image),
        shape="model" if shape == "model" else "server",
        namespace=check_namespace(namespace) if namespace else None,
        min_replicas=low,
        max_replicas=high,
        port=port,
        cpu=parse_resource(cpu, "cpu"),
        memory=parse_resource(memory, "memory"),
        cpu_target=cpu_target,
        workers=workers,
        auth="platform" if auth == "platform" else "keys",
        secret=check_object_name(secret, "--secret") if secret else None,
        config_map=check_object_name(config_map, "--config-map") if config_map else None,
        image_pull_secret=check_object_name(image_pull_secret, "--image-pull-secret")
        if image_pull_secret
        else None,
        settings=settings_for(
            "model" if shape == "model" else "server",
            port=port,
            auth="platform" if auth == "platform" else "keys",
            model=model,
            serve_models=serve_refs(ref) if shape == "server" else None,
            artifact_root=artifact_root,
            extra=extra,
        ),
        model=model,
        version=version.version if version is not None else None,
        model_format=version.format if version is not None else None,
        sha256=version.sha256 if version is not None else None,
        ref=ref,
        dashboard=dashboard,
        prometheus_rule=prometheus_rule,
        kserve=kserve,
        storage_uri=storage_uri,
    )


def notes(spec: K8sSpec) -> list[str]:
    """What a reader of the manifests should know before applying them (printed to stderr)."""
    out: list[str] = []
    if spec.image.digest is None and spec.image.tag in (None, "latest"):
        out.append(
            f"--image {spec.image} has no pinned tag: pods started later (autoscaling, node moves) may run "
            "another build; give a tag or a digest"
        )
    if spec.auth == "platform":
        out.append(
            "API keys are off (--auth platform): put an authenticating ingress, gateway or mesh in front; any "
            "pod that reaches the Service can call every endpoint"
        )
    else:
        out.append(
            "/metrics needs an API key with the read permission: give Prometheus a viewer key "
            "(`liveml keys create --role viewer`) as its bearer token (docs/observability.md)"
        )
    if spec.shape == "server" and "LIVEML_ARTIFACT_ROOT" not in spec.settings and not spec.config_map:
        out.append(
            "no --artifact-root: the Secret must hold LIVEML_ARTIFACT_ROOT (e.g. s3://bucket/models), or "
            "every pod keeps artifacts in its own emptyDir"
        )
    if "LIVEML_LOG_URL" not in spec.settings:
        out.append(
            "the prediction log stays in each pod's emptyDir and is lost with the pod; keep it with "
            "--env LIVEML_LOG_URL=s3://bucket/predictions (credentials in the --secret)"
        )
    return out


__all__ = [
    "AUTHS",
    "MAX_NAME",
    "SHAPES",
    "Auth",
    "Image",
    "K8sSpec",
    "Object",
    "Shape",
    "check_name",
    "check_namespace",
    "check_object_name",
    "make_spec",
    "name_for_model",
    "notes",
    "parse_env",
    "parse_image",
    "parse_replicas",
    "parse_resource",
    "serve_refs",
    "setting_names",
    "settings_for",
]
