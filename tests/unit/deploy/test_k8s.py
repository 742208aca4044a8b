"""`liveml k8s`: the manifests validate against Kubernetes' own OpenAPI schemas (the two newest minor
versions kubernetes-validate ships), build with `kubectl kustomize`, say what the issue asks (probes,
hardening, drain, autoscaling, settings, no secret values), and bad input gets a clear error. The KServe
objects are checked against a JSON schema written from KServe's API types (its CRDs are not in
kubernetes-validate), with the pod parts taken from Kubernetes' schemas."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes_validate import utils as kv
from referencing import Registry as SchemaRegistry
from referencing import Resource

from liveml import Registry, Settings
from liveml.deploy import k8s_observability as obs
from liveml.deploy.dockerfile import HOME, MODEL_DIR
from liveml.deploy.k8s_options import name_for_model, parse_image
from liveml.deploy.kserve import KSERVE_FORMATS
from liveml.errors import Invalid
from tests.unit.cli.conftest import Cli, cli  # noqa: F401 (the fixture, shared with the CLI tests)

ROOT = Path(__file__).resolve().parents[3]
IMAGE = "ghcr.io/acme/churn:4"
KUBECTL = shutil.which("kubectl")
Doc = dict[str, Any]


# -- schemas ------------------------------------------------------------------------------------------
def _minor(version: str) -> tuple[int, int]:
    major, minor = kv.major_minor(version).split(".")
    return int(major), int(minor)


@cache
def k8s_versions() -> tuple[str, ...]:
    """The two most recent minor versions kubernetes-validate ships schemas for (read from its data)."""
    minors = sorted({_minor(v) for v in kv.all_versions()})
    return tuple(f"{major}.{minor}" for major, minor in minors[-2:])


def validate_k8s(doc: Doc) -> None:
    """Strict (unknown fields are errors) against each of the two newest Kubernetes versions."""
    for version in k8s_versions():
        kv.validate(doc, version, strict=True)


@cache
def _definitions(version: str) -> Doc:
    full = [v for v in kv.all_versions() if kv.major_minor(v) == version][-1]
    defs: Doc = kv.schema_contents(f"kubernetes-json-schema/v{full}-local-strict/_definitions.json", version)
    return defs


def _k8s(name: str) -> Doc:
    return {"$ref": f"/api/_definitions.json#/$defs/io.k8s.api.core.v1.{name}"}


def _strings() -> Doc:
    return {"type": "object", "additionalProperties": {"type": "string"}}


@cache
def kserve_schemas(version: str) -> dict[str, Doc]:
    """ServingRuntime (v1alpha1) and InferenceService (v1beta1), field for field from KServe's Go types
    (servingruntime_types.go; predictor.go, predictor_model.go, component.go); containers, volumes and
    the PodSpec fields a predictor inlines come from Kubernetes' own schema."""
    # the definitions' own references are local to their file: point them at it from here
    defs = json.loads(
        json.dumps(_definitions(version)["$defs"]).replace('"#/$defs/', '"/api/_definitions.json#/$defs/')
    )
    container_props = defs["io.k8s.api.core.v1.Container"]["properties"]
    pod_props = defs["io.k8s.api.core.v1.PodSpec"]["properties"]
    meta = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "minLength": 1}},
    }
    protocols = {"enum": ["v1", "v2", "grpc-v1", "grpc-v2"]}
    runtime_spec = {
        "type": "object",
        "additionalProperties": False,
        "required": ["containers"],
        "properties": {
            "supportedModelFormats": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "version": {"type": "string"},
                        "autoSelect": {"type": "boolean"},
                        "priority": {"type": "integer", "minimum": 1},
                    },
                },
            },
            "multiModel": {"type": "boolean"},
            "disabled": {"type": "boolean"},
            "protocolVersions": {"type": "array", "items": protocols},
            "workerSpec": {"type": "object"},
            "containers": {"type": "array", "minItems": 1, "items": _k8s("Container")},
            "volumes": {"type": "array", "items": _k8s("Volume")},
            "nodeSelector": _strings(),
            "affinity": _k8s("Affinity"),
            "tolerations": {"type": "array", "items": _k8s("Toleration")},
            "labels": _strings(),
            "annotations": _strings(),
            "imagePullSecrets": {"type": "array", "items": _k8s("LocalObjectReference")},
            "hostIPC": {"type": "boolean"},
            "grpcEndpoint": {"type": "string"},
            "grpcDataEndpoint": {"type": "string"},
            "httpDataEndpoint": {"type": "string"},
            "replicas": {"type": "integer", "minimum": 0},
            "storageHelper": {"type": "object", "properties": {"disabled": {"type": "boolean"}}},
            "builtInAdapter": {"type": "object"},
        },
    }
    model_spec = {
        "type": "object",
        "additionalProperties": False,
        "required": ["modelFormat"],
        "properties": {
            **container_props,  # PredictorExtensionSpec inlines a Container
            "modelFormat": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1}, "version": {"type": "string"}},
            },
            "runtime": {"type": "string"},
            "storageUri": {"type": "string", "minLength": 1},
            "runtimeVersion": {"type": "string"},
            "protocolVersion": protocols,
            "storage": {"type": "object"},
        },
    }
    extension = {
        "minReplicas": {"type": "integer", "minimum": 0},
        "maxReplicas": {"type": "integer", "minimum": 0},
        "scaleTarget": {"type": "integer"},
        "scaleMetric": {"enum": ["cpu", "memory", "concurrency", "rps"]},
        "containerConcurrency": {"type": "integer", "minimum": 0},
        "timeout": {"type": "integer"},
        "canaryTrafficPercent": {"type": "integer"},
        "logger": {"type": "object"},
        "batcher": {"type": "object"},
        "labels": _strings(),
        "annotations": _strings(),
        "deploymentStrategy": {"type": "object"},
    }
    frameworks = ["sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface", "pmml"]
    predictor = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **pod_props,  # PredictorSpec inlines a PodSpec (containers optional there)
            **extension,
            **{f: {"type": "object"} for f in [*frameworks, "lightgbm", "paddle", "workerSpec"]},
            "model": model_spec,
            "storageUris": {"type": "array", "minItems": 1},
        },
    }

    def document(api: str, kind: str, spec: Doc) -> Doc:
        return {
            "$id": f"https://kubernetes.io/api/kserve-{kind.lower()}.json",
            "type": "object",
            "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": {
                "apiVersion": {"const": api},
                "kind": {"const": kind},
                "metadata": meta,
                "spec": spec,
            },
        }

    service_spec = {
        "type": "object",
        "additionalProperties": False,
        "required": ["predictor"],
        "properties": {
            "predictor": predictor,
            "transformer": {"type": "object"},
            "explainer": {"type": "object"},
        },
    }
    return {
        "ServingRuntime": document("serving.kserve.io/v1alpha1", "ServingRuntime", runtime_spec),
        "InferenceService": document("serving.kserve.io/v1beta1", "InferenceService", service_spec),
    }


