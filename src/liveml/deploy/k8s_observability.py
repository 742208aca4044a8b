"""The Grafana dashboard and Prometheus alert rules shipped for liveml's ``/metrics``, and the Kubernetes
objects that install them: a ConfigMap Grafana's dashboard sidecar picks up (label ``grafana_dashboard``)
and, for the Prometheus Operator, a ``PrometheusRule``.

The dashboard file is the importable form (Grafana's *Import dashboard* asks for the ``DS_PROMETHEUS``
input); the ConfigMap carries the provisioned form, where a ``datasource`` variable takes its place,
because provisioning does not resolve import inputs.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from liveml.deploy.k8s import K8sSpec

DASHBOARD = "liveml-dashboard.json"
RULES = "liveml-rules.yaml"
INPUT = "${DS_PROMETHEUS}"


def _text(name: str) -> str:
    return resources.files("liveml.deploy").joinpath("observability", name).read_text(encoding="utf-8")


def dashboard_text() -> str:
    """The importable dashboard JSON, as shipped."""
    return _text(DASHBOARD)


def rules_text() -> str:
    """The alert rules, a Prometheus ``rule_files`` YAML (``groups:``), as shipped."""
    return _text(RULES)


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(dashboard_text())
    return loaded


def rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(rules_text())
    return loaded


def provisioned_dashboard() -> dict[str, Any]:
    """The dashboard for provisioning: ``${DS_PROMETHEUS}`` becomes a ``datasource`` variable."""
    text = dashboard_text().replace(INPUT, "${datasource}")
    board: dict[str, Any] = json.loads(text)
    board.pop("__inputs", None)
    board.pop("__requires", None)
    variable = {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "options": [],
    }
    board["templating"]["list"].insert(0, variable)
    return board


def dashboard_config_map(spec: K8sSpec) -> dict[str, Any]:
    from liveml.deploy.k8s import metadata

    meta = metadata(spec, f"{spec.name}-dashboard")
    meta["labels"]["grafana_dashboard"] = "1"  # the label Grafana's sidecar (kube-prometheus-stack) watches
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {DASHBOARD: json.dumps(provisioned_dashboard(), indent=1)},
    }


def prometheus_rule(spec: K8sSpec) -> dict[str, Any]:
    """The rules as a Prometheus Operator object (its CRD must be installed: kube-prometheus-stack)."""
    from liveml.deploy.k8s import metadata

    meta = metadata(spec, f"{spec.name}-rules")
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": meta,
        "spec": {"groups": rules()["groups"]},
    }


__all__ = [
    "DASHBOARD",
    "RULES",
    "dashboard",
    "dashboard_config_map",
    "dashboard_text",
    "prometheus_rule",
    "provisioned_dashboard",
    "rules",
    "rules_text",
]
