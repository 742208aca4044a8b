"""Kubernetes manifests for liveml images: a Deployment with probes, a hardened pod, graceful drain and
Prometheus annotations, a Service, a HorizontalPodAutoscaler, a PodDisruptionBudget, the settings
ConfigMap and a kustomization; the dashboard and alert rules come from
:mod:`liveml.deploy.k8s_observability`, KServe's objects from :mod:`liveml.deploy.kserve`, the checked
options from :mod:`liveml.deploy.k8s_options`.

Two image shapes (see :mod:`liveml.deploy.dockerfile`): a *model* image serves the one version baked in
at ``/opt/ml/model`` with no database; a *server* image reads the shared registry (PostgreSQL and an object
store) and follows alias moves. Secret values never enter a file written here: the pods read them from an
existing Secret by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from liveml.deploy.dockerfile import HOME, UID
from liveml.deploy.k8s_options import K8sSpec, Object
from liveml.errors import Invalid

#: seconds the pod keeps serving after it is marked for deletion, so every endpoint list drops it first
DRAIN_S = 10
#: uvicorn finishes the requests in flight for up to this long after SIGTERM (cli/serve.py)
GRACEFUL_S = 30
_LABEL_VALUE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def _label_value(value: str) -> str | None:
    return value if len(value) <= 63 and _LABEL_VALUE.fullmatch(value) else None


# -- the objects ------------------------------------------------------------------------------------
def selector(spec: K8sSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": "liveml", "app.kubernetes.io/instance": spec.name}


def labels(spec: K8sSpec) -> dict[str, str]:
    out = {
        **selector(spec),
        "app.kubernetes.io/component": "model-server" if spec.shape == "model" else "server",
        "app.kubernetes.io/managed-by": "liveml",
    }
    model = _label_value(spec.model or "")
    if model:
        out["liveml.io/model"] = model
    if spec.version is not None:
        out["liveml.io/model-version"] = str(spec.version)
    return out


def metadata(spec: K8sSpec, name: str, **extra: Any) -> Object:
    meta: Object = {"name": name}
    if spec.namespace:
        meta["namespace"] = spec.namespace
    meta["labels"] = labels(spec)
    meta.update(extra)
    return meta


def pod_annotations(spec: K8sSpec) -> dict[str, str]:
    out: dict[str, str] = {}
    if spec.ref:
        out["liveml.io/ref"] = spec.ref
    if spec.model is not None and spec.version is not None:
        out["liveml.io/version"] = f"{spec.model}:{spec.version}"
    if spec.sha256:
        out["liveml.io/sha256"] = spec.sha256
    return out


def resources(spec: K8sSpec) -> Object:
    requests = {"cpu": spec.cpu[0], "memory": spec.memory[0]}
    limits = {k: v for k, v in (("cpu", spec.cpu[1]), ("memory", spec.memory[1])) if v}
    return {"requests": requests, **({"limits": limits} if limits else {})}


def probe(path: str, port: int | str, *, period: int, failures: int) -> Object:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def container_security() -> Object:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def writable_volumes() -> tuple[list[Object], list[Object]]:
    """The emptyDirs a read-only root filesystem needs: the data home (SQLite registry of a model image,
    caches, the prediction log unless LIVEML_LOG_URL points elsewhere) and /tmp."""
    volumes = [{"name": "home", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
    mounts = [{"name": "home", "mountPath": HOME}, {"name": "tmp", "mountPath": "/tmp"}]
    return volumes, mounts


def serve_args(spec: K8sSpec) -> list[str]:
    return ["serve", *(["--workers", str(spec.workers)] if spec.workers > 1 else [])]


def container(spec: K8sSpec, *, name: str = "liveml", port_name: str | None = "http") -> Object:
    """The liveml container: probes, resources, hardening, drain; shared by the Deployment and KServe."""
    port: int | str = port_name or spec.port
    env_from: list[Object] = [{"configMapRef": {"name": spec.settings_name}}]
    if spec.config_map:
        env_from.append({"configMapRef": {"name": spec.config_map}})
    if spec.secret:
        env_from.append({"secretRef": {"name": spec.secret}})
    _, mounts = writable_volumes()
    ports: Object = {"containerPort": spec.port, "protocol": "TCP"}
    if port_name:
        ports = {"name": port_name, **ports}
    return {
        "name": name,
        "image": str(spec.image),
        "imagePullPolicy": "IfNotPresent",
        "args": serve_args(spec),
        "ports": [ports],
        "envFrom": env_from,
        "resources": resources(spec),
        # loading a big model can take minutes: the startup probe holds the other two off until ready
        "startupProbe": probe("/v2/health/ready", port, period=5, failures=120),
        "readinessProbe": probe("/v2/health/ready", port, period=5, failures=2),
        "livenessProbe": probe("/v2/health/live", port, period=10, failures=3),
        # keep serving while the endpoints controller and every kube-proxy drop this pod, then SIGTERM
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(DRAIN_S)]}}},
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }


def pod_security() -> Object:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def deployment(spec: K8sSpec) -> Object:
    volumes, _ = writable_volumes()
    pod: Object = {
        "automountServiceAccountToken": False,
        # a Service named like liveml-server would otherwise inject LIVEML_SERVER_PORT=tcp://... into the pod
        "enableServiceLinks": False,
        "securityContext": pod_security(),
        "terminationGracePeriodSeconds": DRAIN_S + GRACEFUL_S + 5,
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector(spec)},
            }
            for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
        ],
        "containers": [container(spec)],
        "volumes": volumes,
    }
    if spec.image_pull_secret:
        pod["imagePullSecrets"] = [{"name": spec.image_pull_secret}]
    scrape = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(spec.port),
        "prometheus.io/path": "/metrics",
    }
    body: Object = {}
    if not spec.autoscaled:  # with an autoscaler the count is its business: `kubectl apply` must not reset it
        body["replicas"] = spec.min_replicas
    body |= {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector(spec)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": labels(spec), "annotations": {**scrape, **pod_annotations(spec)}},
            "spec": pod,
        },
    }
    meta = metadata(
        spec, spec.name, **({"annotations": pod_annotations(spec)} if pod_annotations(spec) else {})
    )
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": body}


def service(spec: K8sSpec) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(spec, spec.name),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(spec),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def autoscaler(spec: K8sSpec) -> Object:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(spec, spec.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": spec.min_replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": spec.cpu_target},
                    },
                }
            ],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0},
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
                },
            },
        },
    }


def disruption_budget(spec: K8sSpec) -> Object:
    # maxUnavailable (not minAvailable): node drains go on even with one replica, one pod at a time
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(spec, spec.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(spec)}},
    }


def settings_config_map(spec: K8sSpec) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(spec, spec.settings_name),
        "data": dict(spec.settings),
    }


def manifests(spec: K8sSpec) -> dict[str, Object]:
    """The core objects by file name (the settings ConfigMap apart: see :func:`write`)."""
    from liveml.deploy import k8s_observability as obs

    files = {"deployment.yaml": deployment(spec), "service.yaml": service(spec)}
    if spec.autoscaled:
        files["hpa.yaml"] = autoscaler(spec)
    files["pdb.yaml"] = disruption_budget(spec)
    if spec.dashboard:
        files["grafana-dashboard.yaml"] = obs.dashboard_config_map(spec)
    if spec.prometheus_rule:
        files["prometheusrule.yaml"] = obs.prometheus_rule(spec)
    return files


def objects(spec: K8sSpec) -> list[Object]:
    """Every object, in apply order: what ``liveml k8s`` prints without ``--out``."""
    from liveml.deploy import kserve

    out = [settings_config_map(spec), *manifests(spec).values()]
    if spec.kserve:
        out += list(kserve.manifests(spec).values())
    return out


# -- files --------------------------------------------------------------------------------------------
def dump(objects: list[Object]) -> str:
    """A multi-document YAML stream."""
    return "---\n".join(yaml.safe_dump(o, sort_keys=False, default_flow_style=False) for o in objects)


def kustomization(
    spec: K8sSpec, resources: list[str], *, settings_env: str | None = None, hash_names: bool = True
) -> Object:
    image: Object = {"name": spec.image.name}
    if spec.image.tag:
        image["newTag"] = spec.image.tag
    if spec.image.digest:
        image["digest"] = spec.image.digest
    out: Object = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    if spec.namespace:
        out["namespace"] = spec.namespace
    # `labels` (not the deprecated commonLabels): selectors stay as written, so overlays never break them
    out["labels"] = [{"pairs": {"app.kubernetes.io/part-of": "liveml"}, "includeSelectors": False}]
    out["resources"] = resources
    if settings_env:
        # a generated ConfigMap gets a content hash in its name: changing a setting rolls the pods
        generator: Object = {"name": spec.settings_name, "envs": [settings_env]}
        if not hash_names:  # kustomize cannot rename references inside custom resources (KServe's)
            generator["options"] = {"disableNameSuffixHash": True}
        out["configMapGenerator"] = [generator]
    out["images"] = [image]
    return out


def env_file(settings: Mapping[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def write(spec: K8sSpec, out: Path) -> list[Path]:
    """Write the manifests and kustomizations into ``out`` (created if needed); the paths written."""
    from liveml.deploy import k8s_observability as obs
    from liveml.deploy import kserve

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise Invalid(f"--out {str(out)!r} is a file; give a folder for the manifests")
    written: list[Path] = []

    def put(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    files = manifests(spec)
    put(out / "settings.env", env_file(spec.settings))
    for name, obj in files.items():
        put(out / name, dump([obj]))
    put(out / "kustomization.yaml", dump([kustomization(spec, list(files), settings_env="settings.env")]))
    put(out / "observability" / obs.DASHBOARD, obs.dashboard_text())
    put(out / "observability" / obs.RULES, obs.rules_text())
    if spec.kserve:
        extra = kserve.manifests(spec)
        put(out / "kserve" / "settings.env", env_file(spec.settings))
        for name, obj in extra.items():
            put(out / "kserve" / name, dump([obj]))
        put(
            out / "kserve" / "kustomization.yaml",
            dump([kustomization(spec, list(extra), settings_env="settings.env", hash_names=False)]),
        )
    return written


__all__ = [
    "DRAIN_S",
    "GRACEFUL_S",
    "container",
    "deployment",
    "dump",
    "kustomization",
    "labels",
    "manifests",
    "metadata",
    "objects",
    "resources",
    "selector",
    "write",
]