@cache
def kserve_validator(version: str, kind: str) -> jsonschema.Draft202012Validator:
    registry = Resource.from_contents(_definitions(version)) @ SchemaRegistry()
    return jsonschema.Draft202012Validator(kserve_schemas(version)[kind], registry=registry)


def validate_kserve(doc: Doc) -> None:
    for version in k8s_versions():
        kserve_validator(version, doc["kind"]).validate(doc)
        predictor = doc["spec"].get("predictor")
        if predictor is not None:  # "exactly one of [...] must be specified in PredictorSpec"
            assert ("model" in predictor) != ("containers" in predictor)


# -- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]) -> Path:
    """A data home where churn:1 holds alias production (the model `liveml k8s` names things after)."""
    path = tmp_path_factory.mktemp("k8s") / "home"
    with Registry.init(Settings(home=path, user="tester")) as registry:
        registry.push("churn", model_files["logistic"], aliases=["production"])
    return path


@pytest.fixture
def k8s(cli: Cli, home: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:  # noqa: F811
    monkeypatch.setenv("LIVEML_HOME", str(home))
    return lambda *args: cli("k8s", *args)


def kustomize(folder: Path) -> list[Doc]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: the kustomize build of the manifests was NOT checked")
    done = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def by_kind(docs: list[Doc]) -> dict[str, list[Doc]]:
    out: dict[str, list[Doc]] = {}
    for doc in docs:
        out.setdefault(doc["kind"], []).append(doc)
    return out


def settings_from(data: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a pod builds from this ConfigMap data (the real parsing, environment variables)."""
    for key in list(__import__("os").environ):
        if key.startswith("LIVEML_"):
            monkeypatch.delenv(key)
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    return Settings()


# -- the model shape ----------------------------------------------------------------------------------
def test_model_shape_folder_builds_and_validates(
    k8s: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "k8s"
    done = k8s("churn@production", "--image", IMAGE, "--replicas", "2..10", "--out", out, "--prometheus-rule")
    assert done.code == 0, done.err
    assert f"kubectl apply -k {out}" in done.err and "API keys are off" in done.err
    docs = by_kind(kustomize(out))
    assert set(docs) == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                         "PrometheusRule"}  # fmt: skip
    for kind, objects in docs.items():
        for obj in objects:
            if kind == "PrometheusRule":  # the Prometheus Operator's CRD: not in Kubernetes' schemas
                assert obj["apiVersion"] == "monitoring.coreos.com/v1" and obj["spec"] == obs.rules()
            else:
                validate_k8s(obj)

    [deploy] = docs["Deployment"]
    [hpa] = docs["HorizontalPodAutoscaler"]
    [svc] = docs["Service"]
    [pdb] = docs["PodDisruptionBudget"]
    pod = deploy["spec"]["template"]["spec"]
    [box] = pod["containers"]
    assert deploy["metadata"]["name"] == "churn" and box["image"] == IMAGE
    assert "replicas" not in deploy["spec"], "with an autoscaler, kubectl apply must not reset the count"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 70,
    }
    assert hpa["spec"]["scaleTargetRef"]["name"] == "churn"
    selector = deploy["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["selector"] == selector == pdb["spec"]["selector"]["matchLabels"]
    assert all(deploy["spec"]["template"]["metadata"]["labels"][k] == v for k, v in selector.items())
    assert deploy["spec"]["template"]["metadata"]["labels"]["liveml.io/model-version"] == "1"
    # probes, drain, hardening
    assert box["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert box["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert box["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    sleep = int(box["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] >= sleep + 30  # drain, then uvicorn's 30 s graceful stop
    assert box["securityContext"]["readOnlyRootFilesystem"] is True
    assert box["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert box["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["enableServiceLinks"] is False and pod["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m["name"] for m in box["volumeMounts"]}
    empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert mounts[HOME] in empty and mounts["/tmp"] in empty
    assert box["resources"] == {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    scrape = deploy["spec"]["template"]["metadata"]["annotations"]
    assert (scrape["prometheus.io/scrape"], scrape["prometheus.io/path"], scrape["prometheus.io/port"]) == (
        "true",
        "/metrics",
        "8080",
    )
    # the generated settings ConfigMap (hash-suffixed) is the one the pods read, and says what they need
    maps = {m["metadata"]["name"]: m for m in docs["ConfigMap"]}
    [settings_ref] = [e["configMapRef"]["name"] for e in box["envFrom"]]
    assert settings_ref.startswith("churn-settings-") and settings_ref in maps
    settings = settings_from(maps[settings_ref]["data"], monkeypatch)
    assert settings.model_dir == Path(MODEL_DIR) and settings.default_model == "churn"
    assert (
        settings.platform_auth is True and settings.server_port == 8080 and settings.server_host == "0.0.0.0"
    )
    assert settings.home == Path(HOME)
    dashboard = maps["churn-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"][obs.DASHBOARD]) == obs.provisioned_dashboard()
    assert json.loads((out / "observability" / obs.DASHBOARD).read_text()) == obs.dashboard()
    assert yaml.safe_load((out / "observability" / obs.RULES).read_text()) == obs.rules()


def test_kustomize_images_entry_retags_every_container(k8s: Cli, tmp_path: Path) -> None:
    """What `kustomize edit set image ghcr.io/acme/churn:5` writes into the images entry reaches the pods."""
    out = tmp_path / "k8s"
    assert k8s("churn", "--image", IMAGE, "--out", out, "--kserve").code == 0
    for folder in (out, out / "kserve"):
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        assert kustomization["images"] == [{"name": "ghcr.io/acme/churn", "newTag": "4"}]
        kustomization["images"] = [{"name": "ghcr.io/acme/churn", "newTag": "5"}]
        (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        images = re.findall(r"image: (\S+)", yaml.safe_dump_all(kustomize(folder)))
        assert images and set(images) == {"ghcr.io/acme/churn:5"}


def test_stdout_without_out_and_a_fixed_count(k8s: Cli) -> None:
    done = k8s("churn:1", "--image", IMAGE, "--replicas", "3", "--namespace", "ml", "--name", "churn-prod")
    assert done.code == 0, done.err
    docs = [d for d in yaml.safe_load_all(done.out) if d]
    for doc in docs:
        validate_k8s(doc)
        assert doc["metadata"]["namespace"] == "ml"
    kinds = by_kind(docs)
    assert "HorizontalPodAutoscaler" not in kinds
    [deploy] = kinds["Deployment"]
    assert deploy["spec"]["replicas"] == 3 and deploy["metadata"]["name"] == "churn-prod"
    [box] = deploy["spec"]["template"]["spec"]["containers"]
    names = {m["metadata"]["name"] for m in kinds["ConfigMap"]}
    assert (
        box["envFrom"] == [{"configMapRef": {"name": "churn-prod-settings"}}]
        and "churn-prod-settings" in names
    )


def test_validation_catches_a_wrong_field() -> None:
    """The strict schemas fail on what a typo would make (so the checks above can fail)."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }
    validate_k8s(deployment)
    for broken in ("replica", "template.spec.containers.0.readinesProbe"):
        doc = copy.deepcopy(deployment)
        target: Any = doc["spec"]
        *path, last = broken.split(".")
        for part in path:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = 2
        with pytest.raises(kv.ValidationError):
            validate_k8s(doc)


# -- the server shape ---------------------------------------------------------------------------------
def test_server_shape_reads_the_secret_and_never_writes_it(
    k8s: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "k8s"
    args = ["churn@production,fraud", "--shape", "server", "--image", "ghcr.io/acme/liveml-server:0.1.0"]
    args += ["--secret", "liveml-db", "--artifact-root", "s3://models/liveml", "--replicas", "2..4"]
    args += [
        "--env",
        "LIVEML_LOG_URL=s3://logs/predictions",
        "--config-map",
        "team-settings",
        "--out",
        str(out),
    ]
    done = k8s(*args)
    assert done.code == 0, done.err
    assert "/metrics needs an API key" in done.err
    docs = by_kind(kustomize(out))
    for objects in docs.values():
        for obj in objects:
            validate_k8s(obj)
    [deploy] = docs["Deployment"]
    assert deploy["metadata"]["name"] == "liveml"
    [box] = deploy["spec"]["template"]["spec"]["containers"]
    sources = [next(iter(e.items())) for e in box["envFrom"]]
    assert ("secretRef", {"name": "liveml-db"}) in sources and (
        "configMapRef",
        {"name": "team-settings"},
    ) in sources
    [generated] = [m for m in docs["ConfigMap"] if m["metadata"]["name"].startswith("liveml-settings-")]
    settings = settings_from(generated["data"], monkeypatch)
    assert settings.serve_models == ["churn@production", "fraud"]
    assert settings.platform_auth is False and settings.auth is True  # API keys from the shared registry
    assert settings.artifact_root == "s3://models/liveml" and settings.log_url == "s3://logs/predictions"
    assert settings.model_dir is None and settings.database_url is None  # the database URL is the Secret's
    for path in out.rglob("*"):
        if path.is_file():
            assert "postgresql" not in path.read_text() and "LIVEML_DATABASE_URL" not in path.read_text()


# -- KServe -------------------------------------------------------------------------------------------
def test_kserve_objects_follow_kserve_api(k8s: Cli, tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    assert k8s("churn@production", "--image", IMAGE, "--kserve", "--replicas", "1..3", "--out", out).code == 0
    built = by_kind(kustomize(out / "kserve"))
    [runtime] = built["ServingRuntime"]
    [service] = built["InferenceService"]
    [settings] = built["ConfigMap"]
    validate_kserve(runtime)
    validate_kserve(service)
    validate_k8s(settings)
    formats = {f["name"]: f.get("autoSelect") for f in runtime["spec"]["supportedModelFormats"]}
    assert formats == {**{name: False for name in KSERVE_FORMATS.values()}, "liveml": True}
    assert set(runtime["spec"]["protocolVersions"]) == {"v1", "v2"}
    [server] = runtime["spec"]["containers"]
    assert server["name"] == "kserve-container" and server["args"][0] == "serve"
    assert "--model-dir=/mnt/models" in server["args"] and "--default-model={{.Name}}" in server["args"]
    predictor = service["spec"]["predictor"]
    [custom] = predictor["containers"]
    assert custom["name"] == "kserve-container" and custom["image"] == IMAGE
    assert custom["envFrom"] == [{"configMapRef": {"name": settings["metadata"]["name"]}}]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 3)

    # with a storage URI, the InferenceService runs the model through the liveml runtime
    done = k8s("churn", "--image", IMAGE, "--kserve", "--storage-uri", "s3://models/churn/1")
    assert done.code == 0, done.err
    [service] = [d for d in yaml.safe_load_all(done.out) if d and d["kind"] == "InferenceService"]
    validate_kserve(service)
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == "liveml" and model["modelFormat"] == {"name": "sklearn"}
    assert model["storageUri"] == "s3://models/churn/1"

    broken = copy.deepcopy(runtime)
    broken["spec"]["supportedModelFormat"] = broken["spec"].pop("supportedModelFormats")
    with pytest.raises(jsonschema.ValidationError):
        validate_kserve(broken)


# -- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--replicas", "5..2"], "minimum 5 is above the maximum 2"),
        (["--replicas", "0"], "at least 1 replica"),
        (["--replicas", "two"], "is not N or MIN..MAX"),
        (["--shape", "blue"], "--shape 'blue' is not one of model, server"),
        (["--name", "Churn_Prod"], "is not a valid Kubernetes name"),
        (["--namespace", "-ml"], "is not a valid namespace"),
        (["--cpu", "2cores"], "is not a Kubernetes cpu quantity"),
        (["--memory", "1Gi:512Mi"], "the limit 512Mi is below the request 1Gi"),
        (["--image", "Bad Image:1"], "is not an image reference"),
        (["--env", "LIVEML_DATABASE_URL=postgresql://u:pw@db/liveml"], "looks like a secret"),
        (["--env", "AWS_SECRET_ACCESS_KEY=abc"], "looks like a secret"),
        (["--env", "LIVEML_LOGURL=s3://x"], "did you mean LIVEML_LOG_URL"),
        (["--env", "LIVEML_SERVER_PORT=9000"], "change it with --port"),
        (["--env", "not a pair"], "is not KEY=VALUE"),
        (["--secret", "Not_A_Name"], "--secret 'Not_A_Name' is not a valid Kubernetes object name"),
        (["--auth", "keys"], "--auth keys needs the shared registry"),
        (["--auth", "open"], "--auth 'open' is not one of platform, keys"),
        (["--shape", "server"], "the server shape reads the shared registry: give --secret"),
        (["--port", "80"], "cannot bind ports below 1024"),
        (["--storage-uri", "s3://m/1"], "it goes with --kserve"),
        (["--cpu-target", "0"], "--cpu-target 0"),
    ],
)
def test_bad_input_gets_a_clear_error(k8s: Cli, args: list[str], says: str) -> None:
    image = [] if "--image" in args else ["--image", IMAGE]
    done = k8s("churn@production", *image, *args)
    assert done.code == 2, done.err
    assert says in " ".join(done.err.split()), done.err
    assert "Traceback" not in done.err and done.out == ""


def test_missing_image_and_unknown_model(k8s: Cli) -> None:
    done = k8s("churn@production")
    assert done.code == 2 and "--image is required" in done.err
    done = k8s("nope@production", "--image", IMAGE)
    assert done.code != 0 and "nope" in done.err and "Traceback" not in done.err


def test_names_and_image_references() -> None:
    assert name_for_model("Churn_Model.v2") == "churn-model-v2"
    with pytest.raises(Invalid, match="--name"):
        name_for_model("2fast")
    cases = {
        "localhost:5000/churn": ("localhost:5000/churn", None, None),
        "churn:4": ("churn", "4", None),
        f"ghcr.io/a/b:4@sha256:{'a' * 64}": ("ghcr.io/a/b", "4", f"sha256:{'a' * 64}"),
        "registry.example.com:443/team/churn-model:v1.2": (
            "registry.example.com:443/team/churn-model",
            "v1.2",
            None,
        ),
    }
    for text, (name, tag, digest) in cases.items():
        image = parse_image(text)
        assert (image.name, image.tag, image.digest) == (name, tag, digest) and str(image) == text


# -- observability files --------------------------------------------------------------------------------
def test_dashboard_is_importable_and_provisionable() -> None:
    board = obs.dashboard()
    [source] = board["__inputs"]
    assert (
        source["name"] == "DS_PROMETHEUS"
        and source["type"] == "datasource"
        and source["pluginId"] == "prometheus"
    )
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"]) and len(panels) >= 10
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
    provisioned = obs.provisioned_dashboard()
    assert "DS_PROMETHEUS" not in json.dumps(provisioned)
    assert provisioned["templating"]["list"][0] == {
        **provisioned["templating"]["list"][0],
        "type": "datasource",
    }


def promql_exprs() -> Iterator[str]:
    for panel in obs.dashboard()["panels"]:
        yield from (t["expr"] for t in panel.get("targets", []))
    for group in obs.rules()["groups"]:
        yield from (rule["expr"] for rule in group["rules"])


def test_rules_are_prometheus_rule_groups() -> None:
    groups = obs.rules()["groups"]
    alerts = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    assert {"LivemlHighLatencyP99", "LivemlHighErrorRate", "LivemlDatasetDrift"} <= set(alerts)
    assert "histogram_quantile(0.99" in alerts["LivemlHighLatencyP99"]["expr"]
    assert 'status=~"5.."' in alerts["LivemlHighErrorRate"]["expr"]
    for rule in alerts.values():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
        assert rule["labels"]["severity"] and rule["annotations"]["summary"]
    for expr in promql_exprs():
        depth = 0
        for char in re.sub(r'"[^"]*"', "", expr):
            depth += {"(": 1, ")": -1}.get(char, 0)
            assert depth >= 0, expr
        assert depth == 0 and expr.count("{") == expr.count("}"), expr


# -- the docs' commands -----------------------------------------------------------------------------------
def doc_commands(page: str) -> list[list[str]]:
    """Every `liveml k8s` command in the page's bash blocks, continuation lines joined, comments cut."""
    import shlex

    text = (ROOT / "docs" / page).read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("liveml k8s"):
                commands.append(shlex.split(line, comments=True)[2:])
    return commands


@pytest.mark.parametrize("page", ["kubernetes.md", "kserve.md"])
def test_the_docs_commands_work(k8s: Cli, tmp_path: Path, page: str) -> None:
    commands = doc_commands(page)
    assert len(commands) >= 2
    for args in commands:
        done = k8s(*args)
        assert done.code == 0, f"{page}: liveml k8s {' '.join(args)}\n{done.err}"
        out = tmp_path / args[args.index("--out") + 1]
        for folder in [out, *([out / "kserve"] if "--kserve" in args else [])]:
            for doc in kustomize(folder):
                (validate_kserve if doc["kind"] in ("ServingRuntime", "InferenceService") else validate_k8s)(
                    doc
                )
