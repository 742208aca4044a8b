"""liveml on KServe: a ``ServingRuntime`` (serving.kserve.io/v1alpha1) that runs a liveml image as the
runtime of the model formats liveml loads, and an ``InferenceService`` (serving.kserve.io/v1beta1).

The InferenceService runs the image as a custom predictor (``kserve-container``) when the model is baked
into a model image; with ``--storage-uri`` it names the runtime instead, and KServe's storage initializer
downloads the model (a bundle from ``liveml export`` or one model file) to ``/mnt/models``, which liveml
serves under the InferenceService's name. Field names follow KServe's API types
(``pkg/apis/serving/v1alpha1/servingruntime_types.go``, ``v1beta1/predictor.go``, ``component.go``).
"""

from __future__ import annotations

from typing import Any

from liveml.deploy.dockerfile import HOME
from liveml.deploy.k8s import K8sSpec, container, container_security, metadata, resources, writable_volumes

RUNTIME = "liveml"
#: KServe's container name for the predictor; it must be this for KServe to find the model server
CONTAINER = "kserve-container"
MODEL_MOUNT = "/mnt/models"
#: liveml format → the model-format name KServe's other runtimes use for it (TorchScript is "pytorch",
#: as in Triton's runtime); every other liveml format goes by "liveml"
KSERVE_FORMATS = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "onnx": "onnx",
    "torchscript": "pytorch",
}


def kserve_format(liveml_format: str | None) -> str:
    return KSERVE_FORMATS.get(liveml_format or "", RUNTIME)


def runtime_metadata(spec: K8sSpec) -> dict[str, Any]:
    """The runtime serves any model of its formats: no model labels."""
    meta: dict[str, Any] = {"name": RUNTIME}
    if spec.namespace:
        meta["namespace"] = spec.namespace
    meta["labels"] = {
        "app.kubernetes.io/name": "liveml",
        "app.kubernetes.io/component": "kserve-runtime",
        "app.kubernetes.io/managed-by": "liveml",
    }
    return meta


def serving_runtime(spec: K8sSpec) -> dict[str, Any]:
    """The runtime: the standard format names are listed without ``autoSelect``, so liveml never takes
    an InferenceService from KServe's own runtimes unless it names ``runtime: liveml``."""
    formats: list[dict[str, Any]] = [
        {"name": name, "autoSelect": False} for name in sorted(set(KSERVE_FORMATS.values()))
    ]
    formats.append({"name": RUNTIME, "autoSelect": True})
    volumes, mounts = writable_volumes()
    env = [
        {"name": "LIVEML_HOME", "value": HOME},
        # KServe's ingress (or the mesh in front of it) is what authenticates callers
        {"name": "LIVEML_PLATFORM_AUTH", "value": "true"},
    ]
    runtime_container = {
        "name": CONTAINER,
        "image": str(spec.image),
        "args": [
            "serve",
            f"--model-dir={MODEL_MOUNT}",
            "--default-model={{.Name}}",
            "--host=0.0.0.0",
            f"--port={spec.port}",
        ],
        "env": env,
        "ports": [{"containerPort": spec.port, "protocol": "TCP"}],
        "resources": resources(spec),
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }
    body: dict[str, Any] = {
        "annotations": {"prometheus.kserve.io/port": str(spec.port), "prometheus.kserve.io/path": "/metrics"},
        "supportedModelFormats": formats,
        "protocolVersions": ["v1", "v2"],
        "multiModel": False,
        "containers": [runtime_container],
        "volumes": volumes,
    }
    if spec.image_pull_secret:
        body["imagePullSecrets"] = [{"name": spec.image_pull_secret}]
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": runtime_metadata(spec),
        "spec": body,
    }


def inference_service(spec: K8sSpec) -> dict[str, Any]:
    # The deployment mode, and with it the autoscaler's metric, is left to the cluster's KServe: scaleMetric
    # cpu is refused in Knative (serverless) mode, and the raw mode's name changed across KServe releases.
    predictor: dict[str, Any] = {
        "minReplicas": spec.min_replicas,
        "maxReplicas": spec.max_replicas,
        "annotations": {"prometheus.kserve.io/port": str(spec.port), "prometheus.kserve.io/path": "/metrics"},
    }
    if spec.storage_uri:
        predictor["model"] = {
            "modelFormat": {"name": kserve_format(spec.model_format)},
            "runtime": RUNTIME,
            "storageUri": spec.storage_uri,
            "protocolVersion": "v2",
            "resources": resources(spec),
        }
    else:
        volumes, _ = writable_volumes()
        custom = container(spec, name=CONTAINER, port_name=None)  # Knative wants an unnamed single port
        # what Knative (serverless mode) refuses in a container, or takes care of itself: drain (its
        # queue-proxy), startup and liveness (a slow model load would be killed without a startup probe)
        for knative_refuses in ("lifecycle", "startupProbe", "livenessProbe"):
            custom.pop(knative_refuses)
        predictor["containers"] = [custom]
        predictor["volumes"] = volumes
        if spec.image_pull_secret:
            predictor["imagePullSecrets"] = [{"name": spec.image_pull_secret}]
    meta = metadata(spec, spec.name)
    meta["annotations"] = {"serving.kserve.io/enable-prometheus-scraping": "true"}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": meta,
        "spec": {"predictor": predictor},
    }


def manifests(spec: K8sSpec) -> dict[str, dict[str, Any]]:
    return {"servingruntime.yaml": serving_runtime(spec), "inferenceservice.yaml": inference_service(spec)}


__all__ = ["KSERVE_FORMATS", "RUNTIME", "inference_service", "kserve_format", "manifests", "serving_runtime"]
